package org.vgg4j.core.backend.cpu;

import java.nio.IntBuffer;

import org.vgg4j.core.backend.Buf;
import org.vgg4j.core.backend.DropoutRng;
import org.vgg4j.core.tensor.Tensor;

/**
 * The memory-bound ops of the {@code cpu} backend (pooling, activations, dropout, bias, axpy, softmax and its loss,
 * SGD), each written once against {@link Buf} (float32 and float64, computed in double and rounded once per stored
 * element) after a float32 fast path where {@link F32Loops} has one. Semantics are the {@link
 * org.vgg4j.core.backend.Backend} SPI's. What it is not: a check of its arguments ({@link CpuBackend} checks that
 * the tensors are its own before it calls in). The work is split by {@link Parallel} so that every element is
 * computed by one thread in a fixed order; indices are the Buf's (origin 0), to which each tensor's offset is added.
 */
final class BufLoops {
    private BufLoops() {
    }

    /** dst[d0 + i] += src[s0 + i] for i in [0, count). */
    static void accumulate(Buf src, int s0, Buf dst, int d0, int count) {
        Parallel.forRange(count, 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                dst.set(d0 + i, dst.get(d0 + i) + src.get(s0 + i));
            }
        });
    }

    /** db[bo + k] += sum of dy (nb, k, inner) at go over n and inner, channel by channel. */
    static void biasBackward(Buf gb, int go, int nb, int k, int inner, Buf bb, int bo) {
        biasBackward(gb, go, nb, k, inner, bb, bo, false);
    }

    /** As above; bf16Operands: each dy value rounded to bf16 first, as a BF16 convolution's bias gradient sums it. */
    static void biasBackward(Buf gb, int go, int nb, int k, int inner, Buf bb, int bo, boolean bf16Operands) {
        Parallel.forRange(k, Math.max(1, 8192 / (inner * nb)), (from, to) -> {
            for (int ch = from; ch < to; ch++) {
                double s = 0;
                for (int i = 0; i < nb; i++) {
                    int base = go + (i * k + ch) * inner;
                    for (int j = 0; j < inner; j++) {
                        s += bf16Operands ? F32Loops.roundToBf16((float) gb.get(base + j)) : gb.get(base + j);
                    }
                }
                bb.set(bo + ch, bb.get(bo + ch) + s);
            }
        });
    }

    static void maxPool2x2Forward(Tensor x, Tensor y) {
        maxPool2x2Forward(x, y, Parallel.THREADS);
    }

    /** {@link #maxPool2x2Forward(Tensor, Tensor)} over at most {@code threads} threads (tests vary it). */
    static void maxPool2x2Forward(Tensor x, Tensor y, int threads) {
        Buf xb = buf(x);
        Buf yb = buf(y);
        int h = x.dim(2);
        int w = x.dim(3);
        int p = y.dim(2);
        int q = y.dim(3);
        int xo = off(x);
        int yo = off(y);
        if (xb instanceof Buf.F32 && yb instanceof Buf.F32) {
            F32MaxPool.forward(bits(x), xo, bits(y), yo, x.dim(0) * x.dim(1), h, w, threads);
            return;
        }
        Parallel.forRange(x.dim(0) * x.dim(1), 4, threads, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int xp = xo + plane * h * w;
                int yp = yo + plane * p * q;
                for (int i = 0; i < p; i++) {
                    for (int j = 0; j < q; j++) {
                        yb.set(yp + i * q + j, xb.get(firstMax(xb, xp + 2 * i * w + 2 * j, w)));
                    }
                }
            }
        });
    }

    /** dx: zeros, and each window's dy at the element {@link #firstMax} picks (found again from x; y is not read). */
    static void maxPool2x2Backward(Tensor x, Tensor y, Tensor dy, Tensor dx) {
        maxPool2x2Backward(x, y, dy, dx, Parallel.THREADS);
    }

    /** {@link #maxPool2x2Backward(Tensor, Tensor, Tensor, Tensor)} over at most {@code threads} threads. */
    static void maxPool2x2Backward(Tensor x, Tensor y, Tensor dy, Tensor dx, int threads) {
        maxPool2x2Backward(x, y, dy, dx, threads, false);
    }

    /**
     * As {@link #maxPool2x2Backward(Tensor, Tensor, Tensor, Tensor, int)}; with {@code relu}, also the backward of the
     * ReLU whose output x is: a window's dy goes to its maximum only where that maximum is &gt; 0 (a NaN is not).
     */
    static void maxPool2x2Backward(Tensor x, Tensor y, Tensor dy, Tensor dx, int threads, boolean relu) {
        Buf xb = buf(x);
        Buf gb = buf(dy);
        Buf db = buf(dx);
        int h = x.dim(2);
        int w = x.dim(3);
        int p = y.dim(2);
        int q = y.dim(3);
        int xo = off(x);
        int go = off(dy);
        int dOff = off(dx);
        if (xb instanceof Buf.F32 && gb instanceof Buf.F32 && db instanceof Buf.F32) {
            F32MaxPool.backward(bits(x), xo, bits(dy), go, bits(dx), dOff, x.dim(0) * x.dim(1), h, w, threads, relu);
            return;
        }
        Parallel.forRange(x.dim(0) * x.dim(1), 4, threads, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int xp = xo + plane * h * w;
                int dp = dOff + plane * h * w;
                for (int i = 0; i < h * w; i++) {
                    db.set(dp + i, 0.0);
                }
                int gp = go + plane * p * q;
                for (int i = 0; i < p; i++) {
                    for (int j = 0; j < q; j++) {
                        int at = firstMax(xb, xp + 2 * i * w + 2 * j, w) - xp;
                        boolean passes = !relu || xb.get(xp + at) > 0;
                        db.set(dp + at, passes ? gb.get(gp + i * q + j) : 0.0);
                    }
                }
            }
        });
    }

    /**
     * Index of the maximum of the 2x2 window whose first element is {@code a} (rows {@code w} apart): the FIRST in
     * row-major order, replaced only by a strictly greater later one, the reference's rule (ties, -0 and +0
     * included, go to the first; a NaN wins only in first place). {@link F32MaxPool#firstMax} is its float32 twin.
     */
    private static int firstMax(Buf b, int a, int w) {
        int best = a;
        if (b.get(a + 1) > b.get(best)) {
            best = a + 1;
        }
        if (b.get(a + w) > b.get(best)) {
            best = a + w;
        }
        if (b.get(a + w + 1) > b.get(best)) {
            best = a + w + 1;
        }
        return best;
    }

    static void reluForward(Tensor x, Tensor y) {
        Buf xb = buf(x);
        Buf yb = buf(y);
        int xo = off(x);
        int yo = off(y);
        if (xb instanceof Buf.F32 fx && yb instanceof Buf.F32 fy) {
            F32Loops.relu(fx.b(), xo, fy.b(), yo, n(x));
            return;
        }
        Parallel.forRange(n(x), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                yb.set(yo + i, Math.max(xb.get(xo + i), 0.0)); // NaN stays visible, -0 becomes +0 (reference)
            }
        });
    }

    static void reluBackward(Tensor y, Tensor dy, Tensor dx) {
        reluBackward(y, dy, dx, Parallel.THREADS);
    }

    /** {@link #reluBackward(Tensor, Tensor, Tensor)} over at most {@code threads} threads (tests vary it). */
    static void reluBackward(Tensor y, Tensor dy, Tensor dx, int threads) {
        Buf yb = buf(y);
        Buf gb = buf(dy);
        Buf db = buf(dx);
        int yo = off(y);
        int go = off(dy);
        int dOff = off(dx);
        if (yb instanceof Buf.F32 && gb instanceof Buf.F32 && db instanceof Buf.F32) {
            F32Loops.reluBackward(bits(y), yo, bits(dy), go, bits(dx), dOff, n(y), threads);
            return;
        }
        Parallel.forRange(n(y), 1 << 15, threads, (from, to) -> {
            for (int i = from; i < to; i++) {
                db.set(dOff + i, yb.get(yo + i) > 0 ? gb.get(go + i) : 0.0);
            }
        });
    }

    static void dropoutForward(Tensor x, Tensor y, Tensor mask, double p, long seed) {
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf mb = buf(mask);
        int xo = off(x);
        int yo = off(y);
        int mo = off(mask);
        double keepScale = 1.0 / (1.0 - p);
        Parallel.forRange(n(x), 1 << 14, (from, to) -> {
            for (int i = from; i < to; i++) {
                mb.set(mo + i, DropoutRng.keep(seed, i, p) ? keepScale : 0.0);
                yb.set(yo + i, xb.get(xo + i) * mb.get(mo + i));
            }
        });
    }

    static void multiply(Tensor a, Tensor b, Tensor y) {
        Buf ab = buf(a);
        Buf bb = buf(b);
        Buf yb = buf(y);
        int ao = off(a);
        int bo = off(b);
        int yo = off(y);
        Parallel.forRange(n(a), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                yb.set(yo + i, ab.get(ao + i) * bb.get(bo + i));
            }
        });
    }

    static void addBias(Tensor y, Tensor bias) {
        Buf yb = buf(y);
        Buf bb = buf(bias);
        int yo = off(y);
        int bo = off(bias);
        int k = y.dim(1);
        int inner = n(y) / (y.dim(0) * k);
        Parallel.forRange(y.dim(0) * k, Math.max(1, 8192 / inner), (from, to) -> {
            for (int row = from; row < to; row++) {
                double v = bb.get(bo + row % k);
                int base = yo + row * inner;
                for (int j = 0; j < inner; j++) {
                    yb.set(base + j, yb.get(base + j) + v);
                }
            }
        });
    }

    static void axpy(double alpha, Tensor x, Tensor y) {
        Buf xb = buf(x);
        Buf yb = buf(y);
        int xo = off(x);
        int yo = off(y);
        Parallel.forRange(n(x), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                yb.set(yo + i, alpha * xb.get(xo + i) + yb.get(yo + i));
            }
        });
    }

    static void scale(Tensor x, double alpha) {
        Buf xb = buf(x);
        int xo = off(x);
        Parallel.forRange(n(x), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                xb.set(xo + i, alpha * xb.get(xo + i));
            }
        });
    }

    static void softmax(Tensor logits, Tensor probs) {
        Buf lb = buf(logits);
        Buf pb = buf(probs);
        int lo = off(logits);
        int po = off(probs);
        int rows = logits.dim(0);
        int f = logits.dim(1);
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < f; j++) {
                max = Math.max(max, lb.get(lo + r * f + j));
            }
            double sum = 0;
            for (int j = 0; j < f; j++) {
                sum += Math.exp(lb.get(lo + r * f + j) - max);
            }
            for (int j = 0; j < f; j++) {
                pb.set(po + r * f + j, Math.exp(lb.get(lo + r * f + j) - max) / sum);
            }
        }
    }

    static double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor dlogits) {
        Buf lb = buf(logits);
        Buf gb = buf(dlogits);
        int lo = off(logits);
        int go = off(dlogits);
        int rows = logits.dim(0);
        int f = logits.dim(1);
        double loss = 0;
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < f; j++) {
                max = Math.max(max, lb.get(lo + r * f + j));
            }
            double sum = 0;
            for (int j = 0; j < f; j++) {
                sum += Math.exp(lb.get(lo + r * f + j) - max);
            }
            double logSum = Math.log(sum);
            loss += logSum - (lb.get(lo + r * f + labels[r]) - max);
            for (int j = 0; j < f; j++) {
                double prob = Math.exp(lb.get(lo + r * f + j) - max) / sum;
                gb.set(go + r * f + j, (prob - (j == labels[r] ? 1.0 : 0.0)) / rows);
            }
        }
        return loss / rows;
    }

    static void sgdStep(Tensor param, Tensor grad, Tensor velocity, double lr, double momentum, double weightDecay,
                        long decayedCount) {
        Buf pb = buf(param);
        Buf gb = buf(grad);
        Buf vb = buf(velocity);
        int po = off(param);
        int go = off(grad);
        int vo = off(velocity);
        int decayed = (int) Math.min(decayedCount, param.size());
        if (pb instanceof Buf.F32 fp && gb instanceof Buf.F32 fg && vb instanceof Buf.F32 fv) {
            F32Loops.sgd(fp.b(), po, fg.b(), go, fv.b(), vo, n(param), (float) lr, (float) momentum, (float) weightDecay,
                    decayed);
            return;
        }
        Parallel.forRange(n(param), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                double d = gb.get(go + i) + (i < decayed ? weightDecay * pb.get(po + i) : 0.0);
                double v = momentum * vb.get(vo + i) + lr * d;
                vb.set(vo + i, v);
                pb.set(po + i, pb.get(po + i) - vb.get(vo + i));
                gb.set(go + i, 0.0);
            }
        });
    }

    static double sumOfSquares(Tensor x) {
        Buf xb = buf(x);
        int xo = off(x);
        return Parallel.sum(n(x), (from, to) -> {
            double s = 0;
            for (int i = from; i < to; i++) {
                double v = xb.get(xo + i);
                s += v * v;
            }
            return s;
        });
    }

    /** The Buf of a tensor the backend has checked to be its own. */
    private static Buf buf(Tensor t) {
        return CpuStorage.of(t).buf;
    }

    /** The float32 bits view ({@link CpuStorage#bits}) of a float32 tensor the backend has checked to be its own. */
    private static IntBuffer bits(Tensor t) {
        return CpuStorage.of(t).bits;
    }

    private static int off(Tensor t) {
        return Math.toIntExact(t.offset());
    }

    private static int n(Tensor t) {
        return Math.toIntExact(t.size());
    }
}
