package org.vgg4j.cuda;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.api.CudaException;

/**
 * The bucketed ring all-reduce between CUDA devices (real or emulated) of synchronous data-parallel SGD: N replicas,
 * one per device, each hands in its gradient buffer and gets back the mean, bitwise identical on every device.
 *
 * <p>How: the buffer is cut into buckets of at most L elements (never across the caller's cuts, see
 * {@link #begin(List, long[])}); each bucket into N chunks. Per bucket, a reduce-scatter of
 * N-1 steps (at step s device r pulls chunk (r-1-s) mod N from its left neighbour r-1 and adds its own gradients to
 * it) leaves device r holding the complete sum of chunk (r+1) mod N, which it scales by 1/N in its last step; an
 * all-gather of N-1 steps (device r pulls chunk (r-s) mod N) then copies those bits everywhere. Each device sends
 * 2(N-1)/N of the bucket, whatever N: the ring's bandwidth optimum. Copies are peer-to-peer where
 * {@link Driver#enablePeerAccess} allows, else staged through the drivers' pinned host buffers.
 *
 * <p>Why the result is exact and identical: chunk c is summed in the fixed order g_c + g_(c+1) + ... + g_(c+N-1)
 * (indices mod N), one rounding per addition, whatever the threads' timing; a different chunk has a different
 * order, so two devices that each summed everything would differ in the last bit -- which is why only the owner of
 * a chunk rounds its mean and the all-gather distributes that ONE result. With a 16-bit wire
 * ({@link GradPrecision}) every partial sum is rounded to the wire format before it travels and the owner rounds
 * the mean once to it; every device converts the same 16-bit values back, exactly.
 *
 * <p>Threads and overlap: one communication worker per device (rank), started by {@link #begin}, runs the ring
 * steps; the replica threads only report, through {@link AllReduce.InFlight#ready}, which gradient elements their
 * backward has finished. A bucket starts as soon as all N devices finished all of its elements, so the buckets at
 * the END of the buffer (the last layers' weights, whose backward runs first) travel while the earlier layers are
 * still in backward. Workers take buckets in the order they became ready, the same order for all: each bucket's
 * arithmetic is the same whatever that order, so overlap changes timing, never bits.
 *
 * <p>Streams: each device has a communication stream of its own ({@link Driver#newStream}, made once per device and
 * kept), and every copy and kernel of the ring goes there, so on a GPU a bucket's transfers run beside the backward
 * kernels still queued on the compute stream instead of behind them. The two streams are ordered by events only:
 * when a device's bucket becomes final ({@link AllReduce.InFlight#ready} completes it, on the replica's thread, right
 * after the replica issued the kernels filling it) an event is recorded on that device's compute stream, and the
 * worker makes the communication stream wait for it before the bucket's first ring step; {@link
 * AllReduce.InFlight#finish} makes each compute stream wait for an event recorded on its communication stream after
 * the last ring step, so the SGD step queued next sees the means, with no host wait on the compute stream.
 *
 * <p>Where the host does wait, and why: between two ring steps each worker synchronizes its communication stream
 * (only that stream) and meets the others at a barrier. That is the cross-device handshake of the ring: at step s a
 * device reads what its left neighbour's step s-1 wrote (and, at step 0, the neighbour's gradients, final only once
 * its compute stream passed the bucket's event), and the neighbour must not overwrite a chunk before it was read;
 * staged copies through host memory need the host anyway. It blocks the workers, never the replica threads
 * issuing backward. A failing worker (or a replica's failure, {@link AllReduce.InFlight#abort}) breaks that barrier,
 * so nobody waits forever, and {@link AllReduce.InFlight#finish} throws a {@link CudaException} naming the device
 * and the cause. The stream/event ordering is checked on the emulated device (which executes synchronously, so
 * there it is a contract test: see RingAllReduceStreamsTest); it has been compiled but never run on a real GPU.
 *
 * <p>Is not: multi-process (see vgg-cuda's NCCL support). Not thread-safe beyond the contract of {@link AllReduce}:
 * one reduction in flight at a time.
 *
 * <p>Legend: N devices (ranks), T elements of one buffer, L elements of one bucket, m elements of one chunk.
 */
