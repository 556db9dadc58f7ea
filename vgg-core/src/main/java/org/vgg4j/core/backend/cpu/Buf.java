package org.vgg4j.core.backend.cpu;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;

/**
 * Element access from Java to one native buffer of the {@code cpu} backend, float32 or float64, as doubles.
 *
 * <p>What it is: the loops of the memory-bound ops (ReLU, pooling, SGD, ...) are written once against this
 * class; a float32 value read as a double and written back is exact, and a product of two float32 values formed
 * in double and rounded once equals the float32 product, so one code path serves both types. What it is not: the
 * hot compute (convolution, GEMM) never goes through it; that runs in ND4J / OpenBLAS on the raw address.
 *
 * <p>Indices are absolute element indices into the whole buffer (a tensor adds its own offset).
 */
abstract sealed class Buf permits Buf.F32, Buf.F64 {

    abstract double get(int i);

    abstract void set(int i, double v);

    /** Number of elements of the whole buffer. */
    abstract int capacity();

    /** Float32 storage over a native-order direct {@link FloatBuffer}. */
    static final class F32 extends Buf {
        final FloatBuffer b;

        F32(FloatBuffer b) {
            this.b = b;
        }

        @Override
        double get(int i) {
            return b.get(i);
        }

        @Override
        void set(int i, double v) {
            b.put(i, (float) v);
        }

        @Override
        int capacity() {
            return b.capacity();
        }
    }

    /** Float64 storage over a native-order direct {@link DoubleBuffer}. */
    static final class F64 extends Buf {
        final DoubleBuffer b;

        F64(DoubleBuffer b) {
            this.b = b;
        }

        @Override
        double get(int i) {
            return b.get(i);
        }

        @Override
        void set(int i, double v) {
            b.put(i, v);
        }

        @Override
        int capacity() {
            return b.capacity();
        }
    }
}
