package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TransformsTest {

    /** A w x h image whose pixels are distinct-ish: v = (x*7 + y*13 + c*101) mod 256. */
    static RgbImage ramp(int w, int h) {
        byte[] px = new byte[w * h * 3];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                for (int c = 0; c < 3; c++) {
                    px[(y * w + x) * 3 + c] = (byte) ((x * 7 + y * 13 + c * 101) % 256);
                }
            }
        }
        return new RgbImage(w, h, px);
    }

    private static float[] full(RgbImage src, int w, int h) {
        float[] out = new float[3 * w * h];
        new Resampler().resizeWindow(src, w, h, 0, 0, w, h, false, null, Normalization.NONE, out, 0);
        return out;
    }

    /** dst view (3, crop, crop) equals the window of the full resize (with mirror and affine). */
    private static void assertWindow(float[] fullImg, int w, int h, int x0, int y0, int crop, boolean mirror,
                                     float[] shift, Normalization n, float[] dst, int off) {
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < crop; y++) {
                for (int x = 0; x < crop; x += 5) {
                    int sx = x0 + (mirror ? crop - 1 - x : x);
                    float v = fullImg[(c * h + y0 + y) * w + sx] + (shift == null ? 0 : shift[c]);
                    assertEquals((v - n.mean()[c]) / n.std()[c], dst[off + (c * crop + y) * crop + x], 2e-3f);
                }
            }
        }
    }

    @Test
    void trainTransformReplaysItsDrawsFixedAndJitteredScale() {
        RgbImage src = ramp(90, 60);
        TrainTransform t = new TrainTransform(40, 40, 32, true, 0.1, ColourPca.IMAGENET, Normalization.IMAGENET_MEAN_RGB);
        TrainTransform jit = new TrainTransform(40, 80, 32, true, 0.0, ColourPca.IMAGENET, Normalization.IMAGENET_MEAN_RGB);
        Resampler r = new Resampler();
        int flips = 0;
        for (int seed = 0; seed < 40; seed++) {
            float[] out = new float[t.outputSize()];
            t.apply(src, new SplittableRandom(seed), r, out, 0);
            SplittableRandom replay = new SplittableRandom(seed);
            int x0 = replay.nextInt(60 - 32 + 1); // 90x60 at S=40 -> 60x40
            int y0 = replay.nextInt(40 - 32 + 1);
            boolean mirror = replay.nextBoolean();
            float[] shift = ColourPca.IMAGENET.draw(replay, 0.1);
            flips += mirror ? 1 : 0;
            assertWindow(full(src, 60, 40), 60, 40, x0, y0, 32, mirror, shift, t.norm(), out, 0);

            float[] j = new float[jit.outputSize()];
            jit.apply(src, new SplittableRandom(seed), r, j, 0);
            SplittableRandom rj = new SplittableRandom(seed);
            int s = 40 + rj.nextInt(41);
            int w = s * 90 / 60;
            int jx = rj.nextInt(w - 32 + 1);
            int jy = rj.nextInt(s - 32 + 1);
            boolean jm = rj.nextBoolean();
            assertWindow(full(src, w, s), w, s, jx, jy, 32, jm, null, jit.norm(), j, 0);
        }
        assertTrue(flips > 8 && flips < 32, "flips " + flips + " of 40");
        assertThrows(IllegalArgumentException.class, () -> new TrainTransform(200, 256, 224, true, 0.1,
                ColourPca.IMAGENET, Normalization.NONE));
    }

    @Test
    void meanSubtractionOnAConstantImageIsExact() {
        byte[] px = new byte[300 * 260 * 3];
        for (int i = 0; i < px.length; i += 3) {
            px[i] = 100;
            px[i + 1] = (byte) 150;
            px[i + 2] = (byte) 200;
        }
        RgbImage src = new RgbImage(300, 260, px);
        float[] out = new float[3 * 224 * 224];
        TrainTransform.paper(256).withPcaSigma(0).apply(src, new SplittableRandom(3), new Resampler(), out, 0);
        int plane = 224 * 224;
        for (int p = 0; p < plane; p += 97) {
            assertEquals(100 - 123.68f, out[p], 1e-3f);
            assertEquals(150 - 116.779f, out[plane + p], 1e-3f);
            assertEquals(200 - 103.939f, out[2 * plane + p], 1e-3f);
        }
        // torchvision's normalisation: (v/255 - m) / s
        TrainTransform.paper(256).withPcaSigma(0).withNormalization(Normalization.TORCHVISION)
                .apply(src, new SplittableRandom(3), new Resampler(), out, 0);
        assertEquals((100 / 255f - 0.485f) / 0.229f, out[5], 1e-4f);
        assertEquals((200 / 255f - 0.406f) / 0.225f, out[2 * plane + 5], 1e-4f);
    }

    @Test
    void pcaShiftIsTheEigenCombination() {
        ColourPca p = ColourPca.IMAGENET;
        float[] s = p.shift(1, 0, 0);
        assertArrayEquals(new float[] {(float) (255 * 0.2175 * -0.5675), (float) (255 * 0.2175 * -0.5808),
            (float) (255 * 0.2175 * -0.5836)}, s, 1e-4f);
        float[] t = p.shift(0.5, -2, 3);
        double r = 255 * (-0.5675 * 0.5 * 0.2175 + 0.7192 * -2 * 0.0188 + 0.4009 * 3 * 0.0045);
        double b = 255 * (-0.5836 * 0.5 * 0.2175 + -0.6948 * -2 * 0.0188 + 0.4203 * 3 * 0.0045);
        assertEquals(r, t[0], 1e-4);
        assertEquals(b, t[2], 1e-4);
    }

    @Test
    void colourStatsMeanCovarianceAndEigenpairs() {
        // Two pixels (0,0,0) and (255,255,0): mean (.5,.5,0); covariance .25 on the RG block.
        RgbImage im = new RgbImage(2, 1, new byte[] {0, 0, 0, (byte) 255, (byte) 255, 0});
        ColourStats st = new ColourStats();
        st.add(im);
        assertArrayEquals(new double[] {0.5, 0.5, 0}, st.mean(), 1e-12);
        assertArrayEquals(new double[] {.25, .25, 0, .25, .25, 0, 0, 0, 0}, st.covariance(), 1e-12);
        ColourPca pca = st.pca();
        assertEquals(0.5, pca.eigenvalues()[0], 1e-12);
        assertEquals(Math.abs(pca.eigenvectors()[0]), Math.sqrt(0.5), 1e-9); // (1,1,0)/sqrt 2
        assertEquals(pca.eigenvectors()[0], pca.eigenvectors()[3], 1e-9);

        double[] a = {4, 1, 0, 1, 3, 1, 0, 1, 2};
        ColourPca e = ColourStats.eigen(a);
        assertEquals(9.0, e.eigenvalues()[0] + e.eigenvalues()[1] + e.eigenvalues()[2], 1e-9);
        assertTrue(e.eigenvalues()[0] >= e.eigenvalues()[1] && e.eigenvalues()[1] >= e.eigenvalues()[2]);
        for (int i = 0; i < 3; i++) {
            for (int row = 0; row < 3; row++) {
                double av = 0;
                for (int k = 0; k < 3; k++) {
                    av += a[3 * row + k] * e.eigenvectors()[3 * k + i];
                }
                assertEquals(e.eigenvalues()[i] * e.eigenvectors()[3 * row + i], av, 1e-9);
            }
        }
        assertEquals(3 + Math.sqrt(3), e.eigenvalues()[0], 1e-9); // the matrix's eigenvalues are 3, 3 +- sqrt 3
    }

    @Test
    void centreCropWholeImageAndMultiCropGrid() {
        RgbImage src = ramp(75, 50);
        Resampler r = new Resampler();
        // Q = 40: 75x50 -> 60x40; centre crop 32 at ((60-32)/2, (40-32)/2) = (14, 4)
        float[] full = full(src, 60, 40);
        float[] c = new float[3 * 32 * 32];
        TestTransforms.centreCrop(src, 40, 32, false, Normalization.NONE, r, c, 0);
        assertWindow(full, 60, 40, 14, 4, 32, false, null, Normalization.NONE, c, 0);

        TestTransforms.FloatImage whole = TestTransforms.whole(src, 40, true, Normalization.NONE, r);
        assertEquals(40, whole.height());
        assertEquals(60, whole.width());
        assertEquals(full[(2 * 40 + 7) * 60 + 59], whole.chw()[(2 * 40 + 7) * 60], 1e-4f);

        assertEquals(50, TestTransforms.multiCropCount(5, true));
        float[] views = new float[50 * 3 * 32 * 32];
        TestTransforms.multiCrop(src, 40, 32, 5, true, Normalization.NONE, r, views, 0);
        int view = 3 * 32 * 32;
        int[] xs = {0, 7, 14, 21, 28}; // round(i * 28 / 4)
        int[] ys = {0, 2, 4, 6, 8};    // round(i * 8 / 4)
        for (int gy = 0; gy < 5; gy++) {
            for (int gx = 0; gx < 5; gx++) {
                int k = 2 * (gy * 5 + gx);
                assertWindow(full, 60, 40, xs[gx], ys[gy], 32, false, null, Normalization.NONE, views, k * view);
                assertWindow(full, 60, 40, xs[gx], ys[gy], 32, true, null, Normalization.NONE, views, (k + 1) * view);
            }
        }
        assertNotEquals(views[0], views[view]);
        assertThrows(IllegalArgumentException.class, () -> TestTransforms.centreCrop(src, 30, 32, false,
                Normalization.NONE, r, c, 0));
    }

    @Test
    void sampleRandomDependsOnlyOnItsKey() {
        long a = SampleRandom.of(7, 3, SampleRandom.AUGMENT, 12345).nextLong();
        assertEquals(a, SampleRandom.of(7, 3, SampleRandom.AUGMENT, 12345).nextLong());
        assertNotEquals(a, SampleRandom.of(7, 4, SampleRandom.AUGMENT, 12345).nextLong());
        assertNotEquals(a, SampleRandom.of(7, 3, SampleRandom.SHUFFLE, 12345).nextLong());
        assertNotEquals(a, SampleRandom.of(8, 3, SampleRandom.AUGMENT, 12345).nextLong());
        assertNotEquals(a, SampleRandom.of(7, 3, SampleRandom.AUGMENT, 12346).nextLong());
    }
}
