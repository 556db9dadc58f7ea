package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.layers.ReLU;
import org.vgg4j.core.model.Features;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.Approx;
import org.vgg4j.core.testing.TestTensors;

/**
 * Batch norm + ReLU in one call ({@link Backend#batchNormForwardTrainingRelu},
 * {@link Backend#batchNormForwardInferenceRelu}; on the cpu backend the ReLU inside {@link F32BatchNorm}'s
 * normalise loop) against batch norm followed by {@link Backend#reluForward}: BIT FOR BIT, NaN and -0 included,
 * with the same running and saved statistics; then whole networks: {@link Network}'s fused forward and the backward
 * after it against the layers run one by one (unfused). Legend: N batch, C channels, H/W the plane.
 */
final class BatchNormReluFusionTest {
    private static final CpuBackend CPU = new CpuBackend(CpuBackend.Options.defaults());

    @AfterAll
    static void close() {
        CPU.close();
    }

    /**
     * N, C, H, W: C of 1, 3 and 16, batches of 1 and 7, H*W odd, below and above F32Loops.BLOCK (4096), float32 on
     * every shape and float64 (the generic loop) on a few.
     */
    static Stream<Arguments> shapes() {
        int[][] shapes = {{1, 1, 5, 7}, {7, 1, 3, 3}, {1, 3, 13, 17}, {7, 3, 67, 71}, {7, 16, 9, 11}, {1, 16, 3, 5},
            {7, 16, 1, 1}};
        List<Arguments> a = new ArrayList<>();
        for (int[] s : shapes) {
            a.add(Arguments.of(DType.FLOAT32, s));
        }
        a.add(Arguments.of(DType.FLOAT64, shapes[1]));
        a.add(Arguments.of(DType.FLOAT64, shapes[4]));
        return a.stream();
    }

    /**
     * The inputs of one case: x uniform in [-1, 1) with -0 at every 5th element; where C > 1, channel 0 has
     * gamma = 0 and beta = -0 (so that half of its outputs before the ReLU are -0) and channel C-1 a NaN at one
     * element of the last image (all of that channel NaN in training, that one element in inference).
     */
    private record Inputs(Tensor x, Tensor gamma, Tensor beta, double[] runningMean, double[] runningVar) {
        static Inputs of(Backend b, DType dt, int[] s) {
            int c = s[1];
            int n = s[0] * c * s[2] * s[3];
            double[] xv = TestTensors.uniform(c * 100 + s[0], n, -1, 1);
            for (int i = 0; i < n; i += 5) {
                xv[i] = -0.0;
            }
            double[] g = TestTensors.uniform(2, c, 0.5, 2);
            double[] bt = TestTensors.uniform(3, c, -0.5, 0.5);
            if (c > 1) {
                g[0] = 0;
                bt[0] = -0.0;
                xv[n - 1] = Double.NaN; // last image, channel C-1, last pixel
            }
            return new Inputs(TestTensors.of(b, dt, Shape.of(s), xv), TestTensors.of(b, dt, Shape.of(c), g),
                    TestTensors.of(b, dt, Shape.of(c), bt), TestTensors.uniform(5, c, -0.2, 0.2),
                    TestTensors.uniform(6, c, 0.5, 2));
        }
    }

    /** What one training forward wrote: y, running mean and var, saved mean and inverse std, each as doubles. */
    private static List<double[]> training(Backend b, DType dt, Inputs in, int[] s, boolean fused) {
        int c = s[1];
        Tensor y = b.allocate(dt, Shape.of(s));
        b.fill(y, fused ? Double.NaN : 7); // overwritten, not accumulated
        Tensor rm = TestTensors.of(b, dt, Shape.of(c), in.runningMean());
        Tensor rv = TestTensors.of(b, dt, Shape.of(c), in.runningVar());
        Tensor sm = b.allocate(dt, Shape.of(c));
        Tensor si = b.allocate(dt, Shape.of(c));
        if (fused) {
            b.batchNormForwardTrainingRelu(in.x(), in.gamma(), in.beta(), y, rm, rv, sm, si, 0.1, 1e-5);
        } else {
            b.batchNormForwardTraining(in.x(), in.gamma(), in.beta(), y, rm, rv, sm, si, 0.1, 1e-5);
        }
        List<double[]> out = new ArrayList<>();
        out.add(TestTensors.toArray(y));
        if (!fused) {
            b.reluForward(y, y);
            out.add(TestTensors.toArray(y));
        }
        for (Tensor t : new Tensor[] {rm, rv, sm, si}) {
            out.add(TestTensors.toArray(t));
        }
        return out;
    }

