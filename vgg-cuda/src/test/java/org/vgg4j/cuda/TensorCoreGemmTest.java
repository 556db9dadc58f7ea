package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.cuda.Parity.floats;
import static org.vgg4j.cuda.Parity.ints;
import static org.vgg4j.cuda.Parity.t;

import java.util.List;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.Approx;
import org.vgg4j.core.testing.TestTensors;
import org.vgg4j.cuda.TensorCorePathTest.Launches;

/**
 * The fully connected layer's three BF16 GEMMs on the tensor-core kernels ({@link TensorCoreGemm} through
 * {@link CudaBackend#gemm}) against the reference backend on BF16-rounded operands: exact on small integers, within
 * 1e-5 on reals, alpha and beta as the SPI defines them (beta = 0 ignores even a NaN in c, beta = 1 accumulates as
 * a Linear layer's dw); which kernels each call launches and that {@link CudaBackend#gemmPath} says so.
 */
@Tag(Parity.DEVICE_TAG)
class TensorCoreGemmTest {
    static final String TC = TensorCorePathTest.TC;
    static final String V1 = TensorCorePathTest.V1;

    /** One gemm(transA, transB): op(a) (M,Kd), op(b) (Kd,Nd), c (M,Nd). */
    record Call(boolean transA, boolean transB, int m, int kd, int nd) {
        Shape a() {
            return transA ? Shape.of(kd, m) : Shape.of(m, kd);
        }

        Shape b() {
            return transB ? Shape.of(nd, kd) : Shape.of(kd, nd);
        }

        Shape c() {
            return Shape.of(m, nd);
        }
    }

    /** The Linear layer's patterns at sizes that qualify, each at an edge of the 128 x 128 tiles. */
    static Stream<Call> calls() {
        return Stream.of(
                new Call(false, true, 6, 24, 20),     // forward y = x w^T: batch 6, 24 in, 20 out (ragged N tile)
                new Call(false, true, 136, 16, 8),    // forward, M = 136: two row tiles
                new Call(false, false, 6, 16, 20),    // backward-data dx = dy w: 16 out-features, 20 in
                new Call(false, false, 5, 136, 12),   // backward-data, Kd = 136 deeper than a stage several times
                new Call(true, false, 16, 6, 24),     // backward-filter dw = dy^T x: 6 rows summed
                new Call(true, false, 8, 600, 16));   // backward-filter, Kd = 600 rows (split-K where planned)
    }

    @BeforeAll
    static void device() {
        Parity.assumeDevice();
    }

    /** c after gemm(alpha, beta) on {@code be}, c starting at c0. */
    static double[] gemm(Backend be, Call k, double alpha, double[] a, double[] b, double beta, double[] c0) {
        Tensor c = t(be, k.c(), c0);
        be.gemm(k.transA(), k.transB(), alpha, t(be, k.a(), a), t(be, k.b(), b), beta, c);
        return TestTensors.toArray(c);
    }

    static Parity bf16(Launches[] log) {
        return TensorCorePathTest.bf16(log);
    }

