package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShardTest {
    private static final ImageDecoder DECODER = new ImageDecoder();

    /** A folder dataset: 2 classes, 6 images including a big PNG, a CMYK JPEG, a truncated and an empty file. */
    static FileImageDataset folder(Path root) throws IOException {
        Path a = root.resolve("src/apple");
        Path b = root.resolve("src/pear");
        Files.createDirectories(a);
        Files.createDirectories(b);
        Files.write(a.resolve("0.jpg"), TestImages.jpeg(TestImages.quadrants(64, 48), null, false));
        Files.write(a.resolve("1.png"), TestImages.png(TestImages.quadrants(600, 520)));
        byte[] jpeg = TestImages.jpeg(TestImages.quadrants(40, 40), null, false);
        Files.write(a.resolve("2.jpg"), Arrays.copyOf(jpeg, jpeg.length / 2));
        Files.write(b.resolve("3.jpg"), TestImages.adobeJpeg(new int[][] {{0, 255, 255, 255}, {255, 255, 255, 255}}, 0));
        Files.write(b.resolve("4.jpg"), new byte[0]);
        Files.write(b.resolve("5.png"), TestImages.png(TestImages.quadrants(20, 30)));
        return ImageFolders.imageFolder(root.resolve("src"), DECODER);
    }

    @Test
    void packCleansShrinksAndReadsBack(@TempDir Path root) throws Exception {
        FileImageDataset src = folder(root);
        assertEquals(6, src.size());
        ShardPacker.Report rep = new ShardPacker(512, ShardPacker.Format.PPM, 0.9f, 3, 2).pack(src, root.resolve("ppm"), "train");
        assertEquals(4, rep.written());
        assertEquals(2, rep.shards()); // 3 + 1
        assertEquals(2, rep.bad().size());
        assertTrue(rep.bad().get(0).source().endsWith("2.jpg"));
        assertTrue(rep.bad().get(1).source().endsWith("4.jpg"));

        try (ShardDataset ds = ShardDataset.open(root.resolve("ppm"), DECODER)) {
            assertEquals(List.of("apple", "pear"), ds.classes());
            assertEquals(4, ds.size());
            assertArrayEquals(new int[] {0, 0, 1, 1}, new int[] {ds.label(0), ds.label(1), ds.label(2), ds.label(3)});
            // PPM is lossless: equal to the decoded source, or to its resize to shorter side 512 (600x520 -> 590x512)
            assertArrayEquals(src.load(0).pixels(), ds.load(0).pixels());
            RgbImage big = ds.load(1);
            assertEquals(590, big.width());
            assertEquals(512, big.height());
            assertArrayEquals(new Resampler().resize(src.load(1), 590, 512).pixels(), big.pixels());
            RgbImage cmyk = ds.load(2);
            assertEquals(0, cmyk.get(8, 8, 0), 8);   // cyan, converted once at packing time
            assertEquals(255, cmyk.get(8, 8, 2), 8);
            assertTrue(ds.source(3).endsWith("train-000001.tar:000000005"));
        }

        Path jpg = root.resolve("jpg");
        ShardPacker.Report r2 = new ShardPacker(512, ShardPacker.Format.JPG, 0.9f, 100, 1).pack(src, jpg, "train");
        assertEquals(1, r2.shards());
        try (ShardDataset ds = ShardDataset.open(jpg, DECODER)) {
            assertArrayEquals(src.readBytes(0), ds.readBytes(0)); // ordinary small JPEG copied unchanged
            RgbImage big = ds.load(1);
            assertEquals(590, big.width());
            assertEquals(255, big.get(100, 100, 0), 6);
            assertEquals(200, big.get(400, 500, 1), 6);
            RgbImage pear = ds.load(3);
            assertEquals(255, pear.get(25, 2, 2), 6); // blue quadrant
        }
        // Deterministic: packing again gives identical bytes.
        new ShardPacker(512, ShardPacker.Format.JPG, 0.9f, 100, 2).pack(src, root.resolve("again"), "train");
        assertArrayEquals(Files.readAllBytes(jpg.resolve("train-000000.tar")),
                Files.readAllBytes(root.resolve("again/train-000000.tar")));
    }

    @Test
    void pipelineTrainsFromShards(@TempDir Path root) throws Exception {
        FileImageDataset src = folder(root);
        new ShardPacker(512, ShardPacker.Format.PPM, 0.9f, 2, 1).pack(src, root.resolve("s"), "x");
        SampleTransform t = SampleTransform.centreCrop(24, 16, Normalization.NONE);
        try (ShardDataset ds = ShardDataset.open(root.resolve("s"), DECODER);
             DataPipeline p = new DataPipeline(ds, t, DataPipeline.Config.training(4, 2, 3).withShuffle(false))) {
            DataPipeline.Epoch e = p.epoch(0, 0);
            Batch b = e.next();
            assertEquals(4, b.size());
            assertArrayEquals(new int[] {0, 0, 1, 1}, Arrays.copyOf(b.labels(), 4));
            float[] expect = new float[3 * 16 * 16];
            TestTransforms.centreCrop(src.load(5), 24, 16, false, Normalization.NONE, new Resampler(), expect, 0);
            assertArrayEquals(expect, Arrays.copyOfRange(b.hostImages(), 3 * expect.length, 4 * expect.length));
        }
    }
}
