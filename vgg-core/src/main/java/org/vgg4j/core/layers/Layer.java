package org.vgg4j.core.layers;

import java.util.List;
import java.util.Map;

import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * One step of a network: a forward/backward pair.
 *
 * <p>A layer holds its parameters and their gradients (views into the network's single buffers, given by
 * {@link #bind}), and an explicit slot for what backward needs. Outputs and input gradients live in buffers the
 * layer owns and reuses while the batch shape stays the same: the tensor a call returns is valid until the next
 * call of the same method. Inside a {@code Network}, input gradients come from a {@link GradientArena} shared by
 * all layers: a returned dL/dx is then valid only until the backward of the layer before has consumed it.
 */
public interface Layer {

    /** Short kind for logs and {@code info}: "conv3-64", "relu", "maxpool", "fc-4096", ... */
    String describe();

    /** The shape this layer produces for an input of {@code input} (N,...); throws naming the value and limit. */
    Shape outputShape(Shape input);

    /** Parameters and state this layer owns, in torchvision's order; empty for parameter-free layers. */
    default List<ParamSpec> params() {
        return List.of();
    }

    /**
     * Gives the layer its parameter views ({@code values}) and gradient views ({@code grads}, absent for
     * {@link ParamSpec.Role#STATE}), keyed by {@link ParamSpec#name()}.
     */
    default void bind(Map<String, Tensor> values, Map<String, Tensor> grads) {
    }

    /** Multiply-accumulates of one forward pass for one example with input shape (1,...). */
    default long macs(Shape input) {
        return 0;
    }

    /** y = f(x). {@code training} selects dropout and batch statistics. */
    Tensor forward(Tensor x, boolean training);

    /**
     * Given dL/dy of the last forward, accumulates parameter gradients and returns dL/dx (or null when
     * {@link #setNeedsInputGradient} switched it off). May overwrite {@code dy}.
     */
    Tensor backward(Tensor dy);

    /**
     * From now on take the buffer for dL/dx from {@code arena}, shared by all layers of a network, instead of a
     * buffer of this layer's own. Layers without an input-gradient buffer ignore it.
     */
    default void shareGradientBuffers(GradientArena arena) {
    }

    /**
     * From now on forward writes its output into {@code arena}'s buffer beside its input, for a network that only
     * evaluates (each output is dead once the next layer has read it; {@code Network#shareOutputBuffers}). Default:
     * nothing (a layer whose output is its input, or a view of it).
     */
    default void shareOutputBuffers(GradientArena arena) {
    }

    /** The first layer of a network need not compute dL/dx; default true. */
    default void setNeedsInputGradient(boolean needed) {
    }

    /** Releases the buffers this layer owns (not its parameters). */
    default void release() {
    }
}
