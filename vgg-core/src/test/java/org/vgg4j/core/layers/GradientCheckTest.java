package org.vgg4j.core.layers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.core.testing.Approx.assertClose;
import static org.vgg4j.core.testing.Approx.assertExact;
import static org.vgg4j.core.testing.TestTensors.dot;
import static org.vgg4j.core.testing.TestTensors.of;
import static org.vgg4j.core.testing.TestTensors.toArray;
import static org.vgg4j.core.testing.TestTensors.uniform;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.DoubleSupplier;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.reference.ReferenceBackend;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.GradientCheck;
import org.vgg4j.core.testing.TestTensors;

/**
 * Float64 central-difference gradient checks of every layer, and of whole tiny VGGs, on the reference backend.
 *
 * <p>For a layer y = f(x; theta) the scalar loss is L = sum(y * r) for a fixed random r, so dL/dy = r and the
 * analytic gradients are what backward(r) returns (dL/dx) and accumulates (dL/dtheta). Both are compared with
 * (L(v + eps) - L(v - eps)) / (2 eps) for every element (or a seeded sample of 200) of x and of each parameter.
 * With eps = 1e-6 in float64 the numerical derivative is good to ~1e-9, so a relative tolerance of 1e-6 catches
 * any wrong term. Inputs avoid kinks: ReLU inputs stay 0.05 away from 0, max-pool inputs are distinct and at least
 * 0.01 apart.
 *
 * <p>Legend: N batch, C in-channels, K out-channels, H/W input, F features.
 */
final class GradientCheckTest {
    private static final DType F64 = DType.FLOAT64;
    private static final double EPS = 1e-6;
    private static final double RTOL = 1e-6;
    private static final double ATOL = 1e-8;
    /**
     * Rounding noise of a central difference through a whole network, |error| ~ ulp(L) * (operations) / eps, measured
     * up to 5e-9 (a conv bias in front of BatchNorm, whose true gradient is exactly 0).
     */
    private static final double NET_ATOL = 2e-8;
    /** Elements checked per tensor; smaller tensors are checked entirely. */
    private static final int SAMPLE = 200;

    private final Backend be = new ReferenceBackend();

    // ================================================================ layers one by one

    @Test
    void conv3x3Pad1OddSizesBatch2() {
        checkConv(2, 3, 3, 1, Shape.of(2, 2, 5, 7));
    }

    @Test
    void conv1x1Pad0() {
        checkConv(3, 2, 1, 0, Shape.of(2, 3, 4, 5));
    }

    @Test
    void conv3x3Valid() {
        checkConv(2, 3, 3, 0, Shape.of(2, 2, 6, 5));
    }

    @Test
    void conv5x5ValidOddSizes() {
        checkConv(2, 4, 5, 0, Shape.of(3, 2, 7, 9));
    }

    private void checkConv(int c, int k, int kernel, int pad, Shape in) {
        checkLayer("conv" + kernel + " pad " + pad + " " + c + "->" + k + " on " + in,
                new Conv2d(be, c, k, kernel, pad), in, uniform(10 + kernel, (int) in.size(), -1, 1), true, () -> { });
    }

    @Test
    void relu() {
        Shape in = Shape.of(2, 3, 4, 5);
        // in place: the input is overwritten by every forward, so the harness re-copies it each time
        checkLayer("relu", new ReLU(be), in, TestTensors.awayFromZero(20, (int) in.size(), -1, 1, 0.05), true, () -> { });
    }

    @Test
    void maxPoolEvenSizes() {
        Shape in = Shape.of(2, 3, 4, 6);
        checkLayer("maxpool even", new MaxPool2d(be), in, TestTensors.distinct(30, (int) in.size(), 0.01), true, () -> { });
    }

    @Test
    void maxPoolOddSizes() {
        Shape in = Shape.of(2, 2, 5, 7);
        checkLayer("maxpool odd", new MaxPool2d(be), in, TestTensors.distinct(31, (int) in.size(), 0.01), true, () -> { });
    }

    @Test
    void lrnPaperSettings() {
        Shape in = Shape.of(2, 7, 3, 3);
        checkLayer("lrn paper", new LocalResponseNorm(be), in, uniform(40, (int) in.size(), -3, 3), true, () -> { });
    }

