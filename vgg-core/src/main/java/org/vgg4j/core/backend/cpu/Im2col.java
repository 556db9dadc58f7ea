package org.vgg4j.core.backend.cpu;

import org.vgg4j.core.backend.Buf;

/**
 * Lowers images to columns for a GEMM-based convolution (stride 1, square padding).
 * Legend: C in-channels, H/W input, P/Q output, R/S kernel.
 *
 * <p>col (C*R*S, P*Q) per image: row (c, r, s), column (p, q) holds x[c, p + r - pad, q + s - pad], 0 outside the image;
 * then conv = w (K, C*R*S) x col and the filter gradient is dy (K, P*Q) x col^T ({@link GemmConv}).
 */
final class Im2col {
    private Im2col() {
    }

    /**
     * Fills col[row * ld + j * P*Q + (p, q)] (C*R*S rows) from g consecutive images x[x0 ...] (g, C, H, W): image j
     * in columns [j*P*Q, (j+1)*P*Q) of every row, in one parallel pass over the rows (on small images a pass per
     * image would be mostly dispatch).
     */
    static void lower(Buf x, int x0, int g, int c, int h, int w, int r, int s, int pad, Buf col, int ld) {
        int p = h + 2 * pad - r + 1;
        int q = w + 2 * pad - s + 1;
        int pq = p * q;
        int image = c * h * w;
        Parallel.forRange(c * r * s, Math.max(1, 4096 / (g * pq)), (from, to) -> {
            int[] at = new int[pq];
            for (int row = from; row < to; row++) {
                int ch = row / (r * s);
                int kr = row / s % r;
                int ks = row % s;
                // the plane offset each output position reads, -1 where it reads the padding
                for (int i = 0; i < p; i++) {
                    for (int j = 0; j < q; j++) {
                        int hh = i + kr - pad;
                        int ww = j + ks - pad;
                        at[i * q + j] = hh >= 0 && hh < h && ww >= 0 && ww < w ? hh * w + ww : -1;
                    }
                }
                int plane = x0 + ch * h * w;
                if (x instanceof Buf.F32 fx && col instanceof Buf.F32 fc) {
                    gatherF32(fx.b(), fx.origin() + plane, image, g, at, fc.b(), fc.origin() + row * ld);
                    continue;
                }
                for (int j = 0, d = row * ld; j < g; j++, d += pq, plane += image) {
                    for (int e = 0; e < pq; e++) {
                        col.set(d + e, at[e] < 0 ? 0.0 : x.get(plane + at[e]));
                    }
                }
            }
        });
    }

    /** col[d0 + j*len + e] = x[x0 + j*image + at[e]] (0 where at[e] < 0) for g images: one row of {@link #lower}. */
    private static void gatherF32(java.nio.FloatBuffer x, int x0, int image, int g, int[] at, java.nio.FloatBuffer col,
                                  int d0) {
        int len = at.length;
        for (int j = 0, d = d0, plane = x0; j < g; j++, d += len, plane += image) {
            for (int e = 0; e < len; e++) {
                int a = at[e];
                col.put(d + e, a < 0 ? 0f : x.get(plane + a));
            }
        }
    }

    /**
     * col2im: x[x0 ...] (C, H, W) = sum over (r, s) of col[c0 + row * ld + (p, q)] put back in place (overwritten).
     */
    static void raise(Buf col, int c0, int ld, int c, int h, int w, int r, int s, int pad, Buf x, int x0) {
        int p = h + 2 * pad - r + 1;
        int q = w + 2 * pad - s + 1;
        // one thread per input channel: no two threads add into the same element, and the order is fixed
        Parallel.forRange(c, 1, (from, to) -> {
            for (int ch = from; ch < to; ch++) {
                int plane = x0 + ch * h * w;
                for (int i = 0; i < h * w; i++) {
                    x.set(plane + i, 0.0);
                }
                for (int kr = 0; kr < r; kr++) {
                    for (int ks = 0; ks < s; ks++) {
                        int src = c0 + ((ch * r + kr) * s + ks) * ld;
                        for (int i = 0; i < p; i++) {
                            int hh = i + kr - pad;
                            if (hh < 0 || hh >= h) {
                                continue;
                            }
                            int dst = plane + hh * w;
                            int j0 = Math.max(0, pad - ks);
                            int j1 = Math.min(q, w + pad - ks);
                            for (int j = j0; j < j1; j++) {
                                int e = dst + j + ks - pad;
                                x.set(e, x.get(e) + col.get(src + i * q + j));
                            }
                        }
                    }
                }
            }
        });
    }
}
