package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * A reusable buffer owned by a layer: reallocated only when the shape or dtype changes. A slot that holds an
 * activation that lives one layer at a time (an activation gradient; an output of a network that only evaluates)
 * can instead draw from a network-wide {@link GradientArena} ({@link #shareWith}).
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

    /** From now on {@link #beside} takes its buffers from {@code shared}. */
    void shareWith(GradientArena shared) {
        release();
        arena = shared;
    }

    /** A buffer of {@code shape} (t's dtype) that does not overlap {@code t}: dL/dx beside dy, y beside x. */
    Tensor beside(Tensor t, Shape shape) {
        return arena != null ? arena.beside(t, shape) : get(t.dtype(), shape);
    }

    void release() {
        if (tensor != null) {
            backend.free(tensor);
            tensor = null;
        }
    }
}
