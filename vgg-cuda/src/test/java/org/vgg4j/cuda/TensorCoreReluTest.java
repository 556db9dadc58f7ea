package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.cuda.Parity.floats;
import static org.vgg4j.cuda.Parity.t;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.ConvKernelTest.Case;
import org.vgg4j.cuda.TensorCorePathTest.Launches;
import org.vgg4j.core.testing.TestTensors;
import org.vgg4j.core.testing.Approx;

/**
 * The cuda backend's convolution with its ReLU ({@link CudaBackend#conv2dForwardRelu}, and the memo-taking
 * {@code conv2dForward(.., relu = true, memo)} that Conv2d calls): on the tensor-core path the ReLU is
 * conv_tc_fwd_bf16's epilogue, so the forward launches the kernels of conv2dForward alone -- relu_fwd no more --
 * and y is bit for bit conv2dForward then reluForward, with and without bias, with and without a memo, NaN kept as
 * NaN (stricter than the SPI, which lets a fused ReLU turn it into 0). Off the tensor cores (FP32, TF32, BF16 with
 * them switched off) it is conv then relu_fwd, as before. Legend: N batch, C in, K out, H/W in.
 */
@Tag(Parity.DEVICE_TAG)
class TensorCoreReluTest {
    /** conv1_1's C = 3 (padded to 8), K = 5 odd (single stores; backward-filter on v1), a 1x1 with K one past a tile. */
    static Stream<Case> cases() {
        return Stream.of(new Case(2, 3, 6, 6, 8, 3, 3, 1), new Case(1, 8, 7, 7, 5, 3, 3, 1),
                new Case(2, 16, 5, 5, 136, 1, 1, 0), new Case(2, 8, 18, 18, 16, 3, 3, 1));
    }

    @BeforeAll
    static void device() {
        Parity.assumeDevice();
    }

    /** A layer's forward operands on one backend; b null for a convolution without bias. */
    private record Operands(Case c, Tensor x, Tensor w, Tensor b) {
        static Operands of(Backend be, Case c, double[] x, long seed, boolean bias) {
            return new Operands(c, t(be, c.x(), x), t(be, c.wt(), floats(seed + 2, Parity.size(c.wt()), -1, 1)),
                    bias ? t(be, Shape.of(c.k()), floats(seed + 3, c.k(), -1, 1)) : null);
        }

        static Operands of(Backend be, Case c, long seed, boolean bias) {
            return of(be, c, floats(seed + 1, Parity.size(c.x()), -1, 1), seed, bias);
        }

        Tensor y(Backend be) {
            Tensor y = be.allocate(DType.FLOAT32, c.y());
            be.fill(y, 12345); // must be overwritten
            return y;
        }
    }

    /** The three ways of one forward with its ReLU: y and the kernels each launched. */
    private record Forwards(float[] separate, float[] fused, float[] memo, List<String> separateLaunches,
                            List<String> fusedLaunches, List<String> memoLaunches) {
        static Forwards run(CudaBackend be, Launches log, Operands o) {
            int pad = o.c().pad();
            Tensor y1 = o.y(be), y2 = o.y(be), y3 = o.y(be);
            log.take();
            be.conv2dForward(o.x(), o.w(), o.b(), y1, pad);
            be.reluForward(y1, y1);
            List<String> separate = log.take();
            be.conv2dForwardRelu(o.x(), o.w(), o.b(), y2, pad);
            List<String> fused = log.take();
            List<String> withMemo;
            try (Backend.ConvMemo memo = be.newConvMemo()) {
                log.take();
                be.conv2dForward(o.x(), o.w(), o.b(), y3, pad, true, memo);
                withMemo = log.take();
            }
            return new Forwards(TestTensors.floats(y1), TestTensors.floats(y2), TestTensors.floats(y3), separate, fused, withMemo);
        }
    }



