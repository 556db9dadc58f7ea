package org.vgg4j.core.backend;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;

/**
 * Element access, as doubles, to one buffer of a backend's float32 or float64 memory: the one place that knows a
 * FLOAT32 buffer holds floats and a FLOAT64 buffer doubles, so that a backend's loops are written once for both.
 *
 * <p>Indexing, the one convention: element {@code i} is element {@code origin + i} of the underlying buffer. The
 * {@code reference} backend takes one Buf per tensor with the tensor's offset as origin (its loops index from the
 * tensor's first element); the {@code cpu} backend takes one per allocation with origin 0 (its loops add each
 * tensor's offset).
 *
 * <p>A write to FLOAT32 memory rounds the double once: a float32 value read as a double and written back is exact,
 * and a product of two float32 values formed in double and rounded once equals the float32 product, which is why
 * loops accumulate in local doubles and {@link #set} the finished value. What it is not: a tensor type for users,
 * or checked beyond the buffer's own bounds (backends validate shapes and offsets at an op's entry); the hot
 * compute (convolution, GEMM) never goes through it.
 */
public sealed interface Buf permits Buf.F32, Buf.F64 {

    /** Element {@code i} (from the origin). */
    double get(int i);

    /** Sets element {@code i}, rounding to the storage type. */
    void set(int i, double v);

    /** Element {@code i} += {@code v}, computed in double and rounded once. */
    default void add(int i, double v) {
        set(i, get(i) + v);
    }

    /** Number of elements from the origin to the end of the buffer. */
    int capacity();

    /** Float32 memory: a float[] (reference) or a native-order direct buffer (cpu), from {@code origin}. */
    record F32(FloatBuffer b, int origin) implements Buf {
        public F32(float[] a, int origin) {
            this(FloatBuffer.wrap(a), origin);
        }

        @Override
        public double get(int i) {
            return b.get(origin + i);
        }

        @Override
        public void set(int i, double v) {
            b.put(origin + i, (float) v);
        }

        @Override
        public int capacity() {
            return b.capacity() - origin;
        }
    }

    /** Float64 memory: a double[] (reference) or a native-order direct buffer (cpu), from {@code origin}. */
    record F64(DoubleBuffer b, int origin) implements Buf {
        public F64(double[] a, int origin) {
            this(DoubleBuffer.wrap(a), origin);
        }

        @Override
        public double get(int i) {
            return b.get(origin + i);
        }

        @Override
        public void set(int i, double v) {
            b.put(origin + i, v);
        }

        @Override
        public int capacity() {
            return b.capacity() - origin;
        }
    }
}
