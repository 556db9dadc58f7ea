package org.vgg4j.cuda;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.vgg4j.cuda.api.CudaException;
import org.vgg4j.cuda.api.CudaOutOfMemoryException;

/**
 * A {@link Driver} for the emulated CUDA device: our .cu kernels compiled by g++ against emu/cuda_emu.h, run on
 * the CPU with CUDA's execution model (blocks, fibers per thread, real {@code __syncthreads()} barriers, per-block
 * shared memory). See docs/cuda.md.
 *
 * <p>Is: how CI, which has no GPU, runs every kernel, and how a user debugs a kernel without a GPU
 * ({@code --backend cuda-emulated}). Device memory is host memory with poisoned red zones; each launch is followed
 * by a red-zone check, so an out-of-bounds write fails the launch that did it. It presents several devices
 * ({@value #DEVICES_PROPERTY}, default 2), each with its own memory budget ({@value #MEMORY_PROPERTY} bytes,
 * default 4 GiB) so out-of-memory handling can be tested. All emulated devices share the process's address space,
 * so they are peers of one another ({@link #enablePeerAccess}) unless {@value #PEER_PROPERTY} is false, which
 * models devices without peer access so that the staged copy path of the ring all-reduce is tested too. Is not: fast (a debugging device, ~10^7-10^8 simple
 * thread-steps per second) nor asynchronous (launches complete before {@link #launch} returns).
 *
 * <p>Streams and events: work is done by the calling thread before the call returns, so every event is complete
 * when {@link #recordEvent} returns and {@link #waitEvent} and {@link #synchronizeStream} have nothing to wait for;
 * two streams of one device still run concurrently when two threads issue on them (as a collective's thread and a
 * replica's thread do). What is checked is the use of the API, cheaply: every stream and event handle must be a
 * live one of THIS device (never made, freed, or another device's is a {@link CudaException} naming it), so code
 * that would misorder work on a GPU by using a wrong handle fails here.
 */
public final class EmulatedDriver implements Driver {
    public static final String DEVICES_PROPERTY = "vgg4j.cuda.emulated.devices";
    public static final String MEMORY_PROPERTY = "vgg4j.cuda.emulated.memory";
    public static final String PEER_PROPERTY = "vgg4j.cuda.emulated.peer";

    private final int device;
    private final int deviceCount;
    private final long memoryLimit;
    private final Map<Long, Long> liveBytes = new HashMap<>();
    private final Map<String, Function> functions = new HashMap<>();
    /** Handles are unique across devices, so another device's handle is never mistaken for one of ours. */
    private static final AtomicLong NEXT_HANDLE = new AtomicLong(1);
    private final Set<Long> streams = ConcurrentHashMap.newKeySet();
    private final Set<Long> events = ConcurrentHashMap.newKeySet();
    private long used;

    private EmulatedDriver(int device, int deviceCount, long memoryLimit) {
        this.device = device;
        this.deviceCount = deviceCount;
        this.memoryLimit = memoryLimit;
        streams.add(COMPUTE_STREAM);
    }

    /** Null when the emulated device can run here, else why not. */
    public static String unavailableReason() {
        return EmulatorNative.unavailableReason();
    }

    /** The number of emulated devices ({@value #DEVICES_PROPERTY}, default 2). */
    public static int deviceCount() {
        return Integer.getInteger(DEVICES_PROPERTY, 2);
    }

    /** Opens emulated device {@code device} with the default memory budget. */
    public static EmulatedDriver open(int device) {
        return open(device, Long.getLong(MEMORY_PROPERTY, 4L << 30));
    }

    /** Opens emulated device {@code device} holding at most {@code memoryLimit} bytes. */
    public static EmulatedDriver open(int device, long memoryLimit) {
        String why = unavailableReason();
        if (why != null) {
            throw new CudaException("emulated CUDA device unavailable: " + why);
        }
        int count = deviceCount();
        if (device < 0 || device >= count) {
            throw new IllegalArgumentException("emulated device " + device + " does not exist; there are " + count
                    + " (set -D" + DEVICES_PROPERTY + " for more)");
        }
        if (memoryLimit <= 0) {
            throw new IllegalArgumentException("memory limit " + memoryLimit + " must be > 0 bytes");
        }
        return new EmulatedDriver(device, count, memoryLimit);
    }

    @Override
    public String describe() {
        return "emulated CUDA device " + device + " of " + deviceCount + " (CPU, " + (memoryLimit >> 20) + " MiB)";
    }

    /** Nominal: small, so that modest test shapes already take the split-K paths the GPU takes at full size. */
    @Override
    public int multiprocessorCount() {
        return 4;
    }

    @Override
    public long totalMemory() {
        return memoryLimit;
    }

