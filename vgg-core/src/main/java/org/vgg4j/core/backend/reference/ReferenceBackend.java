package org.vgg4j.core.backend.reference;

import static org.vgg4j.core.backend.OpChecks.biasChannels;
import static org.vgg4j.core.backend.OpChecks.gemmDims;
import static org.vgg4j.core.backend.OpChecks.hostRange;
import static org.vgg4j.core.backend.OpChecks.lrnSize;
import static org.vgg4j.core.backend.OpChecks.rank;
import static org.vgg4j.core.backend.OpChecks.sameShape;
import static org.vgg4j.core.backend.OpChecks.sameSize;
import static org.vgg4j.core.backend.OpChecks.shape;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendTensors;
import org.vgg4j.core.backend.Buf;
import org.vgg4j.core.backend.OpChecks;
import org.vgg4j.core.backend.DropoutRng;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * The {@code reference} backend: every op of the {@link Backend} SPI as plain Java loops over {@code float[]}
 * (FLOAT32) or {@code double[]} (FLOAT64) storage.
 *
 * <p>Is: the living DEFINITION of each op that the ND4J and CUDA backends are tested against, so it is written to
 * be obviously right rather than fast: one loop nest per op, read straight from the formula in the SPI javadoc.
 * Every sum is accumulated in double, also for FLOAT32, and rounded once when stored, so in a parity test this is
 * the more accurate side. Is not: fast (no blocking, no im2col, no SIMD) and not a place for natives; it must run
 * wherever a JVM does.
 *
 * <p>Dimension legend: N batch, C in-channels, K out-channels, H/W input height/width, P/Q output height/width,
 * R/S kernel height/width, F features; for GEMM M rows of op(a), Kd the shared dimension, Nd columns of op(b).
 *
 * <p>Every op validates at entry that its tensors are reference tensors of one dtype, that their shapes agree
 * (a mismatch names the shapes) and that outputs do not overlap inputs except where the SPI allows it. Some ops
 * run a parallel loop, but only over independent outputs (each output element is written by exactly one task,
 * with a fixed summation order), so results do not depend on the number of threads.
 */
public final class ReferenceBackend implements Backend {
    public static final String NAME = "reference";

    /** Below this many multiply-adds an op runs on the calling thread: forking costs more than it saves. */
    private static final long PARALLEL_WORK = 1L << 15;

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public boolean supports(DType dtype) {
        return dtype == DType.FLOAT32 || dtype == DType.FLOAT64;
    }

    // ================================================================ memory