    @Test
    void lrnLargeAlphaSoTheCrossChannelTermMatters() {
        Shape in = Shape.of(2, 7, 2, 3);
        checkLayer("lrn size 5 alpha 2", new LocalResponseNorm(be, 5, 2.0, 0.75, 1.0), in,
                uniform(41, (int) in.size(), -2, 2), true, () -> { });
        checkLayer("lrn size 4 (asymmetric window) alpha 1.5", new LocalResponseNorm(be, 4, 1.5, 0.6, 1.0), in,
                uniform(42, (int) in.size(), -2, 2), true, () -> { });
    }

    @Test
    void linear() {
        Shape in = Shape.of(3, 7);
        checkLayer("linear 7->5", new Linear(be, 7, 5), in, uniform(50, 21, -1, 1), true, () -> { });
    }

    @Test
    void dropoutTrainingWithAFixedMask() {
        Shape in = Shape.of(3, 40);
        Dropout d = new Dropout(be, 0.4, 1234);
        // the mask is keyed by the training position, which stays put: every evaluation of the loss sees one mask
        double[] dx = checkLayer("dropout", d, in, uniform(60, 120, -1, 1), true, () -> d.setMaskKey(0, 0, 1));
        int dropped = 0;
        for (double v : dx) {
            dropped += v == 0.0 ? 1 : 0;
        }
        assertTrue(dropped > 20 && dropped < 100, "a p = 0.4 mask should drop about 48 of 120, dropped " + dropped);
    }

    @Test
    void flatten() {
        Shape in = Shape.of(2, 3, 2, 2);
        checkLayer("flatten", new Flatten(), in, uniform(70, 24, -1, 1), true, () -> { });
    }

    @Test
    void batchNormTraining() {
        Shape in = Shape.of(3, 2, 3, 2);
        checkLayer("batchnorm", new BatchNorm2d(be, 2), in, uniform(80, (int) in.size(), -2, 3), true, () -> { });
    }

    @Test
    void globalAvgPool() {
        Shape in = Shape.of(2, 3, 3, 5);
        checkLayer("global average pool", new GlobalAvgPool(be), in, uniform(90, (int) in.size(), -1, 1), true, () -> { });
    }

    @Test
    void softmaxCrossEntropy() {
        Tensor logits = of(be, F64, Shape.of(3, 5), uniform(100, 15, -3, 3));
        int[] labels = {4, 0, 2};
        SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(be);
        loss.forwardBackward(logits, labels);
        double[] analytic = toArray(loss.gradient());
        int[] all = GradientCheck.all(logits.size());
        double[] numeric = GradientCheck.numeric(logits, all, EPS, () -> loss.forwardBackward(logits, labels));
        assertClose(numeric, analytic, RTOL, ATOL, "dloss/dlogits");
        assertNonTrivial(analytic, "dloss/dlogits");
    }

    // ================================================================ the harness for one layer

