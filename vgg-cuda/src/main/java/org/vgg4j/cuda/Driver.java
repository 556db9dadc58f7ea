package org.vgg4j.cuda;

/**
 * The device below {@link CudaBackend}: one CUDA device (real through JCuda, or emulated on the CPU), its memory, its
 * kernels and its stream.
 *
 * <p>Is: the narrow waist between the backend and a device API, so the same backend code drives a GPU
 * ({@link JCudaDriver}) and the emulated device ({@link EmulatedDriver}) that CI tests the kernels on. Device memory
 * is named by raw addresses ({@code long devPtr}); host memory is Java arrays. Is not: a tensor API, and never copies
 * between host and device unless asked to.
 *
 * <p>Every method either succeeds or throws {@link CudaException} naming what failed; launches are queued on the
 * driver's one stream and may run asynchronously, {@link #synchronize()} waits for them (copies to the host wait
 * implicitly, as cuMemcpyDtoH does).
 */
public interface Driver extends AutoCloseable {

    /** A human-readable description of the device ("NVIDIA H100 (sm_90, 80 GiB)", "emulated CUDA device 0 of 2"). */
    String describe();

    /** Streaming multiprocessors (the emulated device reports a nominal 4): sizes split-K grids. */
    int multiprocessorCount();

    /** Bytes of device memory in total. */
    long totalMemory();

    /** Allocates {@code bytes} of device memory; throws {@link CudaOutOfMemoryException} when it does not fit. */
    long malloc(long bytes);

    void free(long devPtr);

    /** host[offset .. offset+n) to device floats at devPtr. */
    void copyIn(float[] host, int offset, long devPtr, int n);

    void copyIn(int[] host, int offset, long devPtr, int n);

    /** n device floats at devPtr to host[offset ..); waits for queued work first. */
    void copyOut(long devPtr, float[] host, int offset, int n);

    void copyDeviceToDevice(long dstPtr, long srcPtr, long bytes);

    /**
     * Whether this device can read {@code peer}'s memory directly (peer-to-peer over NVLink or PCIe), enabling
     * that access if it can. False by default, and for the same device: callers then stage copies through host
     * memory ({@link #copyOut} on the peer, {@link #copyIn} here).
     */
    default boolean enablePeerAccess(Driver peer) {
        return false;
    }

    /**
     * Queues on this device's stream a copy of {@code bytes} from {@code peer}'s device memory at {@code srcPtr} to
     * this device's {@code dstPtr}. Only after {@link #enablePeerAccess} returned true for {@code peer}; the caller
     * makes sure the peer's data are final (the peer synchronized) and stay so until this device synchronizes.
     */
    default void copyFromPeer(long dstPtr, Driver peer, long srcPtr, long bytes) {
        throw new UnsupportedOperationException(describe() + " has no peer-to-peer copies (from " + peer.describe()
                + ")");
    }

    /** The kernel called {@code name} in module {@code module} (a .cu file's base name: "conv", "gemm", ...). */
    Function function(String module, String name);

    /** Queues one launch of a 1-D block of {@code blockThreads} threads over grid (gx, gy, gz). */
    void launch(Function f, int gx, int gy, int gz, int blockThreads, KernelArgs args);

    /** Waits until every queued launch and copy has finished; reports an asynchronous kernel failure. */
    void synchronize();

    @Override
    void close();

    /** A loaded kernel: its module, name and the driver's own handle. */
    record Function(String module, String name, Object handle) {
    }
}
