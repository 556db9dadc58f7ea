package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.model.DenseEvaluation;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.data.BadImageException;
import org.vgg4j.data.BadImageLog;
import org.vgg4j.data.Batch;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.FileImageDataset;
import org.vgg4j.data.ImageDecoder;
import org.vgg4j.data.ImageFolders;
import org.vgg4j.data.ImageDataset;
import org.vgg4j.data.Normalization;
import org.vgg4j.data.Resampler;
import org.vgg4j.data.RgbImage;

/**
 * The protocols checked against identities that hold whatever the weights (float64, reference backend): dense
 * evaluation of a training-size image equals its single crop; a 1x1 multi-crop lattice is the centre crop; flip
 * averaging, multi-scale and ensemble posteriors are the means of their parts; top-k counting on hand-made scores.
 */
class EvaluatorTest {
    private static Backend backend;
    private static Network a;
    private static Network b;
    private static final Normalization NORM = Normalization.meanRgb(120, 115, 100);

    @BeforeAll
    static void nets() {
        backend = Backends.create("reference");
        a = Vgg.build(backend, DType.FLOAT64, Tiny.spec(false, 0.5));
        b = Vgg.build(backend, DType.FLOAT64, Tiny.spec(false, 0.5));
        Initializers.initialize(a, Initializers.Scheme.GLOROT_UNIFORM, 1);
        Initializers.initialize(b, Initializers.Scheme.GLOROT_UNIFORM, 2);
    }

    @AfterAll
    static void close() {
        a.close();
        b.close();
    }

