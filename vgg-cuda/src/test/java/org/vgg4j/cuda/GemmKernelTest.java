package org.vgg4j.cuda;

import static org.vgg4j.cuda.Parity.floats;
import static org.vgg4j.cuda.Parity.ints;
import static org.vgg4j.cuda.Parity.t;

import java.util.stream.Stream;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * gemm.cu on the emulated device against the reference backend: every transpose combination, shapes that are not
 * multiples of the 64x64x16 tile (including a single row, VGG's batch-1 FC case), with and without split-K,
 * alpha/beta with beta = 0 ignoring
 * a NaN-filled c, and exact results on small integers in every math mode.
 */
@Tag(Parity.DEVICE_TAG)
class GemmKernelTest {
    @BeforeAll
    static void emulator() {
        Parity.assumeDevice();
    }

    /** M, Kd, Nd, transA, transB */
    static Stream<Arguments> cases() {
        Stream.Builder<Arguments> b = Stream.builder();
        // the last two take the split-K path (few output tiles, Kd >= 512): 2 slices each
        int[][] sizes = {{5, 17, 3}, {65, 33, 70}, {1, 130, 7}, {2, 16, 64}, {2, 700, 5}, {65, 1000, 70}};
        for (int[] s : sizes) {
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    b.add(Arguments.of(s[0], s[1], s[2], ta, tb));
                }
            }
        }
        return b.build();
    }

    static Parity.Op gemm(int m, int kd, int nd, boolean ta, boolean tb, double[] a, double[] bv, double[] c0) {
        return be -> {
            Tensor at = t(be, ta ? Shape.of(kd, m) : Shape.of(m, kd), a);
            Tensor bt = t(be, tb ? Shape.of(nd, kd) : Shape.of(kd, nd), bv);
            Tensor c1 = be.allocate(at.dtype(), Shape.of(m, nd));
            be.fill(c1, Double.NaN); // beta = 0 must not read c
            be.gemm(ta, tb, 1.5, at, bt, 0.0, c1);
            Tensor c2 = t(be, Shape.of(m, nd), c0);
            be.gemm(ta, tb, 1.0, at, bt, -0.5, c2);
            return new Tensor[] {c1, c2};
        };
    }

    @ParameterizedTest
    @MethodSource("cases")
    void floatsMatchTheReference(int m, int kd, int nd, boolean ta, boolean tb) {
        try (Parity p = new Parity()) {
            p.assertParity(gemm(m, kd, nd, ta, tb, floats(1, m * kd, -1, 1), floats(2, kd * nd, -1, 1),
                    floats(3, m * nd, -1, 1)), 1e-5, 2e-5, "gemm " + m + "x" + kd + "x" + nd + " " + ta + " " + tb);
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void smallIntegersAreExactInEveryMathMode(int m, int kd, int nd, boolean ta, boolean tb) {
        for (MathMode mode : MathMode.values()) {
            try (Parity p = new Parity(mode)) {
                p.assertExact(gemm(m, kd, nd, ta, tb, ints(4, m * kd, -5, 5), ints(5, kd * nd, -5, 5),
                        ints(6, m * nd, -8, 8)), mode + " gemm " + m + "x" + kd + "x" + nd + " " + ta + " " + tb);
            }
        }
    }
}
