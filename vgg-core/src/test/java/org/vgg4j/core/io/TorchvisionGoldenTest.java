package org.vgg4j.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.model.OnReferenceBackend;

/**
 * Whole-network parity with torchvision (an independent implementation): goldens written by
 * scripts/goldens/make_goldens.py from Debian's python3-torch, loaded into our network on the reference backend.
 * float64 must agree to ~1e-10 relative (normwise per tensor), float32 to ~1e-4.
 */
class TorchvisionGoldenTest extends OnReferenceBackend {
    private static final double WIDTH = 1.0 / 32;
    private static boolean goldenOnly(String key) {
        return key.equals("input") || key.equals("labels") || key.equals("logits") || key.equals("loss")
                || key.startsWith("grad.") || key.startsWith("after.");
    }

    private static double[] values(Tensor t) {
        double[] d = new double[Math.toIntExact(t.size())];
        t.backend().copyOut(t, d, 0);
        return d;
    }

    /** max |a - e| <= tol * max |e|: relative to the tensor's scale, so tiny elements do not dominate. */
    static void assertCloseNormwise(double[] expected, double[] actual, double tol, String what) {
        assertCloseNormwise(expected, actual, tol, 0, what);
    }

    /** As above with the scale at least {@code floor}, for tensors whose exact value is 0. */
    static void assertCloseNormwise(double[] expected, double[] actual, double tol, double floor, String what) {
        assertEquals(expected.length, actual.length, what + " length");
        double scale = floor;
        double err = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            err = Math.max(err, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(scale > 0, what + " is all zeros: the golden would not test anything");
        assertTrue(err <= tol * scale, what + ": max error " + err + " exceeds " + tol + " x max |expected| " + scale);
    }

    private static double maxAbs(double[] v) {
        return Arrays.stream(v).map(Math::abs).max().orElse(0);
    }

    private void checkCase(String file, VggSpec spec, DType dtype, double tol) throws IOException {
        try (Safetensors.Reader g = Safetensors.open(CheckpointTest.golden(file));
             Network net = Vgg.build(reference, dtype, spec)) {
            Checkpoint.load(net, g, new Checkpoint.Options(dtype != DType.FLOAT64, TorchvisionGoldenTest::goldenOnly));
            double[] input = g.readDoubles("input");
            int[] labels = Arrays.stream(g.readLongs("labels")).mapToInt(Math::toIntExact).toArray();
            Tensor x = reference.allocate(dtype, Shape.of(labels.length, 3, spec.inputSize(), spec.inputSize()));
            reference.copyIn(input, 0, x);
            net.params().zeroGrads();
            Tensor logits = net.forward(x, true);
            assertCloseNormwise(g.readDoubles("logits"), values(logits), tol, file + " logits");
            SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(reference);
            double l = loss.forwardBackward(logits, labels);
            double want = g.readDoubles("loss")[0];
            assertEquals(want, l, tol * Math.abs(want), file + " loss");
            net.backward(loss.gradient());
            int grads = 0;
            for (ParamStore.Entry e : net.params().entries()) {
                if (e.grad() != null) {
                    // A conv bias followed by BatchNorm has gradient exactly 0 (BN subtracts the batch mean), so both
                    // sides are rounding noise (~1e-15): measure it against its weight's gradient instead.
                    String layer = e.key().substring(0, e.key().lastIndexOf('.'));
                    boolean biasBeforeBn = spec.batchNorm() && e.key().endsWith(".bias") && layer.startsWith("features.")
                            && net.params().get(layer + ".running_mean") == null;
                    double floor = biasBeforeBn ? maxAbs(g.readDoubles("grad." + layer + ".weight")) : 0;
                    assertCloseNormwise(g.readDoubles("grad." + e.key()), values(e.grad()), tol, floor, file + " grad of " + e.key());
                    grads++;
                } else {
                    // BatchNorm running statistics after the training-mode forward
                    assertCloseNormwise(g.readDoubles("after." + e.key()), values(e.value()), tol, file + " " + e.key() + " after the step");
                }
            }
            assertEquals(g.tensors().keySet().stream().filter(k -> k.startsWith("grad.")).count(), grads, "every gradient compared");
            loss.release();
            reference.free(x);
        }
    }

    private static VggSpec narrow(VggConfig c, boolean bn) {
        return new VggSpec(c, bn, 10, 32, WIDTH, 16, 0.0, 0);
    }

    @Test
    void configurationDMatchesTorchvisionInFloat64() throws IOException {
        checkCase("D_narrow.safetensors", narrow(VggConfig.D, false), DType.FLOAT64, 1e-10);
    }

    @Test
    void configurationDWithBatchNormMatchesTorchvisionInFloat64() throws IOException {
        checkCase("D_bn_narrow.safetensors", narrow(VggConfig.D, true), DType.FLOAT64, 1e-10);
    }

    @Test
    void configurationALrnMatchesTorchvisionInFloat64() throws IOException {
        checkCase("A_LRN_narrow.safetensors", narrow(VggConfig.A_LRN, false), DType.FLOAT64, 1e-10);
    }

    @Test
    void float32MatchesTorchvisionToSinglePrecision() throws IOException {
        checkCase("D_narrow.safetensors", narrow(VggConfig.D, false), DType.FLOAT32, 1e-4);
        checkCase("D_bn_narrow.safetensors", narrow(VggConfig.D, true), DType.FLOAT32, 1e-4);
        checkCase("A_LRN_narrow.safetensors", narrow(VggConfig.A_LRN, false), DType.FLOAT32, 1e-4);
    }

    @Test
    void torchvisionsOwnVgg11BnStateDictGivesTorchvisionsLogits() throws IOException {
        try (Network net = Vgg.build(reference, DType.FLOAT32, CheckpointTest.VGG11_BN_NARROW);
             Safetensors.Reader io = Safetensors.open(CheckpointTest.golden("vgg11_bn_narrow_io.safetensors"))) {
            Checkpoint.load(net, CheckpointTest.golden("vgg11_bn_narrow_state_dict.safetensors"));
            double[] input = io.readDoubles("input");
            Tensor x = reference.allocate(DType.FLOAT32, Shape.of(input.length / (3 * 32 * 32), 3, 32, 32));
            reference.copyIn(input, 0, x);
            assertCloseNormwise(io.readDoubles("logits"), values(net.forward(x, false)), 1e-5, "vgg11_bn eval logits");
            reference.free(x);
        }
    }

    @Test
    void buildInitAndOneStepAreBitwiseRepeatable() {
        VggSpec spec = new VggSpec(VggConfig.D, false, 10, 32, 0.125, 32, 0.5, 77); // dropout on: masks repeat too
        double[][] runs = new double[2][];
        for (int run = 0; run < 2; run++) {
            try (Network net = Vgg.build(reference, DType.FLOAT32, spec); Sgd sgd = new Sgd(net.params(), Sgd.Settings.PAPER)) {
                Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 2024);
                Tensor x = reference.allocate(DType.FLOAT32, Shape.of(2, 3, 32, 32));
                double[] in = new double[2 * 3 * 32 * 32];
                java.util.SplittableRandom r = new java.util.SplittableRandom(5);
                for (int i = 0; i < in.length; i++) {
                    in[i] = r.nextDouble() - 0.5;
                }
                reference.copyIn(in, 0, x);
                SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(reference);
                Tensor logits = net.forward(x, true);
                loss.forwardBackward(logits, new int[] {3, 7});
                net.backward(loss.gradient());
                sgd.step(0.01);
                runs[run] = values(net.params().values());
                loss.release();
                reference.free(x);
            }
        }
        double[] before;
        try (Network fresh = Vgg.build(reference, DType.FLOAT32, spec)) {
            Initializers.initialize(fresh, Initializers.Scheme.GLOROT_UNIFORM, 2024);
            before = values(fresh.params().values());
        }
        assertArrayEquals(runs[0], runs[1]);
        assertTrue(!Arrays.equals(before, runs[0]), "the step changed the parameters");
    }
}
