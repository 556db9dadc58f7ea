package org.vgg4j.core.backend.cpu;

import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.cblas_dgemm;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;

import org.vgg4j.core.backend.Buf;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Tensor;

/**
 * Convolution as im2col / col2im plus OpenBLAS GEMM (stride 1, square padding), G images per GEMM.
 * Legend: N batch, C in, K out, H/W in, P/Q out, R/S kernel, G images of one group.
 * <pre>
 *   col (C*R*S, G*P*Q): the G images lowered side by side ({@link Im2col}); Y = (K, G*P*Q)
 *   forward:          Y    = w (K, C*R*S) x col                then scattered to y[n] (K, P*Q), + b
 *   backward data:    dcol = w^T x dY  (dY gathered from dy)   then col2im into dx[n]
 *   backward filter:  dw  += dY x col^T                        (BLAS accumulates, beta = 1)
 * </pre>
 * G = 1 for large images (then y and dy are used in place, no gather or scatter); for small ones (VGG at 32x32
 * ends at 2x2) G grows until col reaches {@link #COL_ELEMENTS}, so the GEMMs stay large.
 *
 * <p>What it is: the convolution of the plain native variant (ND4J's own im2col is slower there), and with oneDNN
 * the one for layers where oneDNN's NCHW kernels crawl (few input channels, tiny images). What it is not: the
 * default for the other layers, where oneDNN measured faster (docs/benchmarks.md, "Decision 2"). The caller passes scratch.
 */
final class GemmConv {
    /** Elements of one col buffer (16 MB in float32): bounds the group size G. */
    static final long COL_ELEMENTS = 1L << 22;

    private GemmConv() {
    }

    /** Scratch buffers of one backend instance, and its bound on col's size (elements). */
    record Work(Scratch col, Scratch out, long colElements) {
    }

