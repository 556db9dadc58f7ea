package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * The float32 bit paths of the {@code cpu} backend, {@link F32MaxPool} and {@link F32Loops#reluBackward}, against
 * the {@code reference} backend bit for bit, on every layout of pieces (planes grouped into one piece, the groups
 * crossing images, odd H and W; a plane of exactly one piece; planes split into runs of row pairs, the last run
 * holding the ignored row; a pair of rows wider than a piece), on values mixing ties, NaN, -0, +0 and infinities
 * (whole planes of NaN and of signed zeros among them), with tensors at odd offsets of a larger buffer whose other
 * elements must stay untouched, split over 1, 2 and 3 threads.
 */
final class F32MaxPoolTest {
    /** What lies around each view: no op may write it. */
    private static final double AROUND = 7.25;
    private static final double[] SPECIAL = {Double.NaN, -0.0, 0.0, Double.POSITIVE_INFINITY,
        Double.NEGATIVE_INFINITY};

    private static Backend ref;
    private static Backend cpu;

    @BeforeAll
    static void backends() {
        ref = Backends.create("reference");
        cpu = Backends.create("cpu");
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    /** A tensor at {@code offset} in a buffer {@code offset + 3} elements longer, the rest of it {@link #AROUND}. */
    private record View(Tensor base, Tensor t, int offset) {
        static View of(Backend b, Shape shape, double[] values, int offset) {
            Tensor base = b.allocate(DType.FLOAT32, Shape.of(Math.toIntExact(shape.size()) + offset + 3));
            b.fill(base, AROUND);
            Tensor t = base.view(offset, shape);
            b.copyIn(values, 0, t);
            return new View(base, t, offset);
        }

        double[] values() {
            return TestTensors.toArray(t);
        }

        void assertAroundUntouched(String what) {
            double[] all = TestTensors.toArray(base);
            long n = t.size();
            for (int i = 0; i < all.length; i++) {
                if (i < offset || i >= offset + n) {
                    assertEquals(AROUND, all[i], what + ": element " + i + " of the buffer, outside the view");
                }
            }
        }
    }

    /**
     * Small integers (ties in most windows) and, at random, NaN, -0, +0, +inf and -inf; with two planes or more,
     * plane 0 all NaN and plane 1 signed zeros (-0 first in every other window).
     */
    private static double[] poolValues(long seed, int planes, int hw) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] v = new double[planes * hw];
        for (int i = 0; i < v.length; i++) {
            int c = rnd.nextInt(10);
            v[i] = c < 5 ? rnd.nextInt(-2, 3) : SPECIAL[c - 5];
        }
        if (planes >= 2) {
            for (int i = 0; i < hw; i++) {
                v[i] = Double.NaN;
                v[hw + i] = i % 3 == 0 ? -0.0 : 0.0;
            }
        }
        return v;
    }

    /** v, each value rounded to float32 (what a float32 tensor holds). */
    private static double[] floats(double[] v) {
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) v[i];
        }
        return v;
    }

    @Test
    void maxPoolIsTheReferenceBitForBitOnEveryPieceLayoutOffsetAndThreadCount() {
        int[][] shapes = {
            {3, 5, 7, 5},     // 35-element planes, 29 to a piece: groups cross images, odd H and W
            {7, 33, 2, 2},    // the last layers' planes, 256 to a piece
            {5, 17, 4, 4},
            {3, 9, 8, 8},
            {2, 3, 32, 32},   // one plane, one piece
            {4, 4, 16, 16},   // four planes to a piece
            {2, 3, 3, 2},     // odd H, one window per plane
            {1, 2, 67, 65},   // planes of 4355: runs of 7 row pairs, the last with the ignored row
            {1, 2, 16, 66},   // a plane just over a piece: runs of 7 row pairs and of 1, H even
            {1, 2, 5, 1201},  // a pair of rows wider than a piece: runs of one pair, the last of three rows
            {2, 2, 2, 1025},  // one run of one pair per plane
        };
        for (int[] s : shapes) {
            assertPoolMatches(s, 11 * s[2] + s[3], 1);
        }
    }

    /**
     * Shapes big enough for the pieces to be split over 2 and 3 threads: grouped planes (odd ones, 4 to a piece, and
     * 8x8 ones, 16 to a piece) and planes in runs.
     */
    @Test
    void maxPoolGivesTheSameBitsOnOneTwoAndThreeThreads() {
        for (int[] s : new int[][] {{20, 31, 15, 15}, {24, 64, 8, 8}, {5, 7, 67, 65}}) {
            for (int threads = 1; threads <= 3; threads++) {
                assertPoolMatches(s, s[0] + s[2], threads);
            }
        }
    }

    /** Forward and backward of x (s) on the cpu backend over {@code threads} threads, against the reference. */
    private static void assertPoolMatches(int[] s, long seed, int threads) {
        int planes = s[0] * s[1];
        Shape xs = Shape.of(s);
        Shape ys = Shape.of(s[0], s[1], s[2] / 2, s[3] / 2);
        int ny = Math.toIntExact(ys.size());
        double[] xv = poolValues(seed, planes, s[2] * s[3]);
        double[] dyv = floats(TestTensors.uniform(seed + 1, ny, -1, 1));
        double[] yv = floats(TestTensors.uniform(seed + 2, ny, -1, 1));
        double[] dxv = floats(TestTensors.uniform(seed + 3, xv.length, -1, 1));
        String what = xs + " on " + threads + " threads";

        Tensor xr = View.of(ref, xs, xv, 0).t();
        Tensor yr = View.of(ref, ys, yv, 0).t();
        Tensor dyr = View.of(ref, ys, dyv, 0).t();
        Tensor dxr = View.of(ref, xs, dxv, 0).t();
        ref.maxPool2x2Forward(xr, yr);
        ref.maxPool2x2Backward(xr, yr, dyr, dxr);

        View x = View.of(cpu, xs, xv, 5);
        View y = View.of(cpu, ys, yv, 3);
        View dy = View.of(cpu, ys, dyv, 7);
        View dx = View.of(cpu, xs, dxv, 1);
        BufLoops.maxPool2x2Forward(x.t(), y.t(), threads);
        assertArrayEquals(TestTensors.toArray(yr), y.values(), what + " forward"); // bits: -0 is not +0
        y.assertAroundUntouched(what + " forward");
        BufLoops.maxPool2x2Backward(x.t(), y.t(), dy.t(), dx.t(), threads);
        assertArrayEquals(TestTensors.toArray(dxr), dx.values(), what + " backward");
        dx.assertAroundUntouched(what + " backward");

        // with the ReLU's backward in the same pass (x as that ReLU's output): the reference's two calls
        Tensor dxr2 = View.of(ref, xs, dxv, 0).t();
        ref.maxPool2x2BackwardRelu(xr, yr, dyr, dxr2);
        View dx2 = View.of(cpu, xs, dxv, 2);
        BufLoops.maxPool2x2Backward(x.t(), y.t(), dy.t(), dx2.t(), threads, true);
        assertArrayEquals(TestTensors.toArray(dxr2), dx2.values(), what + " backward with the ReLU's");
        dx2.assertAroundUntouched(what + " backward with the ReLU's");
        assertArrayEquals(xv, x.values(), what + ": x unchanged");
        assertArrayEquals(dyv, dy.values(), what + ": dy unchanged");
    }

    @Test
    void reluBackwardIsTheDefinitionBitForBitOnOneTwoAndThreeThreadsAndInPlace() {
        int n = 3 * 8 * F32Loops.BLOCK + 123; // 25 blocks, the last short: 3 parts on 3 threads
        SplittableRandom rnd = new SplittableRandom(3);
        double[] yv = new double[n];
        double[] dyv = new double[n];
        for (int i = 0; i < n; i++) {
            int c = rnd.nextInt(8);
            yv[i] = c < 3 ? (float) rnd.nextDouble(-1, 1) : SPECIAL[c - 3];
            dyv[i] = rnd.nextInt(4) == 0 ? SPECIAL[rnd.nextInt(SPECIAL.length)] : (float) rnd.nextDouble(-1, 1);
        }
        double[] dxv = floats(TestTensors.uniform(4, n, -1, 1));
        Tensor yr = View.of(ref, Shape.of(n), yv, 0).t();
        Tensor dyr = View.of(ref, Shape.of(n), dyv, 0).t();
        Tensor dxr = View.of(ref, Shape.of(n), dxv, 0).t();
        ref.reluBackward(yr, dyr, dxr);
        double[] expected = TestTensors.toArray(dxr);
        double[] dys = TestTensors.toArray(dyr);
        for (int i = 0; i < n; i++) { // the reference is the definition: dy where y > 0, else +0
            assertEquals(Double.doubleToLongBits(yv[i] > 0 ? dys[i] : 0.0), Double.doubleToLongBits(expected[i]));
        }
        for (int threads = 1; threads <= 3; threads++) {
            String what = "reluBackward on " + threads + " threads";
            View y = View.of(cpu, Shape.of(n), yv, 3);
            View dy = View.of(cpu, Shape.of(n), dyv, 5);
            View dx = View.of(cpu, Shape.of(n), dxv, 1);
            BufLoops.reluBackward(y.t(), dy.t(), dx.t(), threads);
            assertArrayEquals(expected, dx.values(), what);
            dx.assertAroundUntouched(what);
            BufLoops.reluBackward(y.t(), dy.t(), dy.t(), threads);
            assertArrayEquals(expected, dy.values(), what + " in place");
            dy.assertAroundUntouched(what + " in place");
        }
    }

    @Test
    void orderKeysOrderFloatsAsTheirComparisonAndPutEveryNaNBelowAll() {
        float[] numbers = {Float.NEGATIVE_INFINITY, -Float.MAX_VALUE, -1f, -Float.MIN_NORMAL, -Float.MIN_VALUE, -0f,
            0f, Float.MIN_VALUE, Float.MIN_NORMAL, 1f, Float.MAX_VALUE, Float.POSITIVE_INFINITY};
        int[] nans = {0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0xFFC00000, 0xFF800001, 0xFFFFFFFF};
        int[] bits = new int[numbers.length + nans.length];
        for (int i = 0; i < numbers.length; i++) {
            bits[i] = Float.floatToRawIntBits(numbers[i]);
        }
        System.arraycopy(nans, 0, bits, numbers.length, nans.length);
        int[] keys = new int[bits.length];
        F32MaxPool.orderKeys(bits, keys, bits.length);
        for (int i = 0; i < numbers.length; i++) {
            for (int j = 0; j < numbers.length; j++) {
                assertEquals(numbers[i] > numbers[j], keys[i] > keys[j], numbers[i] + " > " + numbers[j]);
            }
            assertTrue(keys[i] > Integer.MIN_VALUE && keys[i] < Integer.MAX_VALUE, numbers[i] + "'s key");
        }
        for (int k = numbers.length; k < bits.length; k++) {
            assertEquals(Integer.MIN_VALUE, keys[k], "NaN 0x" + Integer.toHexString(bits[k]));
        }
        F32MaxPool.orderKeys(bits, bits, bits.length); // in place
        assertArrayEquals(keys, bits);
    }

    @Test
    void firstMaxIsTheFirstStrictMaximumAndANaNWinsOnlyInFirstPlace() {
        float nan = Float.NaN;
        // four values (row-major, w = 2), then the winner's offset: 0, 1, w = 2 or w + 1 = 3
        float[][] windows = {{1, 1, 1, 1, 0}, {1, 2, 2, 2, 1}, {1, 2, 3, 3, 2}, {1, 2, 3, 4, 3}, {4, 3, 2, 1, 0},
            {-0f, 0f, 0f, -0f, 0}, {0f, -0f, 0f, 0f, 0}, {nan, 5, 6, 7, 0}, {1, nan, nan, nan, 0}, {nan, nan, nan, nan, 0},
            {1, nan, 2, nan, 2}, {-1, nan, nan, 0, 3}, {Float.NEGATIVE_INFINITY, nan, nan, nan, 0},
            {2, 3, 3, 1, 1}, {2, 1, 3, 3, 2}, {3, 1, 2, 3, 0}};
        for (float[] win : windows) {
            int[] bits = new int[4];
            for (int e = 0; e < 4; e++) {
                bits[e] = Float.floatToRawIntBits(win[e]);
            }
            F32MaxPool.orderKeys(bits, bits, 4);
            assertEquals((int) win[4], F32MaxPool.firstMax(bits, 0, 2), java.util.Arrays.toString(win));
        }
    }
}