public final class RingAllReduce implements AllReduce {
    private static final Logger LOG = LoggerFactory.getLogger(RingAllReduce.class);
    /** Elements per bucket (default {@value #DEFAULT_BUCKET}: 16 MiB of float32). */
    public static final String BUCKET_PROPERTY = "vgg4j.allreduce.bucket";
    /** "true" forces copies through host memory even between peer-capable devices. */
    public static final String STAGED_PROPERTY = "vgg4j.allreduce.staged";
    /** "false" reduces all buckets at finish, after the whole backward (for comparison). */
    public static final String OVERLAP_PROPERTY = "vgg4j.allreduce.overlap";
    public static final long DEFAULT_BUCKET = 1L << 22;
    private static final int THREADS = 256;
    private static final int MAX_BLOCKS = 8192;

    /**
     * @param precision      the wire format of gradients
     * @param bucketElements L, elements per bucket (>= 1)
     * @param overlap        start buckets as they become ready (else all at finish)
     * @param staged         copy through host memory even where peer-to-peer is possible
     */
    public record Options(GradPrecision precision, long bucketElements, boolean overlap, boolean staged) {
        public Options {
            if (bucketElements < 1) {
                throw new IllegalArgumentException("bucket of " + bucketElements + " elements; expected >= 1");
            }
        }

        /** The given precision, the rest from the system properties of this class (or their defaults). */
        public static Options fromSystemProperties(GradPrecision precision) {
            return new Options(precision, Long.getLong(BUCKET_PROPERTY, DEFAULT_BUCKET),
                    Boolean.parseBoolean(System.getProperty(OVERLAP_PROPERTY, "true")),
                    Boolean.getBoolean(STAGED_PROPERTY));
        }
    }

    /** Device scratch of one device: sized for one bucket, kept between steps, freed at {@link #close}. */
    private static final class Scratch {
        final Driver driver;
        final long comm;  // the device's communication stream: every ring copy and kernel is queued on it
        long capacity;   // L the buffers below were sized for
        long chunkCap;   // L/N + 2 they were sized for
        long recv;       // (L/N + 2) float32: a chunk pulled from the left neighbour (FP32 wire)
        long wire;       // (ceil(L/2)) words: the bucket in the 16-bit wire format
        long recvWire;   // (L/N/2 + 2) words: a chunk of the left neighbour's wire
        float[] host;    // (L/N + 2) the staging array of copies through host memory

        Scratch(Driver driver) {
            this.driver = driver;
            this.comm = driver.newStream();
        }

        void ensure(long bucket, int n) {
            long chunk = bucket / n + 2;
            if (capacity >= bucket && chunkCap >= chunk) {
                return;
            }
            free(false);
            recv = driver.malloc(4 * chunk);
            wire = driver.malloc(4 * ((bucket + 1) / 2));
            recvWire = driver.malloc(4 * (chunk / 2 + 2));
            host = new float[Math.toIntExact(chunk)];
            capacity = bucket;
            chunkCap = chunk;
        }

        /** Frees the buffers; the stream too when {@code stream}. */
        void free(boolean stream) {
            if (capacity > 0) {
                driver.free(recv);
                driver.free(wire);
                driver.free(recvWire);
                capacity = 0;
                chunkCap = 0;
            }
            if (stream) {
                driver.freeStream(comm);
            }
        }
    }

    private final Options options;
    private final Map<Driver, Scratch> scratch = new IdentityHashMap<>();
    private ExecutorService pool;
    private int poolSize;
    /** Test hook: called by worker {@code rank} before each ring step (rank, step); may throw to fake a failure. */
    volatile BiConsumer<Integer, Integer> beforeStep;

    public RingAllReduce(Options options) {
        this.options = options;
    }

    public Options options() {
        return options;
    }

    @Override
    public void average(List<Tensor> buffers) {
        begin(buffers).finish();
    }

    @Override
    public InFlight begin(List<Tensor> buffers) {
        return begin(buffers, new long[0]);
    }

