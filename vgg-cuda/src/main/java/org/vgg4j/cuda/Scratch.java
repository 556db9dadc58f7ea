package org.vgg4j.cuda;

/**
 * One device buffer that a {@link CudaBackend} keeps for its kernels' temporary data (the split-K workspace, the
 * tensor-core path's NHWC copies), grown on demand and reused by every later call, so a training step's repeated
 * shapes cost no allocation after the first. It comes from the backend's allocator, so it counts in
 * {@link CudaBackend#deviceBytesInUse} and {@link CudaBackend#peakDeviceBytes}.
 *
 * <p>It is never handed back to the allocator while launches that use it may still be queued: growing waits for the
 * compute stream before the old block is released, and so does {@link #release}. (A block released right after
 * queuing its launches could be handed to an allocation for another stream -- a collective's -- while the kernels
 * still ran.) Is not: shared between streams; every user of it launches on the compute stream.
 */
final class Scratch {
    private final DeviceAllocator allocator;
    private final Driver driver;
    private long pointer;
    private long bytes;

    Scratch(DeviceAllocator allocator, Driver driver) {
        this.allocator = allocator;
        this.driver = driver;
    }

    /** The buffer's device address, at least {@code need} bytes long (grown, after a synchronize, when shorter). */
    long atLeast(long need) {
        if (need > bytes) {
            release();
            pointer = allocator.allocate(need);
            bytes = need;
        }
        return pointer;
    }

    /** Bytes held (0 before the first use and after {@link #release}). */
    long bytes() {
        return bytes;
    }

    /** The device address (meaningful while {@link #bytes} &gt; 0). */
    long pointer() {
        return pointer;
    }

    /** Waits for the compute stream and hands the block back to the allocator; false when none was held. */
    boolean release() {
        if (bytes == 0) {
            return false;
        }
        driver.synchronize();
        allocator.release(pointer);
        bytes = 0;
        return true;
    }
}
