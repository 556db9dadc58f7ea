package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.api.CudaException;

/**
 * The stream/event contract of {@link RingAllReduce}, checked on a log of every driver call (a recording
 * {@link Driver} around the emulated one, which executes synchronously, so the log's order is the order of issue):
 * <ol>
 *   <li>the ring issues no copy, kernel or host wait on a compute stream while backward runs; its work goes to ONE
 *       other stream per device;</li>
 *   <li>the first ring operation touching a device's bucket comes after a wait, on that communication stream, for an
 *       event recorded on the device's compute stream after the last of the (fake) layers that fill the bucket;</li>
 *   <li>a device reads a neighbour's bucket only after the neighbour synchronized its communication stream past
 *       that wait (the host handshake that stands for "the neighbour's gradients are final");</li>
 *   <li>before {@code finish} returns, each compute stream waits on an event recorded on the communication stream
 *       after its last ring operation.</li>
 * </ol>
 * Plus the emulated driver's refusal of wrong stream and event handles. What this cannot show: real concurrency of
 * two streams on a GPU (the code is compiled but has never run on one).
 *
 * <p>Legend: N devices, T elements per buffer, L elements per bucket.
 */
@Tag(Parity.EMULATOR_TAG)
class RingAllReduceStreamsTest extends OnFourEmulatedDevices {
    private static final long L = 10;
    private static final int T = 123;
    private static final long[] CUTS = {3, 97};
    /** One logged driver call: kind, device, stream, event (record/wait), device pointers it touches. */
    record Op(String kind, int device, long stream, long event, long[] ptrs, int[] ptrDevices) {
    }

    /** Appends every call to a shared log before delegating to the emulated device. */
    static final class RecordingDriver extends ForwardingDriver {
        final int device;
        final List<Op> log;

        RecordingDriver(EmulatedDriver inner, int device, List<Op> log) {
            super(inner);
            this.device = device;
            this.log = log;
        }

        private void log(String kind, long stream, long event, long[] ptrs, int[] devices) {
            synchronized (log) {
                log.add(new Op(kind, device, stream, event, ptrs, devices));
            }
        }

        private void log(String kind, long stream, long... ptrs) {
            int[] devs = new int[ptrs.length];
            java.util.Arrays.fill(devs, device);
            log(kind, stream, 0, ptrs, devs);
        }

        /** The test's stand-in for a layer's backward: writes host[from, to) on the compute stream. */
        void fill(float[] host, int from, int to, long buf) {
            log("fill", COMPUTE_STREAM, buf + 4L * from, buf + 4L * to); // a range, [first, end)
            inner.copyIn(COMPUTE_STREAM, host, from, buf + 4L * from, to - from);
        }






        @Override
        public void copyIn(long stream, float[] host, int offset, long devPtr, int n) {
            log("copyIn", stream, devPtr);
            inner.copyIn(stream, host, offset, devPtr, n);
        }

        @Override
        public void copyIn(int[] host, int offset, long devPtr, int n) {
            log("copyIn", COMPUTE_STREAM, devPtr);
            inner.copyIn(host, offset, devPtr, n);
        }

        @Override
        public void copyOut(long stream, long devPtr, float[] host, int offset, int n) {
            log("copyOut", stream, devPtr);
            inner.copyOut(stream, devPtr, host, offset, n);
        }

        @Override
        public void copyDeviceToDevice(long dstPtr, long srcPtr, long bytes) {
            log("copyDeviceToDevice", COMPUTE_STREAM, dstPtr, srcPtr);
            inner.copyDeviceToDevice(dstPtr, srcPtr, bytes);
        }

        @Override
        public boolean enablePeerAccess(Driver peer) {
            return inner.enablePeerAccess(((RecordingDriver) peer).inner);
        }