    /** y of one inference forward on the running statistics of {@code in}; unfused: before and after the ReLU. */
    private static List<double[]> inference(Backend b, DType dt, Inputs in, int[] s, boolean fused) {
        int c = s[1];
        Tensor y = b.allocate(dt, Shape.of(s));
        b.fill(y, fused ? Double.NaN : 7);
        Tensor rm = TestTensors.of(b, dt, Shape.of(c), in.runningMean());
        Tensor rv = TestTensors.of(b, dt, Shape.of(c), in.runningVar());
        List<double[]> out = new ArrayList<>();
        if (fused) {
            b.batchNormForwardInferenceRelu(in.x(), in.gamma(), in.beta(), y, rm, rv, 1e-5);
        } else {
            b.batchNormForwardInference(in.x(), in.gamma(), in.beta(), y, rm, rv, 1e-5);
            out.add(TestTensors.toArray(y));
            b.reluForward(y, y);
        }
        out.add(TestTensors.toArray(y));
        return out;
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("shapes")
    void fusedEqualsBatchNormThenReluBitForBit(DType dt, int[] s) {
        Inputs in = Inputs.of(CPU, dt, s);
        String what = dt + " " + Shape.of(s);
        List<double[]> unfused = training(CPU, dt, in, s, false);
        List<double[]> fused = training(CPU, dt, in, s, true);
        checkCase(unfused.get(0), unfused.get(1), s, true, what + " training");
        assertSameBits(unfused.get(1), fused.get(0), what + " training y");
        String[] stats = {"running mean", "running var", "saved mean", "saved inverse std"};
        for (int k = 0; k < stats.length; k++) {
            assertSameBits(unfused.get(k + 2), fused.get(k + 1), what + " " + stats[k]);
        }
        List<double[]> eval = inference(CPU, dt, in, s, false);
        checkCase(eval.get(0), eval.get(1), s, false, what + " inference");
        assertSameBits(eval.get(1), inference(CPU, dt, in, s, true).get(0), what + " inference y");
    }

    /**
     * That the case shows what it is meant to: after the ReLU, positive values and zeros; before it, where C > 1, a
     * -0 (made +0 by the ReLU) and NaN (kept) in channel C-1, all of it in training and only there in inference.
     */
    private static void checkCase(double[] pre, double[] post, int[] s, boolean training, String what) {
        int positive = 0;
        int zeros = 0;
        int negativeZeros = 0;
        int nans = 0;
        for (int i = 0; i < pre.length; i++) {
            positive += post[i] > 0 ? 1 : 0;
            zeros += post[i] == 0 ? 1 : 0;
            if (Double.doubleToRawLongBits(pre[i]) == Double.doubleToRawLongBits(-0.0)) {
                negativeZeros++;
                assertEquals(Double.doubleToRawLongBits(0.0), Double.doubleToRawLongBits(post[i]), what + " -0 at " + i);
            }
            if (Double.isNaN(pre[i])) {
                nans++;
                assertTrue(Double.isNaN(post[i]), what + ": the ReLU keeps the NaN at " + i);
            }
        }
        assertTrue(positive > 0 && zeros > 0, what + ": outputs on both sides of 0, " + positive + " and " + zeros);
        if (s[1] > 1) {
            assertTrue(negativeZeros > 0, what + ": -0 before the ReLU");
            assertEquals(training ? s[0] * s[2] * s[3] : 1, nans, what + ": NaNs");
        }
    }

    private static void assertSameBits(double[] want, double[] got, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            long w = Double.doubleToRawLongBits(want[i]);
            long g = Double.doubleToRawLongBits(got[i]);
            assertEquals(w, g, what + ": element " + i + " is " + got[i] + ", expected " + want[i]);
        }
    }

    /** The SPI's default (the reference backend has no fused call) is the two calls, in both modes and dtypes. */
    @ParameterizedTest
    @EnumSource(DType.class)
    void referenceDefaultIsBatchNormThenRelu(DType dt) {
        Backend ref = Backends.reference();
        int[] s = {3, 4, 5, 3};
        Inputs in = Inputs.of(ref, dt, s);
        List<double[]> unfused = training(ref, dt, in, s, false);
        List<double[]> fused = training(ref, dt, in, s, true);
        checkCase(unfused.get(0), unfused.get(1), s, true, dt + " reference training");
        assertSameBits(unfused.get(1), fused.get(0), dt + " reference training y");
        for (int k = 1; k <= 4; k++) {
            assertSameBits(unfused.get(k + 1), fused.get(k), dt + " reference statistic " + k);
        }
        assertSameBits(inference(ref, dt, in, s, false).get(1), inference(ref, dt, in, s, true).get(0),
                dt + " reference inference y");
    }