    /**
     * Checks dL/dx and dL/dtheta of {@code layer} at input {@code xHost} of shape {@code in}; returns the analytic
     * dL/dx. {@code beforeForward} runs before every forward (to set a dropout layer's mask key).
     */
    private double[] checkLayer(String what, Layer layer, Shape in, double[] xHost, boolean training,
                                Runnable beforeForward) {
        Network net = null;
        if (!layer.params().isEmpty()) {
            // only a Network hands a layer its parameter and gradient views
            int[] d = in.dims();
            net = new Network("t", be, F64, Shape.of(Arrays.copyOfRange(d, 1, d.length)),
                    List.of(new NamedLayer("l", layer)));
            layer.setNeedsInputGradient(true); // the Network switched it off for its first layer
            randomise(net.params(), 7);
        }
        Tensor x0 = of(be, F64, in, xHost);  // the point of the check: the numeric derivative perturbs this one
        Tensor x = be.allocate(F64, in);     // what the layer sees: an in-place layer may overwrite it
        Shape outShape = layer.outputShape(in);
        double[] r = uniform(1000, (int) outShape.size(), -1, 1);
        DoubleSupplier loss = () -> {
            be.copy(x0, x);
            beforeForward.run();
            return dot(toArray(layer.forward(x, training)), r);
        };

        if (net != null) {
            net.params().zeroGrads();
        }
        loss.getAsDouble();
        double[] dxAnalytic = toArray(layer.backward(of(be, F64, outShape, r)));
        Map<String, double[]> gradAnalytic = new LinkedHashMap<>();
        if (net != null) {
            for (ParamStore.Entry e : net.params().entries()) {
                if (e.grad() != null) {
                    gradAnalytic.put(e.key(), toArray(e.grad()));
                }
            }
        }

        int[] xi = GradientCheck.sample(x0.size(), SAMPLE, 1);
        assertClose(GradientCheck.numeric(x0, xi, EPS, loss), GradientCheck.at(dxAnalytic, xi), RTOL, ATOL,
                what + ": dL/dx");
        assertNonTrivial(dxAnalytic, what + ": dL/dx");
        if (net != null) {
            assertTrue(!gradAnalytic.isEmpty(), what + " has trained parameters");
            for (ParamStore.Entry e : net.params().entries()) {
                if (e.grad() == null) {
                    continue; // running statistics: state, not trained
                }
                double[] analytic = gradAnalytic.get(e.key());
                int[] pi = GradientCheck.sample(e.value().size(), SAMPLE, 2);
                assertClose(GradientCheck.numeric(e.value(), pi, EPS, loss), GradientCheck.at(analytic, pi), RTOL, ATOL,
                        what + ": dL/d" + e.key());
                assertNonTrivial(analytic, what + ": dL/d" + e.key());
            }
        }
        return dxAnalytic;
    }

    /**
     * Trained parameters uniform in [-a, a] with a = sqrt(6 / fanIn) for weights (keeps activations of order 1
     * through a stack of ReLUs), BatchNorm's gamma in [0.5, 1.5], other biases in [-0.1, 0.1]; running variance 1.
     */
    private void randomise(ParamStore params, long seed) {
        long s = seed;
        for (ParamStore.Entry e : params.entries()) {
            int n = (int) e.value().size();
            ParamSpec spec = e.spec();
            double[] v;
            if (spec.role() == ParamSpec.Role.WEIGHT) {
                double a = Math.sqrt(6.0 / spec.fanIn());
                v = uniform(s++, n, -a, a);
            } else if (spec.role() == ParamSpec.Role.STATE) {
                v = uniform(s++, n, 1, 1);
                if (spec.name().equals("running_mean")) {
                    v = new double[n];
                }
            } else if (spec.name().equals("weight")) {
                v = uniform(s++, n, 0.5, 1.5);
            } else {
                v = uniform(s++, n, -0.1, 0.1);
            }
            be.copyIn(v, 0, e.value());
        }
    }

    /** A gradient that is all zeros would pass any comparison: make sure the check had something to check. */
    private static void assertNonTrivial(double[] g, String what) {
        double ss = 0;
        for (double v : g) {
            ss += v * v;
        }
        assertTrue(ss > 1e-12, what + " is (almost) zero everywhere: the check would be vacuous");
    }

    // ================================================================ whole networks

    /** A tiny A: convs 4-8-16-16-32-32-32-32 at 32x32, FC 32 -> 8 -> 8 -> 3. Dropout 0.5, with a fixed mask. */
    @Test
    void tinyVggA() {
        checkNetwork(VggSpec.small(VggConfig.A, 32, 3).withWidth(1.0 / 16).withHidden(8), 2, 4);
    }

    @Test
    void tinyVggAWithBatchNorm() {
        checkNetwork(VggSpec.small(VggConfig.A, 32, 3).withWidth(1.0 / 16).withHidden(8).withBatchNorm(true)
                .withDropout(0), 2, 4);
    }

    @Test
    void tinyVggALrn() {
        checkNetwork(VggSpec.small(VggConfig.A_LRN, 32, 3).withWidth(1.0 / 16).withHidden(8), 2, 4);
    }

    /** A tiny C, for its 1x1 convolutions. */
    @Test
    void tinyVggC() {
        checkNetwork(VggSpec.small(VggConfig.C, 32, 4).withWidth(1.0 / 32).withHidden(6).withDropout(0), 2, 3);
    }

