package org.vgg4j.core.backend.cpu;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * Float32 fast paths of the {@code cpu} backend's hottest memory-bound loops (momentum SGD over every parameter,
 * ReLU over every activation; max pooling is {@link F32MaxPool}). Each thread moves blocks of {@link #BLOCK}
 * elements between the direct buffer and small Java arrays with bulk copies and does the arithmetic on the arrays,
 * which the JIT vectorises; per-element buffer access does not vectorise. Where a loop only selects bits (the ReLU
 * backward), it runs on int[] arrays filled from the {@link CpuStorage#bits} view of the same memory. The
 * arithmetic is float32, element by element, as in {@link BufLoops}' generic loops (which compute in double: those
 * agree with these to rounding, and tests compare to the reference to rounding), and the same whatever the thread
 * count.
 */
final class F32Loops {
    static final int BLOCK = 4096;

    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[3][BLOCK]);
    private static final ThreadLocal<int[][]> INT_SCRATCH = ThreadLocal.withInitial(() -> new int[3][BLOCK]);
    private static final float[] ZEROS = new float[BLOCK];

    private F32Loops() {
    }

    /** This thread's three int work arrays of at least max(length, {@link #BLOCK}) ints (contents unspecified). */
    static int[][] intScratch(int length) {
        int[][] s = INT_SCRATCH.get();
        if (s[0].length < length) {
            s = new int[][] {new int[length], new int[length], new int[length]};
            INT_SCRATCH.set(s);
        }
        return s;
    }

    /** A view of {@code b}'s elements [offset, offset + length), for one bulk get or put. */
    static FloatBuffer at(FloatBuffer b, int offset, int length) {
        FloatBuffer d = b.duplicate();
        d.position(offset).limit(offset + length);
        return d;
    }

    /** A view of {@code b}'s elements [offset, offset + length), for one bulk get or put. */
    static IntBuffer at(IntBuffer b, int offset, int length) {
        IntBuffer d = b.duplicate();
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

    /**
     * Rounds x[o, o+n) in place to the nearest bfloat16 (ties to even), as the CPU's VCVTNEPS2BF16 does: the low 16
     * bits become zero. A NaN stays a NaN (quieted), an infinity stays infinite, a finite value past bfloat16's
     * largest rounds to infinity.
     */
    static void roundToBf16(FloatBuffer x, int o, int n) {
        for (int i = 0; i < n; i++) {
            x.put(o + i, roundToBf16(x.get(o + i)));
        }
    }

    /** v rounded to the nearest bfloat16, ties to even, as a float (a NaN stays a NaN, made quiet). */
    static float roundToBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        bits = (bits & 0x7FFFFFFF) > 0x7F800000 ? (bits | 0x00400000) : bits + 0x7FFF + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(bits & 0xFFFF0000);
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

    /**
     * dx = y > 0 ? dy : +0, bit for bit (dy's bits where y > 0), over at most {@code threads} threads; dx may be dy.
     * y, dy and dx are {@link CpuStorage#bits} views of float32 memory: the loop runs on int arrays, which the JIT
     * vectorises (it does not vectorise {@code Float.floatToRawIntBits} on float arrays).
     */
    static void reluBackward(IntBuffer y, int yo, IntBuffer dy, int go, IntBuffer dx, int dOff, int n, int threads) {
        Parallel.forRange((n + BLOCK - 1) / BLOCK, 8, threads, (b0, b1) -> {
            int[][] s = intScratch(BLOCK);
            int[] ys = s[0];
            int[] gs = s[1];
            for (int blk = b0; blk < b1; blk++) {
                int from = blk * BLOCK;
                int len = Math.min(BLOCK, n - from);
                at(y, yo + from, len).get(ys, 0, len);
                at(dy, go + from, len).get(gs, 0, len);
                for (int i = 0; i < len; i++) {
                    gs[i] &= positiveMask(ys[i]);
                }
                at(dx, dOff + from, len).put(gs, 0, len);
            }
        });
    }

    /**
     * All ones when the float with these bits is > 0 (finite or +infinity), else 0 (zeros of either sign, negatives,
     * NaNs), without a branch or a select: a float comparison in a ternary compiles to a jump on x86 (no float
     * cmov), which the signs of ReLU activations make unpredictable, and a select would keep the loop scalar. v > 0
     * exactly when its bits, read as an int, are in [1, 0x7F800000].
     */
    static int positiveMask(int bits) {
        return ~(((bits - 1) | (0x7F800000 - bits)) >> 31);
    }
}
