package org.vgg4j.cuda;

/**
 * The storage object of a {@link CudaBackend} tensor: one device allocation. A tensor is a view of it at an element
 * offset; the backend computes device addresses as {@code devPtr + offset * 4}.
 */
final class DeviceBuffer {
    final CudaBackend owner;
    /** device address of element 0 */
    final long devPtr;
    /** bytes asked for (the allocator may hold a larger block) */
    final long bytes;
    boolean freed;

    DeviceBuffer(CudaBackend owner, long devPtr, long bytes) {
        this.owner = owner;
        this.devPtr = devPtr;
        this.bytes = bytes;
    }

    @Override
    public String toString() {
        return "DeviceBuffer[0x" + Long.toHexString(devPtr) + ", " + bytes + " bytes" + (freed ? ", freed" : "") + "]";
    }
}
