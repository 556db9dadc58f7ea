package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.cuda.Parity.floats;
import static org.vgg4j.cuda.Parity.t;

import java.util.ArrayList;
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
import org.vgg4j.cuda.CudaBackend.ConvPass;
import org.vgg4j.cuda.ConvKernelTest.Case;

/**
 * The BF16 tensor-core path of {@link CudaBackend}'s convolutions (conv_tc.cu through {@link TensorCoreConv}) against
 * the reference backend run on BF16-rounded operands: exact on small integers, within 1e-5 on reals; which kernels
 * each pass launches, and that {@link CudaBackend#convPath} says so. Runs on the emulated device, and on a GPU in
 * scripts/gpu-check.sh (stages b and h): the reference backend is the oracle on both. The narrow-VGG loss curve in
 * BF16 against FP32 is {@link Bf16TrainingTest}.
 */
@Tag(Parity.DEVICE_TAG)
class TensorCorePathTest {
    static final String TC = "tensor cores";
    static final String V1 = "v1";

    /** Small VGG-like shapes that qualify for every pass; each exercises an edge of the 128x128 tiles. */
    static Stream<Case> cases() {
        return Stream.of(
                new Case(2, 16, 8, 8, 24, 3, 3, 1),    // 3x3 pad 1, N*P*Q = 128 (one M tile), K = 24 a partial N tile
                new Case(1, 8, 7, 7, 8, 3, 3, 1),      // the fewest channels that qualify, N*P*Q = 49
                new Case(2, 16, 5, 5, 136, 1, 1, 0),   // 1x1 (config C), K = 136 one past a tile
                new Case(2, 8, 18, 18, 16, 3, 3, 1));  // backward-filter split-K: N*P*Q = 648 in 2 chunks, the last ragged
    }

    @BeforeAll
    static void device() {
        Parity.assumeDevice();
    }

    /** A driver that records the name of every kernel launched through it. */
    static final class Launches extends ForwardingDriver {
        final List<String> names = new ArrayList<>();

        Launches(Driver inner) {
            super(inner);
        }

        @Override
        public void launch(long stream, Function f, int gx, int gy, int gz, int blockThreads, KernelArgs args) {
            inner.launch(stream, f, gx, gy, gz, blockThreads, args);
            names.add(f.name());
        }

        List<String> take() {
            List<String> out = new ArrayList<>(names);
            names.clear();
            return out;
        }
    }

    /** Outputs of the three passes from host arrays: y (with bias), dx, dw (onto dw0), db (onto db0). */
    static Tensor[] threePasses(Backend be, Case c, double[] x, double[] w, double[] b, double[] dy, double[] dw0,
                                double[] db0) {
        Tensor xt = t(be, c.x(), x);
        Tensor wt = t(be, c.wt(), w);
        Tensor y = be.allocate(xt.dtype(), c.y());
        be.conv2dForward(xt, wt, t(be, Shape.of(c.k()), b), y, c.pad());
        Tensor dyt = t(be, c.y(), dy);
        Tensor dx = be.allocate(xt.dtype(), c.x());
        be.fill(dx, 12345); // must be overwritten
        be.conv2dBackwardData(dyt, wt, dx, c.pad());
        Tensor dw = t(be, c.wt(), dw0);
        Tensor db = t(be, Shape.of(c.k()), db0);
        be.conv2dBackwardFilter(xt, dyt, dw, db, c.pad());
        return new Tensor[] {y, dx, dw, db};
    }

    /** Host operands of {@link #threePasses}: x, w, b, dy, and the dw0, db0 the gradients accumulate onto. */
    record Operands(double[] x, double[] w, double[] b, double[] dy, double[] dw0, double[] db0) {
        /** Small integers drawn with seeds seed + 1 .. seed + 6: exact in bf16 and in every sum. */
        static Operands ints(Case c, long seed) {
            int nx = Parity.size(c.x()), nw = Parity.size(c.wt()), ny = Parity.size(c.y());
            return new Operands(Parity.ints(seed + 1, nx, -4, 4), Parity.ints(seed + 2, nw, -3, 3),
                    Parity.ints(seed + 3, c.k(), -5, 5), Parity.ints(seed + 4, ny, -3, 3),
                    Parity.ints(seed + 5, nw, -2, 2), Parity.ints(seed + 6, c.k(), -2, 2));
        }
    }

    static Tensor[] threePasses(Backend be, Case c, Operands o) {
        return threePasses(be, c, o.x(), o.w(), o.b(), o.dy(), o.dw0(), o.db0());
    }

    static double[][] arrays(Tensor[] ts) {
        double[][] out = new double[ts.length][];
        for (int i = 0; i < ts.length; i++) {
            out[i] = TestTensors.toArray(ts[i]);
        }
        return out;
    }

