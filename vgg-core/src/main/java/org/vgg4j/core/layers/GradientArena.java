package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Two buffers that every layer of a network shares for its activation gradient dL/dx, instead of one buffer per
 * layer. Backward visits layers in reverse and a layer's dL/dx is dead once the layer before it has consumed it,
 * so at any moment only two are live: the incoming dy and the outgoing dx. A layer asks for a dx buffer
 * {@link #beside} its dy and gets the buffer dy is not in (ReLU and Flatten pass dy through in place, so "the
 * other one" is decided by storage, not by alternation). This is what keeps VGG-16's step inside PyTorch's
 * memory: per-layer dx buffers would cost the sum of all activation sizes, these cost twice the largest.
 *
 * <p>A network that only evaluates shares a second one for its layers' outputs, on the same grounds in forward
 * order: a layer's output is dead once the next layer has read it ({@code Network#shareOutputBuffers}).
 *
 * <p>A network creates and releases them; only this package's layers draw from them.
 */
public final class GradientArena {
    private final Backend backend;
    private final Tensor[] buffers = new Tensor[2]; // each (capacity), grown on demand

    public GradientArena(Backend backend) {
        this.backend = backend;
    }

    /** A tensor of {@code shape} for dL/dx that does not overlap {@code dy}; valid until the next call but one. */
    Tensor beside(Tensor dy, Shape shape) {
        int use = buffers[0] != null && buffers[0].storage() == dy.storage() ? 1 : 0;
        Tensor buffer = buffers[use];
        DType dtype = dy.dtype();
        if (buffer == null || buffer.size() < shape.size() || buffer.dtype() != dtype) {
            if (buffer != null) {
                backend.free(buffer);
            }
            buffer = backend.allocate(dtype, Shape.of(Math.toIntExact(shape.size())));
            buffers[use] = buffer;
        }
        return buffer.view(0, shape);
    }

    /** Frees both buffers; the next {@link #beside} allocates again. */
    public void release() {
        for (int i = 0; i < buffers.length; i++) {
            if (buffers[i] != null) {
                backend.free(buffers[i]);
                buffers[i] = null;
            }
        }
    }
}
