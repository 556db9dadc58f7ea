package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * ReLU, in place: it overwrites its input with the output (as torchvision's {@code ReLU(inplace=True)}), and its
 * backward overwrites dy. The layer before must not need its own output for backward (conv, linear and BN
 * do not), which holds in every VGG.
 */
public final class ReLU implements Layer {
    private final Backend backend;
    private Tensor savedOutput; // (N,...): backward needs y > 0

    public ReLU(Backend backend) {
        this.backend = backend;
    }

    @Override
    public String describe() {
        return "relu";
    }

    @Override
    public Shape outputShape(Shape input) {
        return input;
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        backend.reluForward(x, x);
        savedOutput = x;
        return x;
    }

    /**
     * Forward when the layer before already applied this ReLU ({@link Conv2d#forwardRelu},
     * {@link BatchNorm2d#forwardRelu}): y is that output, max(x, 0) already, kept for backward as {@link #forward}
     * keeps its own; returns y.
     */
    public Tensor forwardFused(Tensor y) {
        savedOutput = y;
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        backend.reluBackward(savedOutput, dy, dy);
        return dy;
    }

    @Override
    public void release() {
        savedOutput = null;
    }
}
