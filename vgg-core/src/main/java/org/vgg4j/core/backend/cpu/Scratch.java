package org.vgg4j.core.backend.cpu;

import org.vgg4j.core.tensor.DType;

/**
 * One reusable native work buffer of the {@code cpu} backend (convolution gradients before they are accumulated,
 * a zero weight tensor, ...). It grows to the largest request and is then reused across calls and steps, so a
 * training step allocates nothing. What it is not: thread-safe (a backend instance is used by one thread).
 */
final class Scratch {
    private CpuStorage storage;

    /** A storage of at least {@code size} elements of {@code dtype}; its contents are unspecified. */
    CpuStorage get(DType dtype, long size) {
        if (storage == null || storage.dtype != dtype || storage.buf.capacity() < size) {
            release();
            storage = new CpuStorage(dtype, size);
        }
        return storage;
    }

    void release() {
        if (storage != null) {
            storage.free();
            storage = null;
        }
    }
}