    /**
     * Softmax cross-entropy of the network's logits; dL/dparam from Network.backward compared with central
     * differences at {@code perTensor} elements (first, last, random) of every trained tensor, plus its two
     * largest-gradient elements (in a net this narrow many units are dead or dropped, so many gradients are 0).
     */
    private void checkNetwork(VggSpec spec, int batch, int perTensor) {
        try (Network net = Vgg.build(be, F64, spec)) {
            randomise(net.params(), 3);
            Shape in = Shape.of(batch, 3, spec.inputSize(), spec.inputSize());
            Tensor x = of(be, F64, in, uniform(5, (int) in.size(), -1, 1));
            int[] labels = new int[batch];
            for (int i = 0; i < batch; i++) {
                labels[i] = (2 * i + 1) % spec.numClasses();
            }
            List<Dropout> dropouts = new ArrayList<>();
            for (NamedLayer nl : net.layers()) {
                if (nl.layer() instanceof Dropout d) {
                    dropouts.add(d);
                }
            }
            Set<String> cancelledByBatchNorm = new HashSet<>();
            for (int i = 0; i + 1 < net.layers().size(); i++) {
                if (net.layers().get(i).layer() instanceof Conv2d && net.layers().get(i + 1).layer() instanceof BatchNorm2d) {
                    cancelledByBatchNorm.add(net.layers().get(i).name() + ".bias");
                }
            }
            SoftmaxCrossEntropy ce = new SoftmaxCrossEntropy(be);
            DoubleSupplier loss = () -> {
                dropouts.forEach(d -> d.setMaskKey(0, 0, 1));
                return ce.forwardBackward(net.forward(x, true), labels);
            };

            net.params().zeroGrads();
            loss.getAsDouble();
            net.backward(ce.gradient());
            for (ParamStore.Entry e : net.params().entries()) {
                if (e.grad() == null) {
                    continue;
                }
                double[] analytic = toArray(e.grad());
                int[] idx = GradientCheck.sample(e.value().size(), perTensor, e.key().hashCode());
                idx = GradientCheck.concat(idx, GradientCheck.largest(analytic, 2));
                assertClose(GradientCheck.numeric(e.value(), idx, EPS, loss), GradientCheck.at(analytic, idx), RTOL,
                        NET_ATOL, spec.name() + ": dL/d" + e.key());
                if (cancelledByBatchNorm.contains(e.key())) {
                    // BN subtracts each channel's batch mean, so a constant added before it changes nothing
                    assertEquals(0.0, Math.sqrt(be.sumOfSquares(e.grad())), 1e-12, spec.name() + ": dL/d" + e.key());
                } else {
                    assertNonTrivial(analytic, spec.name() + ": dL/d" + e.key());
                }
            }
        }
    }

    /** Parameter gradients accumulate over backward calls (the SPI's +=) until ParamStore.zeroGrads clears them. */
    @Test
    void parameterGradientsAccumulateUntilZeroed() {
        VggSpec spec = VggSpec.small(VggConfig.A, 32, 3).withWidth(1.0 / 16).withHidden(8).withBatchNorm(true);
        try (Network net = Vgg.build(be, F64, spec)) {
            randomise(net.params(), 4);
            Tensor x = of(be, F64, Shape.of(2, 3, 32, 32), uniform(6, 2 * 3 * 32 * 32, -1, 1));
            int[] labels = {0, 2};
            SoftmaxCrossEntropy ce = new SoftmaxCrossEntropy(be);
            Runnable pass = () -> {
                net.setTrainingPosition(0, 0, 1); // the same dropout masks in both passes
                ce.forwardBackward(net.forward(x, true), labels);
                net.backward(ce.gradient());
            };
            net.params().zeroGrads();
            pass.run();
            double[] once = toArray(net.params().grads());
            assertNonTrivial(once, "gradient of one pass");
            pass.run();
            double[] twice = toArray(net.params().grads());
            double[] doubled = new double[once.length];
            for (int i = 0; i < once.length; i++) {
                doubled[i] = 2 * once[i]; // g + g is exact in floating point, and the second pass repeats the first
            }
            assertExact(doubled, twice, "gradients after two passes");
            net.params().zeroGrads();
            assertEquals(0.0, be.sumOfSquares(net.params().grads()), 0.0, "after zeroGrads");
            pass.run();
            assertExact(once, toArray(net.params().grads()), "a pass after zeroGrads equals the first");
        }
    }
}