    private static void gemm(DType dt, int ta, int tb, int m, int n, int k, CpuStorage a, long ao, int lda,
                             CpuStorage b, long bo, int ldb, double beta, CpuStorage c, long co, int ldc) {
        if (dt == DType.FLOAT32) {
            cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1f, a.floatAt(ao), lda, b.floatAt(bo), ldb, (float) beta,
                    c.floatAt(co), ldc);
        } else {
            cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a.doubleAt(ao), lda, b.doubleAt(bo), ldb, beta,
                    c.doubleAt(co), ldc);
        }
    }

    /** Images per GEMM for a layer with crs inputs per output and pq outputs per image. */
    static int group(int nb, int crs, int pq, long colElements) {
        return (int) Math.max(1, Math.min(nb, colElements / ((long) crs * pq)));
    }

    /**
     * Copies g blocks: block j, row k (of len elements) moves between a (K, G*len) matrix at m0 and the NCHW-like
     * tensor at t0 (image stride k*len). toMatrix: tensor -> matrix (gather), else matrix -> tensor (scatter).
     */
    private static void shuffle(Buf matrix, int m0, Buf tensor, int t0, int g, int k, int len, boolean toMatrix) {
        Parallel.forRange(g * k, Math.max(1, 4096 / len), (from, to) -> {
            for (int row = from; row < to; row++) {
                int j = row / k;
                int ch = row % k;
                int mAt = m0 + ch * g * len + j * len;
                int tAt = t0 + (j * k + ch) * len;
                for (int e = 0; e < len; e++) {
                    if (toMatrix) {
                        matrix.set(mAt + e, tensor.get(tAt + e));
                    } else {
                        tensor.set(tAt + e, matrix.get(mAt + e));
                    }
                }
            }
        });
    }

    static void forward(Tensor x, CpuStorage sx, Tensor w, CpuStorage sw, Tensor b, CpuStorage sb, Tensor y,
                        CpuStorage sy, int pad, Work work) {
        int nb = x.dim(0);
        int c = x.dim(1);
        int h = x.dim(2);
        int wd = x.dim(3);
        int k = w.dim(0);
        int r = w.dim(2);
        int s = w.dim(3);
        int pq = y.dim(2) * y.dim(3);
        int crs = c * r * s;
        int g = group(nb, crs, pq, work.colElements());
        CpuStorage col = work.col().get(x.dtype(), (long) crs * g * pq);
        CpuStorage out = g == 1 ? null : work.out().get(x.dtype(), (long) k * g * pq);
        for (int n0 = 0; n0 < nb; n0 += g) {
            int gn = Math.min(g, nb - n0);
            for (int j = 0; j < gn; j++) {
                Im2col.lower(sx.buf, Math.toIntExact(x.offset()) + (n0 + j) * c * h * wd, c, h, wd, r, s, pad,
                        col.buf, j * pq, gn * pq);
            }
            long yAt = y.offset() + (long) n0 * k * pq;
            if (g == 1) {
                gemm(x.dtype(), CblasNoTrans, CblasNoTrans, k, pq, crs, sw, w.offset(), crs, col, 0, pq, 0.0, sy, yAt, pq);
            } else {
                gemm(x.dtype(), CblasNoTrans, CblasNoTrans, k, gn * pq, crs, sw, w.offset(), crs, col, 0, gn * pq,
                        0.0, out, 0, gn * pq);
                shuffle(out.buf, 0, sy.buf, Math.toIntExact(yAt), gn, k, pq, false);
            }
        }
        if (b != null) {
            int y0 = Math.toIntExact(y.offset());
            int b0 = Math.toIntExact(b.offset());
            Buf yb = sy.buf;
            Buf bb = sb.buf;
            Parallel.forRange(nb * k, Math.max(1, 4096 / pq), (from, to) -> {
                for (int row = from; row < to; row++) {
                    double v = bb.get(b0 + row % k);
                    for (int e = y0 + row * pq, end = e + pq; e < end; e++) {
                        yb.set(e, yb.get(e) + v);
                    }
                }
            });
        }
    }

    static void backwardData(Tensor dy, CpuStorage sdy, Tensor w, CpuStorage sw, Tensor dx, CpuStorage sdx, int pad,
                             Work work) {
        int nb = dx.dim(0);
        int c = dx.dim(1);
        int h = dx.dim(2);
        int wd = dx.dim(3);
        int k = w.dim(0);
        int r = w.dim(2);
        int s = w.dim(3);
        int pq = dy.dim(2) * dy.dim(3);
        int crs = c * r * s;
        int g = group(nb, crs, pq, work.colElements());
        CpuStorage col = work.col().get(dx.dtype(), (long) crs * g * pq);
        CpuStorage dyg = g == 1 ? null : work.out().get(dx.dtype(), (long) k * g * pq);
        for (int n0 = 0; n0 < nb; n0 += g) {
            int gn = Math.min(g, nb - n0);
            long dyAt = dy.offset() + (long) n0 * k * pq;
            if (g == 1) {
                gemm(dx.dtype(), CblasTrans, CblasNoTrans, crs, pq, k, sw, w.offset(), crs, sdy, dyAt, pq, 0.0, col, 0, pq);
            } else {
                shuffle(dyg.buf, 0, sdy.buf, Math.toIntExact(dyAt), gn, k, pq, true);
                gemm(dx.dtype(), CblasTrans, CblasNoTrans, crs, gn * pq, k, sw, w.offset(), crs, dyg, 0, gn * pq,
                        0.0, col, 0, gn * pq);
            }
            for (int j = 0; j < gn; j++) {
                Im2col.raise(col.buf, j * pq, gn * pq, c, h, wd, r, s, pad, sdx.buf,
                        Math.toIntExact(dx.offset()) + (n0 + j) * c * h * wd);
            }
        }
    }

    static void backwardFilter(Tensor x, CpuStorage sx, Tensor dy, CpuStorage sdy, Tensor dw, CpuStorage sdw, int pad,
                               Work work) {
        int nb = x.dim(0);
        int c = x.dim(1);
        int h = x.dim(2);
        int wd = x.dim(3);
        int k = dy.dim(1);
        int r = dw.dim(2);
        int s = dw.dim(3);
        int pq = dy.dim(2) * dy.dim(3);
        int crs = c * r * s;
        int g = group(nb, crs, pq, work.colElements());
        CpuStorage col = work.col().get(x.dtype(), (long) crs * g * pq);
        CpuStorage dyg = g == 1 ? null : work.out().get(x.dtype(), (long) k * g * pq);
        for (int n0 = 0; n0 < nb; n0 += g) {
            int gn = Math.min(g, nb - n0);
            for (int j = 0; j < gn; j++) {
                Im2col.lower(sx.buf, Math.toIntExact(x.offset()) + (n0 + j) * c * h * wd, c, h, wd, r, s, pad,
                        col.buf, j * pq, gn * pq);
            }
            long dyAt = dy.offset() + (long) n0 * k * pq;
            if (g == 1) {
                gemm(x.dtype(), CblasNoTrans, CblasTrans, k, crs, pq, sdy, dyAt, pq, col, 0, pq, 1.0, sdw, dw.offset(), crs);
            } else {
                shuffle(dyg.buf, 0, sdy.buf, Math.toIntExact(dyAt), gn, k, pq, true);
                gemm(x.dtype(), CblasNoTrans, CblasTrans, k, crs, gn * pq, dyg, 0, gn * pq, col, 0, gn * pq, 1.0,
                        sdw, dw.offset(), crs);
            }
        }
    }
}
