package org.vgg4j.core.backend.cpu;

import static org.vgg4j.core.backend.cpu.F32Loops.BLOCK;

import java.nio.FloatBuffer;

/**
 * Float32 fast paths of batch normalisation for {@link NormLoops}: the per-channel sums of the training forward and
 * of the backward, and the element-wise normalisation and input gradient. x, y, dy, dx are (N, C, H, W) at the
 * given offsets of direct buffers; channel c's values are the N planes (n, c) of H*W contiguous floats. Per-channel
 * vectors (C) are double[]; {@link NormLoops} reads and writes the tensors behind them.
 *
 * <p>Pieces and blocks: a piece is a whole (n, c) plane, or, for planes larger than {@link F32Loops#BLOCK}, a
 * BLOCK-sized segment of one (the last shorter); slot {@code s} is segment {@code s % segs} of plane
 * {@code s / segs}. A block (one segment, or as many whole planes as fit in BLOCK) is bulk-copied into per-thread
 * float[] arrays and worked on there: the passes over it stay in the L1 cache, and the element-wise loops vectorise
 * (per-element buffer access does not). Blocks, not channels, are split across threads ({@link Parallel}), so a
 * layer of few channels (16 in the narrow networks' first block) still keeps every thread busy. Each piece's sums
 * are computed by one thread and combined per channel in slot order, serially: results are the same bits whatever
 * the thread count.
 *
 * <p>Numerics: every sum is accumulated in double. A piece's mean and its sum of squared deviations around that
 * mean are two passes over its array; pieces combine exactly as the pairwise update of Chan, Golub and LeVeque,
 * sq = sum over pieces of (sq_p + n_p (mean_p - mean)^2), so there is no E[x^2] - E[x]^2 cancellation. The
 * element-wise loops run in float with each mean split into two floats, hi + lo: x - hi is exact or one rounding
 * of the difference itself, and lo restores what rounding the mean to float lost, so a channel of large mean and
 * small spread (1000 + N(0, 0.01)) keeps float precision relative to its spread, not to ulp(1000). The terms of the
 * sums around a mean, (x - mean)^2 and dy * (x - mean), are formed that way in float, a few roundings each of its
 * own size, and then added in double.
 *
 * <p>Why Java loops and not oneDNN's batch_normalization primitive: the SPI asks for double sums combined in an
 * order that does not depend on the thread count, for the running statistics with the unbiased variance, the saved
 * 1/sqrt(var + eps) and dgamma/dbeta accumulated (+=); a primitive reduces on oneDNN's threads in an order this
 * backend does not fix, and the rest would still be passes of our own around it.
 */
final class F32BatchNorm {
    private F32BatchNorm() {
    }

    /**
     * Work on one block: its pieces, from slot {@code slot0} on, lie one after another in [0, len) of the block's
     * arrays (every piece a plane of H*W, the last maybe shorter, or one segment); xs holds x, gs dy (when the call
     * reads it), and out is to be filled when the call writes a tensor (else it is free for temporaries).
     */
    private interface Block {
        void run(int slot0, float[] xs, float[] gs, float[] out, int len);
    }

    /**
     * Per channel: {@code mean[c]} and {@code sq[c]}, the sum of squared deviations from that mean over the N*H*W
     * values of x (N, C, H*W) at xo.
     */
    static void moments(FloatBuffer x, int xo, int nb, int c, int hw, double[] mean, double[] sq, int threads) {
        int segs = segments(hw);
        double[] pSum = new double[nb * c * segs];
        double[] pSq = new double[pSum.length];
        forEachBlock(nb, c, hw, threads, x, xo, null, 0, null, 0, (slot0, xs, gs, t, len) -> {
            for (int off = 0, slot = slot0; off < len; off += hw, slot++) {
                int end = off + Math.min(hw, len - off);
                double sum = sum(xs, off, end);
                double mu = sum / (end - off);
                float hi = (float) mu;
                float lo = (float) (mu - hi);
                for (int j = off; j < end; j++) {
                    float d = (xs[j] - hi) - lo;
                    t[j] = d * d;
                }
                pSum[slot] = sum;
                pSq[slot] = sum(t, off, end);
            }
        });
        long m = (long) nb * hw;
        for (int ch = 0; ch < c; ch++) {
            double mu = perChannel(pSum, nb, c, segs, ch) / m;
            double q = 0;
            for (int i = 0; i < nb; i++) {
                for (int k = 0; k < segs; k++) {
                    int slot = (i * c + ch) * segs + k;
                    int len = Math.min(BLOCK, hw - k * BLOCK);
                    double d = pSum[slot] / len - mu;
                    q += pSq[slot] + len * d * d;
                }
            }
            mean[ch] = mu;
            sq[ch] = q;
        }
    }

