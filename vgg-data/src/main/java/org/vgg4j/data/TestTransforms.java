package org.vgg4j.data;

/**
 * The paper's test-time views (§3.2), all deterministic: the image rescaled so its shorter side is Q, then
 * <ul>
 * <li>{@link #centreCrop}: one crop x crop window from the middle (optionally mirrored);</li>
 * <li>{@link #whole}: the whole rescaled image, for dense (fully-convolutional) evaluation;</li>
 * <li>{@link #multiCrop}: a grid x grid lattice of crops spanning the image, each also mirrored (5x5x2 = 50 per
 *     scale in the paper).</li>
 * </ul>
 * Output is float CHW with the given normalisation. Thread-safe except for the {@link Resampler} passed in.
 */
public final class TestTransforms {
    private TestTransforms() {
    }

    /** A float image (C=3, H, W) in CHW order: the output of {@link #whole}. */
    public record FloatImage(int height, int width, float[] chw) {
    }

    /** Rescales the shorter side to {@code q}, takes the centred crop (left/top offset rounded down). */
    public static void centreCrop(RgbImage src, int q, int crop, boolean mirror, Normalization norm,
                                  Resampler r, float[] dst, int off) {
        int[] size = checkedSize(src, q, crop);
        r.resizeWindow(src, size[0], size[1], (size[0] - crop) / 2, (size[1] - crop) / 2, crop, crop, mirror,
                null, norm, dst, off);
    }

    /** The whole image with shorter side {@code q}, optionally mirrored. */
    public static FloatImage whole(RgbImage src, int q, boolean mirror, Normalization norm, Resampler r) {
        int[] size = Resampler.shorterSideTo(src.width(), src.height(), q);
        float[] out = new float[3 * size[0] * size[1]];
        r.resizeWindow(src, size[0], size[1], 0, 0, size[0], size[1], mirror, null, norm, out, 0);
        return new FloatImage(size[1], size[0], out);
    }

    /** Number of views {@link #multiCrop} writes: grid * grid * (flips ? 2 : 1). */
    public static int multiCropCount(int grid, boolean flips) {
        return grid * grid * (flips ? 2 : 1);
    }

    /**
     * Writes {@link #multiCropCount} crops, each (3, crop, crop), consecutively from {@code dst[off]}: row-major
     * over the grid (top-left first), and when {@code flips} the mirrored crop right after each crop. Crop
     * offsets along an axis of length L are {@code round(i * (L - crop) / (grid - 1))}, i = 0..grid-1, so the
     * first and last crops touch the borders.
     */
    public static void multiCrop(RgbImage src, int q, int crop, int grid, boolean flips, Normalization norm,
                                 Resampler r, float[] dst, int off) {
        if (grid < 1) {
            throw new IllegalArgumentException("grid " + grid + " must be >= 1");
        }
        int[] size = checkedSize(src, q, crop);
        int view = 3 * crop * crop;
        int k = 0;
        for (int gy = 0; gy < grid; gy++) {
            for (int gx = 0; gx < grid; gx++) {
                int x0 = offset(gx, grid, size[0] - crop);
                int y0 = offset(gy, grid, size[1] - crop);
                r.resizeWindow(src, size[0], size[1], x0, y0, crop, crop, false, null, norm, dst, off + view * k++);
                if (flips) {
                    r.resizeWindow(src, size[0], size[1], x0, y0, crop, crop, true, null, norm, dst, off + view * k++);
                }
            }
        }
    }

    static int offset(int i, int grid, int slack) {
        return grid == 1 ? slack / 2 : (int) Math.round((double) i * slack / (grid - 1));
    }

    private static int[] checkedSize(RgbImage src, int q, int crop) {
        if (q < crop) {
            throw new IllegalArgumentException("test scale Q " + q + " is smaller than the crop " + crop);
        }
        return Resampler.shorterSideTo(src.width(), src.height(), q);
    }
}
