package org.vgg4j.core.backend.reference;

import org.vgg4j.core.tensor.Tensor;

/**
 * Element access to a reference-backend tensor, relative to its offset, as doubles whatever the storage type.
 *
 * <p>Is: the one place that knows a FLOAT32 tensor stores a {@code float[]} and a FLOAT64 tensor a
 * {@code double[]}; every op of {@link ReferenceBackend} reads and writes through it, so each op is written once
 * and computes in double. Is not: a tensor type for users (it exists only inside one op call) and not checked
 * per element beyond Java's array bounds (the backend validates shapes and offsets at entry).
 *
 * <p>A write to a FLOAT32 tensor rounds the double once, which is why ops accumulate in local doubles and
 * {@link #set} the finished value.
 */
sealed interface Buf permits Buf.F32, Buf.F64 {

    /** Element {@code i} of the tensor (0 = its first element, not the storage's). */
    double get(int i);

    /** Sets element {@code i}, rounding to the storage type. */
    void set(int i, double v);

    /** Element {@code i} += {@code v}, computed in double and rounded once. */
    default void add(int i, double v) {
        set(i, get(i) + v);
    }

    static Buf of(Tensor t) {
        int offset = Math.toIntExact(t.offset());
        if (t.storage() instanceof float[] a) {
            return new F32(a, offset);
        }
        return new F64((double[]) t.storage(), offset);
    }

    /** FLOAT32 storage: float[] from {@code offset}. */
    record F32(float[] a, int offset) implements Buf {
        @Override
        public double get(int i) {
            return a[offset + i];
        }

        @Override
        public void set(int i, double v) {
            a[offset + i] = (float) v;
        }
    }

    /** FLOAT64 storage: double[] from {@code offset}. */
    record F64(double[] a, int offset) implements Buf {
        @Override
        public double get(int i) {
            return a[offset + i];
        }

        @Override
        public void set(int i, double v) {
            a[offset + i] = v;
        }
    }
}