    /**
     * y = gamma * (x - mean) * invStd + beta per channel, and with {@code relu} y = max(that, 0) in the same loop
     * (the ReLU after a BatchNorm2d: one write of y instead of a second pass, the bits of {@link F32Loops#relu}
     * applied after it, NaN kept and -0 made +0); x, y (N, C, H*W) at xo, yo.
     */
    static void normalise(FloatBuffer x, int xo, FloatBuffer y, int yo, int nb, int c, int hw, double[] mean,
                          double[] invStd, double[] gamma, double[] beta, boolean relu, int threads) {
        int segs = segments(hw);
        float[] hi = high(mean);
        float[] lo = low(mean, hi);
        float[] scale = new float[c];
        float[] shift = new float[c];
        for (int ch = 0; ch < c; ch++) {
            scale[ch] = (float) (gamma[ch] * invStd[ch]);
            shift[ch] = (float) beta[ch];
        }
        forEachBlock(nb, c, hw, threads, x, xo, null, 0, y, yo, (slot0, xs, gs, out, len) -> {
            for (int off = 0, slot = slot0; off < len; off += hw, slot++) {
                int end = off + Math.min(hw, len - off);
                int ch = (slot / segs) % c;
                float h = hi[ch];
                float l = lo[ch];
                float a = scale[ch];
                float b = shift[ch];
                if (relu) {
                    for (int j = off; j < end; j++) {
                        out[j] = Math.max(((xs[j] - h) - l) * a + b, 0f);
                    }
                } else {
                    for (int j = off; j < end; j++) {
                        out[j] = ((xs[j] - h) - l) * a + b;
                    }
                }
            }
        });
    }

    /**
     * Per channel: {@code sumDy[c]} = sum of dy and {@code sumDyXhat[c]} = sum of dy * (x - mean) * invStd over the
     * N*H*W values; x, dy (N, C, H*W) at xo, go.
     */
    static void gradientSums(FloatBuffer x, int xo, FloatBuffer dy, int go, int nb, int c, int hw, double[] mean,
                             double[] invStd, double[] sumDy, double[] sumDyXhat, int threads) {
        int segs = segments(hw);
        float[] hi = high(mean);
        float[] lo = low(mean, hi);
        double[] pDy = new double[nb * c * segs];
        double[] pDyXc = new double[pDy.length]; // sum of dy * (x - mean): invStd is applied per channel
        forEachBlock(nb, c, hw, threads, x, xo, dy, go, null, 0, (slot0, xs, gs, t, len) -> {
            for (int off = 0, slot = slot0; off < len; off += hw, slot++) {
                int end = off + Math.min(hw, len - off);
                int ch = (slot / segs) % c;
                float h = hi[ch];
                float l = lo[ch];
                for (int j = off; j < end; j++) {
                    t[j] = gs[j] * ((xs[j] - h) - l);
                }
                pDy[slot] = sum(gs, off, end);
                pDyXc[slot] = sum(t, off, end);
            }
        });
        for (int ch = 0; ch < c; ch++) {
            sumDy[ch] = perChannel(pDy, nb, c, segs, ch);
            sumDyXhat[ch] = perChannel(pDyXc, nb, c, segs, ch) * invStd[ch];
        }
    }

