package org.vgg4j.core.tensor;

import org.vgg4j.core.backend.Backend;

/**
 * A shape, a data type and a window into a buffer owned by one backend.
 *
 * <p>A tensor is always dense and row-major (contiguous) inside its buffer, starting at {@link #offset()}
 * elements. Several tensors may view one buffer (all parameters of a network live in one buffer, each layer's
 * weight is a view). A tensor carries no data of its own on the Java side: reading or writing it goes through
 * {@link Backend#copyIn} / {@link Backend#copyOut}, never implicitly.
 */
public final class Tensor {
    private final Backend backend;
    private final DType dtype;
    private final Shape shape;
    private final Object storage;
    private final long offset;

    /** Wraps a backend's storage object; backends reach it through {@code BackendTensors.wrap}. */
    Tensor(Backend backend, DType dtype, Shape shape, Object storage, long offset) {
        this.backend = backend;
        this.dtype = dtype;
        this.shape = shape;
        this.storage = storage;
        this.offset = offset;
    }

    public Backend backend() {
        return backend;
    }

    public DType dtype() {
        return dtype;
    }

    public Shape shape() {
        return shape;
    }

    public int dim(int i) {
        return shape.dim(i);
    }

    public int rank() {
        return shape.rank();
    }

    /** Number of elements. */
    public long size() {
        return shape.size();
    }

    /** The backend's storage object (backends downcast it to their own type). */
    public Object storage() {
        return storage;
    }

    /** Offset of the first element inside the storage, in elements. */
    public long offset() {
        return offset;
    }

    /** A view of {@code shape} starting {@code elementOffset} elements into this tensor; shares the buffer. */
    public Tensor view(long elementOffset, Shape newShape) {
        if (elementOffset < 0 || elementOffset + newShape.size() > size()) {
            throw new IllegalArgumentException("view " + newShape + " at offset " + elementOffset
                    + " does not fit in a tensor of shape " + shape + " (" + size() + " elements)");
        }
        return new Tensor(backend, dtype, newShape, storage, offset + elementOffset);
    }

    /** The same elements under another shape of equal size (no copy). */
    public Tensor reshape(int... dims) {
        Shape s = Shape.of(dims);
        if (s.size() != size()) {
            throw new IllegalArgumentException("cannot reshape " + shape + " (" + size() + " elements) to " + s
                    + " (" + s.size() + " elements)");
        }
        return new Tensor(backend, dtype, s, storage, offset);
    }

    /** True when both tensors view the same storage at the same offset with the same size. */
    public boolean sameMemory(Tensor other) {
        return storage == other.storage && offset == other.offset && size() == other.size();
    }

    @Override
    public String toString() {
        return "Tensor[" + shape + " " + dtype + " on " + backend.name() + "]";
    }
}
