package org.vgg4j.core.backend.cpu;

import java.nio.IntBuffer;

import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.indexer.DoubleIndexer;
import org.bytedeco.javacpp.indexer.FloatIndexer;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.vgg4j.core.backend.Buf;
import org.vgg4j.core.tensor.DType;

/**
 * One allocation of the {@code cpu} backend: a 1-D ND4J array in native memory (off the Java heap), seen three
 * ways: as the ND4J {@link INDArray} that custom ops (convolution) take as views, as a raw address for OpenBLAS,
 * and as a direct NIO buffer ({@link Buf}) for the Java loops, plus, for float32, an int view of the raw bits for
 * the loops that only move or select bits. Tensors are (storage, offset, shape) windows on it.
 *
 * <p>What it is not: a tensor, or a memory pool; freeing releases the native memory at once (ND4J's
 * garbage-collector-driven release would otherwise keep ~1.7 GB of dead VGG-16 buffers alive on a small heap).
 */
final class CpuStorage {
    final DType dtype;
    final DataType ndType;
    final INDArray base;      // (size) the whole allocation, 1-D
    final Buf buf;            // Java view of the same memory
    final IntBuffer bits;     // (size) FLOAT32: the same memory as raw float bits; null for FLOAT64
    private final Pointer address;  // FloatPointer or DoublePointer at element 0
    private final Pointer calloced; // the memory under base when this storage allocated it itself (untouched), else null
    private boolean freed;

    /** size elements, zero-filled by ND4J's allocator (which writes every page). */
    CpuStorage(DType dtype, long size) {
        this(dtype, size, false);
    }

    /**
     * size elements, zero-filled by calloc: for a large size the system maps fresh zero pages only when they are first
     * written, so the buffer holds no memory until then ({@link CpuBackend#allocateReleased}).
     */
    static CpuStorage untouched(DType dtype, long size) {
        return new CpuStorage(dtype, size, true);
    }

    private CpuStorage(DType dtype, long size, boolean calloc) {
        if (size * dtype.bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("allocation of " + size + " " + dtype + " elements ("
                    + size * dtype.bytes + " bytes) exceeds the cpu backend's limit of 2^31-1 bytes per buffer");
        }
        this.dtype = dtype;
        this.ndType = dtype == DType.FLOAT32 ? DataType.FLOAT : DataType.DOUBLE;
        if (calloc) {
            long n = Math.max(1, size);
            Pointer raw = Pointer.calloc(n, dtype.bytes);
            if (raw == null || raw.isNull()) {
                throw new OutOfMemoryError("calloc of " + n * dtype.bytes + " bytes for a cpu tensor failed");
            }
            this.calloced = raw;
            DataBuffer db;
            if (dtype == DType.FLOAT32) {
                FloatPointer f = new FloatPointer(raw).capacity(n).limit(n);
                db = Nd4j.createBuffer(f, ndType, n, FloatIndexer.create(f));
            } else {
                DoublePointer d = new DoublePointer(raw).capacity(n).limit(n);
                db = Nd4j.createBuffer(d, ndType, n, DoubleIndexer.create(d));
            }
            this.base = Nd4j.create(db, new long[] {size}, new long[] {1}, 0, 'c', ndType);
        } else {
            this.calloced = null;
            this.base = Nd4j.create(ndType, size); // zero-filled
        }
        Pointer p = base.data().addressPointer();
        if (dtype == DType.FLOAT32) {
            this.address = new FloatPointer(p);
            this.buf = new Buf.F32(base.data().asNioFloat(), 0);
            this.bits = new IntPointer(p).position(0).capacity(size).asBuffer(); // native order, like buf
        } else {
            this.address = new DoublePointer(p);
            this.buf = new Buf.F64(base.data().asNioDouble(), 0);
            this.bits = null;
        }
    }

    /** The storage of a cpu-backend tensor, checked not to be freed (the caller has checked the tensor is its own). */
    static CpuStorage of(org.vgg4j.core.tensor.Tensor t) {
        CpuStorage s = (CpuStorage) t.storage();
        s.check();
        return s;
    }

    /** The float32 address of element {@code offset}, for OpenBLAS. */
    FloatPointer floatAt(long offset) {
        check();
        return new FloatPointer(address).position(offset);
    }

    /** The float64 address of element {@code offset}, for OpenBLAS. */
    DoublePointer doubleAt(long offset) {
        check();
        return new DoublePointer(address).position(offset);
    }

    /** Raw address of element 0 (for memcpy). */
    Pointer address() {
        check();
        return address;
    }

    void check() {
        if (freed) {
            throw new IllegalStateException("tensor used after its memory was freed");
        }
    }

    boolean isFreed() {
        return freed;
    }

    void free() {
        if (!freed) {
            freed = true;
            base.close();
            if (calloced != null) {
                Pointer.free(calloced); // ND4J does not own memory it was given
            }
        }
    }
}