    /**
     * dx = gamma * invStd * (dy - sumDy / m - xhat * sumDyXhat / m) with xhat = (x - mean) * invStd, m = N*H*W;
     * x, dy, dx (N, C, H*W) at xo, go, dOff.
     */
    static void inputGradient(FloatBuffer x, int xo, FloatBuffer dy, int go, FloatBuffer dx, int dOff, int nb, int c,
                              int hw, double[] mean, double[] invStd, double[] gamma, double[] sumDy,
                              double[] sumDyXhat, int threads) {
        int segs = segments(hw);
        long m = (long) nb * hw;
        float[] xHi = high(mean);
        float[] xLo = low(mean, xHi);
        double[] meanDy = new double[c];
        float[] scale = new float[c];
        float[] slope = new float[c]; // xhat * sumDyXhat / m = (x - mean) * slope
        for (int ch = 0; ch < c; ch++) {
            meanDy[ch] = sumDy[ch] / m;
            scale[ch] = (float) (gamma[ch] * invStd[ch]);
            slope[ch] = (float) (invStd[ch] * sumDyXhat[ch] / m);
        }
        float[] dHi = high(meanDy);
        float[] dLo = low(meanDy, dHi);
        forEachBlock(nb, c, hw, threads, x, xo, dy, go, dx, dOff, (slot0, xs, gs, out, len) -> {
            for (int off = 0, slot = slot0; off < len; off += hw, slot++) {
                int end = off + Math.min(hw, len - off);
                int ch = (slot / segs) % c;
                float xh = xHi[ch];
                float xl = xLo[ch];
                float dh = dHi[ch];
                float dl = dLo[ch];
                float a = scale[ch];
                float b = slope[ch];
                for (int j = off; j < end; j++) {
                    out[j] = a * (((gs[j] - dh) - dl) - ((xs[j] - xh) - xl) * b);
                }
            }
        });
    }

    /**
     * Runs body on every block, the blocks split over at most {@code threads} threads. A block is one segment of a
     * plane larger than {@link F32Loops#BLOCK}, else as many whole planes as fit in BLOCK (planes (n, c) are
     * contiguous in NCHW, so the small planes of the last layers still move in large copies). x and, when given,
     * dy are loaded into the block's arrays before body runs; out, when given, is written after.
     */
    private static void forEachBlock(int nb, int c, int hw, int threads, FloatBuffer x, int xo, FloatBuffer dy,
                                     int go, FloatBuffer out, int oo, Block body) {
        int segs = segments(hw);
        int planes = nb * c;
        int perBlock = segs > 1 ? 1 : BLOCK / hw; // whole planes per block
        int blocks = segs > 1 ? planes * segs : (planes + perBlock - 1) / perBlock;
        // at least 64 K elements per thread: below that a hand-over to a worker costs more than the loop saves
        int grain = Math.max(1, (1 << 16) / Math.min(BLOCK, perBlock * hw));
        Parallel.forRange(blocks, grain, threads, (b0, b1) -> {
            float[][] s = F32Loops.scratch();
            for (int b = b0; b < b1; b++) {
                int slot0 = segs > 1 ? b : b * perBlock;
                int start = segs > 1 ? (b / segs) * hw + (b % segs) * BLOCK : slot0 * hw;
                int len = segs > 1 ? Math.min(BLOCK, hw - (b % segs) * BLOCK)
                        : (Math.min(planes, slot0 + perBlock) - slot0) * hw;
                F32Loops.at(x, xo + start, len).get(s[0], 0, len);
                if (dy != null) {
                    F32Loops.at(dy, go + start, len).get(s[1], 0, len);
                }
                body.run(slot0, s[0], s[1], s[2], len);
                if (out != null) {
                    F32Loops.at(out, oo + start, len).put(s[2], 0, len);
                }
            }
        });
    }

    /** Each value rounded to float: the high half of the split v = hi + lo. */
    private static float[] high(double[] v) {
        float[] hi = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            hi[i] = (float) v[i];
        }
        return hi;
    }

    /** What {@link #high} lost, rounded to float: the low half. */
    private static float[] low(double[] v, float[] hi) {
        float[] lo = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            lo[i] = (float) (v[i] - hi[i]);
        }
        return lo;
    }

    /** The per-piece values of channel ch added in slot order: image by image, segment by segment. */
    private static double perChannel(double[] perSlot, int nb, int c, int segs, int ch) {
        double s = 0;
        for (int i = 0; i < nb; i++) {
            for (int k = 0; k < segs; k++) {
                s += perSlot[(i * c + ch) * segs + k];
            }
        }
        return s;
    }

    private static int segments(int hw) {
        return (hw + BLOCK - 1) / BLOCK;
    }

    /** Sum of a[from, to) in double, four interleaved accumulators combined in a fixed order. */
    private static double sum(float[] a, int from, int to) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int j = from;
        for (; j + 4 <= to; j += 4) {
            s0 += a[j];
            s1 += a[j + 1];
            s2 += a[j + 2];
            s3 += a[j + 3];
        }
        for (; j < to; j++) {
            s0 += a[j];
        }
        return (s0 + s1) + (s2 + s3);
    }
}
