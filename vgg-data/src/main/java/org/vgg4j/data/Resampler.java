package org.vgg4j.data;

import java.util.Arrays;

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
 * <p>How: pass 1 widens each needed source row's needed columns to floats (converting YCbCr if the image is held
 * so) and filters it horizontally into planar rows, already mirrored; pass 2 filters those vertically straight
 * into the destination. Both passes pad every output to the same tap count k (zero weights) and unroll small k:
 * with 3-5 taps, loop overhead costs more than the multiply-adds (measured).
 *
 * <p>Not thread-safe: holds scratch buffers; use one instance per worker thread.
 * Legend: H, W source height/width; P, Q rescaled height/width; h, w window height/width; C = 3 channels;
 * R source rows needed, S source columns needed, k taps.
 */
public final class Resampler {
    private float[] rows = new float[0]; // (C, R + k, w) horizontally filtered rows, planar, zero-padded rows
    private float[] line = new float[0]; // (S + k, C) one source row as RGB floats, zero-padded

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
                int first = 0; // drop zero-weight taps at either end (e.g. identity scale: 1 tap, not 2)
                while (first < cnt - 1 && w[first] == 0) {
                    first++;
                }
                while (cnt - 1 > first && w[cnt - 1] == 0) {
                    cnt--;
                }
                start[j] = lo + first;
                count[j] = cnt - first;
                for (int k = first; k < cnt; k++) {
                    weights[j * maxTaps + k - first] = (float) (total > 0 ? w[k] / total : 0);
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
        int rowLo = Integer.MAX_VALUE;
        int rowHi = 0;
        int ky = 0;
        for (int y = 0; y < h; y++) {
            rowLo = Math.min(rowLo, ty.start[y]);
            rowHi = Math.max(rowHi, ty.start[y] + ty.count[y]);
            ky = Math.max(ky, ty.count[y]);
        }
        int nRows = rowHi - rowLo + ky; // padded so every output row may read ky rows
        if (rows.length < 3 * nRows * w) {
            rows = new float[3 * nRows * w];
        }
        int filled = (rowHi - rowLo) * w;
        for (int c = 0; c < 3; c++) { // only the padding rows: pass 1 overwrites the rest
            Arrays.fill(rows, c * nRows * w + filled, (c + 1) * nRows * w, 0f);
        }
        horizontal(src, tx, rowLo, rowHi, w, nRows, flip);

        int[] base = new int[h];       // (h) first tap's row offset within a channel plane of rows
        float[] wy = new float[h * ky]; // (h, ky) zero-padded weights
        for (int y = 0; y < h; y++) {
            base[y] = (ty.start[y] - rowLo) * w;
            System.arraycopy(ty.weights, y * ty.maxTaps, wy, y * ky, ty.count[y]);
        }
        for (int c = 0; c < 3; c++) {
            float m = norm.mean()[c] - (shift == null ? 0 : shift[c]);
            float inv = 1f / norm.std()[c];
            int plane = c * nRows * w;
            for (int y = 0; y < h; y++) {
                int o = off + (c * h + y) * w;
                int r = plane + base[y];
                switch (ky) {
                    case 1 -> {
                        for (int x = 0; x < w; x++) {
                            dst[o + x] = (rows[r + x] - m) * inv;
                        }
                    }
                    case 2 -> {
                        float w0 = wy[2 * y];
                        float w1 = wy[2 * y + 1];
                        for (int x = 0; x < w; x++) {
                            dst[o + x] = (w0 * rows[r + x] + w1 * rows[r + w + x] - m) * inv;
                        }
                    }
                    case 3 -> {
                        float w0 = wy[3 * y];
                        float w1 = wy[3 * y + 1];
                        float w2 = wy[3 * y + 2];
                        for (int x = 0; x < w; x++) {
                            dst[o + x] = (w0 * rows[r + x] + w1 * rows[r + w + x] + w2 * rows[r + 2 * w + x] - m) * inv;
                        }
                    }
                    case 4 -> {
                        float w0 = wy[4 * y];
                        float w1 = wy[4 * y + 1];
                        float w2 = wy[4 * y + 2];
                        float w3 = wy[4 * y + 3];
                        for (int x = 0; x < w; x++) {
                            dst[o + x] = (w0 * rows[r + x] + w1 * rows[r + w + x] + w2 * rows[r + 2 * w + x]
                                    + w3 * rows[r + 3 * w + x] - m) * inv;
                        }
                    }
                    default -> {
                        for (int x = 0; x < w; x++) {
                            float v = 0;
                            for (int j = 0; j < ky; j++) {
                                v += wy[ky * y + j] * rows[r + j * w + x];
                            }
                            dst[o + x] = (v - m) * inv;
                        }
                    }
                }
            }
        }
    }