    @Override
    public synchronized long malloc(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("malloc of " + bytes + " bytes; expected > 0");
        }
        if (used + bytes > memoryLimit) {
            throw new CudaOutOfMemoryException("out of memory on " + describe() + ": " + bytes + " bytes requested, "
                    + (memoryLimit - used) + " free", bytes);
        }
        long p = EmulatorNative.malloc(bytes);
        if (p == 0) {
            throw new CudaOutOfMemoryException("host malloc of " + bytes + " bytes failed for " + describe(), bytes);
        }
        liveBytes.put(p, bytes);
        used += bytes;
        return p;
    }

    @Override
    public synchronized void free(long devPtr) {
        Long bytes = liveBytes.remove(devPtr);
        if (bytes == null) {
            throw new CudaException("free of 0x" + Long.toHexString(devPtr) + ", not a live allocation of " + describe());
        }
        used -= bytes;
        EmulatorNative.free(devPtr);
    }

    @Override
    public void copyIn(long stream, float[] host, int offset, long devPtr, int n) {
        checkStream(stream, "copyIn");
        checkHost(host.length, offset, n);
        EmulatorNative.copyInFloat(host, offset, devPtr, n);
    }

    @Override
    public void copyIn(int[] host, int offset, long devPtr, int n) {
        checkHost(host.length, offset, n);
        EmulatorNative.copyInInt(host, offset, devPtr, n);
    }

    @Override
    public void copyOut(long stream, long devPtr, float[] host, int offset, int n) {
        checkStream(stream, "copyOut");
        checkHost(host.length, offset, n);
        EmulatorNative.copyOutFloat(devPtr, host, offset, n);
    }

    @Override
    public void copyDeviceToDevice(long dstPtr, long srcPtr, long bytes) {
        EmulatorNative.copyDeviceToDevice(dstPtr, srcPtr, bytes);
    }

    /** Another emulated device is a peer unless {@value #PEER_PROPERTY} is "false". */
    @Override
    public boolean enablePeerAccess(Driver peer) {
        return peer instanceof EmulatedDriver && peer != this
                && Boolean.parseBoolean(System.getProperty(PEER_PROPERTY, "true"));
    }

    @Override
    public void copyFromPeer(long stream, long dstPtr, Driver peer, long srcPtr, long bytes) {
        checkStream(stream, "copyFromPeer");
        if (!(peer instanceof EmulatedDriver)) {
            throw new CudaException(describe() + " cannot copy from " + peer.describe() + ": not an emulated device");
        }
        EmulatorNative.copyDeviceToDevice(dstPtr, srcPtr, bytes);
    }

    private static void checkHost(int length, int offset, int n) {
        if (offset < 0 || n < 0 || (long) offset + n > length) {
            throw new IllegalArgumentException("host array of " + length + " elements cannot hold " + n
                    + " values from offset " + offset);
        }
    }

    /** Every module's kernels live in the one emulator library; the module name only documents where it comes from. */
    @Override
    public synchronized Function function(String module, String name) {
        return functions.computeIfAbsent(name, n -> {
            long handle = EmulatorNative.kernel(n);
            if (handle == 0) {
                throw new CudaException("kernel '" + n + "' (module " + module + ") is not in the emulated device's"
                        + " library");
            }
            return new Function(module, n, handle, EmulatorNative.signature(handle));
        });
    }

    @Override
    public void launch(long stream, Function f, int gx, int gy, int gz, int blockThreads, KernelArgs args) {
        checkStream(stream, "launch of " + f.name());
        args.check(f);
        String err = EmulatorNative.launch((Long) f.handle(), gx, gy, gz, blockThreads, 1, 1, args.slots());
        if (err == null) {
            err = EmulatorNative.checkRedZones();
        }
        if (err != null) {
            throw new CudaException("kernel " + f.name() + " grid (" + gx + "," + gy + "," + gz + ") block "
                    + blockThreads + " on " + describe() + ": " + err);
        }
    }

    /** Launches run to completion inside {@link #launch}: nothing is ever pending. */
    @Override
    public void synchronizeStream(long stream) {
        checkStream(stream, "synchronizeStream");
    }

    @Override
    public long newStream() {
        long s = NEXT_HANDLE.getAndIncrement();
        streams.add(s);
        return s;
    }

    @Override
    public void freeStream(long stream) {
        if (stream == COMPUTE_STREAM || !streams.remove(stream)) {
            throw new CudaException("freeStream(" + stream + ") on " + describe() + ": not a stream made by newStream"
                    + " (the compute stream, freed already, or another device's)");
        }
    }

    /** Complete at once: everything queued on {@code stream} ran before the calls that queued it returned. */
    @Override
    public long recordEvent(long stream) {
        checkStream(stream, "recordEvent");
        long e = NEXT_HANDLE.getAndIncrement();
        events.add(e);
        return e;
    }

    @Override
    public void waitEvent(long stream, long event) {
        checkStream(stream, "waitEvent");
        if (!events.contains(event)) {
            throw new CudaException("waitEvent(stream " + stream + ", event " + event + ") on " + describe()
                    + ": not a live event of this device (never recorded, freed, or another device's)");
        }
    }

    @Override
    public void freeEvent(long event) {
        if (!events.remove(event)) {
            throw new CudaException("freeEvent(" + event + ") on " + describe() + ": not a live event of this device"
                    + " (never recorded, freed already, or another device's)");
        }
    }

    private void checkStream(long stream, String what) {
        if (!streams.contains(stream)) {
            throw new CudaException(what + " on stream " + stream + " of " + describe() + ": not a live stream of"
                    + " this device (expected COMPUTE_STREAM or a handle from newStream that was not freed)");
        }
    }

    /** Frees whatever is still allocated. */
    @Override
    public synchronized void close() {
        for (long p : liveBytes.keySet()) {
            EmulatorNative.free(p);
        }
        liveBytes.clear();
        used = 0;
        streams.clear();
        streams.add(COMPUTE_STREAM);
        events.clear();
    }
}
