package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.cuda.Parity.floats;
import static org.vgg4j.cuda.Parity.ints;
import static org.vgg4j.cuda.Parity.t;

import java.util.function.DoubleUnaryOperator;
import java.util.stream.Stream;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * conv.cu on the emulated device against the reference backend: forward (with and without bias), backward-data and
 * backward-filter (accumulating onto existing gradients), for 3x3, 1x1 and 7x7 kernels, with sizes that are not
 * multiples of the 64x64x16 tile (C, K in 2..70, odd H, W), backward-filter with and without split-K; exact on
 * small integers in every math mode; the TF32
 * and BF16 twins equal FP32 arithmetic on operands rounded the way the tensor cores round them.
 */
@Tag(Parity.DEVICE_TAG)
class ConvKernelTest {
    /** N, C, H, W, K, R, S, pad */
    record Case(int n, int c, int h, int w, int k, int r, int s, int pad) {
        Shape x() {
            return Shape.of(n, c, h, w);
        }

        Shape wt() {
            return Shape.of(k, c, r, s);
        }

        Shape y() {
            return Shape.of(n, k, h + 2 * pad - r + 1, w + 2 * pad - s + 1);
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case(2, 3, 7, 5, 5, 3, 3, 1),     // VGG's first layer in miniature, odd sizes
                new Case(1, 17, 9, 11, 65, 3, 3, 1),  // K one past a tile, C*R*S = 153 not a multiple of 16
                new Case(2, 5, 6, 6, 3, 1, 1, 0),     // 1x1 (config C)
                new Case(1, 4, 13, 13, 3, 7, 7, 3),   // 7x7 (dense evaluation's FC-as-conv)
                new Case(3, 2, 5, 4, 2, 3, 3, 0),     // no padding, N*P*Q = 18
                new Case(2, 3, 24, 20, 8, 3, 3, 1),   // backward-filter split-K: 1 tile, N*P*Q = 960 in 3 slices
                new Case(1, 6, 30, 30, 70, 3, 3, 1)); // split-K with a ragged last slice (900 = 304 + 304 + 292)
    }

    @BeforeAll
    static void emulator() {
        Parity.assumeDevice();
    }

    /** forward, backward-data, backward-filter of one case from host arrays x, w, b, dy, dw0, db0. */
    static Parity.Op allThree(Case c, double[] x, double[] w, double[] b, double[] dy, double[] dw0, double[] db0) {
        return be -> {
            Tensor xt = t(be, c.x(), x);
            Tensor wt = t(be, c.wt(), w);
            Tensor bt = t(be, Shape.of(c.k), b);
            Tensor y = be.allocate(xt.dtype(), c.y());
            Tensor yNoBias = be.allocate(xt.dtype(), c.y());
            be.conv2dForward(xt, wt, bt, y, c.pad);
            be.conv2dForward(xt, wt, null, yNoBias, c.pad);
            Tensor dyt = t(be, c.y(), dy);
            Tensor dx = be.allocate(xt.dtype(), c.x());
            be.fill(dx, 12345); // must be overwritten
            be.conv2dBackwardData(dyt, wt, dx, c.pad);
            Tensor dw = t(be, c.wt(), dw0);
            Tensor db = t(be, Shape.of(c.k), db0);
            be.conv2dBackwardFilter(xt, dyt, dw, db, c.pad);
            return new Tensor[] {y, yNoBias, dx, dw, db};
        };
    }

    @ParameterizedTest
    @MethodSource("cases")
    void floatsMatchTheReference(Case c) {
        try (Parity p = new Parity()) {
            int nx = Parity.size(c.x()), nw = Parity.size(c.wt()), ny = Parity.size(c.y());
            p.assertParity(allThree(c, floats(1, nx, -1, 1), floats(2, nw, -1, 1), floats(3, c.k, -1, 1),
                    floats(4, ny, -1, 1), floats(5, nw, -1, 1), floats(6, c.k, -1, 1)), 1e-5, 2e-5, c.toString());
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void smallIntegersAreExactInEveryMathMode(Case c) {
        int nx = Parity.size(c.x()), nw = Parity.size(c.wt()), ny = Parity.size(c.y());
        for (MathMode m : MathMode.values()) {
            try (Parity p = new Parity(m)) {
                p.assertExact(allThree(c, ints(11, nx, -4, 4), ints(12, nw, -3, 3), ints(13, c.k, -5, 5),
                        ints(14, ny, -3, 3), ints(15, nw, -2, 2), ints(16, c.k, -2, 2)), m + " " + c);
            }
        }
    }

    /** TF32 as cvt.rna.tf32.f32: 10 mantissa bits, ties away from zero. */
    static double tf32(double v) {
        int u = Float.floatToRawIntBits((float) v);
        return Float.intBitsToFloat((u + 0x1000) & 0xffffe000);
    }

    /** BF16 round to nearest even. */
    static double bf16(double v) {
        int u = Float.floatToRawIntBits((float) v);
        return Float.intBitsToFloat((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000);
    }

    static double[] map(double[] v, DoubleUnaryOperator f) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            r[i] = f.applyAsDouble(v[i]);
        }
        return r;
    }

    @Test
    void reducedPrecisionTwinsRoundTheirOperandsLikeTensorCores() {
        Case c = new Case(1, 17, 9, 11, 65, 3, 3, 1);
        int nx = Parity.size(c.x()), nw = Parity.size(c.wt()), ny = Parity.size(c.y());
        double[] x = floats(21, nx, -1, 1), w = floats(22, nw, -1, 1), dy = floats(24, ny, -1, 1);
        double[] zw = new double[nw], zb = new double[c.k];
        for (MathMode m : new MathMode[] {MathMode.TF32, MathMode.BF16}) {
            DoubleUnaryOperator round = m == MathMode.TF32 ? ConvKernelTest::tf32 : ConvKernelTest::bf16;
            try (Parity p = new Parity(m)) {
                // the device gets raw operands, the reference pre-rounded ones: equal up to FP32 summation order
                Backend dev = p.dev;
                Tensor[] got = allThree(c, x, w, zb, dy, zw, zb).run(dev);
                Tensor[] want = allThree(c, map(x, round), map(w, round), zb, map(dy, round), zw, zb).run(p.ref);
                Tensor[] exactFp32 = allThree(c, x, w, zb, dy, zw, zb).run(p.ref);
                double worstVsFp32 = 0;
                for (int j : new int[] {0, 2, 3}) { // y, dx, dw
                    double[] g = org.vgg4j.core.testing.TestTensors.toArray(got[j]);
                    double[] e = org.vgg4j.core.testing.TestTensors.toArray(want[j]);
                    double[] f = org.vgg4j.core.testing.TestTensors.toArray(exactFp32[j]);
                    org.vgg4j.core.testing.Approx.assertClose(e, g, 1e-5, 2e-5, m + " output " + j);
                    for (int i = 0; i < g.length; i++) {
                        worstVsFp32 = Math.max(worstVsFp32, Math.abs(g[i] - f[i]));
                    }
                }
                // and the rounding really happened: the results differ from exact FP32 by more than FP32 noise
                assertTrue(worstVsFp32 > 1e-4, m + " results equal FP32's (max difference " + worstVsFp32
                        + "): operands were not rounded");
            }
        }
    }
}
