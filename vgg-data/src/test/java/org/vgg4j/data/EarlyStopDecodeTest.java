package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The window decode (ImageDecoder decodes only the source window a training crop reads: it stops at the window's
 * last row and keeps only its columns) changes nothing but the work done: the held samples are byte for byte
 * those of a full decode and the augmented output is bit for bit the same, for colour (4:2:0, so chroma
 * upsampling crosses the window's edges) and gray, baseline and progressive JPEGs, fixed and jittered S; a
 * windowed image refuses whole-image use; truncated files are still rejected.
 * Not a speed test (docs/benchmarks.md has the figures).
 */
class EarlyStopDecodeTest {
    private final ImageDecoder decoder = new ImageDecoder();

    /** A busy colour pattern with noise, so every row and both chroma planes matter. */
    private static BufferedImage busy(int w, int h, int type, long seed) {
        BufferedImage im = new BufferedImage(w, h, type);
        SplittableRandom r = new SplittableRandom(seed);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int red = (x * 7 + y * 3 + r.nextInt(40)) & 0xFF;
                int green = (x * y / 7 + r.nextInt(40)) & 0xFF;
                int blue = (255 - 2 * y + x / 3 + r.nextInt(40)) & 0xFF;
                im.setRGB(x, y, red << 16 | green << 8 | blue);
            }
        }
        return im;
    }

    @Test
    void augmentedSamplesEqualThoseOfAFullDecode() throws Exception {
        int[][] sizes = {{300, 240}, {240, 331}, {257, 257}};
        TrainTransform[] transforms = {
            new TrainTransform(240, 240, 224, true, 0.1, ColourPca.IMAGENET, Normalization.TORCHVISION),
            new TrainTransform(224, 300, 224, true, 0, ColourPca.IMAGENET, Normalization.IMAGENET_MEAN_RGB)};
        Resampler r = new Resampler();
        int stopped = 0;
        int narrowed = 0;
        int cases = 0;
        for (int[] size : sizes) {
            for (int type : new int[] {BufferedImage.TYPE_INT_RGB, BufferedImage.TYPE_BYTE_GRAY}) {
                for (boolean progressive : new boolean[] {false, true}) {
                    byte[] jpeg = TestImages.jpeg(busy(size[0], size[1], type, size[0] + 7L * type), null, progressive);
                    RgbImage full = decoder.decode(jpeg, "full.JPEG");
                    for (TrainTransform t : transforms) {
                        for (int i = 0; i < 12; i++) {
                            int n = i;
                            RgbImage cut = decoder.decode(jpeg, "cut.JPEG",
                                    (w, h) -> t.regionNeeded(w, h, SampleRandom.of(3, 0, SampleRandom.AUGMENT, n)));
                            assertEquals(full.width(), cut.width());
                            assertEquals(full.height(), cut.height());
                            float[] a = new float[t.outputSize()];
                            float[] b = new float[t.outputSize()];
                            t.apply(full, SampleRandom.of(3, 0, SampleRandom.AUGMENT, i), r, a, 0);
                            t.apply(cut, SampleRandom.of(3, 0, SampleRandom.AUGMENT, i), r, b, 0);
                            assertArrayEquals(a, b, "size " + Arrays.toString(size) + " type " + type
                                    + " progressive " + progressive + " " + t + " draw " + i);
                            // the held window is that of the full decode, byte for byte
                            assertArrayEquals(window(full, cut.x0(), cut.y0(), cut.colsHeld(), cut.rowsHeld()),
                                    cut.raw());
                            stopped += cut.y0() + cut.rowsHeld() < full.height() ? 1 : 0;
                            narrowed += cut.colsHeld() < full.width() ? 1 : 0;
                            cases++;
                        }
                    }
                }
            }
        }
        // Most crops end above the bottom row: the path under test was taken (not a vacuous pass).
        assertTrue(stopped > cases / 3, stopped + " of " + cases + " decodes stopped early");
        assertTrue(narrowed > cases / 3, narrowed + " of " + cases + " decodes kept fewer columns");
    }

    /** Rows [y0, y0+rows) x columns [x0, x0+cols) of a whole image's raw (H,W,3) samples. */
    private static byte[] window(RgbImage whole, int x0, int y0, int cols, int rows) {
        byte[] out = new byte[3 * cols * rows];
        for (int y = 0; y < rows; y++) {
            System.arraycopy(whole.raw(), 3 * ((y0 + y) * whole.width() + x0), out, 3 * y * cols, 3 * cols);
        }
        return out;
    }

    @Test
    void windowedImageIsOnlyForTheResampler() throws Exception {
        byte[] jpeg = TestImages.jpeg(busy(64, 80, BufferedImage.TYPE_INT_RGB, 1), null, false);
        RgbImage cut = decoder.decode(jpeg, "cut.JPEG", (w, h) -> new ImageDecoder.Region(0, 0, w, 20));
        assertEquals(20, cut.rowsHeld());
        assertEquals(64, cut.colsHeld());
        assertEquals(80, cut.height());
        assertThrows(IllegalStateException.class, cut::pixels);
        Resampler r = new Resampler();
        float[] out = new float[3 * 32 * 32];
        // rows [0, 8) of an 80 -> 64 rescale need source rows [0, 11): fine; the bottom rows are not held
        r.resizeWindow(cut, 51, 64, 0, 0, 32, 8, false, null, Normalization.NONE, out, 0);
        assertThrows(IllegalArgumentException.class,
                () -> r.resizeWindow(cut, 51, 64, 0, 32, 32, 32, false, null, Normalization.NONE, out, 0));
        // row 7: centre 9.375, radius 1.25, rows [8, 11)
        assertArrayEquals(new int[] {0, 11}, Resampler.sourceRange(80, 64, 0, 8));
        // columns [16, 32) of a 64 -> 51 rescale: centres 20.7..39.5, radius 1.25, source columns [19, 41)
        assertArrayEquals(new int[] {19, 41}, Resampler.sourceRange(64, 51, 16, 16));

        // A window of columns [19, 41) x rows [0, 20): enough for that, not for one column more on either side.
        RgbImage narrow = decoder.decode(jpeg, "narrow.JPEG", (w, h) -> new ImageDecoder.Region(19, 0, 22, 20));
        assertEquals(19, narrow.x0());
        assertEquals(22, narrow.colsHeld());
        assertThrows(IllegalStateException.class, narrow::pixels);
        float[] a = new float[3 * 16 * 8];
        float[] b = new float[3 * 16 * 8];
        r.resizeWindow(narrow, 51, 64, 16, 0, 16, 8, true, null, Normalization.NONE, a, 0);
        r.resizeWindow(decoder.decode(jpeg, "whole.JPEG"), 51, 64, 16, 0, 16, 8, true, null, Normalization.NONE, b, 0);
        assertArrayEquals(b, a);
        assertThrows(IllegalArgumentException.class,
                () -> r.resizeWindow(narrow, 51, 64, 15, 0, 16, 8, false, null, Normalization.NONE, out, 0));
        assertThrows(IllegalArgumentException.class,
                () -> r.resizeWindow(narrow, 51, 64, 17, 0, 16, 8, false, null, Normalization.NONE, out, 0));
    }

    @Test
    void truncatedFileIsStillRejectedWhenOnlyTheTopIsNeeded() {
        byte[] jpeg = TestImages.jpeg(busy(64, 96, BufferedImage.TYPE_INT_RGB, 2), null, false);
        byte[] cut = Arrays.copyOf(jpeg, jpeg.length * 6 / 10);
        BadImageException e = assertThrows(BadImageException.class, () -> decoder.decode(cut, "cut.JPEG",
                (w, h) -> new ImageDecoder.Region(8, 0, 16, 8)));
        assertTrue(e.reason().contains("truncated") || e.reason().contains("corrupt"), e.reason());
    }
}