    /**
     * Buckets are cut at {@code cuts} (ascending offsets within the buffer) as well as every L elements from each
     * cut: a block of gradients that becomes final late (the biases, stored after all weights) then has buckets of
     * its own and does not hold back the last layers' weights.
     */
    @Override
    public synchronized InFlight begin(List<Tensor> buffers, long[] cuts) {
        int n = buffers.size();
        if (n == 0) {
            throw new IllegalArgumentException("all-reduce of no buffers");
        }
        Tensor first = buffers.get(0);
        for (int r = 0; r < n; r++) {
            Tensor t = buffers.get(r);
            if (!(t.backend() instanceof CudaBackend) || !(t.storage() instanceof DeviceBuffer)
                    || t.dtype() != DType.FLOAT32) {
                throw new IllegalArgumentException("ring all-reduce buffer of rank " + r + " is " + t + " on "
                        + t.backend().describe() + "; expected a FLOAT32 tensor of a CUDA backend");
            }
            if (t.size() != first.size()) {
                throw new IllegalArgumentException("ring all-reduce buffers differ: rank " + r + " has " + t.size()
                        + " elements, rank 0 " + first.size());
            }
        }
        if (n == 1 || first.size() == 0) {
            return NOTHING; // one replica: the mean is the buffer itself, untouched bits
        }
        if (pool == null || poolSize != n) {
            if (pool != null) {
                pool.shutdownNow();
            }
            AtomicInteger next = new AtomicInteger();
            pool = Executors.newFixedThreadPool(n, r -> {
                Thread t = new Thread(r, "vgg-allreduce-" + next.getAndIncrement());
                t.setDaemon(true);
                return t;
            });
            poolSize = n;
        }
        long[] starts = buckets(first.size(), options.bucketElements(), cuts);
        long bucket = 0; // the longest bucket: what the scratch must hold
        for (int b = 0; b + 1 < starts.length; b++) {
            bucket = Math.max(bucket, starts[b + 1] - starts[b]);
        }
        Participant[] parts = new Participant[n];
        Map<Driver, Integer> rankOf = new IdentityHashMap<>();
        for (int r = 0; r < n; r++) {
            Tensor t = buffers.get(r);
            Driver d = ((CudaBackend) t.backend()).driver();
            Integer other = rankOf.put(d, r);
            if (other != null) {
                throw new IllegalArgumentException("ranks " + other + " and " + r + " are both on " + d.describe()
                        + ": the ring all-reduce expects one replica per device");
            }
            Scratch s = scratch.computeIfAbsent(d, Scratch::new);
            s.ensure(bucket, n);
            parts[r] = new Participant(r, d, t.backend().describe(), ((DeviceBuffer) t.storage()).devPtr + 4 * t.offset(), s);
        }
        for (int r = 0; r < n; r++) {
            Participant left = parts[(r + n - 1) % n];
            parts[r].peerWithLeft = !options.staged() && parts[r].driver.enablePeerAccess(left.driver);
        }
        return new Reduction(parts, starts);
    }

    /** Bucket boundaries: 0, then every {@code l} elements from 0 and from each cut, then {@code total}. */
    static long[] buckets(long total, long l, long[] cuts) {
        List<Long> out = new ArrayList<>();
        long segment = 0;
        for (int i = 0; i <= cuts.length; i++) {
            long end = i < cuts.length ? cuts[i] : total;
            if (end < segment || end > total) {
                throw new IllegalArgumentException("bucket cut " + end + " is not ascending within [0, " + total + "]");
            }
            for (long b = segment; b < end; b += l) {
                out.add(b);
            }
            segment = end;
        }
        out.add(total);
        long[] starts = new long[out.size()];
        for (int i = 0; i < starts.length; i++) {
            starts[i] = out.get(i);
        }
        return starts;
    }

    private static final InFlight NOTHING = new InFlight() {
        @Override
        public void ready(int rank, long from, long to) {
        }

        @Override
        public void finish() {
        }

        @Override
        public void abort(Throwable cause) {
        }
    };

    /** One device's part in a reduction. */
    private static final class Participant {
        final int rank;
        final Driver driver;
        final String device;  // for messages
        final long buf;       // (T) float32 device address of the buffer
        final Scratch scratch;
        boolean peerWithLeft; // pull from the left neighbour peer-to-peer (else staged)

        Participant(int rank, Driver driver, String device, long buf, Scratch scratch) {
            this.rank = rank;
            this.driver = driver;
            this.device = device;
            this.buf = buf;
            this.scratch = scratch;
        }
    }

