package org.vgg4j.core.backend.cpu;

import static org.vgg4j.core.backend.cpu.F32Loops.BLOCK;

import java.nio.FloatBuffer;

/**
 * Float32 fast paths of batch normalisation for {@link NormLoops}: the per-channel sums of the training forward and
 * of the backward, and the element-wise normalisation and input gradient. x, y, dy, dx are (N, C, H, W) at the
 * given offsets of direct buffers; channel c's values are the N planes (n, c) of H*W contiguous floats. Per-channel
 * vectors (C) are double[]; {@link NormLoops} reads and writes the tensors behind them.
 *
 * <p>Work units: every plane is cut into segments of {@link F32Loops#BLOCK} floats (the last one shorter); unit u
 * is segment {@code u % segs} of plane {@code u / segs}. A unit is bulk-copied into a per-thread float[] and worked
 * on there: the passes over it stay in the L1 cache, and the element-wise loops vectorise (per-element buffer access
 * does not). The units, not the channels, are split across threads ({@link Parallel}), so a layer of few channels
 * (16 in the narrow networks' first block) still keeps every thread busy. Each unit's sums are computed by one
 * thread and combined per channel in unit order, serially: results are the same bits whatever the thread count.
 *
 * <p>Numerics: every sum is accumulated in double. A unit's mean and its sum of squared deviations around that mean
 * are two passes over its array; units combine exactly as the pairwise update of Chan, Golub and LeVeque,
 * sq = sum over units of (sq_u + n_u (mean_u - mean)^2), so there is no E[x^2] - E[x]^2 cancellation. The
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

    /** Work on one unit: its index, its channel, its first element (from the tensor's first) and its length. */
    private interface UnitBody {
        void run(int u, int ch, int start, int len);
    }

    /**
     * Per channel: {@code mean[c]} and {@code sq[c]}, the sum of squared deviations from that mean over the N*H*W
     * values of x (N, C, H*W) at xo.
     */
    static void moments(FloatBuffer x, int xo, int nb, int c, int hw, double[] mean, double[] sq, int threads) {
        double[] uSum = new double[units(nb, c, hw)];
        double[] uSq = new double[uSum.length];
        forEachUnit(nb, c, hw, threads, (u, ch, start, len) -> {
            float[][] s = F32Loops.scratch();
            float[] a = s[0];
            float[] t = s[1];
            F32Loops.at(x, xo + start, len).get(a, 0, len);
            double sum = sum(a, len);
            double mu = sum / len;
            float hi = (float) mu;
            float lo = (float) (mu - hi);
            for (int j = 0; j < len; j++) {
                float d = (a[j] - hi) - lo;
                t[j] = d * d;
            }
            uSum[u] = sum;
            uSq[u] = sum(t, len);
        });
        int segs = segments(hw);
        long m = (long) nb * hw;
        for (int ch = 0; ch < c; ch++) {
            double mu = perChannel(uSum, nb, c, segs, ch) / m;
            double q = 0;
            for (int i = 0; i < nb; i++) {
                for (int k = 0; k < segs; k++) {
                    int u = (i * c + ch) * segs + k;
                    int len = Math.min(BLOCK, hw - k * BLOCK);
                    double d = uSum[u] / len - mu;
                    q += uSq[u] + len * d * d;
                }
            }
            mean[ch] = mu;
            sq[ch] = q;
        }
    }

    /** y = gamma * (x - mean) * invStd + beta per channel; x, y (N, C, H*W) at xo, yo. */
    static void normalise(FloatBuffer x, int xo, FloatBuffer y, int yo, int nb, int c, int hw, double[] mean,
                          double[] invStd, double[] gamma, double[] beta, int threads) {
        forEachUnit(nb, c, hw, threads, (u, ch, start, len) -> {
            float[] a = F32Loops.scratch()[0];
            float hi = (float) mean[ch];
            float lo = (float) (mean[ch] - hi);
            float scale = (float) (gamma[ch] * invStd[ch]);
            float shift = (float) beta[ch];
            F32Loops.at(x, xo + start, len).get(a, 0, len);
            for (int j = 0; j < len; j++) {
                a[j] = ((a[j] - hi) - lo) * scale + shift;
            }
            F32Loops.at(y, yo + start, len).put(a, 0, len);
        });
    }

    /**
     * Per channel: {@code sumDy[c]} = sum of dy and {@code sumDyXhat[c]} = sum of dy * (x - mean) * invStd over the
     * N*H*W values; x, dy (N, C, H*W) at xo, go.
     */
    static void gradientSums(FloatBuffer x, int xo, FloatBuffer dy, int go, int nb, int c, int hw, double[] mean,
                             double[] invStd, double[] sumDy, double[] sumDyXhat, int threads) {
        double[] uDy = new double[units(nb, c, hw)];
        double[] uDyXc = new double[uDy.length]; // sum of dy * (x - mean): invStd is applied per channel
        forEachUnit(nb, c, hw, threads, (u, ch, start, len) -> {
            float[][] s = F32Loops.scratch();
            float[] xs = s[0];
            float[] gs = s[1];
            F32Loops.at(x, xo + start, len).get(xs, 0, len);
            F32Loops.at(dy, go + start, len).get(gs, 0, len);
            uDy[u] = sum(gs, len);
            float hi = (float) mean[ch];
            float lo = (float) (mean[ch] - hi);
            for (int j = 0; j < len; j++) {
                xs[j] = gs[j] * ((xs[j] - hi) - lo);
            }
            uDyXc[u] = sum(xs, len);
        });
        int segs = segments(hw);
        for (int ch = 0; ch < c; ch++) {
            sumDy[ch] = perChannel(uDy, nb, c, segs, ch);
            sumDyXhat[ch] = perChannel(uDyXc, nb, c, segs, ch) * invStd[ch];
        }
    }

    /**
     * dx = gamma * invStd * (dy - sumDy / m - xhat * sumDyXhat / m) with xhat = (x - mean) * invStd, m = N*H*W;
     * x, dy, dx (N, C, H*W) at xo, go, dOff.
     */
    static void inputGradient(FloatBuffer x, int xo, FloatBuffer dy, int go, FloatBuffer dx, int dOff, int nb, int c,
                              int hw, double[] mean, double[] invStd, double[] gamma, double[] sumDy,
                              double[] sumDyXhat, int threads) {
        long m = (long) nb * hw;
        forEachUnit(nb, c, hw, threads, (u, ch, start, len) -> {
            float[][] s = F32Loops.scratch();
            float[] xs = s[0];
            float[] gs = s[1];
            float xHi = (float) mean[ch];
            float xLo = (float) (mean[ch] - xHi);
            double meanDy = sumDy[ch] / m;
            float dHi = (float) meanDy;
            float dLo = (float) (meanDy - dHi);
            float scale = (float) (gamma[ch] * invStd[ch]);
            float slope = (float) (invStd[ch] * sumDyXhat[ch] / m); // xhat * sumDyXhat / m = (x - mean) * slope
            F32Loops.at(x, xo + start, len).get(xs, 0, len);
            F32Loops.at(dy, go + start, len).get(gs, 0, len);
            for (int j = 0; j < len; j++) {
                gs[j] = scale * (((gs[j] - dHi) - dLo) - ((xs[j] - xHi) - xLo) * slope);
            }
            F32Loops.at(dx, dOff + start, len).put(gs, 0, len);
        });
    }

    /** Runs body on every unit, split over at most {@code threads} threads. */
    private static void forEachUnit(int nb, int c, int hw, int threads, UnitBody body) {
        int segs = segments(hw);
        Parallel.forRange(units(nb, c, hw), grain(hw), threads, (u0, u1) -> {
            for (int u = u0; u < u1; u++) {
                int from = (u % segs) * BLOCK; // inside the plane
                body.run(u, (u / segs) % c, (u / segs) * hw + from, Math.min(BLOCK, hw - from));
            }
        });
    }

    /** The per-unit values of channel ch added in unit order: image by image, segment by segment. */
    private static double perChannel(double[] perUnit, int nb, int c, int segs, int ch) {
        double s = 0;
        for (int i = 0; i < nb; i++) {
            for (int k = 0; k < segs; k++) {
                s += perUnit[(i * c + ch) * segs + k];
            }
        }
        return s;
    }

    private static int units(int nb, int c, int hw) {
        return nb * c * segments(hw);
    }

    private static int segments(int hw) {
        return (hw + BLOCK - 1) / BLOCK;
    }

    /** Units per thread below which a part is not worth a thread: about 32 K elements. */
    private static int grain(int hw) {
        return Math.max(1, (1 << 15) / Math.min(hw, BLOCK));
    }

    /** Sum of a[0, len) in double, four interleaved accumulators combined in a fixed order. */
    private static double sum(float[] a, int len) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int j = 0;
        for (; j + 4 <= len; j += 4) {
            s0 += a[j];
            s1 += a[j + 1];
            s2 += a[j + 2];
            s3 += a[j + 3];
        }
        for (; j < len; j++) {
            s0 += a[j];
        }
        return (s0 + s1) + (s2 + s3);
    }
}
