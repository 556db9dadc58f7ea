package org.vgg4j.cuda;

import static jcuda.driver.JCudaDriver.cuCtxEnablePeerAccess;
import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceCanAccessPeer;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxReset;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyPeerAsync;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vgg4j.cuda.api.CudaException;
import org.vgg4j.cuda.api.CudaOutOfMemoryException;

/**
 * A {@link Driver} for a real NVIDIA GPU through JCuda's driver API (org.jcuda:jcuda 12.6.0).
 *
 * <p>Is: device discovery, the device's primary context, the non-blocking compute stream on which the backend's
 * launches and copies are queued, further non-blocking streams and timing-free events for collectives that overlap
 * it ({@link Driver#newStream}), module loading from the jar's resources (the cubin for the device's architecture
 * when the build made one, else the PTX, JIT-compiled by the driver), and per stream two pinned host staging
 * buffers so that packing the next chunk of a host copy overlaps the DMA of the previous one. Every CUDA call's
 * result is checked and a failure names the call.
 *
 * <p>Locking: the driver's monitor guards its maps (allocations, modules, streams, events) and is held only for
 * short, non-blocking calls; a stream's staging buffers are guarded by that stream's monitor; host waits
 * (cuStreamSynchronize) hold no driver lock, so a collective's thread waiting on its stream never stalls the replica
 * thread issuing kernels on the compute stream. The stream/event code has been compiled but never run on a GPU
 * (none was available when it was written). Is not: loaded unless used -- this class is touched only by {@link CudaBackendProvider} after it
 * checked that JCuda's classes exist, and any LinkageError (no libcuda.so.1) becomes an unavailable reason, so
 * machines without a GPU never fail at class loading.
 *
 * <p>Kernels compiled by nvcc 13 need a driver for CUDA 13 (r580 or newer); an older driver fails module loading
 * with CUDA_ERROR_UNSUPPORTED_PTX_VERSION, reported as such.
 */
public final class JCudaDriver implements Driver {
    private static final Logger LOG = LoggerFactory.getLogger(JCudaDriver.class);
    private static final String KERNELS = "/org/vgg4j/cuda/kernels/";
    /** bytes per pinned staging buffer */
    private static final int STAGE_BYTES = 8 << 20;
    private static final Method NATIVE_POINTER = nativePointerGetter();

    private final int device;
    private final String name;
    private final int capability;
    private final long totalMemory;
    private final int multiprocessors;
    private final CUcontext context = new CUcontext();
    private final CUdevice cuDevice = new CUdevice();
    private final CUstream stream = new CUstream();
    /** stream handle -> stream; {@link Driver#COMPUTE_STREAM} is {@link #stream} */
    private final Map<Long, Stream> streams = new HashMap<>();
    /** event handle -> event, live until freeEvent */
    private final Map<Long, CUevent> events = new HashMap<>();
    private long nextHandle = 1;
    private final Map<String, CUmodule> modules = new HashMap<>();
    private final Map<String, Function> functions = new HashMap<>();
    /** module -> kernel -> parameter widths (from the module's PTX) */
    private final Map<String, Map<String, String>> signatures = new HashMap<>();
    /** module -> the resource it was loaded from */
    private final Map<String, String> loadedImages = new HashMap<>();
    /** device address -> allocation, to turn raw addresses back into JCuda pointers */
    private final TreeMap<Long, CUdeviceptr> allocations = new TreeMap<>();
    /** the first sticky error, after which the context is unusable (see checkHere) */
    private volatile String poisonedBy;
    /** peer device -> whether this context may read its memory directly (asked once; access enabled if so) */
    private final Map<Integer, Boolean> peers = new HashMap<>();