        @Override
        public void copyFromPeer(long stream, long dstPtr, Driver peer, long srcPtr, long bytes) {
            log("peer", stream, 0, new long[] {dstPtr, srcPtr}, new int[] {device, ((RecordingDriver) peer).device});
            inner.copyFromPeer(stream, dstPtr, ((RecordingDriver) peer).inner, srcPtr, bytes);
        }


        @Override
        public void launch(long stream, Function f, int gx, int gy, int gz, int blockThreads, KernelArgs args) {
            List<Long> ptrs = new ArrayList<>();
            for (int i = 0; i < args.count(); i++) {
                if (args.kind(i) == KernelArgs.Kind.PTR) {
                    ptrs.add(args.slot(i));
                }
            }
            log("launch", stream, ptrs.stream().mapToLong(Long::longValue).toArray());
            inner.launch(stream, f, gx, gy, gz, blockThreads, args);
        }

        @Override
        public void synchronizeStream(long stream) {
            log("sync", stream);
            inner.synchronizeStream(stream);
        }



        @Override
        public long recordEvent(long stream) {
            long e = inner.recordEvent(stream);
            log("record", stream, e, new long[0], new int[0]);
            return e;
        }

        @Override
        public void waitEvent(long stream, long event) {
            log("wait", stream, event, new long[0], new int[0]);
            inner.waitEvent(stream, event);
        }


    }

    @Test
    void peerToPeerFollowsTheStreamContract() throws Exception {
        contract(false, GradPrecision.FP32);
    }

    @Test
    void stagedCopiesAndWireFormatFollowTheStreamContract() throws Exception {
        contract(true, GradPrecision.BF16);
    }

