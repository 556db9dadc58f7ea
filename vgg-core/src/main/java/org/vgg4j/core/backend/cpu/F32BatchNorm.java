package org.vgg4j.core.backend.cpu;

import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * Float32 fast paths of batch normalisation for {@link NormLoops}: the per-channel sums of the training forward and
 * of the backward, and the element-wise normalisation and input gradient. x, y, dy, dx are (N, C, H, W) at the
 * given offsets of direct buffers; channel c's values are the N planes (n, c) of H*W contiguous floats. Per-channel
 * vectors (C) are double[]; {@link NormLoops} reads and writes the tensors behind them.
 *
 * <p>Tiles, blocks and pieces ({@link Layout}, fixed by the shape alone): a tile is a run of positions of one image's
 * C*H*W values, as many whole planes as fit in {@link #TILE}, or, for planes larger than TILE, one TILE-sized segment
 * of one (the last shorter). Images are taken in fixed groups, enough (up to {@link #GROUP}) that a plane over a group
 * holds about {@link #PIECE} values: one image for planes of 32x32 and more (blocks then run in memory order, one
 * contiguous tile after another), 4 for 16x16, 16 for 8x8, 32 for 4x4 and 2x2. A block is one tile over one group: its
 * values are bulk-copied into per-thread float[] rows, one per image, and worked on there (per-element buffer access
 * does not vectorise). A piece is one plane (or segment) of a block: one channel's values over the group's images, with
 * one mean, one hi + lo split and one slot of sums, so small planes do not pay that per plane. Every per-channel
 * parameter of an element loop is spread over the tile's positions first, so each loop is one plain pass over a tile
 * per image whatever the plane size, every array indexed alike. Blocks (group by group, tile by tile), not channels,
 * are split across threads ({@link Parallel}); each piece's sums are computed by one thread and combined per channel in
 * slot order (group by group, segment by segment), serially: results are the same bits whatever the thread count.
 *
 * <p>Numerics: every sum is accumulated in double. A piece's mean and its sum of squared deviations around that
 * mean are two passes over its block; pieces combine exactly as the pairwise update of Chan, Golub and LeVeque,
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
    /**
     * Positions of a tile at most: a tile's spread parameters (up to six float arrays) stay in the L1 cache while
     * a block's images stream past them.
     */
    static final int TILE = 1024;

    /**
     * Values of a piece that a group gathers, as far as {@link #GROUP} images allow; no more, as a group of several
     * images reads each of them in tile-sized pieces, strided by an image, not in one stream.
     */
    static final int PIECE = 1024;

    /** Images of a group at most. */
    static final int GROUP = 32;

    private static final ThreadLocal<Work> WORK = ThreadLocal.withInitial(Work::new);

    private F32BatchNorm() {
    }

    /**
     * How (N, C, H*W) is cut, from its shape alone. Tile t covers {@code planes} whole planes, channels from
     * t * planes on, when a plane fits in a tile ({@code segs} == 1), else segment t % segs of channel t / segs.
     * Group g holds images [g * group, g * group + images(g)). A piece's slot is (g * C + channel) * segs + segment:
     * one channel's pieces are added in slot order.
     */
    record Layout(int nb, int c, int hw, int segs, int planes, int tiles, int group, int groups) {
        static Layout of(int nb, int c, int hw) {
            int segs = (hw + TILE - 1) / TILE;
            int planes = segs > 1 ? 1 : Math.min(c, TILE / hw);
            int tiles = segs > 1 ? c * segs : (c + planes - 1) / planes;
            int group = Math.max(1, Math.min(nb, Math.min(GROUP, PIECE / hw)));
            return new Layout(nb, c, hw, segs, planes, tiles, group, (nb + group - 1) / group);
        }

        int blocks() {
            return tiles * groups;
        }

        int pieces() {
            return groups * c * segs;
        }

        /** Positions in tile t. */
        int length(int t) {
            return segs > 1 ? Math.min(TILE, hw - (t % segs) * TILE) : Math.min(planes, c - t * planes) * hw;
        }

        /** Where tile t starts in an image's C*H*W values. */
        int start(int t) {
            return segs > 1 ? (t / segs) * hw + (t % segs) * TILE : t * planes * hw;
        }

        /** Positions of each piece of tile t: a plane, or the whole tile when it is a segment. */
        int pieceLength(int t) {
            return segs > 1 ? length(t) : hw;
        }

        /** The channel of piece q of tile t. */
        int channel(int t, int q) {
            return segs > 1 ? t / segs : t * planes + q;
        }

        int slot(int g, int t, int q) {
            return (g * c + channel(t, q)) * segs + (segs > 1 ? t % segs : 0);
        }

        int images(int g) {
            return Math.min(group, nb - g * group);
        }

        /** Values of the piece of group g and segment k (0 when planes are not segmented). */
        long count(int g, int k) {
            return (long) images(g) * (segs > 1 ? Math.min(TILE, hw - k * TILE) : hw);
        }
    }

    /** One thread's work arrays; {@code tile} names the tile whose positions {@code p} were last spread over. */
    private static final class Work {
        final float[][] x = new float[GROUP][TILE];
        final float[][] g = new float[GROUP][TILE];
        final float[][] out = new float[GROUP][TILE];
        final float[][] p = new float[6][TILE];
        int tile = -1;
    }

    /**
     * Work on one block: tile t of group g, whose n images' len values lie in w.x[i] (x) and w.g[i] (dy, when the
     * call reads it), i in [0, n); w.out[i] is to be filled the same way when the call writes a tensor (else it is
     * free for temporaries). Every array of a loop is indexed alike, [0, len), so that the loop vectorises.
     */
    private interface Block {
        void run(Work w, int t, int g, int n, int len);
    }

    /**
     * Per channel: {@code mean[c]} and {@code sq[c]}, the sum of squared deviations from that mean over the N*H*W
     * values of x (N, C, H*W) at xo.
     */
    static void moments(FloatBuffer x, int xo, int nb, int c, int hw, double[] mean, double[] sq, int threads) {
        Layout l = Layout.of(nb, c, hw);
        double[] pSum = new double[l.pieces()];
        double[] pSq = new double[pSum.length];
        forEachBlock(l, threads, x, xo, null, 0, null, 0, (w, t, g, n, len) -> {
            int pl = l.pieceLength(t);
            for (int q = 0, from = 0; from < len; q++, from += pl) {
                double sum = pieceSum(w.x, n, from, pl);
                double mu = sum / ((long) n * pl);
                float hi = (float) mu;
                Arrays.fill(w.p[0], from, from + pl, hi);
                Arrays.fill(w.p[1], from, from + pl, (float) (mu - hi));
                pSum[l.slot(g, t, q)] = sum;
            }
            float[] hi = w.p[0];
            float[] lo = w.p[1];
            for (int i = 0; i < n; i++) {
                float[] xs = w.x[i];
                float[] d2 = w.out[i];
                for (int j = 0; j < len; j++) {
                    float d = (xs[j] - hi[j]) - lo[j];
                    d2[j] = d * d;
                }
            }
            for (int q = 0, from = 0; from < len; q++, from += pl) {
                pSq[l.slot(g, t, q)] = pieceSum(w.out, n, from, pl);
            }
        });
        long m = (long) nb * hw;
        for (int ch = 0; ch < c; ch++) {
            double mu = perChannel(l, pSum, ch) / m;
            double q = 0;
            for (int g = 0; g < l.groups(); g++) {
                for (int k = 0; k < l.segs(); k++) {
                    int slot = (g * c + ch) * l.segs() + k;
                    long cnt = l.count(g, k);
                    double d = pSum[slot] / cnt - mu;
                    q += pSq[slot] + cnt * d * d;
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
        Layout l = Layout.of(nb, c, hw);
        float[] hi = high(mean);
        float[] scale = new float[c];
        float[] shift = new float[c];
        for (int ch = 0; ch < c; ch++) {
            scale[ch] = (float) (gamma[ch] * invStd[ch]);
            shift[ch] = (float) beta[ch];
        }
        float[][] perChannel = {hi, low(mean, hi), scale, shift};
        forEachBlock(l, threads, x, xo, null, 0, y, yo, (w, t, g, n, len) -> {
            spread(l, w, t, perChannel);
            float[] h = w.p[0];
            float[] lo = w.p[1];
            float[] a = w.p[2];
            float[] b = w.p[3];
            for (int i = 0; i < n; i++) {
                float[] xs = w.x[i];
                float[] out = w.out[i];
                if (relu) {
                    for (int j = 0; j < len; j++) {
                        out[j] = Math.max(((xs[j] - h[j]) - lo[j]) * a[j] + b[j], 0f);
                    }
                } else {
                    for (int j = 0; j < len; j++) {
                        out[j] = ((xs[j] - h[j]) - lo[j]) * a[j] + b[j];
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
        Layout l = Layout.of(nb, c, hw);
        float[] hi = high(mean);
        float[][] perChannel = {hi, low(mean, hi)};
        double[] pDy = new double[l.pieces()];
        double[] pDyXc = new double[pDy.length]; // sum of dy * (x - mean): invStd is applied per channel
        forEachBlock(l, threads, x, xo, dy, go, null, 0, (w, t, g, n, len) -> {
            spread(l, w, t, perChannel);
            float[] h = w.p[0];
            float[] lo = w.p[1];
            for (int i = 0; i < n; i++) {
                float[] xs = w.x[i];
                float[] gs = w.g[i];
                float[] prod = w.out[i];
                for (int j = 0; j < len; j++) {
                    prod[j] = gs[j] * ((xs[j] - h[j]) - lo[j]);
                }
            }
            int pl = l.pieceLength(t);
            for (int q = 0, from = 0; from < len; q++, from += pl) {
                pDy[l.slot(g, t, q)] = pieceSum(w.g, n, from, pl);
                pDyXc[l.slot(g, t, q)] = pieceSum(w.out, n, from, pl);
            }
        });
        for (int ch = 0; ch < c; ch++) {
            sumDy[ch] = perChannel(l, pDy, ch);
            sumDyXhat[ch] = perChannel(l, pDyXc, ch) * invStd[ch];
        }
    }

    /**
     * dx = gamma * invStd * (dy - sumDy / m - xhat * sumDyXhat / m) with xhat = (x - mean) * invStd, m = N*H*W;
     * x, dy, dx (N, C, H*W) at xo, go, dOff.
     */
    static void inputGradient(FloatBuffer x, int xo, FloatBuffer dy, int go, FloatBuffer dx, int dOff, int nb, int c,
                              int hw, double[] mean, double[] invStd, double[] gamma, double[] sumDy,
                              double[] sumDyXhat, int threads) {
        Layout l = Layout.of(nb, c, hw);
        long m = (long) nb * hw;
        float[] xHi = high(mean);
        double[] meanDy = new double[c];
        float[] scale = new float[c];
        float[] slope = new float[c]; // xhat * sumDyXhat / m = (x - mean) * slope
        for (int ch = 0; ch < c; ch++) {
            meanDy[ch] = sumDy[ch] / m;
            scale[ch] = (float) (gamma[ch] * invStd[ch]);
            slope[ch] = (float) (invStd[ch] * sumDyXhat[ch] / m);
        }
        float[] dHi = high(meanDy);
        float[][] perChannel = {xHi, low(mean, xHi), dHi, low(meanDy, dHi), scale, slope};
        forEachBlock(l, threads, x, xo, dy, go, dx, dOff, (w, t, g, n, len) -> {
            spread(l, w, t, perChannel);
            float[] xh = w.p[0];
            float[] xl = w.p[1];
            float[] dh = w.p[2];
            float[] dl = w.p[3];
            float[] a = w.p[4];
            float[] b = w.p[5];
            for (int i = 0; i < n; i++) {
                float[] xs = w.x[i];
                float[] gs = w.g[i];
                float[] out = w.out[i];
                for (int j = 0; j < len; j++) {
                    out[j] = a[j] * (((gs[j] - dh[j]) - dl[j]) - ((xs[j] - xh[j]) - xl[j]) * b[j]);
                }
            }
        });
    }

    /**
     * Runs body on every block, the blocks split over at most {@code threads} threads, group by group and tile by
     * tile within a group (memory order when a group is one image; a thread re-spreads parameters only when the
     * tile changes, so once per call when an image is one tile). x and, when given, dy are loaded into the block's
     * rows before body runs; out, when given, is written after.
     */
    private static void forEachBlock(Layout l, int threads, FloatBuffer x, int xo, FloatBuffer dy, int go,
                                     FloatBuffer out, int oo, Block body) {
        int image = l.c() * l.hw();
        // at least 64 K elements per thread: below that a hand-over to a worker costs more than the loop saves
        int grain = Math.max(1, (1 << 16) / (l.group() * l.length(0)));
        Parallel.forRange(l.blocks(), grain, threads, (b0, b1) -> {
            Work w = WORK.get();
            w.tile = -1; // spread by an earlier call
            for (int b = b0; b < b1; b++) {
                int g = b / l.tiles();
                int t = b % l.tiles();
                int n = l.images(g);
                int len = l.length(t);
                int start = g * l.group() * image + l.start(t);
                for (int i = 0; i < n; i++) {
                    F32Loops.at(x, xo + start + i * image, len).get(w.x[i], 0, len);
                    if (dy != null) {
                        F32Loops.at(dy, go + start + i * image, len).get(w.g[i], 0, len);
                    }
                }
                body.run(w, t, g, n, len);
                if (out != null) {
                    for (int i = 0; i < n; i++) {
                        F32Loops.at(out, oo + start + i * image, len).put(w.out[i], 0, len);
                    }
                }
            }
        });
    }

    /** Fills w.p[k] over tile t's positions with perChannel[k] of each position's channel, unless already done. */
    private static void spread(Layout l, Work w, int t, float[][] perChannel) {
        if (w.tile == t) {
            return;
        }
        int len = l.length(t);
        int pl = l.pieceLength(t);
        for (int k = 0; k < perChannel.length; k++) {
            for (int q = 0, from = 0; from < len; q++, from += pl) {
                Arrays.fill(w.p[k], from, from + pl, perChannel[k][l.channel(t, q)]);
            }
        }
        w.tile = t;
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

    /** The per-piece values of channel ch added in slot order: group by group, segment by segment. */
    private static double perChannel(Layout l, double[] perSlot, int ch) {
        double s = 0;
        for (int g = 0; g < l.groups(); g++) {
            for (int k = 0; k < l.segs(); k++) {
                s += perSlot[(g * l.c() + ch) * l.segs() + k];
            }
        }
        return s;
    }

    /** Sum in double of positions [from, from + pl) of rows[0, n), row after row. */
    private static double pieceSum(float[][] rows, int n, int from, int pl) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        for (int i = 0; i < n; i++) {
            float[] a = rows[i];
            int j = from;
            int to = from + pl;
            for (; j + 4 <= to; j += 4) {
                s0 += a[j];
                s1 += a[j + 1];
                s2 += a[j + 2];
                s3 += a[j + 3];
            }
            for (; j < to; j++) {
                s0 += a[j];
            }
        }
        return (s0 + s1) + (s2 + s3);
    }
}
