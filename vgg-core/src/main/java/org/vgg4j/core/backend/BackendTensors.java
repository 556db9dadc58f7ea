package org.vgg4j.core.backend;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * For backends only: how a {@link Backend} makes the {@link Tensor} of a storage object it owns. Users get tensors
 * from {@link Backend#allocate}. Tensor's constructor is not public, so that the user API offers no way to make a
 * tensor around a foreign object; this class, in the SPI package, reaches it (same module).
 */
public final class BackendTensors {
    private static final MethodHandle NEW_TENSOR = tensorConstructor();

    private BackendTensors() {
    }

    /**
     * A tensor of {@code shape} whose elements start {@code offset} elements into {@code storage}, the backend's
     * own storage object (which its ops downcast again).
     */
    public static Tensor wrap(Backend owner, DType dtype, Shape shape, Object storage, long offset) {
        try {
            return (Tensor) NEW_TENSOR.invokeExact(owner, dtype, shape, storage, offset);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("Tensor's constructor threw " + e, e); // it throws nothing checked
        }
    }

    private static MethodHandle tensorConstructor() {
        try {
            return MethodHandles.privateLookupIn(Tensor.class, MethodHandles.lookup()).findConstructor(Tensor.class,
                    MethodType.methodType(void.class, Backend.class, DType.class, Shape.class, Object.class, long.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
}
