package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The planar Resampler (vectorised YCbCr conversion, channel planes) gives bit for bit the samples of its previous
 * definition ({@link InterleavedResampler}: interleaved RGB ring, table conversion) on real photographs: two JPEGs
 * with odd sizes (bundled in test resources, see photos/README.md), held as YCbCr, as RGB bytes and cut short by
 * the early-stop decode; windows touching every border, odd and even widths, flips, colour shifts, normalisations,
 * shrinking (2 to 17 taps per axis, so every unrolled case and the general one) and enlarging; one Resampler
 * reused across all of it, big windows then small, so stale scratch contents would show.
 */
class ResamplerEquivalenceTest {
    private static final String[] PHOTOS = {"astronaut-331x249.jpg", "coffee-213x301.jpg"};

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = ResamplerEquivalenceTest.class.getResourceAsStream("photos/" + name)) {
            assertNotNull(in, "test resource photos/" + name);
            return in.readAllBytes();
        }
    }

    /** New and old agree exactly (floatToIntBits, so even the sign of a zero) on one window. */
    private static void check(Resampler now, InterleavedResampler before, RgbImage src, int outW, int outH, int x0,
                              int y0, int w, int h, boolean flip, float[] shift, Normalization norm, String what) {
        int n = 3 * w * h;
        float[] a = new float[n + 3];
        float[] b = new float[n + 3];
        now.resizeWindow(src, outW, outH, x0, y0, w, h, flip, shift, norm, a, 2);
        before.resizeWindow(src, outW, outH, x0, y0, w, h, flip, shift, norm, b, 2);
        assertArrayEquals(b, a, what + ": " + src + " -> " + outW + "x" + outH + " window " + w + "x" + h + " at ("
                + x0 + "," + y0 + ") flip " + flip);
    }

    @Test
    void planarResamplerEqualsTheInterleavedDefinitionOnRealPhotos() throws Exception {
        ImageDecoder decoder = new ImageDecoder();
        Resampler now = new Resampler();
        InterleavedResampler before = new InterleavedResampler();
        Normalization odd = new Normalization(new float[] {101.5f, 7f, 250f}, new float[] {3f, 0.7f, 64f});
        Normalization[] norms = {Normalization.NONE, Normalization.IMAGENET_MEAN_RGB, Normalization.TORCHVISION, odd};
        SplittableRandom rnd = new SplittableRandom(20261125);
        int windows = 0;
        for (String name : PHOTOS) {
            byte[] jpeg = resource(name);
            RgbImage ycc = decoder.decode(jpeg, name);
            assertTrue(ycc.isYCbCr(), name + " is held as YCbCr (the path under test)");
            RgbImage rgb = new RgbImage(ycc.width(), ycc.height(), ycc.pixels()); // same pixels as RGB bytes
            int wd = ycc.width();
            int ht = ycc.height();
            // rescaled sizes: shorter side 224 .. enlarged 2x, plus strong one-axis and two-axis shrinks (many taps)
            int[][] sizes = {
                Resampler.shorterSideTo(wd, ht, 224), Resampler.shorterSideTo(wd, ht, 231),
                Resampler.shorterSideTo(wd, ht, 256), Resampler.shorterSideTo(wd, ht, 317),
                Resampler.shorterSideTo(wd, ht, 498), {wd, ht}, {wd / 3, ht}, {wd, ht / 9}, {19, 15}, {wd / 17, ht / 16}};
            for (int[] size : sizes) {
                int outW = size[0];
                int outH = size[1];
                for (RgbImage src : new RgbImage[] {ycc, rgb}) {
                    String kind = src.isYCbCr() ? "YCbCr" : "RGB";
                    // the whole rescaled image, then windows at the four corners, odd and even sizes, then random ones
                    check(now, before, src, outW, outH, 0, 0, outW, outH, false, null, Normalization.NONE, kind);
                    int[] ws = {Math.min(outW, 224), Math.min(outW, 223), Math.min(outW, 1), Math.min(outW, 8)};
                    int[] hs = {Math.min(outH, 224), Math.min(outH, 3), Math.min(outH, 225), Math.min(outH, 1)};
                    for (int i = 0; i < ws.length; i++) {
                        int w = ws[i];
                        int h = hs[i];
                        for (int corner = 0; corner < 4; corner++) {
                            int x0 = (corner & 1) == 0 ? 0 : outW - w;
                            int y0 = (corner & 2) == 0 ? 0 : outH - h;
                            boolean flip = ((corner + i) & 1) == 1;
                            float[] shift = corner == 3 ? new float[] {3.25f, -17.5f, 0.125f} : null;
                            check(now, before, src, outW, outH, x0, y0, w, h, flip, shift, norms[(i + corner) % 4], kind);
                            windows++;
                        }
                    }
                    for (int i = 0; i < 6; i++) {
                        int w = 1 + rnd.nextInt(outW);
                        int h = 1 + rnd.nextInt(outH);
                        int x0 = rnd.nextInt(outW - w + 1);
                        int y0 = rnd.nextInt(outH - h + 1);
                        float[] shift = {(float) rnd.nextGaussian(), (float) rnd.nextGaussian(), (float) rnd.nextGaussian()};
                        check(now, before, src, outW, outH, x0, y0, w, h, rnd.nextBoolean(), shift, norms[i % 4], kind);
                        windows++;
                    }
                }
            }
        }
        assertTrue(windows > 300, windows + " windows compared");
    }

    @Test
    void trainingSamplesOfCutShortDecodesEqualTheDefinition() throws Exception {
        // The pipeline's real path: window decode (YCbCr, only the crop's source window) + TrainTransform, fixed
        // and jittered S, against the old definition on the whole decode.
        ImageDecoder decoder = new ImageDecoder();
        Resampler now = new Resampler();
        InterleavedResampler before = new InterleavedResampler();
        TrainTransform[] transforms = {
            TrainTransform.paper(256).withNormalization(Normalization.TORCHVISION),
            new TrainTransform(224, 400, 224, true, 0.1, ColourPca.IMAGENET, Normalization.IMAGENET_MEAN_RGB)};
        int cut = 0;
        for (String name : PHOTOS) {
            byte[] jpeg = resource(name);
            RgbImage whole = decoder.decode(jpeg, name);
            for (TrainTransform t : transforms) {
                for (int i = 0; i < 16; i++) {
                    int n = i;
                    RgbImage src = decoder.decode(jpeg, name,
                            (w, h) -> t.regionNeeded(w, h, SampleRandom.of(5, 1, SampleRandom.AUGMENT, n)));
                    cut += src.isWhole() ? 0 : 1;
                    float[] a = new float[t.outputSize()];
                    t.apply(src, SampleRandom.of(5, 1, SampleRandom.AUGMENT, i), now, a, 0);
                    // the same draws, replayed by hand into the old definition
                    SplittableRandom rng = SampleRandom.of(5, 1, SampleRandom.AUGMENT, i);
                    int s = t.sMin() == t.sMax() ? t.sMin() : t.sMin() + rng.nextInt(t.sMax() - t.sMin() + 1);
                    int[] size = Resampler.shorterSideTo(src.width(), src.height(), s);
                    int x0 = rng.nextInt(size[0] - t.crop() + 1);
                    int y0 = rng.nextInt(size[1] - t.crop() + 1);
                    boolean mirror = t.flip() && rng.nextBoolean();
                    float[] shift = t.pca().draw(rng, t.pcaSigma());
                    float[] b = new float[t.outputSize()];
                    before.resizeWindow(whole, size[0], size[1], x0, y0, t.crop(), t.crop(), mirror, shift, t.norm(), b, 0);
                    assertArrayEquals(b, a, name + " " + t + " draw " + i);
                }
            }
        }
        assertTrue(cut > 10, cut + " decodes kept only a window");
        assertEquals(2, PHOTOS.length);
    }
}
