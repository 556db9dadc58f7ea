package org.vgg4j.data;

/**
 * Isotropic-or-not image resizing with a triangle (bilinear) filter that widens when shrinking, so downscaling
 * is antialiased — the same filter definition as PIL's {@code BILINEAR} resample, which torchvision's
 * {@code Resize} uses on PIL images (golden values in ResamplerTest come from PIL).
 *
 * <p>Why windows: a training sample needs only a 224x224 crop of the rescaled image, so {@link #resizeWindow}
 * computes just the output pixels of that window (optionally mirrored), adds a per-channel shift (the PCA colour
 * shift), normalises, and writes float CHW straight into a batch buffer: resize, crop, flip, colour shift,
 * normalisation and layout change in one pass, without materialising the rescaled image.
 *
 * <p>Not thread-safe: holds scratch buffers; use one instance per worker thread.
 * Legend: H, W source height/width; P, Q rescaled height/width; h, w window height/width; C = 3 channels.
 */
public final class Resampler {
    private float[] rows = new float[0]; // (rows needed, w, C) horizontally filtered source rows
    private float[] acc = new float[0];  // (w, C) one output row before layout change

    /** Filter taps along one axis, output i reads input [start[i], start[i]+count[i]) with weights[i*maxTaps+k]. */
    static final class Taps {
        final int[] start;
        final int[] count;
        final float[] weights;
        final int maxTaps;

        /** Taps for output indices [from, from+n) of an axis resized from {@code in} to {@code out} samples. */
        Taps(int in, int out, int from, int n) {
            double scale = (double) in / out;
            double filterScale = Math.max(scale, 1.0); // widen the kernel when shrinking: antialiasing
            double support = filterScale; // triangle radius 1, in input samples
            this.maxTaps = (int) Math.ceil(support) * 2 + 1;
            this.start = new int[n];
            this.count = new int[n];
            this.weights = new float[n * maxTaps];
            double[] w = new double[maxTaps];
            for (int j = 0; j < n; j++) {
                int i = from + j;
                double center = (i + 0.5) * scale;
                int lo = Math.max((int) Math.floor(center - support + 0.5), 0);
                int hi = Math.min((int) Math.floor(center + support + 0.5), in);
                int cnt = Math.min(hi - lo, maxTaps);
                double total = 0;
                for (int k = 0; k < cnt; k++) {
                    double x = (lo + k - center + 0.5) / filterScale;
                    w[k] = Math.max(0.0, 1.0 - Math.abs(x));
                    total += w[k];
                }
                start[j] = lo;
                count[j] = cnt;
                for (int k = 0; k < cnt; k++) {
                    weights[j * maxTaps + k] = (float) (total > 0 ? w[k] / total : 0);
                }
            }
        }
    }

    /** The (width, height) whose shorter side is {@code s}, aspect kept; the longer side truncated as torchvision does. */
    public static int[] shorterSideTo(int width, int height, int s) {
        if (width <= height) {
            return new int[] {s, (int) ((long) s * height / width)};
        }
        return new int[] {(int) ((long) s * width / height), s};
    }

