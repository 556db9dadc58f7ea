package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/** A reusable buffer owned by a layer: reallocated only when the shape or dtype changes. */
final class Slot {
    private final Backend backend;
    private Tensor tensor;

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

    void release() {
        if (tensor != null) {
            backend.free(tensor);
            tensor = null;
        }
    }
}
