package org.vgg4j.core.backend.cpu;

import java.nio.FloatBuffer;

/**
 * Float32 fast paths of the {@code cpu} backend's hottest memory-bound loops (momentum SGD over every parameter,
 * ReLU over every activation). Each thread moves blocks of {@link #BLOCK} elements between the direct buffer and
 * small Java arrays with bulk copies and does the arithmetic on the arrays, which the JIT vectorises; per-element
 * buffer access does not vectorise. The arithmetic is float32, element by element, as in {@link BufLoops}'
 * generic loops (which compute in double: those agree with these to rounding, and tests compare to the reference
 * to rounding), and the same whatever the thread count.
 */
final class F32Loops {
    static final int BLOCK = 4096;

    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[3][BLOCK]);
    private static final float[] ZEROS = new float[BLOCK];

    private F32Loops() {
    }

    /** This thread's three work arrays of at least {@link #BLOCK} floats (contents unspecified). */
    static float[][] scratch() {
        return SCRATCH.get();
    }

    /** A view of {@code b}'s elements [offset, offset + length), for one bulk get or put. */
    static FloatBuffer at(FloatBuffer b, int offset, int length) {
        FloatBuffer d = b.duplicate();
        d.position(offset).limit(offset + length);
        return d;
    }

    /** Caffe's SGD, see {@link org.vgg4j.core.backend.Backend#sgdStep}; p, g, v start at the given offsets. */
    static void sgd(FloatBuffer p, int po, FloatBuffer g, int go, FloatBuffer v, int vo, int n, float lr,
                    float momentum, float weightDecay, int decayed) {
        Parallel.forRange((n + BLOCK - 1) / BLOCK, 1, (b0, b1) -> {
            float[][] s = SCRATCH.get();
            float[] ps = s[0];
            float[] gs = s[1];
            float[] vs = s[2];
            for (int blk = b0; blk < b1; blk++) {
                int from = blk * BLOCK;
                int len = Math.min(BLOCK, n - from);
                at(p, po + from, len).get(ps, 0, len);
                at(g, go + from, len).get(gs, 0, len);
                at(v, vo + from, len).get(vs, 0, len);
                int split = Math.max(0, Math.min(len, decayed - from)); // [0, split) decays
                for (int i = 0; i < split; i++) {
                    float vi = momentum * vs[i] + lr * (gs[i] + weightDecay * ps[i]);
                    vs[i] = vi;
                    ps[i] -= vi;
                }
                for (int i = split; i < len; i++) {
                    float vi = momentum * vs[i] + lr * gs[i];
                    vs[i] = vi;
                    ps[i] -= vi;
                }
                at(p, po + from, len).put(ps, 0, len);
                at(v, vo + from, len).put(vs, 0, len);
                at(g, go + from, len).put(ZEROS, 0, len);
            }
        });
    }

    /** y = max(x, 0) (NaN kept, -0 to +0); y may be x. */
    static void relu(FloatBuffer x, int xo, FloatBuffer y, int yo, int n) {
        Parallel.forRange((n + BLOCK - 1) / BLOCK, 8, (b0, b1) -> {
            float[] a = SCRATCH.get()[0];
            for (int blk = b0; blk < b1; blk++) {
                int from = blk * BLOCK;
                int len = Math.min(BLOCK, n - from);
                at(x, xo + from, len).get(a, 0, len);
                for (int i = 0; i < len; i++) {
                    a[i] = Math.max(a[i], 0f);
                }
                at(y, yo + from, len).put(a, 0, len);
            }
        });
    }

    /** dx = y > 0 ? dy : +0 (bit for bit: dy's bits where y > 0); dx may be dy. */
    static void reluBackward(FloatBuffer y, int yo, FloatBuffer dy, int go, FloatBuffer dx, int dOff, int n) {
        Parallel.forRange((n + BLOCK - 1) / BLOCK, 8, (b0, b1) -> {
            float[][] s = SCRATCH.get();
            float[] ys = s[0];
            float[] gs = s[1];
            for (int blk = b0; blk < b1; blk++) {
                int from = blk * BLOCK;
                int len = Math.min(BLOCK, n - from);
                at(y, yo + from, len).get(ys, 0, len);
                at(dy, go + from, len).get(gs, 0, len);
                for (int i = 0; i < len; i++) {
                    gs[i] = Float.intBitsToFloat(Float.floatToRawIntBits(gs[i]) & positiveMask(ys[i]));
                }
                at(dx, dOff + from, len).put(gs, 0, len);
            }
        });
    }

    /**
     * All ones when v > 0 (a positive float: finite or +infinity), else 0 (zeros of either sign, negatives, NaNs),
     * without a branch: a float comparison in a ternary compiles to a jump on x86 (no float cmov), which the signs
     * of ReLU activations make unpredictable. v > 0 exactly when its bits, read as an int, are in [1, 0x7F800000].
     */
    static int positiveMask(float v) {
        int b = Float.floatToRawIntBits(v);
        return ~(((b - 1) | (0x7F800000 - b)) >> 31);
    }

    /** Row buffers for pooling, enough for any width up to {@code w}. */
    private static float[][] rows(int w) {
        float[][] s = SCRATCH.get();
        if (s[0].length < w) {
            s = new float[][] {new float[w], new float[w], new float[w]};
            SCRATCH.set(s);
        }
        return s;
    }

    /**
     * 2x2/2 max-pool of {@code planes} planes (H, W) into (H/2, W/2), see {@link CpuBackend#maxPool2x2Forward}: each
     * output is the window's element {@link #firstMax} picks, bit for bit (a NaN in first place, -0 before +0).
     */
    static void maxPool(FloatBuffer x, int xo, FloatBuffer y, int yo, int planes, int h, int w) {
        int p = h / 2;
        int q = w / 2;
        Parallel.forRange(planes, 4, (from, to) -> {
            float[][] s = rows(Math.max(2 * w, BLOCK));
            float[] in = s[0];  // rows 2i and 2i+1 of x
            float[] out = s[1];
            for (int plane = from; plane < to; plane++) {
                for (int i = 0; i < p; i++) {
                    at(x, xo + (plane * h + 2 * i) * w, 2 * w).get(in, 0, 2 * w);
                    for (int j = 0; j < q; j++) {
                        out[j] = in[2 * j + firstMax(in, 2 * j, w)];
                    }
                    at(y, yo + (plane * p + i) * q, q).put(out, 0, q);
                }
            }
        });
    }

    /**
     * Gradient of {@link #maxPool}: the element {@link #firstMax} picks in each window takes dy, the rest 0. Like
     * the reference, the winner is found again from x (y is not read), so a NaN or a signed zero picks the element
     * the forward took.
     */
    static void maxPoolBackward(FloatBuffer x, int xo, FloatBuffer dy, int go, FloatBuffer dx, int dOff, int planes,
                                int h, int w) {
        int p = h / 2;
        int q = w / 2;
        Parallel.forRange(planes, 4, (from, to) -> {
            float[][] s = rows(Math.max(2 * w, BLOCK));
            float[] in = s[0];   // rows 2i and 2i+1 of x
            float[] out = s[1];  // dx rows 2i and 2i+1
            float[] gs = s[2];   // dy row i
            for (int plane = from; plane < to; plane++) {
                for (int i = 0; i < p; i++) {
                    at(x, xo + (plane * h + 2 * i) * w, 2 * w).get(in, 0, 2 * w);
                    at(dy, go + (plane * p + i) * q, q).get(gs, 0, q);
                    java.util.Arrays.fill(out, 0, 2 * w, 0f);
                    for (int j = 0; j < q; j++) {
                        out[2 * j + firstMax(in, 2 * j, w)] = gs[j];
                    }
                    at(dx, dOff + (plane * h + 2 * i) * w, 2 * w).put(out, 0, 2 * w);
                }
                if (h % 2 == 1) { // the ignored last row
                    at(dx, dOff + (plane * h + h - 1) * w, w).put(zerosRow(w), 0, w);
                }
            }
        });
    }

    /**
     * Where the maximum of the 2x2 window at {@code in[a]} (rows {@code w} apart) lies, as an offset from a: 0, 1,
     * w or w + 1. The reference's rule: the first element in row-major order, replaced only by a later one that is
     * strictly greater; so ties go to the first (-0 and +0 tie), and a NaN wins only in first place (no comparison
     * with a NaN is true). Computed on {@link #orderKey}s with int maxima and int selects: no jumps, which the max's
     * random position would mispredict, and no float selects (x86 has no float cmov).
     */
    static int firstMax(float[] in, int a, int w) {
        int k0 = orderKey(in[a], Integer.MAX_VALUE); // a NaN first beats everything
        int k1 = orderKey(in[a + 1], Integer.MIN_VALUE); // a NaN later beats nothing
        int k2 = orderKey(in[a + w], Integer.MIN_VALUE);
        int k3 = orderKey(in[a + w + 1], Integer.MIN_VALUE);
        int at = k1 > k0 ? 1 : 0;
        int best = Math.max(k0, k1);
        at = k2 > best ? w : at;
        best = Math.max(best, k2);
        return k3 > best ? w + 1 : at;
    }

    /** An int ordered as floats are by {@code >} (-0 and +0 equal, -inf lowest, +inf highest); {@code nan} for NaN. */
    static int orderKey(float v, int nan) {
        int bits = Float.floatToRawIntBits(v);
        int magnitude = bits & 0x7FFFFFFF;
        int sign = bits >> 31; // 0 or -1
        return magnitude > 0x7F800000 ? nan : (magnitude ^ sign) - sign; // -magnitude when negative
    }

    private static float[] zerosRow(int w) {
        return w <= BLOCK ? ZEROS : new float[w];
    }
}
