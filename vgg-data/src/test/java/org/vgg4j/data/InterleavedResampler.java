package org.vgg4j.data;

import java.util.Arrays;

/**
 * Test reference: Resampler.resizeWindow as it was before the planar, vectorised widening (interleaved RGB float
 * ring, table-driven YCbCr conversion, {@link YCbCr#toRgbFloats}), kept verbatim so that ResamplerEquivalenceTest can
 * check the production code against this definition bit for bit. Not for production use; not a second
 * implementation to maintain (it only changes if the definition does).
 */
final class InterleavedResampler {
    private float[] ring = new float[0]; // (k, S, C) the last k source rows needed, as RGB floats
    private float[] acc = new float[0];  // (S + k, C) one vertically filtered row, zero tail

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
        Resampler.Taps tx = new Resampler.Taps(src.width(), outW, x0, w);
        Resampler.Taps ty = new Resampler.Taps(src.height(), outH, y0, h);
        if (end(ty) > src.rowsHeld()) {
            throw new IllegalArgumentException("window rows [" + y0 + ", " + (y0 + h) + ") of the rescaled " + outH
                    + " need source rows up to " + end(ty) + " but " + src + " holds only " + src.rowsHeld());
        }
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
        int span3 = (colHi - colLo) * 3;
        if (ring.length < ky * span3) {
            ring = new float[ky * span3];
        }
        if (acc.length < span3 + kx * 3) {
            acc = new float[span3 + kx * 3];
        }
        Arrays.fill(acc, span3, span3 + kx * 3, 0f); // horizontal taps may run kx-1 pixels past the span: zeros
        int[] held = new int[ky];  // (ky) source row held by each ring slot
        Arrays.fill(held, -1);
        // Output column x goes to position x (or w-1-x mirrored); its taps start at offs[pos] in acc.
        int[] offs = new int[w];        // (w)
        float[] wt = new float[w * kx]; // (w, kx) zero-padded weights
        for (int x = 0; x < w; x++) {
            int pos = flip ? w - 1 - x : x;
            offs[pos] = (tx.start[x] - colLo) * 3;
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
                    widen(src, r, colLo, colHi - colLo, ring, slot * span3);
                    held[slot] = r;
                }
                slots[j] = slot * span3;
            }
            vertical(ty, y, cnt, slots, span3);
            int o = off + y * w;
            horizontal(offs, wt, kx, w, m, inv, dst, o, plane);
        }
    }

    private static int end(Resampler.Taps t) {
        int e = 0;
        for (int i = 0; i < t.start.length; i++) {
            e = Math.max(e, t.start[i] + t.count[i]);
        }
        return e;
    }

    /** Source row r, columns [colLo, colLo+n), as RGB floats (converted from YCbCr if held so) at out[o..]. */
    private static void widen(RgbImage src, int r, int colLo, int n, float[] out, int o) {
        byte[] px = src.raw();
        if (src.isYCbCr()) {
            YCbCr.toRgbFloats(px, r * src.width() + colLo, n, out, o);
        } else {
            int s0 = (r * src.width() + colLo) * 3;
            for (int i = 0; i < n * 3; i++) {
                out[o + i] = px[s0 + i] & 0xFF;
            }
        }
    }

    /** acc[0..span3) = sum_j w_j * ring[slots[j] ..]: one output row, all needed columns, interleaved RGB. */
    private void vertical(Resampler.Taps ty, int y, int cnt, int[] slots, int span3) {
        float[] a = acc;
        float[] rg = ring;
        int wb = y * ty.maxTaps;
        float[] wy = ty.weights;
        switch (cnt) {
            case 1 -> System.arraycopy(rg, slots[0], a, 0, span3);
            case 2 -> {
                float w0 = wy[wb];
                float w1 = wy[wb + 1];
                int r0 = slots[0];
                int r1 = slots[1];
                for (int i = 0; i < span3; i++) {
                    a[i] = w0 * rg[r0 + i] + w1 * rg[r1 + i];
                }
            }
            case 3 -> {
                float w0 = wy[wb];
                float w1 = wy[wb + 1];
                float w2 = wy[wb + 2];
                int r0 = slots[0];
                int r1 = slots[1];
                int r2 = slots[2];
                for (int i = 0; i < span3; i++) {
                    a[i] = w0 * rg[r0 + i] + w1 * rg[r1 + i] + w2 * rg[r2 + i];
                }
            }
            case 4 -> {
                float w0 = wy[wb];
                float w1 = wy[wb + 1];
                float w2 = wy[wb + 2];
                float w3 = wy[wb + 3];
                int r0 = slots[0];
                int r1 = slots[1];
                int r2 = slots[2];
                int r3 = slots[3];
                for (int i = 0; i < span3; i++) {
                    a[i] = w0 * rg[r0 + i] + w1 * rg[r1 + i] + w2 * rg[r2 + i] + w3 * rg[r3 + i];
                }
            }
            default -> {
                Arrays.fill(a, 0, span3, 0f);
                for (int j = 0; j < cnt; j++) {
                    float wj = wy[wb + j];
                    int rj = slots[j];
                    for (int i = 0; i < span3; i++) {
                        a[i] += wj * rg[rj + i];
                    }
                }
            }
        }
    }

    /** One output row: horizontal taps over acc, normalised, into the three planes of dst at row offset o. */
    private void horizontal(int[] offs, float[] wt, int k, int w, float[] m, float[] inv, float[] dst, int o,
                            int plane) {
        float[] a = acc;
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
                    dst[o1 + x] = (a[s + 1] - m1) * i1;
                    dst[o2 + x] = (a[s + 2] - m2) * i2;
                }
            }
            case 2 -> {
                for (int x = 0; x < w; x++) {
                    int s = offs[x];
                    float w0 = wt[2 * x];
                    float w1 = wt[2 * x + 1];
                    dst[o + x] = (w0 * a[s] + w1 * a[s + 3] - m0) * i0;
                    dst[o1 + x] = (w0 * a[s + 1] + w1 * a[s + 4] - m1) * i1;
                    dst[o2 + x] = (w0 * a[s + 2] + w1 * a[s + 5] - m2) * i2;
                }
            }
            case 3 -> {
                for (int x = 0; x < w; x++) {
                    int s = offs[x];
                    float w0 = wt[3 * x];
                    float w1 = wt[3 * x + 1];
                    float w2 = wt[3 * x + 2];
                    dst[o + x] = (w0 * a[s] + w1 * a[s + 3] + w2 * a[s + 6] - m0) * i0;
                    dst[o1 + x] = (w0 * a[s + 1] + w1 * a[s + 4] + w2 * a[s + 7] - m1) * i1;
                    dst[o2 + x] = (w0 * a[s + 2] + w1 * a[s + 5] + w2 * a[s + 8] - m2) * i2;
                }
            }
            case 4 -> {
                for (int x = 0; x < w; x++) {
                    int s = offs[x];
                    float w0 = wt[4 * x];
                    float w1 = wt[4 * x + 1];
                    float w2 = wt[4 * x + 2];
                    float w3 = wt[4 * x + 3];
                    dst[o + x] = (w0 * a[s] + w1 * a[s + 3] + w2 * a[s + 6] + w3 * a[s + 9] - m0) * i0;
                    dst[o1 + x] = (w0 * a[s + 1] + w1 * a[s + 4] + w2 * a[s + 7] + w3 * a[s + 10] - m1) * i1;
                    dst[o2 + x] = (w0 * a[s + 2] + w1 * a[s + 5] + w2 * a[s + 8] + w3 * a[s + 11] - m2) * i2;
                }
            }
            default -> {
                for (int x = 0; x < w; x++) {
                    float c0 = 0;
                    float c1 = 0;
                    float c2 = 0;
                    int s = offs[x];
                    for (int j = 0; j < k; j++, s += 3) {
                        float wj = wt[k * x + j];
                        c0 += wj * a[s];
                        c1 += wj * a[s + 1];
                        c2 += wj * a[s + 2];
                    }
                    dst[o + x] = (c0 - m0) * i0;
                    dst[o1 + x] = (c1 - m1) * i1;
                    dst[o2 + x] = (c2 - m2) * i2;
                }
            }
        }
    }
}
