package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * A reusable buffer owned by a layer: reallocated only when the shape or dtype changes. A slot that holds an
 * activation gradient can instead draw from a network-wide {@link GradientArena} ({@link #shareWith}).
 */
final class Slot {
    private final Backend backend;
    private Tensor tensor;
    private GradientArena arena;

    Slot(Backend backend) {
        this.backend = backend;
    }

    Tensor get(DType dtype, Shape shape) {
        if (tensor == null || !tensor.shape().equals(shape) || tensor.dtype() != dtype) {
            release();
            tensor = backend.allocate(dtype, shape);
        }
        return tensor;
    }

    /** From now on {@link #gradient} takes its buffers from {@code shared}. */
    void shareWith(GradientArena shared) {
        release();
        arena = shared;
    }

    /** A buffer of {@code shape} for dL/dx that does not overlap {@code dy}. */
    Tensor gradient(Tensor dy, Shape shape) {
        return arena != null ? arena.beside(dy, shape) : get(dy.dtype(), shape);
    }

    void release() {
        if (tensor != null) {
            backend.free(tensor);
            tensor = null;
        }
    }
}