    /** The Fashion-MNIST network (A_bn at a quarter of the width, no dropout) and a narrower B_bn. */
    static Stream<VggSpec> networks() {
        return Stream.of(
                VggSpec.small(VggConfig.A, 32, 10).withBatchNorm(true).withWidth(0.25).withHidden(256).withDropout(0),
                VggSpec.small(VggConfig.B, 32, 10).withBatchNorm(true).withWidth(0.125).withHidden(24).withDropout(0));
    }

    /**
     * A training step through {@link Network} (every BatchNorm2d + ReLU fused) against the same layers run one by
     * one ({@link FusionSteps}): logits, every parameter gradient and the running statistics bitwise equal; then an
     * evaluation forward (the inference twin) on those statistics likewise.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("networks")
    void networkForwardAndBackwardEqualTheUnfusedLayers(VggSpec spec) {
        try (Network net = Vgg.build(CPU, DType.FLOAT32, spec)) {
            int pairs = 0;
            for (int i = 0; i + 1 < net.layers().size(); i++) {
                boolean pair = net.layers().get(i).layer() instanceof BatchNorm2d
                        && net.layers().get(i + 1).layer() instanceof ReLU;
                assertEquals(pair, net.fusesBatchNormRelu(i), "layer " + i);
                assertFalse(net.fusesRelu(i), "no conv meets a ReLU in a _bn network: layer " + i);
                pairs += pair ? 1 : 0;
            }
            long convs = spec.config().layers().stream().filter(t -> !t.equals("M") && !t.equals("LRN")).count();
            assertEquals(convs, pairs, "fused pairs");
            FusionSteps.initialise(CPU, net);
            Tensor x = TestTensors.random(CPU, DType.FLOAT32, Shape.of(3, 3, 32, 32), 9, -1, 1);
            FusionSteps[] steps = FusionSteps.fusedAndUnfused(net, x, new int[] {1, 7, 4});
            Approx.assertSameBits(steps[1].logits(), steps[0].logits(), "logits");
            Approx.assertSameBits(steps[1].grads(), steps[0].grads(), "parameter gradients");
            Approx.assertSameBits(steps[1].state(), steps[0].state(), "running statistics");
            float[] fusedEval = TestTensors.floats(net.forward(x, false)); // on those running statistics
            Tensor h = x;
            for (NamedLayer nl : net.layers()) {
                h = nl.layer().forward(h, false);
            }
            Approx.assertSameBits(TestTensors.floats(h), fusedEval, "evaluation logits");
        }
    }

    /**
     * featuresAt: a BatchNorm2d's name gives its pre-ReLU output (that pair then runs unfused), the ReLU's name the
     * post-ReLU one, both bitwise what the layers give run one by one.
     */
    @Test
    void featuresAtGivesTheBatchNormsOwnOutput() {
        VggSpec spec = VggSpec.small(VggConfig.A, 32, 10).withBatchNorm(true).withWidth(0.125).withHidden(24);
        try (Network net = Vgg.build(CPU, DType.FLOAT32, spec)) {
            CPU.copyIn(TestTensors.uniform(8, (int) net.params().values().size(), -0.2, 0.2), 0,
                    net.params().values());
            for (ParamStore.Entry e : net.params().entries()) {
                if (e.key().endsWith("running_var")) {
                    CPU.fill(e.value(), 1.0);
                }
            }
            Tensor x = TestTensors.random(CPU, DType.FLOAT32, Shape.of(2, 3, 32, 32), 9, -1, 1);
            List<float[]> each = new ArrayList<>();
            Tensor h = x;
            for (int i = 0; i <= 7; i++) { // features.0 conv, .1 bn, .2 relu, .3 pool, .4 conv, .5 bn, .6 relu, .7 pool
                h = net.layers().get(i).layer().forward(h, false);
                each.add(TestTensors.floats(h));
            }
            assertTrue(net.fusesBatchNormRelu(1) && net.fusesBatchNormRelu(5), "bn1 and bn2 fuse with their ReLUs");
            try (Features f = net.featuresAt(x, "features.1", "features.2", "features.6", "features.7")) {
                Approx.assertSameBits(each.get(1), f.toFloats("features.1"), "bn1 before its ReLU");
                Approx.assertSameBits(each.get(2), f.toFloats("features.2"), "bn1 after its ReLU");
                Approx.assertSameBits(each.get(6), f.toFloats("features.6"), "bn2 after its (fused) ReLU");
                Approx.assertSameBits(each.get(7), f.toFloats("features.7"), "pool2");
                boolean negative = false;
                for (float v : f.toFloats("features.1")) {
                    negative |= v < 0;
                }
                assertTrue(negative, "a pre-ReLU output has negative values");
            }
        }
    }
}