    static Parity bf16(Launches[] log) {
        return new Parity(MathMode.BF16, true, d -> log[0] = new Launches(d));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void smallIntegersAreExactAndRunOnTheTensorCores(Case c) {
        Operands o = Operands.ints(c, 10);
        Launches[] log = new Launches[1];
        try (Parity p = bf16(log)) {
            for (ConvPass pass : ConvPass.values()) {
                assertEquals(TC, p.dev.convPath(pass, c.x(), c.wt(), c.pad()), pass + " " + c);
            }
            double[][] got = arrays(threePasses(p.dev, c, o));
            double[][] want = arrays(threePasses(p.ref, c, o));
            String[] names = {"y", "dx", "dw", "db"};
            for (int i = 0; i < names.length; i++) {
                Approx.assertExact(want[i], got[i], names[i] + " " + c);
            }
            List<String> launched = log[0].take();
            assertTrue(launched.contains("conv_tc_fwd_bf16") && launched.contains("conv_tc_wgrad_bf16")
                    && launched.contains("conv_tc_wgrad_reduce"), "tensor-core kernels launched: " + launched);
            assertFalse(launched.stream().anyMatch(k -> k.startsWith("conv_fwd") || k.startsWith("conv_bwd")),
                    "no v1 conv kernel: " + launched);
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void realsEqualTheReferenceOnBf16RoundedOperands(Case c) {
        int nx = Parity.size(c.x()), nw = Parity.size(c.wt()), ny = Parity.size(c.y());
        double[] x = floats(21, nx, -1, 1), w = floats(22, nw, -1, 1), b = floats(23, c.k(), -1, 1);
        double[] dy = floats(24, ny, -1, 1), dw0 = floats(25, nw, -1, 1), db0 = floats(26, c.k(), -1, 1);
        Launches[] log = new Launches[1];
        try (Parity p = bf16(log)) {
            double[][] got = arrays(threePasses(p.dev, c, x, w, b, dy, dw0, db0));
            // the tensor cores see bf16 operands; bias, the accumulation onto dw0 and db (a plain sum of dy) stay f32
            double[][] want = arrays(threePasses(p.ref, c, round(x), round(w), b, round(dy), dw0, db0));
            double[][] rawDb = arrays(threePasses(p.ref, c, x, w, b, dy, dw0, db0));
            Approx.assertClose(want[0], got[0], 1e-5, 1e-5, "y " + c);
            Approx.assertClose(want[1], got[1], 1e-5, 1e-5, "dx " + c);
            Approx.assertClose(want[2], got[2], 1e-5, 1e-5, "dw " + c);
            Approx.assertClose(rawDb[3], got[3], 1e-5, 1e-5, "db " + c);
        }
    }

    static double[] round(double[] v) {
        return ConvKernelTest.map(v, ConvKernelTest::bf16);
    }

    /**
     * VGG's first layer: C = 3 runs every pass on the tensor cores, the channels padded to 8 with zeros (it ran forward
     * and backward-filter on v1 before the padding), exactly on small integers.
     */
    @Test
    void aThreeChannelInputRunsOnTheTensorCoresPaddedToEight() {
        Case c = new Case(2, 3, 6, 6, 8, 3, 3, 1);
        Operands o = Operands.ints(c, 30);
        Launches[] log = new Launches[1];
        try (Parity p = bf16(log)) {
            for (ConvPass pass : ConvPass.values()) {
                assertEquals(TC, p.dev.convPath(pass, c.x(), c.wt(), c.pad()), pass.toString());
            }
            Tensor xt = t(p.dev, c.x(), o.x());
            Tensor wt = t(p.dev, c.wt(), o.w());
            Tensor y = p.dev.allocate(xt.dtype(), c.y());
            log[0].take();
            p.dev.conv2dForward(xt, wt, t(p.dev, Shape.of(c.k()), o.b()), y, c.pad());
            assertEquals(List.of("conv_tc_fwd_bf16"), kernels(log[0].take()), "forward");
            Tensor dyt = t(p.dev, c.y(), o.dy());
            Tensor dx = p.dev.allocate(xt.dtype(), c.x());
            log[0].take();
            p.dev.conv2dBackwardData(dyt, wt, dx, c.pad());
            assertEquals(List.of("conv_tc_fwd_bf16"), kernels(log[0].take()), "backward-data");
            p.dev.conv2dBackwardFilter(xt, dyt, t(p.dev, c.wt(), o.dw0()), t(p.dev, Shape.of(c.k()), o.db0()),
                    c.pad());
            assertEquals(List.of("conv_tc_wgrad_bf16"), kernels(log[0].take()), "backward-filter");
            double[][] got = arrays(threePasses(p.dev, c, o));
            double[][] want = arrays(threePasses(p.ref, c, o));
            for (int i = 0; i < 4; i++) {
                Approx.assertExact(want[i], got[i], "output " + i);
            }
        }
    }

    /** conv1_1's shape (C = 3, padded) and one whose backward-filter splits N*P*Q = 648 into chunks. */
    static Stream<Case> fusedCases() {
        return Stream.of(new Case(2, 3, 6, 6, 8, 3, 3, 1), new Case(2, 8, 18, 18, 16, 3, 3, 1));
    }

    /**
     * conv2dBackward on the tensor cores converts dy once (and x once) for both GEMMs -- two conversions where the
     * separate calls make three -- and its dx, dw and db equal those of the two separate calls bit for bit; without
     * dx it runs the weight gradient alone.
     */
    @ParameterizedTest
    @MethodSource("fusedCases")
    void theFusedBackwardConvertsDyOnceAndEqualsTheSeparateCalls(Case c) {
        int nx = Parity.size(c.x()), nw = Parity.size(c.wt()), ny = Parity.size(c.y());
        double[] x = floats(51, nx, -1, 1), w = floats(52, nw, -1, 1), dy = floats(53, ny, -1, 1);
        double[] dw0 = floats(54, nw, -1, 1), db0 = floats(55, c.k(), -1, 1);
        Launches[] log = new Launches[1];
        try (Parity p = bf16(log)) {
            CudaBackend be = p.dev;
            Tensor xt = t(be, c.x(), x), wt = t(be, c.wt(), w), dyt = t(be, c.y(), dy);
            Tensor dx1 = be.allocate(xt.dtype(), c.x()), dw1 = t(be, c.wt(), dw0), db1 = t(be, Shape.of(c.k()), db0);
            Tensor dx2 = be.allocate(xt.dtype(), c.x()), dw2 = t(be, c.wt(), dw0), db2 = t(be, Shape.of(c.k()), db0);
            Tensor dw3 = t(be, c.wt(), dw0), db3 = t(be, Shape.of(c.k()), db0);
            be.fill(dx2, 12345); // must be overwritten
            log[0].take();
            be.conv2dBackwardFilter(xt, dyt, dw1, db1, c.pad());
            be.conv2dBackwardData(dyt, wt, dx1, c.pad());
            List<String> separate = log[0].take();
            be.conv2dBackward(xt, wt, dyt, dx2, dw2, db2, c.pad());
            List<String> fused = log[0].take();
            be.conv2dBackward(xt, wt, dyt, null, dw3, db3, c.pad());
            List<String> noDx = log[0].take();

            assertEquals(3, conversions(separate), "separate calls: x, dy, dy again: " + separate);
            assertEquals(2, conversions(fused), "fused: x and dy once: " + fused);
            assertEquals(List.of("conv_tc_wgrad_bf16", "conv_tc_fwd_bf16"), kernels(fused), "fused GEMMs");
            assertEquals(kernels(separate), kernels(fused), "the same GEMMs");
            assertEquals(List.of("conv_tc_wgrad_bf16"), kernels(noDx), "no dx: the weight gradient alone");
            assertEquals(2, conversions(noDx), "no dx: x and dy");
            Tensor[][] pairs = {{dx1, dx2}, {dw1, dw2}, {db1, db2}, {dw1, dw3}, {db1, db3}};
            String[] names = {"dx", "dw", "db", "dw without dx", "db without dx"};
            for (int i = 0; i < pairs.length; i++) {
                Approx.assertExact(TestTensors.toArray(pairs[i][0]), TestTensors.toArray(pairs[i][1]),
                        names[i] + " " + c);
            }
        }
    }

    private static long conversions(List<String> launched) {
        return launched.stream().filter("nchw_to_nhwc_bf16"::equals).count();
    }

    /** The GEMM kernels of a launch list (not the layout conversions, fills or reductions around them). */
    private static List<String> kernels(List<String> launched) {
        return launched.stream().filter(k -> k.startsWith("conv_fwd") || k.startsWith("conv_bwd")
                || k.equals("conv_tc_fwd_bf16") || k.equals("conv_tc_wgrad_bf16")).toList();
    }

    @Test
    void theReportFollowsTheRule() {
        Shape x16 = Shape.of(2, 16, 8, 8);
        Launches[] log = new Launches[1];
        try (Parity p = bf16(log)) {
            CudaBackend be = p.dev;
            assertEquals(TC, be.convPath(ConvPass.FORWARD, x16, Shape.of(12, 16, 3, 3), 1), "K need not be a multiple of 8");
            Shape x5 = Shape.of(2, 5, 8, 8);
            assertEquals(TC, be.convPath(ConvPass.FORWARD, x5, Shape.of(16, 5, 3, 3), 1), "C = 5 is padded to 8");
            assertEquals(TC, be.convPath(ConvPass.BACKWARD_FILTER, x5, Shape.of(16, 5, 3, 3), 1), "C = 5 is padded");
            assertEquals(V1, be.convPath(ConvPass.BACKWARD_DATA, x16, Shape.of(12, 16, 3, 3), 1), "K = 12");
            assertEquals(V1, be.convPath(ConvPass.BACKWARD_FILTER, x16, Shape.of(12, 16, 3, 3), 1), "K = 12");
            assertEquals(TC, be.convPath(ConvPass.BACKWARD_DATA, Shape.of(2, 5, 8, 8), Shape.of(16, 5, 3, 3), 1),
                    "C need not be a multiple of 8 for backward-data");
            assertEquals(V1, be.convPath(ConvPass.BACKWARD_DATA, x16, Shape.of(16, 16, 3, 1), 0), "R != S");
            assertEquals(V1, be.convPath(ConvPass.BACKWARD_DATA, x16, Shape.of(16, 16, 3, 3), 3), "pad > R - 1");
            assertEquals(TC, be.convPath(ConvPass.BACKWARD_FILTER, x16, Shape.of(16, 16, 3, 1), 0), "any R, S");
        }
        for (MathMode m : new MathMode[] {MathMode.FP32, MathMode.TF32}) {
            try (Parity p = new Parity(m, true, UnaryOperator.identity())) {
                for (ConvPass pass : ConvPass.values()) {
                    assertEquals(V1, p.dev.convPath(pass, x16, Shape.of(16, 16, 3, 3), 1), m + " " + pass);
                }
            }
        }
        try (Parity p = new Parity(MathMode.BF16, false, UnaryOperator.identity())) {
            assertFalse(p.dev.tensorCores());
            for (ConvPass pass : ConvPass.values()) {
                assertEquals(V1, p.dev.convPath(pass, x16, Shape.of(16, 16, 3, 3), 1), "switched off: " + pass);
            }
        }
    }

    @Test
    void thePropertySwitchesTheTensorCoresOffAndRejectsOtherValues() {
        String saved = System.getProperty(TensorCoreConv.PROPERTY);
        try {
            System.setProperty(TensorCoreConv.PROPERTY, "off");
            try (Parity p = new Parity(MathMode.BF16)) {
                assertFalse(p.dev.tensorCores());
            }
            System.setProperty(TensorCoreConv.PROPERTY, "AUTO");
            try (Parity p = new Parity(MathMode.BF16)) {
                assertTrue(p.dev.tensorCores());
            }
            System.setProperty(TensorCoreConv.PROPERTY, "on");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Parity(MathMode.BF16));
            assertEquals("-Dvgg4j.cuda.tensorcores=on is not one of auto, off", e.getMessage());
        } finally {
            if (saved == null) {
                System.clearProperty(TensorCoreConv.PROPERTY);
            } else {
                System.setProperty(TensorCoreConv.PROPERTY, saved);
            }
        }
    }

    /** Scratch buffers are reused: a second identical step allocates only its own tensors; scratch counts as in use. */
    @Test
    void scratchBuffersAreReusedAndCounted() {
        Case c = new Case(2, 16, 8, 8, 24, 3, 3, 1);
        int nx = Parity.size(c.x()), nw = Parity.size(c.wt()), ny = Parity.size(c.y());
        Operands o = Operands.ints(c, 40);
        Launches[] log = new Launches[1];
        try (Parity p = bf16(log)) {
            threePasses(p.dev, c, o);
            long scratch = p.dev.tensorCoreScratchBytes();
            // N,H,W,C bf16 in, K,R,S,C bf16 weights, N,P,Q,K f32 out, the dy copy of backward-filter
            assertTrue(scratch >= 2L * nx + 2L * nw + 4L * ny + 2L * ny, "scratch " + scratch);
            assertTrue(p.dev.deviceBytesInUse() >= scratch, "scratch counts as in use");
            long afterFirst = p.dev.deviceBytesInUse();
            threePasses(p.dev, c, o);
            assertEquals(scratch, p.dev.tensorCoreScratchBytes(), "same shapes, same scratch");
            long tensors = 0; // x, dx; w, dw; y, dy; b, db -- none freed, so each a new block
            for (long elements : new long[] {nx, nx, nw, nw, ny, ny, c.k(), c.k()}) {
                tensors += DeviceAllocator.roundUp(4 * elements);
            }
            assertEquals(afterFirst + tensors, p.dev.deviceBytesInUse(), "the second step adds its tensors only");
            assertEquals(p.dev.deviceBytesInUse(), p.dev.peakDeviceBytes(), "nothing was allocated and dropped");
        }
    }
}
