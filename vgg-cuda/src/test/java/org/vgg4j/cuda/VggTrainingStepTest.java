package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.core.testing.TestTensors.toArray;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.Approx;
import org.vgg4j.core.testing.TestTensors;

/**
 * Whole training steps of narrow VGGs (org.vgg4j.core.model.Vgg + Initializers + Sgd, the same code a user runs) on
 * the emulated CUDA device and on the reference backend, from the same initial parameters and batch: loss, logits,
 * gradients and the updated parameters must agree to float32 rounding. Two steps, so the second runs on parameters
 * the first one updated (momentum included) and dropout draws new masks.
 */
@Tag(Parity.DEVICE_TAG)
class VggTrainingStepTest {
    @BeforeAll
    static void emulator() {
        Parity.assumeDevice();
    }

    /** [backend][0 logits, 1 grads after step 1, 2 params after step 2, 3 losses] */
    private static double[][][] twoSteps(VggSpec spec, Parity p) {
        Backend[] bs = {p.ref, p.dev};
        double[][][] out = new double[2][][];
        int batch = 2;
        double[] x = TestTensors.uniform(3, batch * 3 * spec.inputSize() * spec.inputSize(), -1, 1);
        int[] labels = {1, 4};
        for (int i = 0; i < 2; i++) {
            Backend be = bs[i];
            try (Network net = Vgg.build(be, DType.FLOAT32, spec); Sgd sgd = new Sgd(net.params(), Sgd.Settings.PAPER)) {
                Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 42);
                Tensor xt = TestTensors.of(be, DType.FLOAT32, Shape.of(batch, 3, spec.inputSize(), spec.inputSize()), x);
                SoftmaxCrossEntropy ce = new SoftmaxCrossEntropy(be);
                double[] losses = new double[2];
                out[i] = new double[4][];
                for (int step = 0; step < 2; step++) {
                    Tensor logits = net.forward(xt, true);
                    if (step == 0) {
                        out[i][0] = toArray(logits);
                    }
                    losses[step] = ce.forwardBackward(logits, labels);
                    net.backward(ce.gradient());
                    if (step == 0) {
                        out[i][1] = toArray(net.params().grads());
                    }
                    sgd.step(0.01);
                }
                out[i][2] = toArray(net.params().values());
                out[i][3] = losses;
                ce.release();
            }
        }
        return out;
    }

    private static void assertSameTraining(VggSpec spec) {
        try (Parity p = new Parity()) {
            double[][][] r = twoSteps(spec, p);
            String what = spec.name();
            Approx.assertClose(r[0][3], r[1][3], 1e-5, 1e-6, what + " losses of steps 1 and 2");
            Approx.assertClose(r[0][0], r[1][0], 1e-4, 1e-5, what + " logits");
            Approx.assertClose(r[0][1], r[1][1], 1e-3, 1e-5, what + " gradients of step 1");
            Approx.assertClose(r[0][2], r[1][2], 1e-4, 1e-6, what + " parameters after 2 steps");
            double moved = 0;
            for (double g : r[1][1]) {
                moved += g * g;
            }
            assertTrue(moved > 1e-8, what + ": gradients are non-trivial (sum of squares " + moved + ")");
        }
    }

    @Test
    void vggAWithDropout() {
        assertSameTraining(new VggSpec(VggConfig.A, false, 5, 32, 1.0 / 16, 16, 0.5, 7));
    }

    @Test
    void vggALrnAndC() {
        assertSameTraining(new VggSpec(VggConfig.A_LRN, false, 5, 32, 1.0 / 16, 16, 0.5, 8));
        assertSameTraining(new VggSpec(VggConfig.C, false, 5, 32, 1.0 / 16, 16, 0.0, 9));
    }

    @Test
    void vggDWithBatchNorm() {
        assertSameTraining(new VggSpec(VggConfig.D, true, 5, 32, 1.0 / 16, 16, 0.5, 10));
    }
}
