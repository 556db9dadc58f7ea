package org.vgg4j.core.backend.cpu;

/**
 * Lowers one image to columns for a GEMM-based convolution (stride 1, square padding).
 * Legend: C in-channels, H/W input, P/Q output, R/S kernel.
 *
 * <p>col (C*R*S, P*Q): row (c, r, s), column (p, q) holds x[c, p + r - pad, q + s - pad], 0 outside the image;
 * then conv = w (K, C*R*S) x col and the filter gradient is dy (K, P*Q) x col^T. What it is not: the main
 * convolution path (oneDNN is faster, docs/benchmarks.md); the backend uses it for a filter gradient that comes
 * without its data gradient (VGG's first layer, C = 3), where oneDNN would also compute the unwanted dx and is
 * slow for so few channels.
 */
final class Im2col {
    private Im2col() {
    }

    /** Fills col[c0 ...] (C*R*S, P*Q) from the image x[x0 ...] (C, H, W). */
    static void lower(Buf x, int x0, int c, int h, int w, int r, int s, int pad, Buf col, int c0) {
        int p = h + 2 * pad - r + 1;
        int q = w + 2 * pad - s + 1;
        Parallel.forRange(c * r * s, 1, (from, to) -> {
            for (int row = from; row < to; row++) {
                int ch = row / (r * s);
                int kr = row / s % r;
                int ks = row % s;
                int dst = c0 + row * p * q;
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
}
