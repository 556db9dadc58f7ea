package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.core.testing.Approx.assertClose;

import java.util.stream.Stream;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * Whole training steps of narrow VGGs (forward, softmax cross-entropy, backward, momentum SGD) on the {@code cpu}
 * backend against the {@code reference} backend, and the {@code cpu} backend's determinism: the same seed twice
 * gives bitwise the same parameters. Legend: N batch, C channels, H/W 32x32 input, F classes.
 */
final class CpuTrainingStepTest {
    private static final int BATCH = 4;
    private static final int STEPS = 3;

    /** What a run leaves behind: the loss of every step and the final parameters. */
    private record Run(double[] losses, double[] params) {
    }

    static Stream<Arguments> cases() {
        // A: plain VGG-11; B with BatchNorm; A-LRN: the paper's LRN network. All at 1/8 width, 32x32, 10 classes.
        VggSpec a = VggSpec.small(VggConfig.A, 32, 10).withWidth(0.125).withHidden(24).withSeed(5);
        VggSpec bBn = VggSpec.small(VggConfig.B, 32, 10).withWidth(0.125).withHidden(24).withBatchNorm(true).withSeed(6);
        VggSpec lrn = VggSpec.small(VggConfig.A_LRN, 32, 10).withWidth(0.125).withHidden(24).withSeed(7);
        return Stream.of(
                Arguments.of(a, DType.FLOAT64), Arguments.of(a, DType.FLOAT32),
                Arguments.of(bBn, DType.FLOAT64), Arguments.of(bBn, DType.FLOAT32),
                Arguments.of(lrn, DType.FLOAT32));
    }

    private static Run train(Backend backend, VggSpec spec, DType dt, long seed) {
        try (Network net = Vgg.build(backend, dt, spec)) {
            ParamStore ps = net.params();
            // He-scaled uniform weights and small biases, drawn on the host so both backends get the same values
            for (ParamStore.Entry e : ps.entries()) {
                double bound = e.spec().role() == org.vgg4j.core.layers.ParamSpec.Role.WEIGHT
                        ? Math.sqrt(6.0 / e.spec().fanIn()) : 0.05;
                if (e.key().endsWith("running_var")) {
                    backend.fill(e.value(), 1.0);
                    continue;
                }
                if (e.key().endsWith("running_mean") || e.key().endsWith("num_batches_tracked")) {
                    continue;
                }
                if (e.key().endsWith(".weight") && e.spec().shape().rank() == 1) { // BatchNorm gamma
                    backend.copyIn(TestTensors.uniform(seed ^ e.key().hashCode(), (int) e.value().size(), 0.8, 1.2), 0, e.value());
                    continue;
                }
                backend.copyIn(TestTensors.uniform(seed ^ e.key().hashCode(), (int) e.value().size(), -bound, bound), 0, e.value());
            }
            Tensor x = TestTensors.random(backend, dt, Shape.of(BATCH, 3, 32, 32), seed + 1, -1, 1);
            int[] labels = {3, 9, 0, 3};
            SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(backend);
            double[] losses = new double[STEPS];
            try (Sgd sgd = new Sgd(ps, Sgd.Settings.PAPER)) {
                for (int s = 0; s < STEPS; s++) {
                    Tensor logits = net.forward(x, true);
                    losses[s] = loss.forwardBackward(logits, labels);
                    net.backward(loss.gradient());
                    sgd.step(0.05);
                }
            }
            double[] params = TestTensors.toArray(ps.values());
            loss.release();
            backend.free(x);
            return new Run(losses, params);
        }
    }

    @ParameterizedTest
    @MethodSource("cases")
    void trainingStepsMatchReference(VggSpec spec, DType dt) {
        Backend ref = Backends.create("reference");
        Backend cpu = Backends.create("cpu");
        Run r = train(ref, spec, dt, 11);
        Run c = train(cpu, spec, dt, 11);
        cpu.close();
        // float64: both backends are exact to ~1e-15 per op; float32: rounding of ~1e-7 per op, amplified over three
        // steps through ~10 layers (and BatchNorm's division by small standard deviations)
        double rtol = dt == DType.FLOAT64 ? 1e-9 : 2e-3;
        double atol = dt == DType.FLOAT64 ? 1e-11 : 2e-4;
        assertClose(r.losses, c.losses, rtol, atol, spec.name() + " " + dt + " losses");
        assertClose(r.params, c.params, rtol, atol, spec.name() + " " + dt + " parameters after " + STEPS + " steps");
        // the steps did something: the parameters moved and the loss changed
        assertTrue(r.losses[0] != r.losses[STEPS - 1], "loss should change over the steps");
    }

    @ParameterizedTest
    @MethodSource("cases")
    void sameSeedGivesBitwiseEqualSteps(VggSpec spec, DType dt) {
        Backend one = Backends.create("cpu");
        Backend two = Backends.create("cpu");
        Run a = train(one, spec, dt, 23);
        Run b = train(two, spec, dt, 23);
        one.close();
        two.close();
        assertArrayEquals(a.losses, b.losses, 0.0, spec.name() + " " + dt + " losses bitwise");
        assertEquals(a.params.length, b.params.length);
        for (int i = 0; i < a.params.length; i++) {
            if (Double.doubleToRawLongBits(a.params[i]) != Double.doubleToRawLongBits(b.params[i])) {
                throw new AssertionError(spec.name() + " " + dt + " parameter " + i + " differs between two runs: "
                        + a.params[i] + " vs " + b.params[i]);
            }
        }
    }
}