    private static List<String> without(List<String> launched, String kernel) {
        List<String> out = new ArrayList<>(launched);
        assertTrue(out.remove(kernel), kernel + " in " + launched);
        return out;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void theFusedReluEqualsConvThenReluBitwiseWithOneLaunchFewer(Case c) {
        Launches[] log = new Launches[1];
        try (Parity p = TensorCorePathTest.bf16(log)) {
            CudaBackend be = p.dev;
            assertEquals(TensorCorePathTest.TC, be.convPath(CudaBackend.ConvPass.FORWARD, c.x(), c.wt(), c.pad()));
            for (boolean bias : new boolean[] {true, false}) {
                String what = c + (bias ? " with bias" : " without bias");
                Forwards f = Forwards.run(be, log[0], Operands.of(be, c, 10, bias));
                int zeros = 0, positive = 0;
                for (float v : f.separate()) {
                    zeros += v == 0 ? 1 : 0;
                    positive += v > 0 ? 1 : 0;
                }
                assertTrue(zeros > 0 && positive > 0, what + ": the ReLU clips some outputs and keeps others ("
                        + zeros + " zeros, " + positive + " positive)");
                Approx.assertSameBits(f.separate(), f.fused(), what + " fused");
                Approx.assertSameBits(f.separate(), f.memo(), what + " fused, with a memo");

                assertEquals(f.separateLaunches().size() - 1, f.fusedLaunches().size(),
                        what + ": one launch fewer, " + f.separateLaunches() + " -> " + f.fusedLaunches());
                assertEquals(without(f.separateLaunches(), "relu_fwd"), f.fusedLaunches(), what + ": no relu_fwd");
                assertEquals(f.fusedLaunches(), f.memoLaunches(), what + ": the same kernels with a memo");
                assertTrue(f.fusedLaunches().contains("conv_tc_fwd_bf16"), f.fusedLaunches().toString());
            }
        }
    }

    /** The memo of a fused forward holds x as before: its backward converts dy only, as in TensorCoreMemoTest. */
    @Test
    void theFusedForwardStillKeepsXInTheMemo() {
        Case c = new Case(2, 8, 18, 18, 16, 3, 3, 1);
        Launches[] log = new Launches[1];
        try (Parity p = TensorCorePathTest.bf16(log); Backend.ConvMemo memo = p.dev.newConvMemo()) {
            CudaBackend be = p.dev;
            assertNotNull(memo);
            Operands o = Operands.of(be, c, 40, true);
            Tensor y = o.y(be);
            be.conv2dForward(o.x(), o.w(), o.b(), y, c.pad(), true, memo);
            assertEquals(2L * 2 * 18 * 18 * 8, be.convMemoBytes(), "x kept (N,H,W,C bf16)");
            log[0].take();
            be.conv2dBackward(o.x(), o.w(), y, be.allocate(DType.FLOAT32, c.x()),
                    be.allocate(DType.FLOAT32, c.wt()), null, c.pad(), memo);
            List<String> launched = log[0].take();
            assertEquals(1, launched.stream().filter("nchw_to_nhwc_bf16"::equals).count(), "dy only: " + launched);
        }
    }

    /**
     * A NaN in x: the outputs it reaches are NaN after the fused ReLU too (the epilogue keeps NaN as relu_fwd does),
     * bit for bit conv then reluForward.
     */
    @Test
    void aNanStaysNanBitwiseAsConvThenRelu() {
        Case c = new Case(2, 8, 7, 7, 16, 3, 3, 1);
        double[] x = floats(51, Parity.size(c.x()), -1, 1);
        x[3 * 7 + 4] = Double.NaN; // image 0, channel 0, row 3, column 4: reaches a 3x3 patch of every out-channel
        Launches[] log = new Launches[1];
        try (Parity p = TensorCorePathTest.bf16(log)) {
            Forwards f = Forwards.run(p.dev, log[0], Operands.of(p.dev, c, x, 50, true));
            int nans = 0;
            for (float v : f.fused()) {
                nans += Float.isNaN(v) ? 1 : 0;
            }
            assertEquals(9 * c.k(), nans, "a 3x3 patch of each of the K out-channels of image 0 is NaN");
            Approx.assertSameBits(f.separate(), f.fused(), "fused, NaN in x");
            Approx.assertSameBits(f.separate(), f.memo(), "fused with a memo, NaN in x");
        }
    }

    /** Off the tensor cores the ReLU stays relu_fwd after the v1 convolution: the same launches, the same bits. */
    @Test
    void offTheTensorCoresItIsConvThenRelu() {
        Case c = new Case(2, 8, 7, 7, 16, 3, 3, 1);
        record Setting(MathMode math, boolean tensorCores) {
        }
        for (Setting s : new Setting[] {new Setting(MathMode.FP32, true), new Setting(MathMode.TF32, true),
                new Setting(MathMode.BF16, false)}) {
            Launches[] log = new Launches[1];
            try (Parity p = new Parity(s.math(), s.tensorCores(), d -> log[0] = new Launches(d))) {
                Forwards f = Forwards.run(p.dev, log[0], Operands.of(p.dev, c, 60, true));
                String what = s.toString();
                assertEquals(List.of("conv_fwd_" + s.math().suffix, "relu_fwd"), f.separateLaunches(), what);
                assertEquals(f.separateLaunches(), f.fusedLaunches(), what);
                assertEquals(f.separateLaunches(), f.memoLaunches(), what + " (no memo: null)");
                Approx.assertSameBits(f.separate(), f.fused(), what);
                Approx.assertSameBits(f.separate(), f.memo(), what);
            }
        }
    }
}
