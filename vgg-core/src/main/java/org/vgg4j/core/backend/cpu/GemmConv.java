package org.vgg4j.core.backend.cpu;

import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.cblas_dgemm;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;

import java.nio.FloatBuffer;
import java.util.Arrays;
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

    /** Scratch buffers of one backend instance, its bound on col's size (elements), and the float32 GEMM. */
    record Work(Scratch col, Scratch out, long colElements, F32Gemm f32) {
        /** As above with OpenBLAS's sgemm. */
        Work(Scratch col, Scratch out, long colElements) {
            this(col, out, colElements, null);
        }
    }

    /** Row-major float32 C (m,n) = op(A) op(B) + beta C over storages and element offsets. */
    interface F32Gemm {
        void run(boolean transA, boolean transB, int m, int n, int k, CpuStorage a, long ao, int lda, CpuStorage b,
                 long bo, int ldb, float beta, CpuStorage c, long co, int ldc);
    }

    private static void gemm(Work work, DType dt, int ta, int tb, int m, int n, int k, CpuStorage a, long ao, int lda,
                             CpuStorage b, long bo, int ldb, double beta, CpuStorage c, long co, int ldc) {
        if (dt == DType.FLOAT32 && work.f32() != null) {
            work.f32().run(ta == CblasTrans, tb == CblasTrans, m, n, k, a, ao, lda, b, bo, ldb, (float) beta, c, co, ldc);
        } else if (dt == DType.FLOAT32) {
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
            Im2col.lower(sx.buf, Math.toIntExact(x.offset()) + n0 * c * h * wd, gn, c, h, wd, r, s, pad, col.buf,
                    gn * pq);
            long yAt = y.offset() + (long) n0 * k * pq;
            if (g == 1) {
                gemm(work, x.dtype(), CblasNoTrans, CblasNoTrans, k, pq, crs, sw, w.offset(), crs, col, 0, pq, 0.0, sy, yAt, pq);
            } else {
                gemm(work, x.dtype(), CblasNoTrans, CblasNoTrans, k, gn * pq, crs, sw, w.offset(), crs, col, 0, gn * pq,
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
                gemm(work, dx.dtype(), CblasTrans, CblasNoTrans, crs, pq, k, sw, w.offset(), crs, sdy, dyAt, pq, 0.0, col, 0, pq);
            } else {
                shuffle(dyg.buf, 0, sdy.buf, Math.toIntExact(dyAt), gn, k, pq, true);
                gemm(work, dx.dtype(), CblasTrans, CblasNoTrans, crs, gn * pq, k, sw, w.offset(), crs, dyg, 0, gn * pq,
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
            Im2col.lower(sx.buf, Math.toIntExact(x.offset()) + n0 * c * h * wd, gn, c, h, wd, r, s, pad, col.buf,
                    gn * pq);
            long dyAt = dy.offset() + (long) n0 * k * pq;
            if (g == 1) {
                gemm(work, x.dtype(), CblasNoTrans, CblasTrans, k, crs, pq, sdy, dyAt, pq, col, 0, pq, 1.0, sdw, dw.offset(), crs);
            } else {
                shuffle(dyg.buf, 0, sdy.buf, Math.toIntExact(dyAt), gn, k, pq, true);
                gemm(work, x.dtype(), CblasNoTrans, CblasTrans, k, crs, gn * pq, dyg, 0, gn * pq, col, 0, gn * pq, 1.0,
                        sdw, dw.offset(), crs);
            }
        }
    }

    /**
     * Whether {@link #backwardFilterSmall} does less arithmetic than the im2col product: maps of fewer pixels than
     * the kernel has taps (VGG's 2x2 maps under a 3x3 kernel).
     */
    static boolean smallMap(int h, int w, int r, int s) {
        return h * w < r * s;
    }

    /**
     * dw (K,C,R,S) += filter gradient for maps {@link #smallMap} small, without im2col: first every product of an
     * output and an input pixel summed over the batch, one GEMM over x and dy as they lie,
     * <pre>
     *   M (K*P*Q, C*H*W) = dy (N, K*P*Q)^T x (N, C*H*W)
     * </pre>
     * then each tap sums the (output, input) pairs it connects:
     * dw[k,c,r,s] += sum over (p,q) with (h,w) = (p+r-pad, q+s-pad) inside the map of M[(k,p,q), (c,h,w)].
     * M has H*W products per output where im2col has R*S, padding included. Float32 only; M in work's col.
     */
    static void backwardFilterSmall(Tensor x, CpuStorage sx, Tensor dy, CpuStorage sdy, Tensor dw, CpuStorage sdw,
                                    int pad, Work work) {
        Dims d = Dims.of(x, dw, dy);
        int kpq = d.k() * d.pq();
        int chw = d.c() * d.hw();
        CpuStorage m = work.col().get(DType.FLOAT32, (long) kpq * chw);
        gemm(work, DType.FLOAT32, CblasTrans, CblasNoTrans, kpq, chw, d.nb(), sdy, dy.offset(), kpq, sx, x.offset(),
                chw, 0.0, m, 0, chw);
        fold(d, tapPairs(d, pad), (Buf.F32) m.buf, (Buf.F32) sdw.buf, Math.toIntExact(dw.offset()));
    }

    /** x (N,C,H,W), weights (K,C,R,S), y (N,K,P,Q) of one convolution. */
    private record Dims(int nb, int c, int h, int w, int k, int r, int s, int p, int q) {
        static Dims of(Tensor x, Tensor weights, Tensor y) {
            return new Dims(x.dim(0), x.dim(1), x.dim(2), x.dim(3), weights.dim(0), weights.dim(2), weights.dim(3),
                    y.dim(2), y.dim(3));
        }

        int hw() {
            return h * w;
        }

        int pq() {
            return p * q;
        }

        int rs() {
            return r * s;
        }
    }

    /** Per tap (r, s): the (p*Q+q, h*W+w) pixel pairs it connects, as consecutive ints. */
    private static int[][] tapPairs(Dims d, int pad) {
        int[][] pairs = new int[d.rs()][];
        for (int t = 0; t < d.rs(); t++) {
            int[] list = new int[2 * d.pq()];
            int n = 0;
            for (int i = 0; i < d.p(); i++) {
                for (int j = 0; j < d.q(); j++) {
                    int hh = i + t / d.s() - pad;
                    int ww = j + t % d.s() - pad;
                    if (hh >= 0 && hh < d.h() && ww >= 0 && ww < d.w()) {
                        list[n++] = i * d.q() + j;
                        list[n++] = hh * d.w() + ww;
                    }
                }
            }
            pairs[t] = Arrays.copyOf(list, n);
        }
        return pairs;
    }

    /** dw[k,c,t] += sum over tap t's pairs of M[(k, pair's output), (c, pair's input)]; dw at element dwAt. */
    private static void fold(Dims d, int[][] pairs, Buf.F32 m, Buf.F32 dw, int dwAt) {
        FloatBuffer mb = m.b();
        FloatBuffer db = dw.b();
        int m0 = m.origin();
        int d0 = dw.origin() + dwAt;
        int chw = d.c() * d.hw();
        int rows = d.pq() * chw;      // M's P*Q rows of one output channel
        int crs = d.c() * d.rs();
        Parallel.forRange(d.k(), 1, (from, to) -> {
            float[] mk = new float[rows];
            float[] dk = new float[crs]; // dw[k]
            for (int kk = from; kk < to; kk++) {
                mb.get(m0 + kk * rows, mk);
                db.get(d0 + kk * crs, dk);
                for (int t = 0; t < d.rs(); t++) {
                    int[] pr = pairs[t];
                    for (int e = 0; e < pr.length; e += 2) {
                        int row = pr[e] * chw + pr[e + 1];
                        for (int ch = 0, at = t; ch < d.c(); ch++, at += d.rs()) {
                            dk[at] += mk[row + ch * d.hw()];
                        }
                    }
                }
                db.put(d0 + kk * crs, dk);
            }
        });
    }
}
