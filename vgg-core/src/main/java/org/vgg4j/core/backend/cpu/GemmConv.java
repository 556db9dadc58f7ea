package org.vgg4j.core.backend.cpu;

import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.cblas_dgemm;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;

import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Tensor;

/**
 * Convolution as im2col / col2im plus OpenBLAS GEMM, one image at a time (stride 1, square padding).
 * Legend: N batch, C in, K out, H/W in, P/Q out, R/S kernel; col (C*R*S, P*Q) is one image lowered by
 * {@link Im2col}.
 * <pre>
 *   forward:          y[n] (K, P*Q)   = w (K, C*R*S) x col          then + b
 *   backward data:    dcol (C*R*S, P*Q) = w^T x dy[n] (K, P*Q)     then col2im into dx[n]
 *   backward filter:  dw (K, C*R*S)  += dy[n] x col^T              (BLAS accumulates, beta = 1)
 * </pre>
 * What it is: the convolution of the plain native variant (ND4J's own is 2-10x slower there), and everywhere the
 * one for layers with very few input channels (VGG's first, C = 3), where oneDNN's NCHW kernels crawl. What it
 * is not: the default for the other layers with oneDNN natives, which measured faster (docs/benchmarks.md).
 * All tensors are of one dtype; the caller passes a scratch for col.
 */
final class GemmConv {
    private GemmConv() {
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

    static void forward(Tensor x, CpuStorage sx, Tensor w, CpuStorage sw, Tensor b, CpuStorage sb, Tensor y,
                        CpuStorage sy, int pad, Scratch colScratch) {
        int nb = x.dim(0);
        int c = x.dim(1);
        int h = x.dim(2);
        int wd = x.dim(3);
        int k = w.dim(0);
        int r = w.dim(2);
        int s = w.dim(3);
        int pq = y.dim(2) * y.dim(3);
        int crs = c * r * s;
        CpuStorage col = colScratch.get(x.dtype(), (long) crs * pq);
        for (int i = 0; i < nb; i++) {
            Im2col.lower(sx.buf, Math.toIntExact(x.offset()) + i * c * h * wd, c, h, wd, r, s, pad, col.buf, 0);
            long yAt = y.offset() + (long) i * k * pq;
            gemm(x.dtype(), CblasNoTrans, CblasNoTrans, k, pq, crs, sw, w.offset(), crs, col, 0, pq, 0.0, sy, yAt, pq);
            if (b != null) {
                int y0 = Math.toIntExact(yAt);
                int b0 = Math.toIntExact(b.offset());
                Buf yb = sy.buf;
                Buf bb = sb.buf;
                Parallel.forRange(k, 1, (from, to) -> {
                    for (int ch = from; ch < to; ch++) {
                        double v = bb.get(b0 + ch);
                        for (int j = y0 + ch * pq, end = j + pq; j < end; j++) {
                            yb.set(j, yb.get(j) + v);
                        }
                    }
                });
            }
        }
    }

    static void backwardData(Tensor dy, CpuStorage sdy, Tensor w, CpuStorage sw, Tensor dx, CpuStorage sdx, int pad,
                             Scratch colScratch) {
        int nb = dx.dim(0);
        int c = dx.dim(1);
        int h = dx.dim(2);
        int wd = dx.dim(3);
        int k = w.dim(0);
        int r = w.dim(2);
        int s = w.dim(3);
        int pq = dy.dim(2) * dy.dim(3);
        int crs = c * r * s;
        CpuStorage col = colScratch.get(dx.dtype(), (long) crs * pq);
        for (int i = 0; i < nb; i++) {
            long dyAt = dy.offset() + (long) i * k * pq;
            gemm(dx.dtype(), CblasTrans, CblasNoTrans, crs, pq, k, sw, w.offset(), crs, sdy, dyAt, pq, 0.0, col, 0, pq);
            Im2col.raise(col.buf, 0, c, h, wd, r, s, pad, sdx.buf, Math.toIntExact(dx.offset()) + i * c * h * wd);
        }
    }

    static void backwardFilter(Tensor x, CpuStorage sx, Tensor dy, CpuStorage sdy, Tensor dw, CpuStorage sdw, int pad,
                               Scratch colScratch) {
        int nb = x.dim(0);
        int c = x.dim(1);
        int h = x.dim(2);
        int wd = x.dim(3);
        int k = dy.dim(1);
        int r = dw.dim(2);
        int s = dw.dim(3);
        int pq = dy.dim(2) * dy.dim(3);
        int crs = c * r * s;
        CpuStorage col = colScratch.get(x.dtype(), (long) crs * pq);
        for (int i = 0; i < nb; i++) {
            Im2col.lower(sx.buf, Math.toIntExact(x.offset()) + i * c * h * wd, c, h, wd, r, s, pad, col.buf, 0);
            long dyAt = dy.offset() + (long) i * k * pq;
            gemm(x.dtype(), CblasNoTrans, CblasTrans, k, crs, pq, sdy, dyAt, pq, col, 0, pq, 1.0, sdw, dw.offset(), crs);
        }
    }
}