    /** Thrown inside workers when another participant failed: not itself a cause. */
    private static final class Aborted extends RuntimeException {
        Aborted() {
            super("aborted", null, false, false);
        }
    }

    /** A barrier that a failure breaks for everyone waiting or arriving later (CyclicBarrier.reset would not). */
    private static final class StepBarrier {
        private final int parties;
        private int arrived;
        private long generation;
        private boolean broken;

        StepBarrier(int parties) {
            this.parties = parties;
        }

        synchronized void await() {
            if (broken) {
                throw new Aborted();
            }
            long gen = generation;
            if (++arrived == parties) {
                arrived = 0;
                generation++;
                notifyAll();
                return;
            }
            while (gen == generation && !broken) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    broken = true;
                    notifyAll();
                }
            }
            if (gen == generation) {
                throw new Aborted();
            }
        }

        synchronized void breakIt() {
            broken = true;
            notifyAll();
        }
    }

    /** The state of one all-reduce: which buckets are ready where, the queue of ready buckets, the workers. */
    private final class Reduction implements InFlight {
        final Participant[] parts;
        final int n;
        final long total;
        final long[] starts;         // (buckets + 1) bucket b is [starts[b], starts[b + 1])
        final int buckets;
        final long[][] readyCount;   // (N, buckets) elements of each bucket reported final by each rank
        final int[] ranksDone;       // (buckets) ranks that reported a bucket complete
        final long[][] filled;       // (N, buckets) event recorded on rank's compute stream once its bucket was
                                     // complete (0: not yet); the comm stream waits on it before the ring steps
        final int[] order;           // (buckets) buckets in the order they became ready everywhere
        int queued;
        RuntimeException failure;
        final StepBarrier barrier;
        final List<Future<?>> workers = new ArrayList<>();
        boolean ended;

        Reduction(Participant[] parts, long[] starts) {
            this.parts = parts;
            this.n = parts.length;
            this.starts = starts;
            this.total = starts[starts.length - 1];
            this.buckets = starts.length - 1;
            this.readyCount = new long[n][buckets];
            this.ranksDone = new int[buckets];
            this.filled = new long[n][buckets];
            this.order = new int[buckets];
            this.barrier = new StepBarrier(n);
            for (Participant p : parts) {
                workers.add(pool.submit(() -> work(p)));
            }
        }

        long length(int b) {
            return starts[b + 1] - starts[b];
        }

        /** The bucket holding element i. */
        int bucketOf(long i) {
            int b = java.util.Arrays.binarySearch(starts, i);
            return b >= 0 ? b : -b - 2;
        }

        @Override
        public void ready(int rank, long from, long to) {
            if (rank < 0 || rank >= n || from < 0 || to > total || from > to) {
                throw new IllegalArgumentException("ready(rank " + rank + ", [" + from + ", " + to + ")): expected rank"
                        + " in [0, " + n + ") and a range within [0, " + total + ")");
            }
            if (!options.overlap() || from == to) {
                return;
            }
            synchronized (this) {
                for (int b = bucketOf(from); b <= bucketOf(to - 1); b++) {
                    long covered = Math.min(to, starts[b + 1]) - Math.max(from, starts[b]);
                    mark(rank, b, readyCount[rank][b] + covered);
                }
            }
        }

        /** Sets rank's ready count of bucket b; queues b when it is complete on every rank. Holds the lock. */
        private void mark(int rank, int b, long count) {
            long len = length(b);
            if (count > len) {
                throw new IllegalStateException("rank " + rank + " reported " + count + " final elements in bucket "
                        + b + " of " + len + ": an element was reported twice");
            }
            boolean completes = count == len && readyCount[rank][b] < len;
            if (completes) {
                // the kernels filling the bucket were issued on the compute stream before this call: an event
                // recorded now completes when they have run (recorded before the bucket is queued for the workers)
                filled[rank][b] = parts[rank].driver.recordEvent(Driver.COMPUTE_STREAM);
            }
            readyCount[rank][b] = count;
            if (completes && ++ranksDone[b] == n) {
                order[queued++] = b;
                notifyAll();
            }
        }

        @Override
        public void finish() {
            try {
                synchronized (this) {
                    // whatever was not reported is final now; the buffer's end first, as backward would have it
                    for (int b = buckets - 1; b >= 0; b--) {
                        for (int r = 0; r < n; r++) {
                            mark(r, b, length(b));
                        }
                    }
                }
            } catch (RuntimeException e) {
                fail(new CudaException("all-reduce could not take the last gradients: " + e.getMessage(), e));
            }
            await();
            joinStreams();
            RuntimeException f = failure();
            if (f != null) {
                throw new CudaException(f.getMessage(), f);
            }
        }

        @Override
        public void abort(Throwable cause) {
            fail(new CudaException("all-reduce aborted: " + cause, cause));
            await();
            joinStreams();
        }

        /**
         * After the workers stopped: each compute stream waits for everything queued on its device's communication
         * stream (the SGD step that follows reads the means; the next backward writes the buffer the ring copies
         * read), then the compute-side events are freed. On a failure too, so no ring copy can race later work.
         */
        private void joinStreams() {
            for (Participant p : parts) {
                try {
                    long done = p.driver.recordEvent(p.scratch.comm);
                    p.driver.waitEvent(Driver.COMPUTE_STREAM, done);
                    p.driver.freeEvent(done);
                } catch (RuntimeException e) {
                    fail(new CudaException("all-reduce could not order " + p.device + "'s compute stream after its"
                            + " communication stream: " + e.getMessage(), e));
                }
                long[] events;
                synchronized (this) {
                    events = filled[p.rank].clone();
                    java.util.Arrays.fill(filled[p.rank], 0);
                }
                for (long e : events) {
                    if (e != 0) {
                        try {
                            p.driver.freeEvent(e);
                        } catch (RuntimeException ex) {
                            LOG.debug("freeing an all-reduce event on {}: {}", p.device, ex.toString());
                        }
                    }
                }
            }
        }

        /** Waits for every worker to stop (they stop promptly once the barrier is broken). */
        private void await() {
            for (Future<?> f : workers) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    fail(new CudaException("all-reduce worker failed: " + e.getCause(), e.getCause()));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    fail(new CudaException("interrupted while waiting for the all-reduce", e));
                    barrier.breakIt();
                    return;
                }
            }
        }

        private synchronized RuntimeException failure() {
            return failure;
        }

        private synchronized void fail(RuntimeException e) {
            if (failure == null) {
                failure = e;
            }
            barrier.breakIt();
            notifyAll();
        }

        private synchronized int nextBucket(int k) {
            while (queued <= k && failure == null) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new Aborted();
                }
            }
            if (failure != null) {
                throw new Aborted();
            }
            return order[k];
        }

        /** One device's worker: every bucket, in the shared order. */
        private void work(Participant me) {
            try {
                for (int k = 0; k < buckets; k++) {
                    reduceBucket(me, nextBucket(k));
                }
            } catch (Aborted a) {
                // another participant failed first; its failure is the one reported
            } catch (RuntimeException | Error e) {
                fail(new CudaException("all-reduce failed on " + me.device + " (rank " + me.rank + " of " + n + "): "
                        + e.getMessage(), e));
            }
        }

        /** Chunk c of a bucket of len elements: [bound(c), bound(c+1)); 16-bit wires keep boundaries even. */
        private long bound(int c, long len) {
            if (c == n) {
                return len;
            }
            long b = c * len / n;
            return options.precision() == GradPrecision.FP32 ? b : b & ~1L;
        }

        private void reduceBucket(Participant me, int b) {
            long start = starts[b];
            long len = length(b);
            Participant left = parts[(me.rank + n - 1) % n];
            boolean fp32 = options.precision() == GradPrecision.FP32;
            int fmt = options.precision() == GradPrecision.BF16 ? 0 : 1;
            Scratch s = me.scratch;
            long myBucket = me.buf + 4 * start;
            long leftBucket = left.buf + 4 * start;
            long filledEvent;
            synchronized (this) {
                filledEvent = filled[me.rank][b];
            }
            // nothing of this bucket is touched on the comm stream before the compute stream has filled it
            me.driver.waitEvent(s.comm, filledEvent);
            if (!fp32) {
                launch(me.driver, s.comm, "f32_to_wire", len, KernelArgs.of().ptr(myBucket).ptr(s.wire).i64(len).i32(fmt));
            }
            for (int st = 0; st < n - 1; st++) { // reduce-scatter
                int c = Math.floorMod(me.rank - 1 - st, n);
                long a = bound(c, len);
                long m = bound(c + 1, len) - a;
                meet(me, st);
                if (m == 0) {
                    continue;
                }
                double scale = st == n - 2 ? 1.0 / n : 1.0;
                if (fp32) {
                    pull(me, left, leftBucket + 4 * a, s.recv, m, 4);
                    launch(me.driver, s.comm, "ring_reduce_f32", m, KernelArgs.of().ptr(myBucket + 4 * a).ptr(s.recv).i64(m)
                            .f64(scale));
                } else {
                    pull(me, left, left.scratch.wire + 2 * a, s.recvWire, m, 2);
                    launch(me.driver, s.comm, "ring_reduce_wire", m, KernelArgs.of().ptr(s.wire + 2 * a).ptr(s.recvWire)
                            .ptr(myBucket + 4 * a).i64(m).f64(scale).i32(fmt));
                }
            }
            for (int st = 0; st < n - 1; st++) { // all-gather of the owners' rounded means
                int c = Math.floorMod(me.rank - st, n);
                long a = bound(c, len);
                long m = bound(c + 1, len) - a;
                meet(me, n - 1 + st);
                if (m == 0) {
                    continue;
                }
                if (fp32) {
                    pull(me, left, leftBucket + 4 * a, myBucket + 4 * a, m, 4);
                } else {
                    pull(me, left, left.scratch.wire + 2 * a, s.wire + 2 * a, m, 2);
                }
            }
            if (!fp32) {
                launch(me.driver, s.comm, "wire_to_f32", len, KernelArgs.of().ptr(s.wire).ptr(myBucket).i64(len).i32(fmt));
            }
            meet(me, 2 * n - 2); // nobody reads this bucket's chunks or my scratch any more: the next may reuse it
        }

        /**
         * The ring's cross-device handshake: makes this device's ring work final (its communication stream only; at
         * a bucket's first step that includes the wait for the compute stream's event, so the gradients the left
         * neighbour is about to read are final), then waits for every other device to do the same.
         */
        private void meet(Participant me, int stepInBucket) {
            BiConsumer<Integer, Integer> hook = beforeStep;
            if (hook != null) {
                hook.accept(me.rank, stepInBucket);
            }
            me.driver.synchronizeStream(me.scratch.comm);
            barrier.await();
        }

        /** Queues a copy of m elements of {@code width} bytes from the left neighbour's srcPtr to my dstPtr. */
        private void pull(Participant me, Participant left, long srcPtr, long dstPtr, long m, int width) {
            if (me.peerWithLeft) {
                me.driver.copyFromPeer(me.scratch.comm, dstPtr, left.driver, srcPtr, m * width);
                return;
            }
            // through host memory, in whole 4-byte words: a 16-bit chunk of odd length carries one padding
            // element, which lands in the padding of the receiving wire buffer (chunk starts are even)
            int words = Math.toIntExact((m * width + 3) / 4);
            float[] host = me.scratch.host;
            // each half on its device's comm stream: the read is ordered after the neighbour's ring work only
            left.driver.copyOut(left.scratch.comm, srcPtr, host, 0, words); // raw bits: floats never touch values
            me.driver.copyIn(me.scratch.comm, host, 0, dstPtr, words);
        }
    }

    private static void launch(Driver d, long stream, String kernel, long n, KernelArgs args) {
        int blocks = (int) Math.min((n + THREADS - 1) / THREADS, MAX_BLOCKS);
        d.launch(stream, d.function("collective", kernel), blocks, 1, 1, THREADS, args);
    }

    /** Frees the device scratch (before the devices are closed) and stops the workers. */
    @Override
    public synchronized void close() {
        if (pool != null) {
            pool.shutdownNow();
            pool = null;
        }
        for (Scratch s : scratch.values()) {
            try {
                s.free(true);
            } catch (RuntimeException e) {
                LOG.debug("freeing all-reduce scratch on {}: {}", s.driver.describe(), e.toString());
            }
        }
        scratch.clear();
    }
}