    private static void contract(boolean staged, GradPrecision precision) throws Exception {
        int n = 4;
        SplittableRandom rnd = new SplittableRandom(17);
        float[][] g = new float[n][T];
        for (float[] row : g) {
            for (int i = 0; i < T; i++) {
                row[i] = (float) (rnd.nextDouble() * 2 - 1);
            }
        }
        List<Op> log = new ArrayList<>();
        List<RecordingDriver> drivers = new ArrayList<>();
        List<CudaBackend> devs = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            RecordingDriver d = new RecordingDriver(EmulatedDriver.open(r), r, log);
            drivers.add(d);
            devs.add(new CudaBackend("cuda-emulated", d, MathMode.FP32));
        }
        RingAllReduce.Options opts = new RingAllReduce.Options(precision, L, true, staged);
        try (RingAllReduce ar = new RingAllReduce(opts)) {
            // the bits the ring gives without overlap, on the same devices, for comparison at the end
            List<Tensor> plainBufs = buffers(devs);
            for (int r = 0; r < n; r++) {
                devs.get(r).copyIn(g[r], 0, plainBufs.get(r));
            }
            ar.begin(plainBufs, CUTS).finish();
            float[][] want = results(devs, plainBufs);

            List<Tensor> bufs = buffers(devs);
            long[] base = new long[n]; // (N) device address of each buffer
            for (int r = 0; r < n; r++) {
                base[r] = ((DeviceBuffer) bufs.get(r).storage()).devPtr + 4 * bufs.get(r).offset();
            }
            synchronized (log) {
                log.clear();
            }
            AllReduce.InFlight flight = ar.begin(bufs, CUTS);
            List<Thread> threads = new ArrayList<>();
            Throwable[] failed = new Throwable[n];
            for (int r = 0; r < n; r++) {
                int rank = r;
                threads.add(new Thread(() -> {
                    try {
                        int piece = 6 + 5 * rank; // "layers" of different sizes on every device
                        for (int to = T; to > 0; to -= piece) {
                            int from = Math.max(0, to - piece);
                            drivers.get(rank).fill(g[rank], from, to, base[rank]);
                            if (from >= 5) {  // the first 5 elements are left for finish to take
                                flight.ready(rank, from, to);
                            }
                            Thread.yield();
                        }
                    } catch (Throwable t) {
                        failed[rank] = t;
                    }
                }));
            }
            threads.forEach(Thread::start);
            for (Thread th : threads) {
                th.join();
            }
            for (Throwable t : failed) {
                if (t != null) {
                    throw new AssertionError("a replica thread failed", t);
                }
            }
            flight.finish();
            List<Op> ops;
            synchronized (log) {
                ops = new ArrayList<>(log);
            }
            checkContract(ops, n, base);
            float[][] got = results(devs, bufs);
            for (int r = 0; r < n; r++) {
                assertArrayEquals(want[r], got[r], "device " + r + ": overlap on streams changed the bits");
            }
        } finally {
            devs.forEach(CudaBackend::close);
        }
    }

    private static List<Tensor> buffers(List<CudaBackend> devs) {
        List<Tensor> out = new ArrayList<>();
        for (CudaBackend d : devs) {
            out.add(d.allocate(DType.FLOAT32, Shape.of(T)));
        }
        return out;
    }

    private static float[][] results(List<CudaBackend> devs, List<Tensor> bufs) {
        float[][] out = new float[devs.size()][T];
        for (int r = 0; r < devs.size(); r++) {
            devs.get(r).copyOut(bufs.get(r), out[r], 0);
            devs.get(r).free(bufs.get(r));
        }
        return out;
    }

    /** The bucket of device {@code dev}'s buffer that address p lies in, or -1. */
    private static int bucketAt(long p, long[] base, int dev, long[] starts) {
        long i = (p - base[dev]) / 4;
        if (p < base[dev] || i >= T) {
            return -1;
        }
        int b = java.util.Arrays.binarySearch(starts, i);
        return b >= 0 ? b : -b - 2;
    }

    /** ops: the log from begin to the return of finish. */
    static void checkContract(List<Op> ops, int n, long[] base) {
        long[] starts = RingAllReduce.buckets(T, L, CUTS);
        int buckets = starts.length - 1;
        long[] comm = new long[n];
        for (int d = 0; d < n; d++) {
            Set<Long> streams = new HashSet<>();
            for (Op op : ops) {
                if (op.device() == d && op.stream() != Driver.COMPUTE_STREAM) {
                    streams.add(op.stream());
                }
            }
            assertEquals(1, streams.size(), "device " + d + ": the ring's work should use one stream, not " + streams);
            comm[d] = streams.iterator().next();
        }
        for (int i = 0; i < ops.size(); i++) {
            Op op = ops.get(i);
            if (op.stream() == Driver.COMPUTE_STREAM && !List.of("fill", "record", "wait").contains(op.kind())) {
                fail("op " + i + " " + op.kind() + " on device " + op.device() + "'s compute stream: the ring must use"
                        + " its own stream and never block the compute stream's host thread");
            }
        }
        for (int d = 0; d < n; d++) {
            for (int b = 0; b < buckets; b++) {
                int lastFill = -1;
                int firstUse = -1;     // first comm op of device d touching its bucket b
                int firstRemote = -1;  // first op of another device reading device d's bucket b
                for (int i = 0; i < ops.size(); i++) {
                    Op op = ops.get(i);
                    if (op.kind().equals("fill")) {
                        long from = (op.ptrs()[0] - base[d]) / 4;
                        long to = (op.ptrs()[1] - base[d]) / 4;
                        if (op.device() == d && from < starts[b + 1] && to > starts[b]) {
                            lastFill = i;
                        }
                        continue;
                    }
                    for (int k = 0; k < op.ptrs().length; k++) {
                        if (op.ptrDevices()[k] != d || bucketAt(op.ptrs()[k], base, d, starts) != b) {
                            continue;
                        }
                        if (op.device() == d && firstUse < 0) {
                            firstUse = i;
                        } else if (op.device() != d && firstRemote < 0) {
                            firstRemote = i;
                        }
                    }
                }
                String what = "device " + d + ", bucket " + b + " [" + starts[b] + ", " + starts[b + 1] + ")";
                assertTrue(lastFill >= 0 && firstUse > lastFill, what + ": filled at op " + lastFill
                        + ", first touched by the ring at op " + firstUse);
                int waited = -1; // the wait on the comm stream for an event recorded on compute after the fills
                for (int w = lastFill + 1; w < firstUse && waited < 0; w++) {
                    Op wait = ops.get(w);
                    if (wait.kind().equals("wait") && wait.device() == d && wait.stream() == comm[d]) {
                        for (int r = lastFill + 1; r < w; r++) {
                            Op rec = ops.get(r);
                            if (rec.kind().equals("record") && rec.device() == d
                                    && rec.stream() == Driver.COMPUTE_STREAM && rec.event() == wait.event()) {
                                waited = w;
                            }
                        }
                    }
                }
                assertTrue(waited >= 0, what + ": the ring touched it at op " + firstUse + " (" + ops.get(firstUse)
                        .kind() + ") without its comm stream first waiting on an event recorded on the compute stream"
                        + " after the last fill (op " + lastFill + ")");
                if (firstRemote >= 0) {
                    boolean synced = false;
                    for (int i = waited + 1; i < firstRemote; i++) {
                        Op op = ops.get(i);
                        synced |= op.kind().equals("sync") && op.device() == d && op.stream() == comm[d];
                    }
                    assertTrue(synced, what + ": read by device " + ops.get(firstRemote).device() + " at op "
                            + firstRemote + " before device " + d + " synchronized its comm stream past the wait");
                }
            }
        }
        for (int d = 0; d < n; d++) {
            int lastWork = -1;
            for (int i = 0; i < ops.size(); i++) {
                Op op = ops.get(i);
                if (op.device() == d && op.stream() == comm[d] && !op.kind().equals("record")
                        && !op.kind().equals("sync")) {
                    lastWork = i;
                }
            }
            boolean joined = false;
            for (int w = lastWork + 1; w < ops.size() && !joined; w++) {
                Op wait = ops.get(w);
                if (wait.kind().equals("wait") && wait.device() == d && wait.stream() == Driver.COMPUTE_STREAM) {
                    for (int r = lastWork + 1; r < w; r++) {
                        Op rec = ops.get(r);
                        joined |= rec.kind().equals("record") && rec.device() == d && rec.stream() == comm[d]
                                && rec.event() == wait.event();
                    }
                }
            }
            assertTrue(joined, "device " + d + ": finish returned without the compute stream waiting on an event"
                    + " recorded on the comm stream after its last ring operation (op " + lastWork + ")");
        }
    }

    /** The emulated device refuses handles that are not live ones of its own, naming them. */
    @Test
    void emulatedDriverRefusesWrongHandles() {
        try (EmulatedDriver a = EmulatedDriver.open(0); EmulatedDriver b = EmulatedDriver.open(1)) {
            long s = a.newStream();
            long e = a.recordEvent(s);
            a.waitEvent(Driver.COMPUTE_STREAM, e);
            assertThrows(CudaException.class, () -> b.waitEvent(Driver.COMPUTE_STREAM, e), "another device's event");
            assertThrows(CudaException.class, () -> b.recordEvent(s), "another device's stream");
            a.freeEvent(e);
            CudaException freed = assertThrows(CudaException.class, () -> a.waitEvent(s, e));
            assertTrue(freed.getMessage().contains("event " + e), freed.getMessage());
            assertThrows(CudaException.class, () -> a.freeEvent(e), "freed twice");
            assertThrows(CudaException.class, () -> a.freeStream(Driver.COMPUTE_STREAM));
            a.synchronizeStream(s);
            a.freeStream(s);
            CudaException gone = assertThrows(CudaException.class, () -> a.synchronizeStream(s));
            assertTrue(gone.getMessage().contains("stream " + s), gone.getMessage());
        }
    }
}
