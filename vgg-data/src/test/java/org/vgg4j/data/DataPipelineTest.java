package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class DataPipelineTest {

    /** n images of varied sizes: image i is a ramp shifted by i, label i; every 7th (i % 7 == 3) is bad. */
    static final class Synthetic implements ImageDataset {
        final int n;
        final boolean withBad;

        Synthetic(int n, boolean withBad) {
            this.n = n;
            this.withBad = withBad;
        }

        @Override
        public int size() {
            return n;
        }

        @Override
        public int label(int i) {
            return i;
        }

        @Override
        public List<String> classes() {
            return IntStream.range(0, n).mapToObj(Integer::toString).toList();
        }

        @Override
        public String source(int i) {
            return "synthetic/" + i;
        }

        @Override
        public RgbImage load(int i) throws BadImageException {
            if (withBad && i % 7 == 3) {
                throw new BadImageException(source(i), "made bad for the test");
            }
            int w = 40 + i % 13;
            int h = 36 + i % 5;
            byte[] px = new byte[w * h * 3];
            for (int p = 0; p < px.length; p++) {
                px[p] = (byte) (p * 31 + i * 17);
            }
            return new RgbImage(w, h, px);
        }
    }

    private static final SampleTransform AUG = SampleTransform.train(
            new TrainTransform(32, 48, 24, true, 0.1, ColourPca.IMAGENET, Normalization.IMAGENET_MEAN_RGB));

    /** Copies every batch of an epoch (from startBatch) out of the reused buffers. */
    private static List<float[]> images(DataPipeline p, long epoch, int start, List<int[]> labels) {
        List<float[]> out = new ArrayList<>();
        try (DataPipeline.Epoch e = p.epoch(epoch, start)) {
            while (e.hasNext()) {
                Batch b = e.next();
                out.add(Arrays.copyOf(b.hostImages(), b.size() * b.exampleSize()));
                labels.add(Arrays.copyOf(b.labels(), b.size()));
            }
        }
        return out;
    }

    @Test
    void sameSeedAndEpochGiveBitIdenticalBatchesWhateverTheThreadCount() {
        DataPipeline.Config cfg = DataPipeline.Config.training(8, 1, 42);
        List<int[]> l1 = new ArrayList<>();
        List<int[]> l3 = new ArrayList<>();
        List<float[]> one;
        List<float[]> three;
        try (DataPipeline p = new DataPipeline(new Synthetic(61, false), AUG, cfg)) {
            one = images(p, 5, 0, l1);
        }
        try (DataPipeline p = new DataPipeline(new Synthetic(61, false), AUG, cfg.withThreads(3))) {
            three = images(p, 5, 0, l3);
        }
        assertEquals(8, one.size()); // ceil(61 / 8)
        assertEquals(one.size(), three.size());
        for (int b = 0; b < one.size(); b++) {
            assertArrayEquals(one.get(b), three.get(b), "batch " + b);
            assertArrayEquals(l1.get(b), l3.get(b));
        }
        assertEquals(5, l1.get(7).length); // last partial batch
        int[] seen = l1.stream().flatMapToInt(Arrays::stream).sorted().toArray();
        assertArrayEquals(IntStream.range(0, 61).toArray(), seen); // each sample once
    }

    @Test
    void epochsShuffleDifferentlyAndResumeMidEpochIsExact() {
        try (DataPipeline p = new DataPipeline(new Synthetic(40, false), AUG, DataPipeline.Config.training(6, 2, 9))) {
            assertNotEquals(Arrays.toString(p.rankOrder(0)), Arrays.toString(p.rankOrder(1)));
            List<int[]> all = new ArrayList<>();
            List<float[]> full = images(p, 1, 0, all);
            List<int[]> tail = new ArrayList<>();
            List<float[]> resumed = images(p, 1, 3, tail);
            assertEquals(full.size() - 3, resumed.size());
            for (int b = 0; b < resumed.size(); b++) {
                assertArrayEquals(full.get(b + 3), resumed.get(b));
                assertArrayEquals(all.get(b + 3), tail.get(b));
            }
        }
        DataPipeline.Config plain = DataPipeline.Config.training(6, 1, 9).withShuffle(false);
        try (DataPipeline p = new DataPipeline(new Synthetic(40, false), AUG, plain)) {
            assertArrayEquals(IntStream.range(0, 40).toArray(), p.rankOrder(3));
        }
    }

    @Test
    void shardsPartitionTheEpochAndPadToEqualShares() {
        int n = 23;
        int world = 3;
        List<Integer> union = new ArrayList<>();
        DataPipeline.Config base = DataPipeline.Config.training(4, 1, 5);
        int[] global;
        try (DataPipeline p0 = new DataPipeline(new Synthetic(n, false), AUG, base)) {
            global = p0.rankOrder(2);
        }
        for (int r = 0; r < world; r++) {
            try (DataPipeline p = new DataPipeline(new Synthetic(n, false), AUG, base.sharded(r, world))) {
                int[] mine = p.rankOrder(2);
                assertEquals(8, mine.length); // ceil(23 / 3)
                assertEquals(2, p.batchesPerEpoch());
                for (int k = 0; k < mine.length; k++) {
                    int pos = k * world + r;
                    assertEquals(global[pos % n], mine[k]); // wraps around for the one padded slot
                    union.add(mine[k]);
                }
            }
        }
        assertEquals(24, union.size());
        assertEquals(n, union.stream().distinct().count());
    }

    @Test
    void badSamplesAreSkippedCountedAndLoggedOnce() {
        BadImageLog log = new BadImageLog();
        DataPipeline.Config cfg = DataPipeline.Config.training(10, 2, 1);
        try (DataPipeline p = new DataPipeline(new Synthetic(30, true), AUG, cfg, log)) {
            for (int epoch = 0; epoch < 2; epoch++) {
                try (DataPipeline.Epoch e = p.epoch(epoch, 0)) {
                    int total = 0;
                    while (e.hasNext()) {
                        Batch b = e.next();
                        for (int k = 0; k < b.size(); k++) {
                            assertTrue(b.labels()[k] % 7 != 3);
                        }
                        total += b.size();
                    }
                    assertEquals(4, e.skipped()); // 3, 10, 17, 24
                    assertEquals(26, total);
                    assertEquals(26, e.delivered());
                }
            }
            assertEquals(4, log.size());
        }
    }

    @Test
    void imagesTheTransformRejectsAreSkippedNotFatal() {
        SampleTransform picky = new SampleTransform() {
            @Override
            public int channels() {
                return 3;
            }

            @Override
            public int height() {
                return 4;
            }

            @Override
            public int width() {
                return 4;
            }

            @Override
            public void apply(RgbImage src, java.util.SplittableRandom rng, Resampler r, float[] dst, int off) {
                if (src.width() == 40 + 5) { // samples 5, 18: as if their aspect ratio were absurd
                    Resampler.shorterSideTo(1, 100_000_000, 512);
                }
                TestTransforms.centreCrop(src, 4, 4, false, Normalization.NONE, r, dst, off);
            }
        };
        BadImageLog log = new BadImageLog();
        try (DataPipeline p = new DataPipeline(new Synthetic(20, false), picky,
                DataPipeline.Config.training(20, 2, 0).withShuffle(false), log);
             DataPipeline.Epoch e = p.epoch(0, 0)) {
            Batch b = e.next();
            assertEquals(18, b.size());
            assertEquals(2, e.skipped());
            assertTrue(log.snapshot().get("synthetic/5").contains("aspect ratio too extreme"));
        }
    }

    @Test
    void memoryCapLowersPrefetchAndRejectsTooSmallCaps() {
        long batchBytes = 4L * 8 * 3 * 24 * 24 + 4L * 8;
        DataPipeline.Config cfg = DataPipeline.Config.training(8, 2, 1).withPrefetch(16, 4 * batchBytes);
        try (DataPipeline p = new DataPipeline(new Synthetic(50, false), AUG, cfg)) {
            assertEquals(3, p.prefetchDepth());
            List<int[]> l = new ArrayList<>();
            assertEquals(7, images(p, 0, 0, l).size());
        }
        assertThrows(IllegalArgumentException.class, () -> new DataPipeline(new Synthetic(5, false), AUG,
                cfg.withPrefetch(2, batchBytes)));
        assertThrows(IllegalArgumentException.class, () -> cfg.sharded(3, 3));
    }
}