    private JCudaDriver(int device) {
        this.device = device;
        checkHere(cuDeviceGet(cuDevice, device), "cuDeviceGet(" + device + ")");
        byte[] nm = new byte[256];
        checkHere(cuDeviceGetName(nm, nm.length, cuDevice), "cuDeviceGetName");
        int len = 0;
        while (len < nm.length && nm[len] != 0) {
            len++;
        }
        this.name = new String(nm, 0, len, StandardCharsets.US_ASCII);
        int[] v = new int[1];
        checkHere(cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, cuDevice),
                "cuDeviceGetAttribute(major)");
        int major = v[0];
        checkHere(cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, cuDevice),
                "cuDeviceGetAttribute(minor)");
        this.capability = major * 10 + v[0];
        checkHere(cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, cuDevice),
                "cuDeviceGetAttribute(multiprocessors)");
        this.multiprocessors = v[0];
        long[] mem = new long[1];
        checkHere(cuDeviceTotalMem(mem, cuDevice), "cuDeviceTotalMem");
        this.totalMemory = mem[0];
        checkHere(cuDevicePrimaryCtxRetain(context, cuDevice), "cuDevicePrimaryCtxRetain");
        checkHere(cuCtxSetCurrent(context), "cuCtxSetCurrent");
        checkHere(cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        streams.put(COMPUTE_STREAM, new Stream(stream));
        LOG.info("opened {}", describe());
    }

    /** Initialises CUDA and returns the number of devices; throws {@link CudaException} saying why there are none. */
    public static int deviceCount() {
        int r = cuInit(0);
        if (r != CUresult.CUDA_SUCCESS) {
            throw new CudaException("cuInit failed: " + CUresult.stringFor(r)
                    + (r == CUresult.CUDA_ERROR_NO_DEVICE ? " (no NVIDIA GPU visible)" : ""));
        }
        int[] n = new int[1];
        check(cuDeviceGetCount(n), "cuDeviceGetCount");
        return n[0];
    }

    /** The CUDA version the installed driver supports, e.g. 13000 for CUDA 13.0. */
    public static int driverVersion() {
        int[] v = new int[1];
        check(cuDriverGetVersion(v), "cuDriverGetVersion");
        return v[0];
    }

    public static JCudaDriver open(int device) {
        int count = deviceCount();
        if (device < 0 || device >= count) {
            throw new IllegalArgumentException("CUDA device " + device + " does not exist; " + count + " visible");
        }
        return new JCudaDriver(device);
    }

    @Override
    public String describe() {
        return name + " (device " + device + ", sm_" + capability + ", " + multiprocessors + " SMs, "
                + (totalMemory >> 20) + " MiB)";
    }

    public int computeCapability() {
        return capability;
    }

    @Override
    public int multiprocessorCount() {
        return multiprocessors;
    }

    @Override
    public long totalMemory() {
        return totalMemory;
    }

    private void current() {
        String why = poisonedBy;
        if (why != null) {
            throw new CudaException("the CUDA context of " + describe() + " was lost earlier (" + why + ")");
        }
        checkHere(cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    @Override
    public synchronized long malloc(long bytes) {
        current();
        CUdeviceptr p = new CUdeviceptr();
        int r = cuMemAlloc(p, bytes);
        if (r == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
            throw new CudaOutOfMemoryException("cuMemAlloc(" + bytes + " bytes) on " + describe()
                    + ": CUDA_ERROR_OUT_OF_MEMORY", bytes);
        }
        checkHere(r, "cuMemAlloc(" + bytes + " bytes)");
        long addr = address(p);
        allocations.put(addr, p);
        return addr;
    }

    @Override
    public synchronized void free(long devPtr) {
        CUdeviceptr p = allocations.remove(devPtr);
        if (p == null) {
            throw new CudaException("cuMemFree of 0x" + Long.toHexString(devPtr) + ", not a live allocation");
        }
        if (poisonedBy != null) {
            return; // the context is lost: its memory goes with the reset in close()
        }
        current();
        checkHere(cuMemFree(p), "cuMemFree");
    }

    /** A JCuda pointer to raw device address {@code addr}, inside one of our allocations. */
    private CUdeviceptr at(long addr) {
        Map.Entry<Long, CUdeviceptr> e = allocations.floorEntry(addr);
        if (e == null) {
            throw new CudaException("device address 0x" + Long.toHexString(addr) + " is in no live allocation");
        }
        return e.getKey() == addr ? e.getValue() : e.getValue().withByteOffset(addr - e.getKey());
    }

    /** A stream and its two pinned staging buffers (allocated at its first host copy); its monitor guards them. */
    private final class Stream {
        final CUstream cu;
        final Pointer[] stage = {new Pointer(), new Pointer()};
        final boolean[] stageBusy = new boolean[2];
        boolean staged;
        int nextStage;

        Stream(CUstream cu) {
            this.cu = cu;
        }

        /** Waits until staging buffer i's previous copy has left it. Holds this stream's monitor. */
        Pointer takeStage(int i) {
            if (!staged) {
                for (Pointer p : stage) {
                    checkHere(cuMemAllocHost(p, STAGE_BYTES), "cuMemAllocHost(" + STAGE_BYTES + " bytes, pinned staging)");
                }
                staged = true;
            }
            if (stageBusy[i]) {
                checkHere(cuStreamSynchronize(cu), "cuStreamSynchronize (staging)");
                stageBusy[0] = stageBusy[1] = false;
            }
            stageBusy[i] = true;
            return stage[i];
        }

        void freeStages() {
            if (staged) {
                for (Pointer p : stage) {
                    cuMemFreeHost(p);
                }
                staged = false;
            }
        }
    }

    private synchronized Stream stream(long handle, String what) {
        Stream st = streams.get(handle);
        if (st == null) {
            throw new CudaException(what + " on stream " + handle + " of " + describe() + ": not a live stream of this"
                    + " device");
        }
        return st;
    }

    private synchronized CUevent event(long handle, String what) {
        CUevent e = events.get(handle);
        if (e == null) {
            throw new CudaException(what + " of event " + handle + " on " + describe() + ": not a live event of this"
                    + " device");
        }
        return e;
    }

    @Override
    public void copyIn(long streamHandle, float[] host, int offset, long devPtr, int n) {
        stagedCopyIn(stream(streamHandle, "copyIn"), devPtr, n,
                (stage, done, m) -> stage.asFloatBuffer().put(host, offset + done, m));
    }

    @Override
    public void copyIn(int[] host, int offset, long devPtr, int n) {
        stagedCopyIn(stream(COMPUTE_STREAM, "copyIn"), devPtr, n,
                (stage, done, m) -> stage.asIntBuffer().put(host, offset + done, m));
    }

    /** Fills one pinned staging buffer with host elements [done, done+m) of a 4-byte type. */
    @FunctionalInterface
    private interface StageFill {
        void fill(ByteBuffer stage, int done, int m);
    }

    /** n 4-byte elements to devPtr on {@code st}, through its two pinned staging buffers in turn. */
    private void stagedCopyIn(Stream st, long devPtr, int n, StageFill fill) {
        synchronized (st) {
            current();
            int chunk = STAGE_BYTES / 4;
            for (int done = 0; done < n; done += chunk) {
                int m = Math.min(chunk, n - done);
                int i = st.nextStage;
                st.nextStage ^= 1;
                Pointer s = st.takeStage(i);
                fill.fill(s.getByteBuffer(0, 4L * m).order(ByteOrder.nativeOrder()), done, m);
                checkHere(cuMemcpyHtoDAsync(pointerAt(devPtr + 4L * done), s, 4L * m, st.cu),
                        "cuMemcpyHtoDAsync(" + 4L * m + " bytes)");
            }
        }
    }

    @Override
    public void copyOut(long streamHandle, long devPtr, float[] host, int offset, int n) {
        Stream st = stream(streamHandle, "copyOut");
        synchronized (st) {
            current();
            int chunk = STAGE_BYTES / 4;
            for (int done = 0; done < n; done += chunk) {
                int m = Math.min(chunk, n - done);
                Pointer s = st.takeStage(0);
                checkHere(cuMemcpyDtoHAsync(s, pointerAt(devPtr + 4L * done), 4L * m, st.cu),
                        "cuMemcpyDtoHAsync(" + 4L * m + " bytes)");
                checkHere(cuStreamSynchronize(st.cu), "cuStreamSynchronize (copyOut)");
                st.stageBusy[0] = st.stageBusy[1] = false;
                s.getByteBuffer(0, 4L * m).order(ByteOrder.nativeOrder()).asFloatBuffer().get(host, offset + done, m);
            }
        }
    }

    @Override
    public synchronized void copyDeviceToDevice(long dstPtr, long srcPtr, long bytes) {
        current();
        checkHere(cuMemcpyDtoDAsync(at(dstPtr), at(srcPtr), bytes, stream), "cuMemcpyDtoDAsync(" + bytes + " bytes)");
    }

    /** cuDeviceCanAccessPeer, then cuCtxEnablePeerAccess, once per peer device; the answer is remembered. */
    @Override
    public synchronized boolean enablePeerAccess(Driver peer) {
        if (!(peer instanceof JCudaDriver p) || p.device == device) {
            return false;
        }
        Boolean known = peers.get(p.device);
        if (known != null) {
            return known;
        }
        int[] can = {0};
        checkHere(cuDeviceCanAccessPeer(can, cuDevice, p.cuDevice), "cuDeviceCanAccessPeer(" + device + ", " + p.device + ")");
        if (can[0] != 0) {
            current();
            int r = cuCtxEnablePeerAccess(p.context, 0);
            if (r != CUresult.CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED) {
                checkHere(r, "cuCtxEnablePeerAccess(device " + device + " -> " + p.device + ")");
            }
        }
        peers.put(p.device, can[0] != 0);
        return can[0] != 0;
    }

    /** cuMemcpyPeerAsync on this device's stream; the peer's pointer is resolved under the peer's lock first, so
     * two devices copying from each other never hold both locks. */
    @Override
    public void copyFromPeer(long streamHandle, long dstPtr, Driver peer, long srcPtr, long bytes) {
        JCudaDriver p = (JCudaDriver) peer;
        CUdeviceptr src = p.pointerAt(srcPtr);
        CUstream cu = stream(streamHandle, "copyFromPeer").cu;
        synchronized (this) {
            if (!Boolean.TRUE.equals(peers.get(p.device))) {
                throw new CudaException("copy from " + p.describe() + " to " + describe()
                        + " without peer access (call enablePeerAccess first)");
            }
            current();
            checkHere(cuMemcpyPeerAsync(at(dstPtr), context, src, p.context, bytes, cu),
                    "cuMemcpyPeerAsync(" + bytes + " bytes, device " + p.device + " -> " + device + ")");
        }
    }

    private synchronized CUdeviceptr pointerAt(long addr) {
        return at(addr);
    }

    @Override
    public synchronized Function function(String module, String kernel) {
        Function f = functions.get(kernel);
        if (f != null) {
            return f;
        }
        current();
        CUmodule m = modules.computeIfAbsent(module, this::loadModule);
        CUfunction fn = new CUfunction();
        checkHere(cuModuleGetFunction(fn, m, kernel), "cuModuleGetFunction(" + module + ", " + kernel + ")");
        f = new Function(module, kernel, fn, signatures.computeIfAbsent(module, JCudaDriver::ptxSignatures).get(kernel));
        functions.put(kernel, f);
        return f;
    }

    /** The module's kernel signatures from its PTX (shipped beside the cubins); empty (launches unchecked) without. */
    private static Map<String, String> ptxSignatures(String module) {
        byte[] ptx = resource(module + ".ptx");
        if (ptx == null) {
            LOG.warn("no {}{}.ptx: launches of its kernels are not checked against their parameter lists", KERNELS,
                    module);
            return Map.of();
        }
        return PtxSignatures.parse(new String(ptx, StandardCharsets.US_ASCII));
    }

    /** The kernel image each loaded module came from ("conv" -> "conv.sm_90.cubin"), for the GPU check's report. */
    public synchronized Map<String, String> loadedImages() {
        return new TreeMap<>(loadedImages);
    }

    /** The cubin of the newest architecture <= this device's within its major version, else the PTX. */
    private CUmodule loadModule(String module) {
        String chosen = null;
        byte[] image = null;
        for (int arch = capability; arch >= (capability / 10) * 10 && image == null; arch--) {
            chosen = module + ".sm_" + arch + ".cubin";
            image = resource(chosen);
        }
        if (image == null) {
            chosen = module + ".ptx";
            byte[] ptx = resource(chosen);
            if (ptx == null) {
                throw new CudaException("kernels of module '" + module + "' were not built into this jar (no "
                        + KERNELS + module + ".ptx: vgg-cuda was built without nvcc)");
            }
            image = new byte[ptx.length + 1]; // the driver wants PTX NUL-terminated
            System.arraycopy(ptx, 0, image, 0, ptx.length);
        }
        CUmodule m = new CUmodule();
        int r = cuModuleLoadData(m, image);
        if (r != CUresult.CUDA_SUCCESS) {
            String hint = r == CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION || r == CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU
                    ? " (the kernels were built by nvcc 13 and need a CUDA 13 driver, r580 or newer; this driver"
                    + " supports CUDA " + driverVersion() + ")" : "";
            throw new CudaException("cuModuleLoadData(" + chosen + ") on " + describe() + ": " + CUresult.stringFor(r) + hint);
        }
        LOG.debug("loaded module {} from {}", module, chosen);
        loadedImages.put(module, chosen);
        return m;
    }

    private static byte[] resource(String name) {
        try (InputStream in = JCudaDriver.class.getResourceAsStream(KERNELS + name)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new CudaException("cannot read kernel resource " + name, e);
        }
    }

    @Override
    public synchronized void launch(long streamHandle, Function f, int gx, int gy, int gz, int blockThreads,
                                    KernelArgs args) {
        CUstream cu = stream(streamHandle, "launch of " + f.name()).cu;
        args.check(f);
        current();
        Pointer[] params = new Pointer[args.count()];
        for (int i = 0; i < params.length; i++) {
            long v = args.slot(i);
            params[i] = switch (args.kind(i)) {
                case PTR, LONG -> Pointer.to(new long[] {v});
                case INT -> Pointer.to(new int[] {(int) v});
                case FLOAT -> Pointer.to(new float[] {Float.intBitsToFloat((int) v)});
                case DOUBLE -> Pointer.to(new double[] {Double.longBitsToDouble(v)});
            };
        }
        checkHere(cuLaunchKernel((CUfunction) f.handle(), gx, gy, gz, blockThreads, 1, 1, 0, cu,
                Pointer.to(params), null), "cuLaunchKernel(" + f.name() + ", grid " + gx + "x" + gy + "x" + gz + ")");
    }

    /** Blocks holding the stream's monitor (its staging buffers are then free), never the driver's. */
    @Override
    public void synchronizeStream(long streamHandle) {
        Stream st = stream(streamHandle, "synchronizeStream");
        synchronized (st) {
            current();
            checkHere(cuStreamSynchronize(st.cu), "cuStreamSynchronize");
            st.stageBusy[0] = st.stageBusy[1] = false;
        }
    }

    @Override
    public synchronized long newStream() {
        current();
        CUstream cu = new CUstream();
        checkHere(cuStreamCreate(cu, CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        long h = nextHandle++;
        streams.put(h, new Stream(cu));
        return h;
    }

    /** cuStreamDestroy returns at once; CUDA releases the stream when its work is done. */
    @Override
    public void freeStream(long streamHandle) {
        Stream st;
        synchronized (this) {
            st = streamHandle == COMPUTE_STREAM ? null : streams.remove(streamHandle);
            if (st == null) {
                throw new CudaException("freeStream(" + streamHandle + ") on " + describe()
                        + ": not a stream made by newStream");
            }
        }
        synchronized (st) {
            current();
            checkHere(cuStreamSynchronize(st.cu), "cuStreamSynchronize (freeStream)");
            st.freeStages();
            checkHere(cuStreamDestroy(st.cu), "cuStreamDestroy");
        }
    }

    @Override
    public long recordEvent(long streamHandle) {
        CUstream cu = stream(streamHandle, "recordEvent").cu;
        synchronized (this) {
            current();
            CUevent e = new CUevent();
            checkHere(cuEventCreate(e, CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
            checkHere(cuEventRecord(e, cu), "cuEventRecord");
            long h = nextHandle++;
            events.put(h, e);
            return h;
        }
    }

    @Override
    public void waitEvent(long streamHandle, long event) {
        CUstream cu = stream(streamHandle, "waitEvent").cu;
        CUevent e = event(event, "waitEvent");
        current();
        checkHere(cuStreamWaitEvent(cu, e, 0), "cuStreamWaitEvent");
    }

    /** Safe with waits still pending: cuEventDestroy defers the release until the event completed. */
    @Override
    public void freeEvent(long event) {
        CUevent e;
        synchronized (this) {
            e = events.remove(event);
        }
        if (e == null) {
            throw new CudaException("freeEvent(" + event + ") on " + describe() + ": not a live event of this device");
        }
        current();
        checkHere(cuEventDestroy(e), "cuEventDestroy");
    }

    @Override
    public synchronized void close() {
        if (poisonedBy != null) {
            // nothing in a lost context can be freed or synchronized: reset it (its memory, streams and events go)
            events.clear();
            allocations.clear();
            streams.clear();
            cuDevicePrimaryCtxRelease(cuDevice);
            cuDevicePrimaryCtxReset(cuDevice);
            LOG.warn("reset the primary context of {} after: {}", describe(), poisonedBy);
            return;
        }
        current();
        for (Stream st : streams.values()) {
            cuStreamSynchronize(st.cu);
        }
        for (CUevent e : events.values()) {
            cuEventDestroy(e);
        }
        events.clear();
        for (CUdeviceptr p : allocations.values()) {
            cuMemFree(p);
        }
        allocations.clear();
        for (Stream st : streams.values()) {
            st.freeStages();
            cuStreamDestroy(st.cu);
        }
        streams.clear();
        cuDevicePrimaryCtxRelease(cuDevice);
    }

    static void check(int result, String what) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(what + " failed: " + CUresult.stringFor(result));
        }
    }

    /**
     * Errors after which the context is unusable: every later call in it fails with the same code (a kernel's
     * {@code KERNEL_REQUIRE} traps, an illegal address, a device-side assert).
     */
    private static boolean sticky(int result) {
        return result == CUresult.CUDA_ERROR_ILLEGAL_ADDRESS || result == CUresult.CUDA_ERROR_LAUNCH_FAILED
                || result == CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION || result == CUresult.CUDA_ERROR_ASSERT
                || result == CUresult.CUDA_ERROR_MISALIGNED_ADDRESS || result == CUresult.CUDA_ERROR_INVALID_ADDRESS_SPACE
                || result == CUresult.CUDA_ERROR_INVALID_PC || result == CUresult.CUDA_ERROR_HARDWARE_STACK_ERROR
                || result == CUresult.CUDA_ERROR_LAUNCH_TIMEOUT;
    }

    /**
     * As {@link #check}, and a sticky error poisons this driver: the first one is reported as it happened (with a
     * note that the context is lost), every later call fails at once naming that first fault instead of reporting the
     * same code again, and {@link #close} resets the device's primary context, so the next driver opened (the next
     * test) starts in a fresh one. One fault thus fails one test, not every test after it.
     */
    private void checkHere(int result, String what) {
        if (result == CUresult.CUDA_SUCCESS) {
            return;
        }
        String msg = what + " failed: " + CUresult.stringFor(result);
        if (sticky(result)) {
            if (poisonedBy == null) {
                poisonedBy = msg;
            }
            msg += " (the CUDA context of " + describe() + " is lost; it is reset when this driver closes)";
        }
        throw new CudaException(msg);
    }

    /** Null, or the first sticky error that made this driver's context unusable. */
    public String poisonedBy() {
        return poisonedBy;
    }

    /** This driver's device ordinal (what the CUDA runtime's cudaSetDevice takes). */
    public int deviceOrdinal() {
        return device;
    }

    /**
     * The raw handle (CUstream = cudaStream_t) of the compute stream the backend queues every launch on. Collectives
     * that run through the CUDA runtime (NCCL) queue on it too, so they are ordered with the backend's kernels; the
     * runtime works in the device's primary context, which is the context this driver uses (no second context).
     */
    public long streamHandle() {
        return address(stream);
    }

    private static long address(jcuda.NativePointerObject p) {
        try {
            return (Long) NATIVE_POINTER.invoke(p);
        } catch (ReflectiveOperationException e) {
            throw new CudaException("cannot read a JCuda device pointer's address", e);
        }
    }

    private static Method nativePointerGetter() {
        try {
            Method m = NativePointerObject.class.getDeclaredMethod("getNativePointer");
            m.setAccessible(true);
            return m;
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
}
