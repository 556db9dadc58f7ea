package org.vgg4j.core.backend.cpu;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Splits an index range over a few Java threads for the memory-bound loops of the {@code cpu} backend.
 *
 * <p>What it is: a static split into contiguous parts, one per thread, the caller running the first. Every
 * element is computed by exactly one thread with the same arithmetic whatever the split, so results do not
 * depend on the thread count; reductions go through {@link #CHUNK}-sized partials summed in index order for the
 * same reason. What it is not: a work-stealing scheduler (the loops are uniform) or a home for GEMM threads
 * (OpenBLAS and ND4J's OpenMP keep their own).
 *
 * <p>Threads: {@code -Dvgg4j.cpu.threads=T}; else the environment's {@code OMP_NUM_THREADS} (the bound users already
 * set for ND4J's OpenMP threads, e.g. 1 per replica when N replicas share N cores); else the number of available
 * processors. The pool is shared by every caller (several replicas, each on its own thread): a caller that finds
 * one of its parts not yet started by a worker runs it itself, so callers never queue behind each other's parts.
 */
final class Parallel {
    /** Reduction chunk: fixed so that partial sums and their order do not depend on the thread count. */
    static final int CHUNK = 1 << 14;

    static final int THREADS = CpuBackend.Options.threads();

    private static final ExecutorService POOL = THREADS == 1 ? null : Executors.newFixedThreadPool(THREADS - 1, r -> {
        Thread t = new Thread(r, "vgg4j-cpu-worker");
        t.setDaemon(true);
        return t;
    });

    /** Runs {@code task} on a pool worker (null when there is no pool): lets tests occupy the workers. */
    static java.util.concurrent.Future<?> submitToWorker(Runnable task) {
        return POOL == null ? null : POOL.submit(task);
    }

    /** Loop body over [from, to). */
    interface Range {
        void run(int from, int to);
    }

    private Parallel() {
    }

    /** The thread count: the property if set, else OMP_NUM_THREADS if set, else the processors; errors name the value. */
    static int threads(String property, String omp, int processors) {
        if (property != null) {
            return parse(property, "-Dvgg4j.cpu.threads");
        }
        if (omp != null && !omp.isBlank()) {
            return parse(omp.split(",")[0].trim(), "OMP_NUM_THREADS"); // OpenMP allows a nesting list "4,2"
        }
        return Math.max(1, processors);
    }

    private static int parse(String value, String name) {
        try {
            int t = Integer.parseInt(value.trim());
            if (t >= 1) {
                return t;
            }
        } catch (NumberFormatException e) {
            // fall through to the error below
        }
        throw new IllegalArgumentException(name + "=" + value + " is invalid; expected a thread count >= 1");
    }

    /** Runs body over [0, n) split in contiguous parts; serial when n is below {@code grain} per thread. */
    static void forRange(int n, int grain, Range body) {
        forRange(n, grain, THREADS, body);
    }

    /**
     * {@link #forRange(int, int, Range)} in at most {@code threads} parts: lets tests show that a kernel gives the
     * same bits split 1, 2 or 3 ways whatever this machine's thread count (without a pool the caller runs every
     * part, in order).
     */
    static void forRange(int n, int grain, int threads, Range body) {
        int parts = (int) Math.min(threads, Math.max(1, n / Math.max(1, grain)));
        if (parts <= 1) {
            if (n > 0) {
                body.run(0, n);
            }
            return;
        }
        if (POOL == null) {
            for (int p = 0; p < parts; p++) {
                body.run((int) ((long) n * p / parts), (int) ((long) n * (p + 1) / parts));
            }
            return;
        }
        // Each part is claimed exactly once, by a worker or (when no worker has got to it yet) by this caller.
        // (FutureTask.cancel cannot tell "not started" from "running": it succeeds on a running task.)
        AtomicBoolean[] claimed = new AtomicBoolean[parts];
        List<Future<?>> futures = new ArrayList<>(parts - 1);
        for (int p = 1; p < parts; p++) {
            int from = (int) ((long) n * p / parts);
            int to = (int) ((long) n * (p + 1) / parts);
            AtomicBoolean mine = claimed[p] = new AtomicBoolean();
            futures.add(POOL.submit(() -> {
                if (mine.compareAndSet(false, true)) {
                    body.run(from, to);
                }
            }));
        }
        body.run(0, (int) ((long) n / parts));
        RuntimeException failure = null;
        for (int p = 1; p < parts; p++) {
            Future<?> f = futures.get(p - 1);
            try {
                if (claimed[p].compareAndSet(false, true)) {
                    // no worker has started it (they are busy with another caller's parts): run it here
                    body.run((int) ((long) n * p / parts), (int) ((long) n * (p + 1) / parts));
                } else {
                    f.get();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for a cpu worker", e);
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                if (c instanceof Error err) {
                    throw err;
                }
                if (failure == null) {
                    failure = c instanceof RuntimeException re ? re : new IllegalStateException(c);
                }
            } catch (RuntimeException e) { // from a part run here: still wait for the others before throwing
                if (failure == null) {
                    failure = e;
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    /** Chunk body: returns the partial sum of chunk [from, to). */
    interface ChunkSum {
        double sum(int from, int to);
    }

    /** Sum over [0, n) as CHUNK-sized partials added in index order: the same bits for any thread count. */
    static double sum(int n, ChunkSum body) {
        int chunks = (n + CHUNK - 1) / CHUNK;
        double[] partial = new double[chunks];
        forRange(chunks, 1, (c0, c1) -> {
            for (int c = c0; c < c1; c++) {
                int from = c * CHUNK;
                partial[c] = body.sum(from, Math.min(n, from + CHUNK));
            }
        });
        double s = 0;
        for (double p : partial) {
            s += p;
        }
        return s;
    }
}
