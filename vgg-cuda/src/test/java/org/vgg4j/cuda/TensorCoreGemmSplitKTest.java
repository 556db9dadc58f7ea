package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.cuda.Parity.floats;
import static org.vgg4j.cuda.Parity.ints;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.testing.Approx;
import org.vgg4j.cuda.CudaBackend.SplitK;
import org.vgg4j.cuda.TensorCoreGemmTest.Call;

/**
 * The split-K of the fully connected layer's forward and backward-data GEMMs on the tensor cores
 * ({@link TensorCoreGemm#productSplit}, through {@link CudaBackend#gemm}): on a device that reports a chosen number
 * of multiprocessors (the plan depends on it; the emulator's own count is nominal), one slice runs conv_tc_fwd_bf16,
 * more run conv_tc_wgrad_bf16 in Kd chunks and splitk_gemm_epilogue. Each is within the tolerance of
 * {@link TensorCoreGemmTest} of the reference on bf16-rounded operands (exact on small integers, every alpha and
 * beta), for 1 slice, 2 even slices and 3 uneven ones (Kd = 1000: neither a multiple of the chunk nor of the
 * kernel's depth step 32), and two runs are equal bit for bit. The plan itself: {@link SplitKPlanTest}. Legend:
 * M rows, Kd depth, Nd columns.
 */
@Tag(Parity.DEVICE_TAG)
class TensorCoreGemmSplitKTest {
    /** A driver reporting {@code multiprocessors}, recording each launch as "kernel zN" (N its grid's z). */
    static final class Sized extends ForwardingDriver {
        private final int multiprocessors;
        final List<String> launches = new ArrayList<>();

        Sized(Driver inner, int multiprocessors) {
            super(inner);
            this.multiprocessors = multiprocessors;
        }

        @Override
        public int multiprocessorCount() {
            return multiprocessors;
        }

        @Override
        public void launch(long stream, Function f, int gx, int gy, int gz, int blockThreads, KernelArgs args) {
            inner.launch(stream, f, gx, gy, gz, blockThreads, args);
            launches.add(f.name() + " z" + gz);
        }

        List<String> take() {
            List<String> out = new ArrayList<>(launches);
            launches.clear();
            return out;
        }
    }

    /** A call, the multiprocessors the device reports, and the slices that gives. */
    record Case(Call call, int multiprocessors, int splits) {
    }

    /**
     * M = 16, Nd = 136: 2 output tiles. 1 multiprocessor (a target of 2 blocks) leaves them unsplit; 2 split
     * Kd = 1024 into 2 chunks of 512; 4 split Kd = 1000 into 352 + 352 + 296.
     */
    static Stream<Case> cases() {
        List<Case> out = new ArrayList<>();
        for (boolean transB : new boolean[] {true, false}) { // FORWARD y = x w^T, BACKWARD_DATA dx = dy w
            out.add(new Case(new Call(false, transB, 16, 1024, 136), 1, 1));
            out.add(new Case(new Call(false, transB, 16, 1024, 136), 2, 2));
            out.add(new Case(new Call(false, transB, 16, 1000, 136), 4, 3));
        }
        return out.stream();
    }

    @BeforeAll
    static void device() {
        Parity.assumeDevice();
    }

    private static Parity sized(int multiprocessors, Sized[] driver) {
        return new Parity(MathMode.BF16, true, d -> driver[0] = new Sized(d, multiprocessors));
    }

    /** The plan's slices, and the kernels that many slices launch. */
    private static void assertLaunches(Case c, List<String> launched) {
        Call k = c.call();
        assertEquals(c.splits(), TensorCoreGemm.productSplit(c.multiprocessors(), k.m(), k.kd(), k.nd()).splits(),
                "the plan of " + c);
        if (c.splits() == 1) {
            assertTrue(launched.contains("conv_tc_fwd_bf16 z1") && launched.stream().noneMatch(
                    n -> n.startsWith("conv_tc_wgrad_bf16")), c + " launched " + launched);
        } else {
            assertTrue(launched.contains("conv_tc_wgrad_bf16 z" + c.splits())
                    && launched.contains("splitk_gemm_epilogue z1")
                    && launched.stream().noneMatch(n -> n.startsWith("conv_tc_fwd_bf16")), c + " launched " + launched);
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void realsEqualTheReferenceOnBf16RoundedOperandsAndTwoRunsBitwise(Case c) {
        Call k = c.call();
        double[] a = floats(101, Parity.size(k.a()), -1, 1), b = floats(102, Parity.size(k.b()), -1, 1);
        double[] c0 = floats(103, Parity.size(k.c()), -1, 1);
        Sized[] driver = new Sized[1];
        try (Parity p = sized(c.multiprocessors(), driver)) {
            driver[0].take();
            double[] got = TensorCoreGemmTest.gemm(p.dev, k, 1, a, b, 0, c0);
            assertLaunches(c, driver[0].take());
            double[] again = TensorCoreGemmTest.gemm(p.dev, k, 1, a, b, 0, c0);
            double[] want = TensorCoreGemmTest.gemm(p.ref, k, 1, TensorCorePathTest.round(a),
                    TensorCorePathTest.round(b), 0, c0);
            Approx.assertClose(want, got, 1e-5, 1e-5, c.toString());
            for (int i = 0; i < got.length; i++) {
                assertEquals(Double.doubleToRawLongBits(got[i]), Double.doubleToRawLongBits(again[i]),
                        c + ": element " + i + " differs between two runs: " + got[i] + ", " + again[i]);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void smallIntegersAreExactForEveryAlphaAndBeta(Case c) {
        Call k = c.call();
        double[] a = ints(111, Parity.size(k.a()), -4, 4), b = ints(112, Parity.size(k.b()), -3, 3);
        double[] c0 = ints(113, Parity.size(k.c()), -5, 5);
        Sized[] driver = new Sized[1];
        try (Parity p = sized(c.multiprocessors(), driver)) {
            for (double[] ab : new double[][] {{1, 0}, {1, 1}, {0.5, 2}, {-2, -0.5}}) {
                driver[0].take();
                double[] got = TensorCoreGemmTest.gemm(p.dev, k, ab[0], a, b, ab[1], c0);
                assertLaunches(c, driver[0].take());
                Approx.assertExact(TensorCoreGemmTest.gemm(p.ref, k, ab[0], a, b, ab[1], c0), got,
                        c + " alpha " + ab[0] + " beta " + ab[1]);
            }
        }
    }

    /** The split-K workspace the backend keeps holds the slices: splits x M x Nd floats. */
    @Test
    void theSlicesGoToTheSplitKWorkspace() {
        Call k = new Call(false, true, 16, 1000, 136);
        Sized[] driver = new Sized[1];
        try (Parity p = sized(4, driver)) {
            TensorCoreGemmTest.gemm(p.dev, k, 1, new double[Parity.size(k.a())], new double[Parity.size(k.b())], 0,
                    new double[Parity.size(k.c())]);
            assertEquals(4L * 3 * 16 * 136, p.dev.splitKWorkspaceBytes());
            assertEquals(new SplitK(3, 352), p.dev.tensorCoreProductSplit(16, 1000, 136));
        }
    }
}