    @Override
    public Tensor allocate(DType dtype, Shape shape) {
        if (!supports(dtype)) {
            throw new IllegalArgumentException("reference backend cannot allocate dtype " + dtype);
        }
        long n = shape.size();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor " + shape + " has " + n + " elements; the reference backend holds at most "
                    + (Integer.MAX_VALUE - 8) + " in one Java array");
        }
        Object storage = dtype == DType.FLOAT32 ? new float[(int) n] : new double[(int) n];
        return BackendTensors.wrap(this, dtype, shape, storage, 0);
    }

    /** Nothing to do: the garbage collector reclaims the array once no tensor refers to it. */
    @Override
    public void free(Tensor t) {
    }

    @Override
    public void copyIn(float[] host, int hostOffset, Tensor t) {
        Buf b = buf("copyIn", "t", t, t.dtype());
        int n = size(t);
        hostRange("copyIn", host.length, hostOffset, n);
        for (int i = 0; i < n; i++) {
            b.set(i, host[hostOffset + i]);
        }
    }

    @Override
    public void copyIn(double[] host, int hostOffset, Tensor t) {
        Buf b = buf("copyIn", "t", t, t.dtype());
        int n = size(t);
        hostRange("copyIn", host.length, hostOffset, n);
        for (int i = 0; i < n; i++) {
            b.set(i, host[hostOffset + i]);
        }
    }

    @Override
    public void copyOut(Tensor t, float[] host, int hostOffset) {
        Buf b = buf("copyOut", "t", t, t.dtype());
        int n = size(t);
        hostRange("copyOut", host.length, hostOffset, n);
        for (int i = 0; i < n; i++) {
            host[hostOffset + i] = (float) b.get(i);
        }
    }

    @Override
    public void copyOut(Tensor t, double[] host, int hostOffset) {
        Buf b = buf("copyOut", "t", t, t.dtype());
        int n = size(t);
        hostRange("copyOut", host.length, hostOffset, n);
        for (int i = 0; i < n; i++) {
            host[hostOffset + i] = b.get(i);
        }
    }

    @Override
    public void fill(Tensor t, double value) {
        Buf b = buf("fill", "t", t, t.dtype());
        int n = size(t);
        for (int i = 0; i < n; i++) {
            b.set(i, value);
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        String op = "copy";
        Buf s = buf(op, "src", src, src.dtype());
        Buf d = buf(op, "dst", dst, src.dtype());
        sameSize(op, "src", src, "dst", dst);
        sameOrDisjoint(op, "src", src, "dst", dst);
        int n = size(src);
        for (int i = 0; i < n; i++) {
            d.set(i, s.get(i));
        }
    }

    // ================================================================ convolution (stride 1, square padding)

    @Override
    public void conv2dForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad) {
        String op = "conv2dForward";
        DType dt = x.dtype();
        ConvGeometry g = ConvGeometry.of(op, x, w, pad);
        shape(op, "y", y, g.context(), g.n, g.k, g.p, g.q);
        Buf xb = buf(op, "x", x, dt);
        Buf wb = buf(op, "w", w, dt);
        Buf bb = null;
        if (b != null) {
            shape(op, "b", b, g.context(), g.k);
            bb = buf(op, "b", b, dt);
            disjoint(op, "b", b, "y", y);
        }
        Buf yb = buf(op, "y", y, dt);
        disjoint(op, "x", x, "y", y);
        disjoint(op, "w", w, "y", y);
        final Buf bias = bb;
        // y (N,K,P,Q): one task per (n, k) plane; each output is a full sum in a fixed order
        parallelFor(g.n * g.k, (long) g.p * g.q * g.c * g.r * g.s, nk -> {
            int n = nk / g.k;
            int k = nk % g.k;
            for (int p = 0; p < g.p; p++) {
                for (int q = 0; q < g.q; q++) {
                    double acc = bias == null ? 0.0 : bias.get(k);
                    for (int c = 0; c < g.c; c++) {
                        for (int r = 0; r < g.r; r++) {
                            int h = p + r - pad;
                            if (h < 0 || h >= g.h) {
                                continue; // zero padding
                            }
                            for (int s = 0; s < g.s; s++) {
                                int col = q + s - pad;
                                if (col < 0 || col >= g.w) {
                                    continue;
                                }
                                acc += xb.get(((n * g.c + c) * g.h + h) * g.w + col) * wb.get(((k * g.c + c) * g.r + r) * g.s + s);
                            }
                        }
                    }
                    yb.set(((n * g.k + k) * g.p + p) * g.q + q, acc);
                }
            }
        });
    }

    @Override
    public void conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int pad) {
        String op = "conv2dBackwardData";
        DType dt = dy.dtype();
        ConvGeometry g = ConvGeometry.of(op, dx, w, pad);
        shape(op, "dy", dy, g.context(), g.n, g.k, g.p, g.q);
        Buf dyb = buf(op, "dy", dy, dt);
        Buf wb = buf(op, "w", w, dt);
        Buf dxb = buf(op, "dx", dx, dt);
        disjoint(op, "dy", dy, "dx", dx);
        disjoint(op, "w", w, "dx", dx);
        // dx[n,c,h,col] = sum over k,r,s of dy[n,k,h+pad-r,col+pad-s] * w[k,c,r,s]: one task per (n, c) plane
        parallelFor(g.n * g.c, (long) g.h * g.w * g.k * g.r * g.s, nc -> {
            int n = nc / g.c;
            int c = nc % g.c;
            for (int h = 0; h < g.h; h++) {
                for (int col = 0; col < g.w; col++) {
                    double acc = 0.0;
                    for (int k = 0; k < g.k; k++) {
                        for (int r = 0; r < g.r; r++) {
                            int p = h + pad - r;
                            if (p < 0 || p >= g.p) {
                                continue;
                            }
                            for (int s = 0; s < g.s; s++) {
                                int q = col + pad - s;
                                if (q < 0 || q >= g.q) {
                                    continue;
                                }
                                acc += dyb.get(((n * g.k + k) * g.p + p) * g.q + q) * wb.get(((k * g.c + c) * g.r + r) * g.s + s);
                            }
                        }
                    }
                    dxb.set(((n * g.c + c) * g.h + h) * g.w + col, acc);
                }
            }
        });
    }

    @Override
    public void conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad) {
        String op = "conv2dBackwardFilter";
        DType dt = x.dtype();
        ConvGeometry g = ConvGeometry.of(op, x, dw, pad);
        shape(op, "dy", dy, g.context(), g.n, g.k, g.p, g.q);
        Buf xb = buf(op, "x", x, dt);
        Buf dyb = buf(op, "dy", dy, dt);
        Buf dwb = buf(op, "dw", dw, dt);
        disjoint(op, "x", x, "dw", dw);
        disjoint(op, "dy", dy, "dw", dw);
        // dw[k,c,r,s] += sum over n,p,q of x[n,c,p+r-pad,q+s-pad] * dy[n,k,p,q]: one task per (k, c) filter slice
        parallelFor(g.k * g.c, (long) g.r * g.s * g.n * g.p * g.q, kc -> {
            int k = kc / g.c;
            int c = kc % g.c;
            for (int r = 0; r < g.r; r++) {
                for (int s = 0; s < g.s; s++) {
                    double acc = 0.0;
                    for (int n = 0; n < g.n; n++) {
                        for (int p = 0; p < g.p; p++) {
                            int h = p + r - pad;
                            if (h < 0 || h >= g.h) {
                                continue;
                            }
                            for (int q = 0; q < g.q; q++) {
                                int col = q + s - pad;
                                if (col < 0 || col >= g.w) {
                                    continue;
                                }
                                acc += xb.get(((n * g.c + c) * g.h + h) * g.w + col) * dyb.get(((n * g.k + k) * g.p + p) * g.q + q);
                            }
                        }
                    }
                    dwb.add(((k * g.c + c) * g.r + r) * g.s + s, acc);
                }
            }
        });
        if (db != null) {
            shape(op, "db", db, g.context(), g.k);
            Buf dbb = buf(op, "db", db, dt);
            disjoint(op, "dy", dy, "db", db);
            disjoint(op, "dw", dw, "db", db);
            int plane = g.p * g.q;
            for (int k = 0; k < g.k; k++) {
                double acc = 0.0;
                for (int n = 0; n < g.n; n++) {
                    int base = (n * g.k + k) * plane;
                    for (int i = 0; i < plane; i++) {
                        acc += dyb.get(base + i);
                    }
                }
                dbb.add(k, acc);
            }
        }
    }

    /** The sizes of one convolution, derived from x (N,C,H,W) and w (K,C,R,S) and checked against each other. */
    private record ConvGeometry(int n, int c, int h, int w, int k, int r, int s, int p, int q, int pad,
                                Shape xShape, Shape wShape) {
        static ConvGeometry of(String op, Tensor x, Tensor w, int pad) {
            String ctx = "x " + x.shape() + ", w " + w.shape() + ", pad " + pad;
            rank(op, "x (N,C,H,W)", x, 4);
            rank(op, "w (K,C,R,S)", w, 4);
            if (pad < 0) {
                throw new IllegalArgumentException(op + ": pad " + pad + " must be >= 0");
            }
            if (w.dim(1) != x.dim(1)) {
                throw new IllegalArgumentException(op + ": w has " + w.dim(1) + " input channels but x has " + x.dim(1)
                        + " (" + ctx + ")");
            }
            int p = x.dim(2) + 2 * pad - w.dim(2) + 1;
            int q = x.dim(3) + 2 * pad - w.dim(3) + 1;
            if (p < 1 || q < 1) {
                throw new IllegalArgumentException(op + ": kernel larger than the padded input (" + ctx + ")");
            }
            return new ConvGeometry(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3), p, q, pad,
                    x.shape(), w.shape());
        }

        String context() {
            return "x/dx " + xShape + ", w/dw " + wShape + ", pad " + pad;
        }
    }

    // ================================================================ pooling, activations, normalisation

    @Override
    public void maxPool2x2Forward(Tensor x, Tensor y) {
        String op = "maxPool2x2Forward";
        DType dt = x.dtype();
        rank(op, "x (N,C,H,W)", x, 4);
        int nc = x.dim(0) * x.dim(1);
        int h = x.dim(2);
        int w = x.dim(3);
        int p = h / 2;
        int q = w / 2;
        if (p < 1 || q < 1) {
            throw new IllegalArgumentException(op + ": x " + x.shape() + " is smaller than one 2x2 window");
        }
        shape(op, "y", y, "x " + x.shape(), x.dim(0), x.dim(1), p, q);
        Buf xb = buf(op, "x", x, dt);
        Buf yb = buf(op, "y", y, dt);
        disjoint(op, "x", x, "y", y);
        for (int plane = 0; plane < nc; plane++) {
            for (int i = 0; i < p; i++) {
                for (int j = 0; j < q; j++) {
                    yb.set((plane * p + i) * q + j, xb.get(argMax2x2(xb, plane, h, w, i, j)));
                }
            }
        }
    }

    @Override
    public void maxPool2x2Backward(Tensor x, Tensor y, Tensor dy, Tensor dx) {
        String op = "maxPool2x2Backward";
        DType dt = x.dtype();
        rank(op, "x (N,C,H,W)", x, 4);
        int nc = x.dim(0) * x.dim(1);
        int h = x.dim(2);
        int w = x.dim(3);
        int p = h / 2;
        int q = w / 2;
        String ctx = "x " + x.shape();
        shape(op, "y", y, ctx, x.dim(0), x.dim(1), p, q);
        shape(op, "dy", dy, ctx, x.dim(0), x.dim(1), p, q);
        shape(op, "dx", dx, ctx, x.shape().dims());
        Buf xb = buf(op, "x", x, dt);
        buf(op, "y", y, dt);
        Buf dyb = buf(op, "dy", dy, dt);
        Buf dxb = buf(op, "dx", dx, dt);
        disjoint(op, "x", x, "dx", dx);
        disjoint(op, "y", y, "dx", dx);
        disjoint(op, "dy", dy, "dx", dx);
        int n = size(dx);
        for (int i = 0; i < n; i++) {
            dxb.set(i, 0.0); // losers, and an ignored odd last row/column, get 0
        }
        // The winner is recomputed from x with the forward's rule, so it is the same element the forward chose.
        for (int plane = 0; plane < nc; plane++) {
            for (int i = 0; i < p; i++) {
                for (int j = 0; j < q; j++) {
                    dxb.set(argMax2x2(xb, plane, h, w, i, j), dyb.get((plane * p + i) * q + j));
                }
            }
        }
    }

    /**
     * Index in x of the FIRST element, in row-major order inside window (i, j) of one (H,W) plane, that equals the
     * window's max: a later element replaces the candidate only when strictly greater, so ties go to the first.
     */
    private static int argMax2x2(Buf x, int plane, int h, int w, int i, int j) {
        int best = (plane * h + 2 * i) * w + 2 * j;
        for (int di = 0; di < 2; di++) {
            for (int dj = 0; dj < 2; dj++) {
                int idx = (plane * h + 2 * i + di) * w + 2 * j + dj;
                if (x.get(idx) > x.get(best)) {
                    best = idx;
                }
            }
        }
        return best;
    }

    @Override
    public void reluForward(Tensor x, Tensor y) {
        String op = "reluForward";
        Buf xb = buf(op, "x", x, x.dtype());
        Buf yb = buf(op, "y", y, x.dtype());
        sameShape(op, "x", x, "y", y);
        sameOrDisjoint(op, "x", x, "y", y);
        int n = size(x);
        for (int i = 0; i < n; i++) {
            yb.set(i, Math.max(xb.get(i), 0.0)); // Math.max keeps NaN visible (as PyTorch) and maps -0 to +0
        }
    }

    @Override
    public void reluBackward(Tensor y, Tensor dy, Tensor dx) {
        String op = "reluBackward";
        Buf yb = buf(op, "y", y, y.dtype());
        Buf dyb = buf(op, "dy", dy, y.dtype());
        Buf dxb = buf(op, "dx", dx, y.dtype());
        sameShape(op, "y", y, "dy", dy);
        sameShape(op, "y", y, "dx", dx);
        sameOrDisjoint(op, "dy", dy, "dx", dx);
        disjoint(op, "y", y, "dx", dx);
        int n = size(y);
        for (int i = 0; i < n; i++) {
            dxb.set(i, yb.get(i) > 0 ? dyb.get(i) : 0.0);
        }
    }

    @Override
    public void lrnForward(Tensor x, Tensor y, Tensor scale, int size, double alpha, double beta, double k) {
        String op = "lrnForward";
        DType dt = x.dtype();
        rank(op, "x (N,C,H,W)", x, 4);
        lrnSize(op, size);
        sameShape(op, "x", x, "y", y);
        sameShape(op, "x", x, "scale", scale);
        Buf xb = buf(op, "x", x, dt);
        Buf yb = buf(op, "y", y, dt);
        Buf sb = buf(op, "scale", scale, dt);
        disjoint(op, "x", x, "y", y);
        disjoint(op, "x", x, "scale", scale);
        disjoint(op, "y", y, "scale", scale);
        int c = x.dim(1);
        int hw = x.dim(2) * x.dim(3);
        parallelFor(x.dim(0), (long) c * hw * size, n -> {
            for (int ch = 0; ch < c; ch++) {
                int lo = Math.max(0, ch - size / 2);
                int hi = Math.min(c - 1, ch + (size - 1) / 2);
                for (int i = 0; i < hw; i++) {
                    double sumSq = 0.0;
                    for (int cc = lo; cc <= hi; cc++) {
                        double v = xb.get((n * c + cc) * hw + i);
                        sumSq += v * v;
                    }
                    double s = k + alpha / size * sumSq;
                    int idx = (n * c + ch) * hw + i;
                    sb.set(idx, s);
                    yb.set(idx, xb.get(idx) * Math.pow(s, -beta));
                }
            }
        });
    }

    /**
     * With s' the scale and y' the output of channel c', y' = x' s'^-beta and ds'/dx_c = 2 alpha/size x_c when c
     * lies in c''s window, so dx_c = dy_c s_c^-beta - (2 alpha beta/size) x_c sum over those c' of dy' y'/s'.
     * c lies in the window [c'-size/2, c'+(size-1)/2] exactly when c' is in [c-(size-1)/2, c+size/2].
     */
    @Override
    public void lrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, double alpha, double beta,
                            double k) {
        String op = "lrnBackward";
        DType dt = x.dtype();
        rank(op, "x (N,C,H,W)", x, 4);
        lrnSize(op, size);
        sameShape(op, "x", x, "y", y);
        sameShape(op, "x", x, "scale", scale);
        sameShape(op, "x", x, "dy", dy);
        sameShape(op, "x", x, "dx", dx);
        Buf xb = buf(op, "x", x, dt);
        Buf yb = buf(op, "y", y, dt);
        Buf sb = buf(op, "scale", scale, dt);
        Buf dyb = buf(op, "dy", dy, dt);
        Buf dxb = buf(op, "dx", dx, dt);
        disjoint(op, "x", x, "dx", dx);
        disjoint(op, "y", y, "dx", dx);
        disjoint(op, "scale", scale, "dx", dx);
        disjoint(op, "dy", dy, "dx", dx);
        int c = x.dim(1);
        int hw = x.dim(2) * x.dim(3);
        double factor = 2.0 * alpha * beta / size;
        parallelFor(x.dim(0), (long) c * hw * size, n -> {
            for (int ch = 0; ch < c; ch++) {
                int lo = Math.max(0, ch - (size - 1) / 2);
                int hi = Math.min(c - 1, ch + size / 2);
                for (int i = 0; i < hw; i++) {
                    double acc = 0.0;
                    for (int cc = lo; cc <= hi; cc++) {
                        int j = (n * c + cc) * hw + i;
                        acc += dyb.get(j) * yb.get(j) / sb.get(j);
                    }
                    int idx = (n * c + ch) * hw + i;
                    dxb.set(idx, dyb.get(idx) * Math.pow(sb.get(idx), -beta) - factor * xb.get(idx) * acc);
                }
            }
        });
    }

    @Override
    public void dropoutForward(Tensor x, Tensor y, Tensor mask, double p, long seed) {
        String op = "dropoutForward";
        DType dt = x.dtype();
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException(op + ": probability " + p + " must be in [0, 1)");
        }
        sameShape(op, "x", x, "y", y);
        sameShape(op, "x", x, "mask", mask);
        Buf xb = buf(op, "x", x, dt);
        Buf yb = buf(op, "y", y, dt);
        Buf mb = buf(op, "mask", mask, dt);
        disjoint(op, "x", x, "y", y);
        disjoint(op, "x", x, "mask", mask);
        disjoint(op, "y", y, "mask", mask);
        double kept = 1.0 / (1.0 - p);
        int n = size(x);
        for (int i = 0; i < n; i++) {
            mb.set(i, DropoutRng.keep(seed, i, p) ? kept : 0.0);
            // multiply by the STORED mask value, so that backward's dy * mask is exactly this forward's derivative
            yb.set(i, xb.get(i) * mb.get(i));
        }
    }

    @Override
    public void multiply(Tensor a, Tensor b, Tensor y) {
        String op = "multiply";
        DType dt = a.dtype();
        sameShape(op, "a", a, "b", b);
        sameShape(op, "a", a, "y", y);
        Buf ab = buf(op, "a", a, dt);
        Buf bb = buf(op, "b", b, dt);
        Buf yb = buf(op, "y", y, dt);
        sameOrDisjoint(op, "a", a, "y", y);
        disjoint(op, "b", b, "y", y);
        int n = size(a);
        for (int i = 0; i < n; i++) {
            yb.set(i, ab.get(i) * bb.get(i));
        }
    }

    @Override
    public void batchNormForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                         Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum,
                                         double eps) {
        String op = "batchNormForwardTraining";
        DType dt = x.dtype();
        rank(op, "x (N,C,H,W)", x, 4);
        int n = x.dim(0);
        int c = x.dim(1);
        int hw = x.dim(2) * x.dim(3);
        int m = n * hw;
        if (m < 2) {
            throw new IllegalArgumentException(op + ": x " + x.shape()
                    + " has one value per channel; the unbiased variance needs at least 2");
        }
        String ctx = "x " + x.shape();
        sameShape(op, "x", x, "y", y);
        Buf xb = buf(op, "x", x, dt);
        Buf yb = buf(op, "y", y, dt);
        Buf gb = channelBuf(op, "gamma", gamma, c, ctx, dt);
        Buf bb = channelBuf(op, "beta", beta, c, ctx, dt);
        Buf rmb = channelBuf(op, "runningMean", runningMean, c, ctx, dt);
        Buf rvb = channelBuf(op, "runningVar", runningVar, c, ctx, dt);
        Buf smb = channelBuf(op, "saveMean", saveMean, c, ctx, dt);
        Buf sib = channelBuf(op, "saveInvStd", saveInvStd, c, ctx, dt);
        disjointAll(op, new String[] {"y", "runningMean", "runningVar", "saveMean", "saveInvStd"},
                new Tensor[] {y, runningMean, runningVar, saveMean, saveInvStd},
                new String[] {"x", "gamma", "beta"}, new Tensor[] {x, gamma, beta});
        parallelFor(c, 3L * m, ch -> {
            double sum = 0.0;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    sum += xb.get((b * c + ch) * hw + i);
                }
            }
            double mean = sum / m;
            double sq = 0.0; // second pass around the mean: no cancellation of large squares
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    double d = xb.get((b * c + ch) * hw + i) - mean;
                    sq += d * d;
                }
            }
            double var = sq / m;                 // biased: what normalises this batch
            double invStd = 1.0 / Math.sqrt(var + eps);
            double g = gb.get(ch);
            double bt = bb.get(ch);
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    int idx = (b * c + ch) * hw + i;
                    yb.set(idx, g * (xb.get(idx) - mean) * invStd + bt);
                }
            }
            double unbiased = sq / (m - 1);      // what the running estimate tracks (PyTorch)
            rmb.set(ch, (1 - momentum) * rmb.get(ch) + momentum * mean);
            rvb.set(ch, (1 - momentum) * rvb.get(ch) + momentum * unbiased);
            smb.set(ch, mean);
            sib.set(ch, invStd);
        });
    }

    @Override
    public void batchNormForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                          Tensor runningVar, double eps) {
        String op = "batchNormForwardInference";
        DType dt = x.dtype();
        rank(op, "x (N,C,H,W)", x, 4);
        int n = x.dim(0);
        int c = x.dim(1);
        int hw = x.dim(2) * x.dim(3);
        String ctx = "x " + x.shape();
        sameShape(op, "x", x, "y", y);
        Buf xb = buf(op, "x", x, dt);
        Buf yb = buf(op, "y", y, dt);
        Buf gb = channelBuf(op, "gamma", gamma, c, ctx, dt);
        Buf bb = channelBuf(op, "beta", beta, c, ctx, dt);
        Buf rmb = channelBuf(op, "runningMean", runningMean, c, ctx, dt);
        Buf rvb = channelBuf(op, "runningVar", runningVar, c, ctx, dt);
        disjointAll(op, new String[] {"y"}, new Tensor[] {y},
                new String[] {"x", "gamma", "beta", "runningMean", "runningVar"},
                new Tensor[] {x, gamma, beta, runningMean, runningVar});
        for (int ch = 0; ch < c; ch++) {
            double invStd = 1.0 / Math.sqrt(rvb.get(ch) + eps);
            double mean = rmb.get(ch);
            double g = gb.get(ch);
            double bt = bb.get(ch);
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    int idx = (b * c + ch) * hw + i;
                    yb.set(idx, g * (xb.get(idx) - mean) * invStd + bt);
                }
            }
        }
    }

    /**
     * With xhat = (x - mean) * invStd over the m = N*H*W values of a channel: dbeta += sum dy,
     * dgamma += sum dy * xhat, and, since mean and the biased variance depend on every x of the channel,
     * dx = gamma * invStd * (dy - sum(dy)/m - xhat * sum(dy * xhat)/m).
     */
    @Override
    public void batchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
                                  Tensor dgamma, Tensor dbeta) {
        String op = "batchNormBackward";
        DType dt = x.dtype();
        rank(op, "x (N,C,H,W)", x, 4);
        int n = x.dim(0);
        int c = x.dim(1);
        int hw = x.dim(2) * x.dim(3);
        int m = n * hw;
        String ctx = "x " + x.shape();
        sameShape(op, "x", x, "dy", dy);
        sameShape(op, "x", x, "dx", dx);
        Buf xb = buf(op, "x", x, dt);
        Buf dyb = buf(op, "dy", dy, dt);
        Buf dxb = buf(op, "dx", dx, dt);
        Buf gb = channelBuf(op, "gamma", gamma, c, ctx, dt);
        Buf smb = channelBuf(op, "saveMean", saveMean, c, ctx, dt);
        Buf sib = channelBuf(op, "saveInvStd", saveInvStd, c, ctx, dt);
        Buf dgb = channelBuf(op, "dgamma", dgamma, c, ctx, dt);
        Buf dbb = channelBuf(op, "dbeta", dbeta, c, ctx, dt);
        disjointAll(op, new String[] {"dx", "dgamma", "dbeta"}, new Tensor[] {dx, dgamma, dbeta},
                new String[] {"x", "dy", "gamma", "saveMean", "saveInvStd"},
                new Tensor[] {x, dy, gamma, saveMean, saveInvStd});
        disjoint(op, "dx", dx, "dgamma", dgamma);
        disjoint(op, "dx", dx, "dbeta", dbeta);
        disjoint(op, "dgamma", dgamma, "dbeta", dbeta);
        parallelFor(c, 3L * m, ch -> {
            double mean = smb.get(ch);
            double invStd = sib.get(ch);
            double sumDy = 0.0;
            double sumDyXhat = 0.0;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    int idx = (b * c + ch) * hw + i;
                    double d = dyb.get(idx);
                    sumDy += d;
                    sumDyXhat += d * (xb.get(idx) - mean) * invStd;
                }
            }
            double g = gb.get(ch);
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    int idx = (b * c + ch) * hw + i;
                    double xhat = (xb.get(idx) - mean) * invStd;
                    dxb.set(idx, g * invStd * (dyb.get(idx) - sumDy / m - xhat * sumDyXhat / m));
                }
            }
            dgb.add(ch, sumDyXhat);
            dbb.add(ch, sumDy);
        });
    }

    // ================================================================ dense algebra

    @Override
    public void gemm(boolean transA, boolean transB, double alpha, Tensor a, Tensor b, double beta, Tensor c) {
        String op = "gemm";
        DType dt = a.dtype();
        OpChecks.GemmDims dims = gemmDims(op, transA, transB, a, b, c);
        int m = dims.m();
        int kd = dims.kd();
        int nd = dims.nd();
        Buf ab = buf(op, "a", a, dt);
        Buf bb = buf(op, "b", b, dt);
        Buf cb = buf(op, "c", c, dt);
        disjoint(op, "a", a, "c", c);
        disjoint(op, "b", b, "c", c);
        int aCols = a.dim(1);
        int bCols = b.dim(1);
        // c (M,Nd): one task per row i of c
        parallelFor(m, (long) nd * kd, i -> {
            for (int j = 0; j < nd; j++) {
                double acc = 0.0;
                for (int l = 0; l < kd; l++) {
                    double av = transA ? ab.get(l * aCols + i) : ab.get(i * aCols + l);
                    double bv = transB ? bb.get(j * bCols + l) : bb.get(l * bCols + j);
                    acc += av * bv;
                }
                int idx = i * nd + j;
                // beta == 0 must not read c: 0 * NaN would be NaN, and fresh buffers may hold anything
                cb.set(idx, beta == 0.0 ? alpha * acc : alpha * acc + beta * cb.get(idx));
            }
        });
    }

    @Override
    public void addBias(Tensor y, Tensor bias) {
        String op = "addBias";
        DType dt = y.dtype();
        int k = biasChannels(op, "y", y);
        shape(op, "bias", bias, "y " + y.shape(), k);
        Buf yb = buf(op, "y", y, dt);
        Buf bb = buf(op, "bias", bias, dt);
        disjoint(op, "bias", bias, "y", y);
        int n = y.dim(0);
        int inner = size(y) / (n * k);
        for (int b = 0; b < n; b++) {
            for (int ch = 0; ch < k; ch++) {
                double v = bb.get(ch);
                int base = (b * k + ch) * inner;
                for (int i = 0; i < inner; i++) {
                    yb.add(base + i, v);
                }
            }
        }
    }

    @Override
    public void biasBackward(Tensor dy, Tensor db) {
        String op = "biasBackward";
        DType dt = dy.dtype();
        int k = biasChannels(op, "dy", dy);
        shape(op, "db", db, "dy " + dy.shape(), k);
        Buf dyb = buf(op, "dy", dy, dt);
        Buf dbb = buf(op, "db", db, dt);
        disjoint(op, "dy", dy, "db", db);
        int n = dy.dim(0);
        int inner = size(dy) / (n * k);
        for (int ch = 0; ch < k; ch++) {
            double acc = 0.0;
            for (int b = 0; b < n; b++) {
                int base = (b * k + ch) * inner;
                for (int i = 0; i < inner; i++) {
                    acc += dyb.get(base + i);
                }
            }
            dbb.add(ch, acc);
        }
    }

    @Override
    public void axpy(double alpha, Tensor x, Tensor y) {
        String op = "axpy";
        Buf xb = buf(op, "x", x, x.dtype());
        Buf yb = buf(op, "y", y, x.dtype());
        sameSize(op, "x", x, "y", y);
        disjoint(op, "x", x, "y", y);
        int n = size(x);
        for (int i = 0; i < n; i++) {
            yb.set(i, alpha * xb.get(i) + yb.get(i));
        }
    }

    @Override
    public void scale(Tensor x, double alpha) {
        Buf xb = buf("scale", "x", x, x.dtype());
        int n = size(x);
        for (int i = 0; i < n; i++) {
            xb.set(i, alpha * xb.get(i));
        }
    }

    // ================================================================ loss and optimiser

    @Override
    public void softmax(Tensor logits, Tensor probs) {
        String op = "softmax";
        DType dt = logits.dtype();
        rank(op, "logits (N,F)", logits, 2);
        sameShape(op, "logits", logits, "probs", probs);
        Buf lb = buf(op, "logits", logits, dt);
        Buf pb = buf(op, "probs", probs, dt);
        disjoint(op, "logits", logits, "probs", probs);
        int f = logits.dim(1);
        for (int n = 0; n < logits.dim(0); n++) {
            double[] e = softmaxRow(lb, n, f);
            for (int j = 0; j < f; j++) {
                pb.set(n * f + j, e[j]);
            }
        }
    }

    @Override
    public double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor dlogits) {
        String op = "softmaxCrossEntropy";
        DType dt = logits.dtype();
        rank(op, "logits (N,F)", logits, 2);
        sameShape(op, "logits", logits, "dlogits", dlogits);
        int batch = logits.dim(0);
        int f = logits.dim(1);
        if (labels.length != batch) {
            throw new IllegalArgumentException(op + ": " + labels.length + " labels for logits " + logits.shape()
                    + "; expected " + batch);
        }
        Buf lb = buf(op, "logits", logits, dt);
        Buf db = buf(op, "dlogits", dlogits, dt);
        disjoint(op, "logits", logits, "dlogits", dlogits);
        double loss = 0.0;
        for (int n = 0; n < batch; n++) {
            int label = labels[n];
            if (label < 0 || label >= f) {
                throw new IllegalArgumentException(op + ": label " + label + " at batch position " + n
                        + " is outside [0, " + f + ")");
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < f; j++) {
                max = Math.max(max, lb.get(n * f + j));
            }
            double sum = 0.0;
            for (int j = 0; j < f; j++) {
                sum += Math.exp(lb.get(n * f + j) - max);
            }
            // -log softmax[label] = log sum exp(l - max) + max - l[label], without ever forming exp(l) itself
            loss += Math.log(sum) + max - lb.get(n * f + label);
            for (int j = 0; j < f; j++) {
                double prob = Math.exp(lb.get(n * f + j) - max) / sum;
                db.set(n * f + j, (prob - (j == label ? 1.0 : 0.0)) / batch);
            }
        }
        return loss / batch;
    }

    /** softmax of row n of an (N,F) buffer, max subtracted so no exp overflows. */
    private static double[] softmaxRow(Buf logits, int n, int f) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < f; j++) {
            max = Math.max(max, logits.get(n * f + j));
        }
        double[] e = new double[f];
        double sum = 0.0;
        for (int j = 0; j < f; j++) {
            e[j] = Math.exp(logits.get(n * f + j) - max);
            sum += e[j];
        }
        for (int j = 0; j < f; j++) {
            e[j] /= sum;
        }
        return e;
    }

    /**
     * The SPI's formula element by element. With FLOAT32 storage the new velocity is rounded when stored and the
     * parameter is updated with that stored value, so param and velocity stay consistent with each other.
     */
    @Override
    public void sgdStep(Tensor param, Tensor grad, Tensor velocity, double lr, double momentum, double weightDecay,
                        long decayedCount) {
        String op = "sgdStep";
        DType dt = param.dtype();
        sameShape(op, "param", param, "grad", grad);
        sameShape(op, "param", param, "velocity", velocity);
        Buf pb = buf(op, "param", param, dt);
        Buf gb = buf(op, "grad", grad, dt);
        Buf vb = buf(op, "velocity", velocity, dt);
        disjoint(op, "param", param, "grad", grad);
        disjoint(op, "param", param, "velocity", velocity);
        disjoint(op, "grad", grad, "velocity", velocity);
        int n = size(param);
        if (decayedCount < 0 || decayedCount > n) {
            throw new IllegalArgumentException(op + ": decayedCount " + decayedCount + " must be in [0, " + n
                    + "] for param " + param.shape());
        }
        for (int i = 0; i < n; i++) {
            double d = gb.get(i) + (i < decayedCount ? weightDecay * pb.get(i) : 0.0);
            vb.set(i, momentum * vb.get(i) + lr * d);
            pb.set(i, pb.get(i) - vb.get(i));
            gb.set(i, 0.0);
        }
    }

    @Override
    public double sumOfSquares(Tensor x) {
        Buf xb = buf("sumOfSquares", "x", x, x.dtype());
        int n = size(x);
        double acc = 0.0;
        for (int i = 0; i < n; i++) {
            double v = xb.get(i);
            acc += v * v;
        }
        return acc;
    }

    // ================================================================ validation and loops

    /** Runs body(0..count-1), in parallel only when the total work is large; tasks must write disjoint outputs. */
    private static void parallelFor(int count, long workPerItem, IntConsumer body) {
        IntStream range = IntStream.range(0, count);
        if (count > 1 && count * workPerItem >= PARALLEL_WORK) {
            range = range.parallel();
        }
        range.forEach(body);
    }

    /** Checks that t is a reference tensor of dtype {@code dtype} whose window lies inside its storage. */
    private static Buf buf(String op, String role, Tensor t, DType dtype) {
        if (t == null) {
            throw new IllegalArgumentException(op + ": " + role + " is null");
        }
        if (t.dtype() != dtype) {
            throw new IllegalArgumentException(op + ": " + role + " is " + t.dtype() + " " + t.shape()
                    + " but the call computes in " + dtype + " (all tensors of one call share one dtype)");
        }
        Object s = t.storage();
        long length;
        if (dtype == DType.FLOAT32 && s instanceof float[] a) {
            length = a.length;
        } else if (dtype == DType.FLOAT64 && s instanceof double[] a) {
            length = a.length;
        } else {
            throw new IllegalArgumentException(op + ": " + role + " " + t + " is not a reference-backend " + dtype
                    + " tensor (storage " + (s == null ? "null" : s.getClass().getSimpleName()) + ")");
        }
        if (t.offset() < 0 || t.offset() + t.size() > length) {
            throw new IllegalArgumentException(op + ": " + role + " " + t.shape() + " at offset " + t.offset()
                    + " runs past its storage of " + length + " elements");
        }
        int offset = Math.toIntExact(t.offset());
        return t.storage() instanceof float[] a ? new Buf.F32(a, offset) : new Buf.F64((double[]) t.storage(), offset);
    }

    private static Buf channelBuf(String op, String role, Tensor t, int c, String ctx, DType dtype) {
        shape(op, role, t, ctx, c);
        return buf(op, role, t, dtype);
    }

    private static int size(Tensor t) {
        return Math.toIntExact(t.size());
    }

    private static boolean overlap(Tensor a, Tensor b) {
        return a.storage() == b.storage() && a.offset() < b.offset() + b.size() && b.offset() < a.offset() + a.size();
    }

    /** The SPI's default: an output may not share any element with another tensor of the call. */
    private static void disjoint(String op, String aRole, Tensor a, String bRole, Tensor b) {
        if (overlap(a, b)) {
            throw new IllegalArgumentException(op + ": " + aRole + " " + a.shape() + " at offset " + a.offset() + " and "
                    + bRole + " " + b.shape() + " at offset " + b.offset() + " overlap in memory");
        }
    }

    private static void disjointAll(String op, String[] outRoles, Tensor[] outs, String[] inRoles, Tensor[] ins) {
        for (int i = 0; i < outs.length; i++) {
            for (int j = 0; j < ins.length; j++) {
                disjoint(op, outRoles[i], outs[i], inRoles[j], ins[j]);
            }
            for (int j = i + 1; j < outs.length; j++) {
                disjoint(op, outRoles[i], outs[i], outRoles[j], outs[j]);
            }
        }
    }

    /** Where the SPI allows in-place: exactly the same memory is fine, a partial overlap is not. */
    private static void sameOrDisjoint(String op, String aRole, Tensor a, String bRole, Tensor b) {
        if (!a.sameMemory(b)) {
            disjoint(op, aRole, a, bRole, b);
        }
    }

}