    /**
     * Pass 1: source rows [rowLo, rowHi) filtered horizontally into {@code rows} (C, nRows, w), mirrored when
     * {@code flip}. Each row's needed column span is first widened to RGB floats in {@code line}.
     */
    private void horizontal(RgbImage src, Taps tx, int rowLo, int rowHi, int w, int nRows, boolean flip) {
        byte[] px = src.raw();
        boolean ycc = src.isYCbCr();
        int colLo = Integer.MAX_VALUE;
        int colHi = 0;
        int k = 0;
        for (int x = 0; x < w; x++) {
            colLo = Math.min(colLo, tx.start[x]);
            colHi = Math.max(colHi, tx.start[x] + tx.count[x]);
            k = Math.max(k, tx.count[x]);
        }
        int span = colHi - colLo;
        if (line.length < (span + k) * 3) {
            line = new float[(span + k) * 3];
        }
        float[] in = line;
        Arrays.fill(in, span * 3, (span + k) * 3, 0f);
        // Output column x goes to position x (or w-1-x mirrored) of its planar row; its taps start at off[pos].
        int[] off = new int[w];        // (w) first tap's float offset in the line, by output position
        float[] wt = new float[w * k]; // (w, k) zero-padded weights, by output position
        for (int x = 0; x < w; x++) {
            int pos = flip ? w - 1 - x : x;
            off[pos] = (tx.start[x] - colLo) * 3;
            System.arraycopy(tx.weights, x * tx.maxTaps, wt, pos * k, tx.count[x]);
        }
        float[] out = rows;
        int stride = src.width() * 3;
        int planeStride = nRows * w;
        for (int r = rowLo; r < rowHi; r++) {
            if (ycc) {
                YCbCr.toRgbFloats(px, r * src.width() + colLo, span, in, 0);
            } else {
                int s0 = r * stride + colLo * 3;
                float[] lut = YCbCr.CLAMPED; // v + 256 -> v for bytes: a load, cheaper than the JIT's int-to-float
                for (int i = 0; i < span * 3; i++) {
                    in[i] = lut[(px[s0 + i] & 0xFF) + 256];
                }
            }
            int o = (r - rowLo) * w;
            switch (k) {
                case 1 -> taps1(in, out, o, planeStride, off, w);
                case 2 -> taps2(in, out, o, planeStride, off, wt, w);
                case 3 -> taps3(in, out, o, planeStride, off, wt, w);
                case 4 -> taps4(in, out, o, planeStride, off, wt, w);
                default -> tapsN(in, out, o, planeStride, off, wt, w, k);
            }
        }
    }

    private static void taps1(float[] in, float[] out, int o, int ps, int[] off, int w) {
        for (int x = 0; x < w; x++) {
            int s = off[x];
            out[o + x] = in[s];
            out[o + ps + x] = in[s + 1];
            out[o + 2 * ps + x] = in[s + 2];
        }
    }

    private static void taps2(float[] in, float[] out, int o, int ps, int[] off, float[] wt, int w) {
        for (int x = 0; x < w; x++) {
            int s = off[x];
            float w0 = wt[2 * x];
            float w1 = wt[2 * x + 1];
            out[o + x] = w0 * in[s] + w1 * in[s + 3];
            out[o + ps + x] = w0 * in[s + 1] + w1 * in[s + 4];
            out[o + 2 * ps + x] = w0 * in[s + 2] + w1 * in[s + 5];
        }
    }

    private static void taps3(float[] in, float[] out, int o, int ps, int[] off, float[] wt, int w) {
        for (int x = 0; x < w; x++) {
            int s = off[x];
            float w0 = wt[3 * x];
            float w1 = wt[3 * x + 1];
            float w2 = wt[3 * x + 2];
            out[o + x] = w0 * in[s] + w1 * in[s + 3] + w2 * in[s + 6];
            out[o + ps + x] = w0 * in[s + 1] + w1 * in[s + 4] + w2 * in[s + 7];
            out[o + 2 * ps + x] = w0 * in[s + 2] + w1 * in[s + 5] + w2 * in[s + 8];
        }
    }

    private static void taps4(float[] in, float[] out, int o, int ps, int[] off, float[] wt, int w) {
        for (int x = 0; x < w; x++) {
            int s = off[x];
            float w0 = wt[4 * x];
            float w1 = wt[4 * x + 1];
            float w2 = wt[4 * x + 2];
            float w3 = wt[4 * x + 3];
            out[o + x] = w0 * in[s] + w1 * in[s + 3] + w2 * in[s + 6] + w3 * in[s + 9];
            out[o + ps + x] = w0 * in[s + 1] + w1 * in[s + 4] + w2 * in[s + 7] + w3 * in[s + 10];
            out[o + 2 * ps + x] = w0 * in[s + 2] + w1 * in[s + 5] + w2 * in[s + 8] + w3 * in[s + 11];
        }
    }

    private static void tapsN(float[] in, float[] out, int o, int ps, int[] off, float[] wt, int w, int k) {
        for (int x = 0; x < w; x++) {
            float c0 = 0;
            float c1 = 0;
            float c2 = 0;
            int s = off[x];
            for (int j = 0; j < k; j++, s += 3) {
                float wj = wt[k * x + j];
                c0 += wj * in[s];
                c1 += wj * in[s + 1];
                c2 += wj * in[s + 2];
            }
            out[o + x] = c0;
            out[o + ps + x] = c1;
            out[o + 2 * ps + x] = c2;
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
