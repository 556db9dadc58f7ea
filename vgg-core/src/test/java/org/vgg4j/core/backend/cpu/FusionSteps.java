package org.vgg4j.core.backend.cpu;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.ParamSpec;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * TEST ONLY: one training step through {@link Network} (its fused layer pairs) and the same step through its layers
 * one by one (each {@link Layer#forward}, no fusion), from the same parameters and running statistics, for the
 * fusion tests to compare bit for bit.
 *
 * @param logits  (N, classes) of the training forward
 * @param grads   every parameter gradient, in {@link ParamStore#grads()} order
 * @param state   the running statistics after the forward, in {@link ParamStore#state()} order (empty: none)
 */
record FusionSteps(float[] logits, float[] grads, float[] state) {

    /** Every trained parameter uniform in [-0.2, 0.2), seeded by its name; running variances 1, running means kept. */
    static void initialise(Backend b, Network net) {
        for (ParamStore.Entry e : net.params().entries()) {
            if (e.spec().role() == ParamSpec.Role.STATE) {
                if (e.key().endsWith("running_var")) {
                    b.fill(e.value(), 1.0);
                }
                continue;
            }
            b.copyIn(TestTensors.uniform(e.key().hashCode(), (int) e.value().size(), -0.2, 0.2), 0, e.value());
        }
    }

    /**
     * The step through the network, then, from the running statistics it started from and zero gradients, the
     * layer-by-layer step: {fused, unfused}. The network's gradients and running statistics are the unfused step's
     * afterwards.
     */
    static FusionSteps[] fusedAndUnfused(Network net, Tensor x, int[] labels) {
        Backend b = net.backend();
        SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(b);
        float[] start = state(net);
        b.fill(net.params().grads(), 0);
        Tensor logits = net.forward(x, true);
        FusionSteps fused = step(net, loss, logits, labels);

        if (start.length > 0) {
            b.copyIn(start, 0, net.params().state());
        }
        b.fill(net.params().grads(), 0);
        Tensor h = x;
        for (NamedLayer nl : net.layers()) {
            h = nl.layer().forward(h, true);
        }
        return new FusionSteps[] {fused, step(net, loss, h, labels)};
    }

    /** The logits, then the loss's backward through the network, what it left. */
    private static FusionSteps step(Network net, SoftmaxCrossEntropy loss, Tensor logits, int[] labels) {
        float[] l = TestTensors.floats(logits);
        loss.forwardBackward(logits, labels);
        net.backward(loss.gradient());
        return new FusionSteps(l, TestTensors.floats(net.params().grads()), state(net));
    }

    private static float[] state(Network net) {
        Tensor s = net.params().state();
        return s == null ? new float[0] : TestTensors.floats(s);
    }
}
