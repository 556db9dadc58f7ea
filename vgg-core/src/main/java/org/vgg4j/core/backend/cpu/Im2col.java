package org.vgg4j.core.backend.cpu;

import org.vgg4j.core.backend.Buf;

/**
 * Lowers one image to columns for a GEMM-based convolution (stride 1, square padding).
 * Legend: C in-channels, H/W input, P/Q output, R/S kernel.
 *
 * <p>col (C*R*S, P*Q): row (c, r, s), column (p, q) holds x[c, p + r - pad, q + s - pad], 0 outside the image;
 * then conv = w (K, C*R*S) x col and the filter gradient is dy (K, P*Q) x col^T ({@link GemmConv}).
 */
final class Im2col {
    private Im2col() {
    }

    /** Fills col[c0 + row * ld + (p, q)] (C*R*S rows of P*Q) from the image x[x0 ...] (C, H, W). */
    static void lower(Buf x, int x0, int c, int h, int w, int r, int s, int pad, Buf col, int c0, int ld) {
        int p = h + 2 * pad - r + 1;
        int q = w + 2 * pad - s + 1;
        Parallel.forRange(c * r * s, 1, (from, to) -> {
            for (int row = from; row < to; row++) {
                int ch = row / (r * s);
                int kr = row / s % r;
                int ks = row % s;
                int dst = c0 + row * ld;
                for (int i = 0; i < p; i++) {
                    int hh = i + kr - pad;
                    boolean inside = hh >= 0 && hh < h;
                    int src = x0 + (ch * h + hh) * w;
                    for (int j = 0; j < q; j++) {
                        int ww = j + ks - pad;
                        col.set(dst + i * q + j, inside && ww >= 0 && ww < w ? x.get(src + ww) : 0.0);
                    }
                }
            }
        });
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