    @ParameterizedTest
    @MethodSource("calls")
    void smallIntegersAreExactForEveryAlphaAndBeta(Call k) {
        int na = Parity.size(k.a()), nb = Parity.size(k.b()), nc = Parity.size(k.c());
        double[] a = ints(61, na, -4, 4), b = ints(62, nb, -3, 3), c0 = ints(63, nc, -5, 5);
        Launches[] log = new Launches[1];
        try (Parity p = bf16(log)) {
            assertEquals(TC, p.dev.gemmPath(k.transA(), k.transB(), k.a(), k.b()), k.toString());
            // the Linear layer's (1, 0) and (1, 1), and others that are exact in f32 on these integers
            double[][] alphaBeta = {{1, 0}, {1, 1}, {0.5, 2}, {-2, -0.5}};
            for (double[] ab : alphaBeta) {
                log[0].take();
                double[] got = gemm(p.dev, k, ab[0], a, b, ab[1], c0);
                List<String> launched = log[0].take();
                double[] want = gemm(p.ref, k, ab[0], a, b, ab[1], c0);
                Approx.assertExact(want, got, k + " alpha " + ab[0] + " beta " + ab[1]);
                String gemmKernel = k.transA() ? "conv_tc_wgrad_bf16" : "conv_tc_fwd_bf16";
                assertTrue(launched.contains(gemmKernel) && launched.stream().noneMatch(n -> n.startsWith("gemm_")),
                        k + " launched " + launched);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("calls")
    void realsEqualTheReferenceOnBf16RoundedOperands(Call k) {
        int na = Parity.size(k.a()), nb = Parity.size(k.b()), nc = Parity.size(k.c());
        double[] a = floats(71, na, -1, 1), b = floats(72, nb, -1, 1), c0 = floats(73, nc, -1, 1);
        try (Parity p = new Parity(MathMode.BF16, true, UnaryOperator.identity())) {
            double[] got = gemm(p.dev, k, 1, a, b, k.transA() ? 1 : 0, c0);
            double[] want = gemm(p.ref, k, 1, TensorCorePathTest.round(a), TensorCorePathTest.round(b),
                    k.transA() ? 1 : 0, c0);
            Approx.assertClose(want, got, 1e-5, 1e-5, k.toString());
        }
    }

    /** beta = 0: the old c is never read, a NaN there included (the forward writes c directly). */
    @Test
    void betaZeroIgnoresANanInC() {
        for (Call k : new Call[] {new Call(false, true, 4, 8, 8), new Call(false, false, 4, 8, 8),
                new Call(true, false, 8, 4, 8)}) {
            double[] a = ints(81, Parity.size(k.a()), -3, 3), b = ints(82, Parity.size(k.b()), -3, 3);
            double[] nan = new double[Parity.size(k.c())];
            java.util.Arrays.fill(nan, Double.NaN);
            try (Parity p = new Parity(MathMode.BF16, true, UnaryOperator.identity())) {
                for (double alpha : new double[] {1, 3}) {
                    Approx.assertExact(gemm(p.ref, k, alpha, a, b, 0, new double[nan.length]),
                            gemm(p.dev, k, alpha, a, b, 0, nan), k + " alpha " + alpha);
                }
            }
        }
    }

    /** Sizes off the channel step, both operands transposed, other math: v1 (gemm.cu), and the report says so. */
    @Test
    void otherCallsRunGemmCuAndTheReportFollowsTheRule() {
        Launches[] log = new Launches[1];
        try (Parity p = bf16(log)) {
            CudaBackend be = p.dev;
            assertEquals(TC, be.gemmPath(false, true, Shape.of(3, 16), Shape.of(5, 16)), "M, Nd any in forward");
            assertEquals(V1, be.gemmPath(false, true, Shape.of(3, 12), Shape.of(5, 12)), "Kd = 12");
            assertEquals(TC, be.gemmPath(false, false, Shape.of(3, 16), Shape.of(16, 5)), "M, Nd any in bwd-data");
            assertEquals(V1, be.gemmPath(false, false, Shape.of(3, 12), Shape.of(12, 5)), "Kd = 12");
            assertEquals(TC, be.gemmPath(true, false, Shape.of(3, 16), Shape.of(3, 8)), "Kd any in bwd-filter");
            assertEquals(V1, be.gemmPath(true, false, Shape.of(3, 12), Shape.of(3, 8)), "M = 12");
            assertEquals(V1, be.gemmPath(true, false, Shape.of(3, 16), Shape.of(3, 12)), "Nd = 12");
            assertEquals(V1, be.gemmPath(true, true, Shape.of(16, 8), Shape.of(8, 16)), "both transposed");
            assertThrows(IllegalArgumentException.class, () -> be.gemmPath(false, true, Shape.of(2, 2, 2),
                    Shape.of(2, 2)));

            Call k = new Call(false, true, 3, 12, 5);
            double[] a = ints(91, Parity.size(k.a()), -3, 3), b = ints(92, Parity.size(k.b()), -3, 3);
            log[0].take();
            Approx.assertExact(gemm(p.ref, k, 1, a, b, 0, new double[15]), gemm(be, k, 1, a, b, 0, new double[15]),
                    "v1");
            assertEquals(List.of("gemm_bf16"), log[0].take().stream().filter(n -> n.startsWith("gemm_")
                    || n.startsWith("conv_tc_")).toList(), "Kd = 12 runs gemm.cu");
        }
        for (MathMode m : new MathMode[] {MathMode.FP32, MathMode.TF32}) {
            try (Parity p = new Parity(m, true, UnaryOperator.identity())) {
                assertEquals(V1, p.dev.gemmPath(false, true, Shape.of(8, 16), Shape.of(8, 16)), m.toString());
            }
        }
        try (Parity p = new Parity(MathMode.BF16, false, UnaryOperator.identity())) {
            assertEquals(V1, p.dev.gemmPath(false, true, Shape.of(8, 16), Shape.of(8, 16)), "switched off");
        }
    }
}
