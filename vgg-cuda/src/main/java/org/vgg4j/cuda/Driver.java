package org.vgg4j.cuda;

import org.vgg4j.cuda.api.CudaException;
import org.vgg4j.cuda.api.CudaOutOfMemoryException;

/**
 * The device below {@link CudaBackend}: one CUDA device (real through JCuda, or emulated on the CPU), its memory, its
 * kernels and its stream.
 *
 * <p>Is: the narrow waist between the backend and a device API, so the same backend code drives a GPU
 * ({@link JCudaDriver}) and the emulated device ({@link EmulatedDriver}) that CI tests the kernels on. Device memory
 * is named by raw addresses ({@code long devPtr}); host memory is Java arrays. Is not: a tensor API, and never copies
 * between host and device unless asked to.
 *
 * <p>Every method either succeeds or throws {@link CudaException} naming what failed; launches and copies are queued
 * on a stream and may run asynchronously, {@link #synchronize()} waits for them (copies to the host wait
 * implicitly, as cuMemcpyDtoH does).
 *
 * <p>Streams and events: the methods without a stream argument queue on the driver's own stream,
 * {@link #COMPUTE_STREAM}, where the backend runs every kernel. A collective that must overlap those kernels takes
 * a stream of its own ({@link #newStream}) and orders it against the compute stream with events only: record an
 * event on one stream ({@link #recordEvent}), make the other wait for it ({@link #waitEvent}); the host blocks only
 * in {@link #synchronizeStream} (and copies to the host). Stream and event handles belong to the driver that made
 * them; an event may be freed as soon as the waits on it are queued (CUDA releases it once it completed).
 */
public interface Driver extends AutoCloseable {

    /** The handle of the driver's own stream: every method without a stream argument queues on it. */
    long COMPUTE_STREAM = 0;

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
    default void copyIn(float[] host, int offset, long devPtr, int n) {
        copyIn(COMPUTE_STREAM, host, offset, devPtr, n);
    }

    /** As {@link #copyIn(float[], int, long, int)}, queued on {@code stream}. */
    void copyIn(long stream, float[] host, int offset, long devPtr, int n);

    void copyIn(int[] host, int offset, long devPtr, int n);

    /** n device floats at devPtr to host[offset ..); waits for queued work first. */
    default void copyOut(long devPtr, float[] host, int offset, int n) {
        copyOut(COMPUTE_STREAM, devPtr, host, offset, n);
    }

    /** As {@link #copyOut(long, float[], int, int)}, after the work queued on {@code stream} (only that stream). */
    void copyOut(long stream, long devPtr, float[] host, int offset, int n);

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
        copyFromPeer(COMPUTE_STREAM, dstPtr, peer, srcPtr, bytes);
    }

    /** As {@link #copyFromPeer(long, Driver, long, long)}, queued on this device's {@code stream}. */
    default void copyFromPeer(long stream, long dstPtr, Driver peer, long srcPtr, long bytes) {
        throw new UnsupportedOperationException(describe() + " has no peer-to-peer copies (from " + peer.describe()
                + ")");
    }

    /** The kernel called {@code name} in module {@code module} (a .cu file's base name: "conv", "gemm", ...). */
    Function function(String module, String name);

    /** Queues one launch of a 1-D block of {@code blockThreads} threads over grid (gx, gy, gz). */
    default void launch(Function f, int gx, int gy, int gz, int blockThreads, KernelArgs args) {
        launch(COMPUTE_STREAM, f, gx, gy, gz, blockThreads, args);
    }

    /** As {@link #launch(Function, int, int, int, int, KernelArgs)}, queued on {@code stream}. */
    void launch(long stream, Function f, int gx, int gy, int gz, int blockThreads, KernelArgs args);

    /**
     * Waits until every launch and copy queued on the compute stream has finished; reports an asynchronous kernel
     * failure. Work on other streams is not waited for ({@link #synchronizeStream}).
     */
    default void synchronize() {
        synchronizeStream(COMPUTE_STREAM);
    }

    /** Waits (the calling thread blocks) until everything queued on {@code stream} has finished. */
    void synchronizeStream(long stream);

    /**
     * A new stream, which runs concurrently with the compute stream and every other one (CUDA's non-blocking
     * streams: no implicit ordering with any other stream, not even the legacy default stream). Lives until
     * {@link #freeStream} or {@link #close}.
     */
    long newStream();

    /** Frees a stream made by {@link #newStream} once its queued work has finished. */
    void freeStream(long stream);

    /**
     * A new event, recorded on {@code stream} now: it completes when everything queued on {@code stream} before
     * it has finished. The caller frees it ({@link #freeEvent}).
     */
    long recordEvent(long stream);

    /** Work queued on {@code stream} after this call starts only once {@code event} (of this driver) completed. */
    void waitEvent(long stream, long event);

    /** Frees an event; waits already queued on it are unaffected (CUDA releases it once it completed). */
    void freeEvent(long event);

    @Override
    void close();

    /**
     * A loaded kernel: its module, name, the driver's own handle and its parameter widths ({@link KernelArgs#signature}
     * letters, from the PTX's .param list on a GPU, from the compiled types on the emulator); every launch's arguments
     * are checked against them ({@link KernelArgs#check}).
     */
    record Function(String module, String name, Object handle, String signature) {
    }
}