    /**
     * Writes the window (x0, y0, w, h) of {@code src} rescaled to outW x outH as float CHW at {@code dst[off..]}:
     * {@code dst[off + (c*h + y)*w + x] = (resized(y0+y, x0+x', c) + shift[c] - mean[c]) / std[c]}, where x' is
     * x, or w-1-x when {@code flip}. {@code shift} (0..255 scale) may be null.
     */
    public void resizeWindow(RgbImage src, int outW, int outH, int x0, int y0, int w, int h, boolean flip,
                             float[] shift, Normalization norm, float[] dst, int off) {
        if (x0 < 0 || y0 < 0 || w < 1 || h < 1 || x0 + w > outW || y0 + h > outH) {
            throw new IllegalArgumentException("window " + w + "x" + h + " at (" + x0 + "," + y0
                    + ") does not fit the rescaled " + outW + "x" + outH);
        }
        Taps tx = new Taps(src.width(), outW, x0, w);
        Taps ty = new Taps(src.height(), outH, y0, h);
        int rowLo = ty.start[0];
        int rowHi = ty.start[h - 1] + ty.count[h - 1];
        for (int y = 0; y < h; y++) {
            rowLo = Math.min(rowLo, ty.start[y]);
            rowHi = Math.max(rowHi, ty.start[y] + ty.count[y]);
        }
        int rowLen = w * 3;
        int need = (rowHi - rowLo) * rowLen;
        if (rows.length < need) {
            rows = new float[need];
        }
        if (acc.length < rowLen) {
            acc = new float[rowLen];
        }
        horizontal(src, tx, rowLo, rowHi, w);
        float[] a = acc;
        float m0 = norm.mean()[0] - (shift == null ? 0 : shift[0]);
        float m1 = norm.mean()[1] - (shift == null ? 0 : shift[1]);
        float m2 = norm.mean()[2] - (shift == null ? 0 : shift[2]);
        float i0 = 1f / norm.std()[0];
        float i1 = 1f / norm.std()[1];
        float i2 = 1f / norm.std()[2];
        int plane = w * h;
        for (int y = 0; y < h; y++) {
            java.util.Arrays.fill(a, 0, rowLen, 0f);
            int base = ty.start[y] - rowLo;
            for (int k = 0; k < ty.count[y]; k++) {
                float wk = ty.weights[y * ty.maxTaps + k];
                int r = (base + k) * rowLen;
                for (int q = 0; q < rowLen; q++) { // contiguous: the JIT vectorises this
                    a[q] += wk * rows[r + q];
                }
            }
            int o = off + y * w;
            if (flip) {
                for (int x = 0; x < w; x++) {
                    int s = (w - 1 - x) * 3;
                    dst[o + x] = (a[s] - m0) * i0;
                    dst[o + plane + x] = (a[s + 1] - m1) * i1;
                    dst[o + 2 * plane + x] = (a[s + 2] - m2) * i2;
                }
            } else {
                for (int x = 0; x < w; x++) {
                    int s = x * 3;
                    dst[o + x] = (a[s] - m0) * i0;
                    dst[o + plane + x] = (a[s + 1] - m1) * i1;
                    dst[o + 2 * plane + x] = (a[s + 2] - m2) * i2;
                }
            }
        }
    }

    /** Filters source rows [rowLo, rowHi) horizontally into {@code rows} as (row, w, C). */
    private void horizontal(RgbImage src, Taps tx, int rowLo, int rowHi, int w) {
        byte[] px = src.pixels();
        int stride = src.width() * 3;
        float[] out = rows;
        int mt = tx.maxTaps;
        for (int r = rowLo; r < rowHi; r++) {
            int s0 = r * stride;
            int o = (r - rowLo) * w * 3;
            for (int x = 0; x < w; x++, o += 3) {
                float c0 = 0;
                float c1 = 0;
                float c2 = 0;
                int s = s0 + tx.start[x] * 3;
                int wb = x * mt;
                for (int k = 0, n = tx.count[x]; k < n; k++, s += 3) {
                    float wk = tx.weights[wb + k];
                    c0 += wk * (px[s] & 0xFF);
                    c1 += wk * (px[s + 1] & 0xFF);
                    c2 += wk * (px[s + 2] & 0xFF);
                }
                out[o] = c0;
                out[o + 1] = c1;
                out[o + 2] = c2;
            }
        }
    }

    /** The whole image rescaled to outW x outH as 8-bit RGB (rounded, clamped): for packing shards. */
    public RgbImage resize(RgbImage src, int outW, int outH) {
        if (outW == src.width() && outH == src.height()) {
            return src;
        }
        float[] chw = new float[3 * outW * outH];
        resizeWindow(src, outW, outH, 0, 0, outW, outH, false, null, Normalization.NONE, chw, 0);
        byte[] out = new byte[3 * outW * outH];
        int plane = outW * outH;
        for (int p = 0; p < plane; p++) {
            for (int c = 0; c < 3; c++) {
                int v = Math.round(chw[c * plane + p]);
                out[3 * p + c] = (byte) Math.max(0, Math.min(255, v));
            }
        }
        return new RgbImage(outW, outH, out);
    }
}
