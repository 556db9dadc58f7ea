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
 * <p>How, streaming one output row at a time: the source rows it needs (only the columns the
 * horizontal taps touch) are widened to RGB floats once each (converting YCbCr if the image is held so) into a ring
 * of k rows, each held as three channel planes; a vertical
 * pass over the needed columns (contiguous, vectorisable) gives one row, and a horizontal pass, already mirrored
 * and normalised, writes it into the destination's three planes. Vertical first means the scalar horizontal taps
 * run on h rows, not on every source row the window covers. Horizontal taps are padded to one count k (zero
 * weights) and small k unrolled: with 2-4 taps, loop overhead costs more than the multiply-adds.
 * Planes, not interleaved RGB, because then the YCbCr conversion is unit-stride float arithmetic that the JIT
 * vectorises ({@link YCbCr#toRgbPlanes}); every output value is computed by the same float operations in the same
 * order as with the interleaved layout (ResamplerEquivalenceTest checks bit identity against it).
 *
 * <p>Not thread-safe: holds scratch buffers; use one instance per worker thread.
 * Legend: H, W source height/width; P, Q rescaled height/width; h, w window height/width; C = 3 channels;
 * R source rows needed, S source columns needed, k taps (kx, ky per axis); S' = S + kx, a plane's length (S
 * columns, then kx zeros that the padded horizontal taps may read).
 */
public final class Resampler {
    // Separate arrays, not one with offsets: C2 (JDK 17) vectorises the conversion and vertical loops only when they
    // store at index i of an array of their own; a store at base + i runs scalar (docs/benchmarks.md, "Data pipeline").
    private float[][] ring = new float[0][];            // (ky*C)(S') the last ky source rows, slot*3+c, zero tails
    private float[][] acc = {new float[0], new float[0], new float[0]}; // (C)(S') one filtered row, zero tails
    private float[] ys = new float[0];   // (S) YCbCr conversion scratch: Y
    private float[] cbs = new float[0];  // (S) Cb - 128
    private float[] crs = new float[0];  // (S) Cr - 128

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
        long longer = width <= height ? (long) s * height / width : (long) s * width / height;
        if (longer > (1 << 24)) {
            throw new IllegalArgumentException("image " + width + "x" + height + " rescaled to shorter side " + s
                    + " would be " + longer + " long: aspect ratio too extreme");
        }
        return width <= height ? new int[] {s, (int) longer} : new int[] {(int) longer, s};
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
        int ky = 0;
        for (int y = 0; y < h; y++) {
            ky = Math.max(ky, ty.count[y]);
        }
        int colLo = Integer.MAX_VALUE;
        int colHi = 0;
        int kx = 0;
        for (int x = 0; x < w; x++) {
            colLo = Math.min(colLo, tx.start[x]);
            colHi = Math.max(colHi, tx.start[x] + tx.count[x]);
            kx = Math.max(kx, tx.count[x]);
        }
        int span = colHi - colLo;
        if (!src.holds(colLo, colHi, begin(ty), end(ty))) {
            throw new IllegalArgumentException("window " + w + "x" + h + " at (" + x0 + "," + y0 + ") of the rescaled "
                    + outW + "x" + outH + " needs source columns [" + colLo + ", " + colHi + ") and rows ["
                    + begin(ty) + ", " + end(ty) + ") but " + src + " does not hold them all");
        }
        int sp = span + kx;   // plane length: the span, then kx zeros (horizontal taps may run kx-1 columns past it)
        if (ring.length < 3 * ky || ring[0].length < sp) {
            ring = new float[3 * Math.max(ky, ring.length / 3)][Math.max(sp, ring.length > 0 ? ring[0].length : 0)];
        }
        if (acc[0].length < sp) {
            acc = new float[3][sp];
        }
        if (ys.length < span) {
            ys = new float[span];
            cbs = new float[span];
            crs = new float[span];
        }
        // Zero tails in the ring give zero tails in acc (the vertical pass covers them), as the horizontal taps need;
        // widening writes only the first span columns of each plane.
        for (int i = 0; i < 3 * ky; i++) {
            Arrays.fill(ring[i], span, sp, 0f);
        }
        int[] held = new int[ky];  // (ky) source row held by each ring slot
        Arrays.fill(held, -1);
        // Output column x goes to position x (or w-1-x mirrored); its taps start at column offs[pos] of acc's planes.
        int[] offs = new int[w];        // (w)
        float[] wt = new float[w * kx]; // (w, kx) zero-padded weights
        for (int x = 0; x < w; x++) {
            int pos = flip ? w - 1 - x : x;
            offs[pos] = tx.start[x] - colLo;
            System.arraycopy(tx.weights, x * tx.maxTaps, wt, pos * kx, tx.count[x]);
        }
        float[] m = new float[3];
        float[] inv = new float[3];
        for (int c = 0; c < 3; c++) {
            m[c] = norm.mean()[c] - (shift == null ? 0 : shift[c]);
            inv[c] = 1f / norm.std()[c];
        }
        int plane = w * h;
        int[] slots = new int[ky];
        for (int y = 0; y < h; y++) {
            int cnt = ty.count[y];
            for (int j = 0; j < cnt; j++) {
                int r = ty.start[y] + j;
                int slot = r % ky; // rows needed by one output row are consecutive, so never share a slot
                if (held[slot] != r) {
                    widen(src, r, colLo, span, slot);
                    held[slot] = r;
                }
                slots[j] = slot;
            }
            for (int c = 0; c < 3; c++) {
                vertical(ty, y, cnt, slots, c, sp);
            }
            int o = off + y * w;
            horizontal(offs, wt, kx, w, m, inv, dst, o, plane);
        }
    }

    /**
     * The source samples [lo, hi) that {@link #resizeWindow} reads, along one axis rescaled from {@code in} to
     * {@code out}, for output samples [from, from+n): a decoder need not decode the others.
     */
    static int[] sourceRange(int in, int out, int from, int n) {
        Taps t = new Taps(in, out, from, n);
        return new int[] {begin(t), end(t)};
    }

    private static int begin(Taps t) {
        int b = Integer.MAX_VALUE;
        for (int i = 0; i < t.start.length; i++) {
            b = Math.min(b, t.start[i]);
        }
        return b;
    }

    private static int end(Taps t) {
        int e = 0;
        for (int i = 0; i < t.start.length; i++) {
            e = Math.max(e, t.start[i] + t.count[i]);
        }
        return e;
    }

    /** Source row r, columns [colLo, colLo+n), as RGB float planes in ring slot {@code slot} (from YCbCr if held so). */
    private void widen(RgbImage src, int r, int colLo, int n, int slot) {
        byte[] px = src.raw();
        int first = (r - src.y0()) * src.colsHeld() + colLo - src.x0(); // pixel index of (r, colLo) in the window
        float[] pr = ring[3 * slot];
        float[] pg = ring[3 * slot + 1];
        float[] pb = ring[3 * slot + 2];
        if (src.isYCbCr()) {
            YCbCr.toRgbPlanes(px, first, n, pr, pg, pb, ys, cbs, crs);
        } else {
            int s = first * 3;
            for (int i = 0; i < n; i++, s += 3) {
                pr[i] = px[s] & 0xFF;
                pg[i] = px[s + 1] & 0xFF;
                pb[i] = px[s + 2] & 0xFF;
            }
        }
    }

    /** acc[c][0..len) = sum_j w_j * ring[3 slots[j] + c][..]: channel c of one output row, all needed columns. */
    private void vertical(Taps ty, int y, int cnt, int[] slots, int c, int len) {
        float[] a = acc[c];
        int wb = y * ty.maxTaps;
        float[] wy = ty.weights;
        switch (cnt) {
            case 1 -> System.arraycopy(ring[3 * slots[0] + c], 0, a, 0, len);
            case 2 -> {
                float w0 = wy[wb];
                float w1 = wy[wb + 1];
                float[] r0 = ring[3 * slots[0] + c];
                float[] r1 = ring[3 * slots[1] + c];
                for (int i = 0; i < len; i++) {
                    a[i] = w0 * r0[i] + w1 * r1[i];
                }
            }
            case 3 -> {
                float w0 = wy[wb];
                float w1 = wy[wb + 1];
                float w2 = wy[wb + 2];
                float[] r0 = ring[3 * slots[0] + c];
                float[] r1 = ring[3 * slots[1] + c];
                float[] r2 = ring[3 * slots[2] + c];
                for (int i = 0; i < len; i++) {
                    a[i] = w0 * r0[i] + w1 * r1[i] + w2 * r2[i];
                }
            }
            case 4 -> {
                float w0 = wy[wb];
                float w1 = wy[wb + 1];
                float w2 = wy[wb + 2];
                float w3 = wy[wb + 3];
                float[] r0 = ring[3 * slots[0] + c];
                float[] r1 = ring[3 * slots[1] + c];
                float[] r2 = ring[3 * slots[2] + c];
                float[] r3 = ring[3 * slots[3] + c];
                for (int i = 0; i < len; i++) {
                    a[i] = w0 * r0[i] + w1 * r1[i] + w2 * r2[i] + w3 * r3[i];
                }
            }
            default -> {
                Arrays.fill(a, 0, len, 0f);
                for (int j = 0; j < cnt; j++) {
                    float wj = wy[wb + j];
                    float[] rj = ring[3 * slots[j] + c];
                    for (int i = 0; i < len; i++) {
                        a[i] += wj * rj[i];
                    }
                }
            }
        }
    }

    /**
     * One output row: horizontal taps over acc's planes, normalised, into the three planes of dst at row offset o.
     * Same sums in the same order as over interleaved RGB: a2[s + j] here was a[3 (s + j) + 2] there.
     */
    private void horizontal(int[] offs, float[] wt, int k, int w, float[] m, float[] inv, float[] dst, int o,
                            int plane) {
        float[] a = acc[0];
        float[] a1 = acc[1];
        float[] a2 = acc[2];
        float m0 = m[0];
        float m1 = m[1];
        float m2 = m[2];
        float i0 = inv[0];
        float i1 = inv[1];
        float i2 = inv[2];
        int o1 = o + plane;
        int o2 = o + 2 * plane;
        switch (k) { // fixed tap counts unrolled: a loop over 2-4 taps costs more than its multiply-adds
            case 1 -> {
                for (int x = 0; x < w; x++) {
                    int s = offs[x];
                    dst[o + x] = (a[s] - m0) * i0;
                    dst[o1 + x] = (a1[s] - m1) * i1;
                    dst[o2 + x] = (a2[s] - m2) * i2;
                }
            }
            case 2 -> {
                for (int x = 0; x < w; x++) {
                    int s = offs[x];
                    float w0 = wt[2 * x];
                    float w1 = wt[2 * x + 1];
                    dst[o + x] = (w0 * a[s] + w1 * a[s + 1] - m0) * i0;
                    dst[o1 + x] = (w0 * a1[s] + w1 * a1[s + 1] - m1) * i1;
                    dst[o2 + x] = (w0 * a2[s] + w1 * a2[s + 1] - m2) * i2;
                }
            }
            case 3 -> {
                for (int x = 0; x < w; x++) {
                    int s = offs[x];
                    float w0 = wt[3 * x];
                    float w1 = wt[3 * x + 1];
                    float w2 = wt[3 * x + 2];
                    dst[o + x] = (w0 * a[s] + w1 * a[s + 1] + w2 * a[s + 2] - m0) * i0;
                    dst[o1 + x] = (w0 * a1[s] + w1 * a1[s + 1] + w2 * a1[s + 2] - m1) * i1;
                    dst[o2 + x] = (w0 * a2[s] + w1 * a2[s + 1] + w2 * a2[s + 2] - m2) * i2;
                }
            }
            case 4 -> {
                for (int x = 0; x < w; x++) {
                    int s = offs[x];
                    float w0 = wt[4 * x];
                    float w1 = wt[4 * x + 1];
                    float w2 = wt[4 * x + 2];
                    float w3 = wt[4 * x + 3];
                    dst[o + x] = (w0 * a[s] + w1 * a[s + 1] + w2 * a[s + 2] + w3 * a[s + 3] - m0) * i0;
                    dst[o1 + x] = (w0 * a1[s] + w1 * a1[s + 1] + w2 * a1[s + 2] + w3 * a1[s + 3] - m1) * i1;
                    dst[o2 + x] = (w0 * a2[s] + w1 * a2[s + 1] + w2 * a2[s + 2] + w3 * a2[s + 3] - m2) * i2;
                }
            }
            default -> {
                for (int x = 0; x < w; x++) {
                    float c0 = 0;
                    float c1 = 0;
                    float c2 = 0;
                    int s = offs[x];
                    for (int j = 0; j < k; j++, s++) {
                        float wj = wt[k * x + j];
                        c0 += wj * a[s];
                        c1 += wj * a1[s];
                        c2 += wj * a2[s];
                    }
                    dst[o + x] = (c0 - m0) * i0;
                    dst[o1 + x] = (c1 - m1) * i1;
                    dst[o2 + x] = (c2 - m2) * i2;
                }
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
