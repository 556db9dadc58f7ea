package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;

import org.junit.jupiter.api.Test;

/**
 * {@link Parallel}: the thread count's sources and errors, and that a caller whose parts no worker has started runs
 * them itself (several replicas share the pool; before this, two replicas on two cores ran one after the other).
 */
class ParallelTest {

    @Test
    void threadCountComesFromThePropertyThenOmpNumThreadsThenTheProcessors() {
        assertEquals(3, Parallel.threads("3", "1", 8));
        assertEquals(1, Parallel.threads(null, "1", 8));
        assertEquals(4, Parallel.threads(null, "4,2", 8)); // OpenMP's nesting list: the outer level counts
        assertEquals(8, Parallel.threads(null, null, 8));
        assertEquals(8, Parallel.threads(null, " ", 8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Parallel.threads(null, "zero", 8));
        assertEquals("OMP_NUM_THREADS=zero is invalid; expected a thread count >= 1", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Parallel.threads("0", null, 8));
        assertEquals("-Dvgg4j.cpu.threads=0 is invalid; expected a thread count >= 1", e.getMessage());
    }

    @Test
    void aCallerRunsItsOwnPartsWhenEveryWorkerIsBusy() throws Exception {
        assumeTrue(Parallel.THREADS > 1, "one cpu thread: no worker pool to share");
        int workers = Parallel.THREADS - 1;
        CountDownLatch release = new CountDownLatch(1);
        List<Future<?>> blockers = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
            blockers.add(Parallel.submitToWorker(() -> {
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
        }
        try {
            int n = 10_000;
            double[] out = new double[n];
            // with every worker blocked, this only returns because the caller takes over the unstarted parts
            assertTimeoutPreemptively(Duration.ofSeconds(20), () -> Parallel.forRange(n, 1, (from, to) -> {
                for (int i = from; i < to; i++) {
                    out[i] = i * 0.5;
                }
            }));
            double[] want = new double[n];
            for (int i = 0; i < n; i++) {
                want[i] = i * 0.5;
            }
            assertArrayEquals(want, out);
        } finally {
            release.countDown();
        }
        for (Future<?> f : blockers) {
            f.get();
            assertTrue(f.isDone());
        }
    }

    @Test
    void everyIndexRunsExactlyOnceWhenTwoCallersShareThePool() throws Exception {
        assumeTrue(Parallel.THREADS > 1, "one cpu thread: no worker pool to share");
        int calls = 3000;
        int n = 64;
        int[][] counts = new int[2][n]; // per caller: how often each index ran, over all its calls
        Thread[] callers = new Thread[2];
        for (int c = 0; c < 2; c++) {
            int[] mine = counts[c];
            callers[c] = new Thread(() -> {
                for (int k = 0; k < calls; k++) {
                    Parallel.forRange(n, 1, (from, to) -> {
                        for (int i = from; i < to; i++) {
                            mine[i]++; // parts are disjoint and joined before the next call: no race unless run twice
                        }
                    });
                }
            });
            callers[c].start();
        }
        for (Thread t : callers) {
            t.join();
        }
        for (int c = 0; c < 2; c++) {
            for (int i = 0; i < n; i++) {
                assertEquals(calls, counts[c][i], "caller " + c + " index " + i);
            }
        }
    }

    @Test
    void aFailingPartIsRethrownAfterEveryPartFinished() {
        assumeTrue(Parallel.THREADS > 1, "one cpu thread: a single part");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Parallel.forRange(1000, 1, (from, to) -> {
            if (from > 0) {
                throw new IllegalStateException("part at " + from);
            }
        }));
        assertTrue(e.getMessage().startsWith("part at "), e.getMessage());
    }
}