    private static RgbImage image(int w, int h, long seed, boolean mirrored) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] px = new byte[w * h * 3];
        for (int i = 0; i < px.length; i++) {
            px[i] = (byte) r.nextInt(256);
        }
        if (mirrored) {
            byte[] m = new byte[px.length];
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    System.arraycopy(px, (y * w + x) * 3, m, (y * w + (w - 1 - x)) * 3, 3);
                }
            }
            px = m;
        }
        return new RgbImage(w, h, px);
    }

    private static double[] post(List<Network> nets, RgbImage img, Evaluator.Protocol p) {
        List<DenseEvaluation> dense = new ArrayList<>();
        for (Network n : nets) {
            dense.add(DenseEvaluation.of(n));
        }
        try {
            return Evaluator.posterior(nets, dense, img, p, new Resampler());
        } finally {
            dense.forEach(DenseEvaluation::close);
        }
    }

    private static Evaluator.Protocol p(Evaluator.View v, boolean flips, int grid, int... q) {
        return new Evaluator.Protocol(v, q, grid, flips, NORM);
    }

    private static void assertClose(double[] want, double[] got, double tol) {
        double sum = 0;
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], tol, "class " + i);
            sum += got[i];
        }
        assertEquals(1.0, sum, 1e-12, "a posterior sums to 1");
    }

    @Test
    void denseOnATrainingSizeImageEqualsTheSingleCrop() {
        RgbImage img = image(32, 32, 5, false);
        assertClose(post(List.of(a), img, p(Evaluator.View.CENTRE, false, 5, 32)),
                post(List.of(a), img, p(Evaluator.View.DENSE, false, 5, 32)), 1e-12);
    }

    @Test
    void aOneByOneMultiCropIsTheCentreCrop() {
        RgbImage img = image(45, 38, 6, false);
        assertClose(post(List.of(a), img, p(Evaluator.View.CENTRE, false, 5, 40)),
                post(List.of(a), img, p(Evaluator.View.MULTI_CROP, false, 1, 40)), 1e-12);
    }

    @Test
    void flipAveragingScalesCombinationsAndEnsemblesAreMeansOfTheirParts() {
        RgbImage img = image(50, 41, 7, false);
        RgbImage mirror = image(50, 41, 7, true);
        double[] plain = post(List.of(a), img, p(Evaluator.View.DENSE, false, 5, 44));
        double[] flipped = post(List.of(a), mirror, p(Evaluator.View.DENSE, false, 5, 44));
        double[] both = post(List.of(a), img, p(Evaluator.View.DENSE, true, 5, 44));
        double[] want = new double[10];
        for (int c = 0; c < 10; c++) {
            want[c] = (plain[c] + flipped[c]) / 2;
        }
        assertClose(want, both, 1e-12);

        double[] q1 = post(List.of(a), img, p(Evaluator.View.MULTI_CROP, true, 3, 36));
        double[] q2 = post(List.of(a), img, p(Evaluator.View.MULTI_CROP, true, 3, 48));
        double[] multi = post(List.of(a), img, p(Evaluator.View.MULTI_CROP, true, 3, 36, 48));
        double[] d1 = post(List.of(a), img, p(Evaluator.View.DENSE, true, 3, 36));
        double[] combined = post(List.of(a), img, p(Evaluator.View.DENSE_AND_MULTI_CROP, true, 3, 36));
        double[] ens = post(List.of(a, b), img, p(Evaluator.View.MULTI_CROP, true, 3, 36));
        double[] bq1 = post(List.of(b), img, p(Evaluator.View.MULTI_CROP, true, 3, 36));
        double[] w1 = new double[10];
        double[] w2 = new double[10];
        double[] w3 = new double[10];
        for (int c = 0; c < 10; c++) {
            w1[c] = (q1[c] + q2[c]) / 2;
            w2[c] = (q1[c] + d1[c]) / 2;
            w3[c] = (q1[c] + bq1[c]) / 2;
        }
        assertClose(w1, multi, 1e-12);
        assertClose(w2, combined, 1e-12);
        assertClose(w3, ens, 1e-12);
        // and the views really differ (else the identities above would be empty)
        assertTrue(Math.abs(q1[0] - q2[0]) > 1e-9 && Math.abs(plain[0] - flipped[0]) > 1e-9);
    }

    @Test
    void topOneAndTopFiveCountRanks() {
        // 3 images, 6 classes; label ranks 0, 4 and 5
        double[] p = {
            0.5, 0.1, 0.1, 0.1, 0.1, 0.1,
            0.3, 0.25, 0.2, 0.15, 0.06, 0.04,
            0.3, 0.25, 0.2, 0.15, 0.06, 0.04};
        Evaluator.Result r = Evaluator.score(p, 6, new int[] {0, 4, 5});
        assertEquals(3, r.count());
        assertEquals(2, r.top1Wrong());
        assertEquals(1, r.top5Wrong());
        // ties do not count as hits: a constant output is wrong for every label but the first
        Evaluator.Result t = Evaluator.score(new double[] {1, 1, 1, 1, 1, 1, 1}, 7, new int[] {6});
        assertEquals(1, t.top5Wrong());
    }

    @Test
    void evaluateRunsAProtocolOverADataset() throws Exception {
        List<RgbImage> imgs = List.of(image(40, 36, 1, false), image(33, 47, 2, false), image(36, 36, 3, false));
        ImageDataset ds = new ImageDataset() {
            @Override
            public int size() {
                return imgs.size();
            }

            @Override
            public int label(int i) {
                return i * 3;
            }

            @Override
            public List<String> classes() {
                return List.of("0", "1", "2", "3", "4", "5", "6", "7", "8", "9");
            }

            @Override
            public String source(int i) {
                return "image " + i;
            }

            @Override
            public RgbImage load(int i) {
                return imgs.get(i);
            }
        };
        Evaluator.Protocol prot = Evaluator.Protocol.multiScale(Evaluator.View.DENSE_AND_MULTI_CROP, 33, 33, NORM);
        assertEquals("[1, 33, 65]", Arrays.toString(prot.scales()));
        Evaluator.Protocol q = p(Evaluator.View.DENSE_AND_MULTI_CROP, true, 2, 33, 40);
        Evaluator.Result r = Evaluator.evaluate(List.of(a, b), ds, q);
        int[] labels = {0, 3, 6};
        double[] all = new double[30];
        for (int i = 0; i < 3; i++) {
            System.arraycopy(post(List.of(a, b), imgs.get(i), q), 0, all, i * 10, 10);
        }
        assertEquals(Evaluator.score(all, 10, labels), r);
    }

    @Test
    void mirrorRowsReversesEveryRow() {
        float[] src = {1, 2, 3, 4, 5, 6}; // two rows of width 3
        float[] dst = new float[6];
        Evaluator.mirrorRows(src, dst, 6, 3);
        assertArrayEquals(new float[] {3, 2, 1, 6, 5, 4}, dst);
    }

    @Test
    void batchValidationWithFlipsRanksTheMeanPosteriorOfEachImageAndItsMirror() throws Exception {
        Network net = Vgg.build(backend, DType.FLOAT64, Tiny.spec(true, 0));
        Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 5);
        int n = 23; // not a multiple of the batch: the last batch is partial
        try (DataPipeline val = Tiny.pipeline(Tiny.fashion(n, FashionMnist.Split.TEST), 10, 0, false)) {
            // Independent expectation: one image at a time, mirrored by hand, softmax of each, mean, ranked.
            double[] post = new double[n * 10];
            double[] plain = new double[n * 10];
            int[] labels = new int[n];
            int i = 0;
            try (DataPipeline.Epoch e = val.epoch(0, 0)) {
                while (e.hasNext()) {
                    Batch batch = e.next();
                    int len = batch.exampleSize();
                    double[] got = Evaluator.batchScores(net, batch, true);
                    for (int k = 0; k < batch.size(); k++, i++) {
                        float[] img = Arrays.copyOfRange(batch.hostImages(), k * len, (k + 1) * len);
                        float[] mir = new float[len];
                        for (int row = 0; row < len; row += 32) {
                            for (int x = 0; x < 32; x++) {
                                mir[row + x] = img[row + 31 - x];
                            }
                        }
                        double[] p1 = softmaxOf(net, img);
                        double[] p2 = softmaxOf(net, mir);
                        for (int c = 0; c < 10; c++) {
                            post[i * 10 + c] = 0.5 * (p1[c] + p2[c]);
                            plain[i * 10 + c] = p1[c];
                            assertEquals(post[i * 10 + c], got[k * 10 + c], 1e-12, "image " + i + " class " + c);
                        }
                        labels[i] = batch.labels()[k];
                    }
                }
            }
            assertEquals(n, i);
            Evaluator.Result want = Evaluator.score(post, 10, labels);
            Evaluator.Result got = Evaluator.onBatches(val, true).evaluate(net);
            assertEquals(want, got);
            assertEquals(Evaluator.score(plain, 10, labels), Evaluator.onBatches(val, false).evaluate(net));
            assertEquals(Evaluator.onBatches(val).evaluate(net), Evaluator.onBatches(val, false).evaluate(net));
        } finally {
            net.close();
        }
    }

    private static double[] softmaxOf(Network net, float[] chw) {
        Tensor x = backend.allocate(DType.FLOAT64,
                Shape.of(1, net.inputShape().dim(0), 32, 32)); // (1,C,32,32)
        try {
            backend.copyIn(chw, 0, x);
            Tensor out = net.forward(x, false);
            double[] s = new double[out.dim(1)];
            backend.copyOut(out, s, 0);
            Evaluator.softmaxInPlace(s, 0, s.length);
            return s;
        } finally {
            backend.free(x);
        }
    }

    /** A dataset of in-memory images whose {@code bad} indices fail to load as a truncated file would. */
    private static ImageDataset withBadImages(List<RgbImage> imgs, int... bad) {
        return new ImageDataset() {
            @Override
            public int size() {
                return imgs.size();
            }

            @Override
            public int label(int i) {
                return (i * 3) % 10;
            }

            @Override
            public List<String> classes() {
                return List.of("0", "1", "2", "3", "4", "5", "6", "7", "8", "9");
            }

            @Override
            public String source(int i) {
                return "image " + i;
            }

            @Override
            public RgbImage load(int i) throws BadImageException {
                if (Arrays.stream(bad).anyMatch(b -> b == i)) {
                    throw new BadImageException(source(i), "truncated or corrupt: premature end of data");
                }
                return imgs.get(i);
            }
        };
    }

    /** Sets element {@code index} of parameter {@code key} to {@code value}. */
    private static void poke(Network net, String key, int index, double value) {
        Tensor t = net.params().get(key).value();
        double[] host = new double[Math.toIntExact(t.size())];
        backend.copyOut(t, host, 0);
        host[index] = value;
        backend.copyIn(host, 0, t);
    }

    @Test
    void nonFiniteWeightsAreAnErrorNamingTheLayerNotAPerfectScore() throws Exception {
        ImageDataset ds = withBadImages(List.of(image(40, 36, 1, false), image(36, 36, 2, false)));
        for (double poison : new double[] {Double.NaN, Double.POSITIVE_INFINITY}) {
            for (Evaluator.View view : new Evaluator.View[] {Evaluator.View.CENTRE, Evaluator.View.DENSE,
                    Evaluator.View.MULTI_CROP}) {
                try (Network net = Vgg.build(backend, DType.FLOAT64, Tiny.spec(false, 0.5))) {
                    Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 3);
                    poke(net, "features.3.weight", 7, poison);
                    IllegalStateException e = assertThrows(IllegalStateException.class,
                            () -> Evaluator.evaluate(List.of(net), ds, p(view, true, 2, 36)), view + " " + poison);
                    assertTrue(e.getMessage().contains("parameter features.3.weight of layer features.3 holds NaN or infinity"),
                            e.getMessage());
                    assertTrue(e.getMessage().contains("image image 0"), e.getMessage());
                }
            }
        }
        // the same on the validation path of training (batches from a pipeline), with and without flips
        try (Network net = Vgg.build(backend, DType.FLOAT64, Tiny.spec(false, 0.5));
             DataPipeline val = Tiny.pipeline(Tiny.fashion(12, FashionMnist.Split.TEST), 5, 0, false)) {
            Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 3);
            poke(net, "classifier.6.bias", 2, Double.NaN);
            for (boolean flips : new boolean[] {false, true}) {
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> Evaluator.onBatches(val, flips).evaluate(net));
                assertTrue(e.getMessage().contains("parameter classifier.6.bias of layer classifier.6"), e.getMessage());
            }
        }
    }

    @Test
    void anOverflowingForwardPassNamesTheFirstLayerWhoseOutputIsNotFinite() throws Exception {
        ImageDataset ds = withBadImages(List.of(image(36, 36, 4, false)));
        try (Network net = Vgg.build(backend, DType.FLOAT64, Tiny.spec(false, 0.5))) {
            Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 3);
            for (String key : new String[] {"features.0.weight", "features.3.weight"}) {
                Tensor t = net.params().get(key).value();
                double[] host = new double[Math.toIntExact(t.size())];
                backend.copyOut(t, host, 0);
                for (int i = 0; i < host.length; i++) {
                    host[i] = host[i] >= 0 ? 1e200 : -1e200; // finite weights, products past the double range
                }
                backend.copyIn(host, 0, t);
            }
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Evaluator.evaluate(List.of(net), ds, p(Evaluator.View.CENTRE, false, 1, 36)));
            assertTrue(e.getMessage().contains("the output of layer features.3 is not"), e.getMessage());
        }
    }

    @Test
    void rankingRefusesNonFiniteScores() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Evaluator.score(new double[] {Double.NaN, Double.NaN, Double.NaN}, 3, new int[] {1}));
        assertTrue(e.getMessage().contains("class score 0 (NaN) is not finite"), e.getMessage());
    }

    @Test
    void evaluateSkipsCountsAndReportsUnreadableImages() throws Exception {
        List<RgbImage> imgs = List.of(image(40, 36, 1, false), image(33, 47, 2, false), image(36, 36, 3, false),
                image(36, 40, 5, false));
        ImageDataset ds = withBadImages(imgs, 1, 3);
        for (Evaluator.View view : new Evaluator.View[] {Evaluator.View.CENTRE, Evaluator.View.DENSE,
                Evaluator.View.MULTI_CROP, Evaluator.View.DENSE_AND_MULTI_CROP}) {
            Evaluator.Protocol q = p(view, true, 2, 36);
            BadImageLog log = new BadImageLog();
            Evaluator.Result r = Evaluator.evaluate(List.of(a), ds, q, log);
            // the errors are those of the two readable images alone
            double[] good = new double[20];
            System.arraycopy(post(List.of(a), imgs.get(0), q), 0, good, 0, 10);
            System.arraycopy(post(List.of(a), imgs.get(2), q), 0, good, 10, 10);
            Evaluator.Result want = Evaluator.score(good, 10, new int[] {0, 6});
            assertEquals(new Evaluator.Result(2, want.top1Wrong(), want.top5Wrong(), 2), r, view.toString());
            assertEquals(List.of("image 1", "image 3"), List.copyOf(log.snapshot().keySet()));
            assertTrue(r.toString().endsWith("(2 images evaluated; 2 unreadable images skipped)"), r.toString());
        }
        // an image no test scale can rescale is skipped like an unreadable one; a protocol that fits no image is not
        List<RgbImage> strip = List.of(imgs.get(0), new RgbImage(1, 500_000, new byte[3 * 500_000]));
        BadImageLog log = new BadImageLog();
        Evaluator.Result r = Evaluator.evaluate(List.of(a), withBadImages(strip), p(Evaluator.View.CENTRE, false, 1, 36), log);
        assertEquals(1, r.count());
        assertEquals(1, r.skipped());
        assertTrue(log.snapshot().get("image 1").startsWith("cannot transform: image 1x500000 rescaled to shorter side 36"),
                log.snapshot().toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Evaluator.evaluate(List.of(a), withBadImages(strip), p(Evaluator.View.CENTRE, false, 1, 24)));
        assertTrue(e.getMessage().contains("test scale Q 24 is smaller than the crop 32"), e.getMessage());
    }

    @Test
    void aBadFileInAnImageFolderIsSkippedNotFatal(@TempDir Path root) throws Exception {
        for (int k = 0; k < 2; k++) {
            Files.createDirectories(root.resolve("c" + k));
            Files.write(root.resolve("c" + k).resolve("good.ppm"), ppm(image(36 + k, 36, 10 + k, false)));
        }
        byte[] whole = ppm(image(40, 40, 12, false));
        Files.write(root.resolve("c1").resolve("truncated.ppm"), Arrays.copyOf(whole, whole.length / 2));
        Files.write(root.resolve("c0").resolve("empty.ppm"), new byte[0]);
        FileImageDataset ds = ImageFolders.imageFolder(root, new ImageDecoder());
        assertEquals(4, ds.size());
        for (Evaluator.View view : new Evaluator.View[] {Evaluator.View.CENTRE, Evaluator.View.DENSE,
                Evaluator.View.MULTI_CROP}) {
            BadImageLog log = new BadImageLog();
            Evaluator.Result r = Evaluator.evaluate(List.of(a), ds, p(view, false, 1, 36), log);
            assertEquals(2, r.count(), view.toString());
            assertEquals(2, r.skipped(), view.toString());
            assertEquals(2, log.size());
        }
    }

    private static byte[] ppm(RgbImage img) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(("P6\n" + img.width() + " " + img.height() + "\n255\n").getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(img.pixels());
        return out.toByteArray();
    }
}
