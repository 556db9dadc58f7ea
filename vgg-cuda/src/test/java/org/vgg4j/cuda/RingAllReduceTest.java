package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
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
 * {@link RingAllReduce} on 2 and 4 emulated devices, peer-to-peer and staged through host memory: the mean against
 * a float64 host mean with a rounding bound derived below, bitwise identical results on every device, sizes that
 * are not multiples of N or of the bucket (1, 7, N*L+3 elements), 16-bit wires, overlap (buckets started as parts
 * become ready, from other threads) giving the same bits as no overlap, and failures that end the reduction on
 * every device without a hang, naming the device and the cause.
 *
 * <p>Legend: N devices, T elements per buffer, L elements per bucket.
 */
@Tag(Parity.EMULATOR_TAG)
class RingAllReduceTest extends OnFourEmulatedDevices {
    private static final long L = 10; // small buckets: several per buffer, chunks of 2-5 elements
    /** N backends on emulated devices 0..N-1. */
    private static List<CudaBackend> devices(int n) {
        List<CudaBackend> out = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            out.add(new CudaBackend("cuda-emulated", EmulatedDriver.open(r), MathMode.FP32));
        }
        return out;
    }

    /** host[rank][i]: random gradients of mixed sign and magnitude (~1e-3 .. 1). */
    private static float[][] gradients(int n, int t, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[][] g = new float[n][t];
        for (float[] row : g) {
            for (int i = 0; i < t; i++) {
                row[i] = (float) ((rnd.nextDouble() * 2 - 1) * Math.pow(10, -3 * rnd.nextDouble()));
            }
        }
        return g;
    }

    /** Copies g into fresh device buffers, reduces them, returns every device's result. */
    private static float[][] reduce(RingAllReduce ar, List<CudaBackend> devs, float[][] g) {
        List<Tensor> bufs = new ArrayList<>();
        for (int r = 0; r < devs.size(); r++) {
            Tensor t = devs.get(r).allocate(DType.FLOAT32, Shape.of(g[r].length));
            devs.get(r).copyIn(g[r], 0, t);
            bufs.add(t);
        }
        ar.average(bufs);
        return results(devs, bufs);
    }

    private static float[][] results(List<CudaBackend> devs, List<Tensor> bufs) {
        float[][] out = new float[devs.size()][];
        for (int r = 0; r < devs.size(); r++) {
            out[r] = new float[Math.toIntExact(bufs.get(r).size())];
            devs.get(r).copyOut(bufs.get(r), out[r], 0);
            devs.get(r).free(bufs.get(r));
        }
        return out;
    }

    /**
     * Every device holds the same bits, and each element is within the rounding bound of the float64 mean.
     * Bound: a chunk's sum is built by N-1 additions, each rounded once (relative error u of a partial sum, which
     * is at most sum|g|), and the mean is rounded once more; a 16-bit wire adds one rounding of each input and
     * rounds each partial sum instead: at most (N+2) * u * sum|g| / N in all cases, with u = 2^-24 (float32),
     * 2^-8 (bfloat16, 8 significant bits) or 2^-11 (binary16).
     */
    private static void assertMean(float[][] g, float[][] got, GradPrecision p) {
        int n = g.length;
        double u = p == GradPrecision.FP32 ? 0x1p-24 : p == GradPrecision.BF16 ? 0x1p-8 : 0x1p-11;
        for (int r = 1; r < n; r++) {
            assertArrayEquals(got[0], got[r], "device " + r + " differs from device 0 (" + p + ")");
        }
        for (int i = 0; i < g[0].length; i++) {
            double sum = 0;
            double abs = 0;
            for (float[] row : g) {
                sum += row[i];
                abs += Math.abs(row[i]);
            }
            double bound = (n + 2) * u * abs / n;
            assertTrue(Math.abs(got[0][i] - sum / n) <= bound, "element " + i + " of " + g[0].length + ": "
                    + got[0][i] + " vs mean " + sum / n + " (bound " + bound + ", " + p + ", N " + n + ")");
            if (p == GradPrecision.BF16) {
                assertEquals(0, Float.floatToRawIntBits(got[0][i]) & 0xffff, "bf16 result " + got[0][i]);
            }
        }
    }

    private static void sizes(int n, boolean staged, GradPrecision p) {
        List<CudaBackend> devs = devices(n);
        try (RingAllReduce ar = new RingAllReduce(new RingAllReduce.Options(p, L, true, staged))) {
            for (int t : new int[] {1, 7, (int) (n * L + 3), (int) (3 * L)}) {
                float[][] g = gradients(n, t, 31L * t + n);
                assertMean(g, reduce(ar, devs, g), p);
            }
        } finally {
            devs.forEach(CudaBackend::close);
        }
    }

    @Test
    void twoDevicesPeerToPeer() {
        sizes(2, false, GradPrecision.FP32);
    }

    @Test
    void fourDevicesPeerToPeer() {
        sizes(4, false, GradPrecision.FP32);
    }

    @Test
    void fourDevicesStagedThroughHost() {
        sizes(4, true, GradPrecision.FP32);
    }

    @Test
    void twoDevicesStagedThroughHost() {
        sizes(2, true, GradPrecision.FP32);
    }

    @Test
    void bfloat16WireBothPaths() {
        sizes(4, false, GradPrecision.BF16);
        sizes(2, true, GradPrecision.BF16);
    }

    @Test
    void float16WireBothPaths() {
        sizes(4, true, GradPrecision.FP16);
        sizes(2, false, GradPrecision.FP16);
    }

    /** The system property that models devices without peer access selects the staged path too. */
    @Test
    void peerPropertyOffGivesTheSameBits() {
        float[][] g = gradients(4, 47, 5);
        List<CudaBackend> devs = devices(4);
        try (RingAllReduce ar = new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, L, true, false))) {
            float[][] peer = reduce(ar, devs, g);
            System.setProperty(EmulatedDriver.PEER_PROPERTY, "false");
            try {
                assertTrue(!devs.get(1).driver().enablePeerAccess(devs.get(0).driver()));
                assertArrayEquals(peer[2], reduce(ar, devs, g)[2]);
            } finally {
                System.clearProperty(EmulatedDriver.PEER_PROPERTY);
            }
        } finally {
            devs.forEach(CudaBackend::close);
        }
    }

    /**
     * Overlap: each device's thread reports its elements final in pieces from the buffer's end backward (as
     * backward fills the gradients), the devices out of step with each other; buckets start in whatever order
     * they complete. The bits equal those of a reduction without overlap.
     */
    @Test
    void overlapGivesTheSameBitsAsNoOverlap() throws Exception {
        int n = 4;
        int t = 123;
        float[][] g = gradients(n, t, 9);
        List<CudaBackend> devs = devices(n);
        try (RingAllReduce plain = new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, L, false, false));
             RingAllReduce over = new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, L, true, false))) {
            float[][] want = reduce(plain, devs, g);
            List<Tensor> bufs = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                Tensor b = devs.get(r).allocate(DType.FLOAT32, Shape.of(t));
                devs.get(r).copyIn(g[r], 0, b);
                bufs.add(b);
            }
            AllReduce.InFlight flight = over.begin(bufs);
            List<Thread> threads = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                int rank = r;
                threads.add(new Thread(() -> {
                    int piece = 7 + 5 * rank; // different cuts per device
                    for (int to = t; to > 0; to -= piece) {
                        flight.ready(rank, Math.max(0, to - piece), to);
                        Thread.yield();
                    }
                }));
            }
            threads.forEach(Thread::start);
            for (Thread th : threads) {
                th.join();
            }
            flight.finish();
            float[][] got = results(devs, bufs);
            for (int r = 0; r < n; r++) {
                assertArrayEquals(want[r], got[r], "device " + r);
            }
        } finally {
            devs.forEach(CudaBackend::close);
        }
    }

    /** A device that fails mid-ring breaks the barrier for all: finish throws, naming the device and the cause. */
    @Test
    void failingDeviceEndsTheReductionEverywhere() {
        List<CudaBackend> devs = devices(4);
        try (RingAllReduce ar = new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, L, true, false))) {
            ar.beforeStep = (rank, step) -> {
                if (rank == 2 && step == 3) {
                    throw new CudaException("injected: device lost");
                }
            };
            float[][] g = gradients(4, 95, 3);
            CudaException e = assertTimeoutPreemptively(Duration.ofSeconds(30),
                    () -> assertThrows(CudaException.class, () -> reduce(ar, devs, g)));
            assertTrue(e.getMessage().contains("emulated CUDA device 2 of 4"), e.getMessage());
            assertTrue(e.getMessage().contains("injected: device lost"), e.getMessage());
            // the same all-reduce works again afterwards
            ar.beforeStep = null;
            assertMean(g, reduce(ar, devs, g), GradPrecision.FP32);
        } finally {
            devs.forEach(CudaBackend::close);
        }
    }

    /** A replica that fails before reporting its gradients: abort returns promptly, nobody waits for it. */
    @Test
    void abortWhileOthersWaitDoesNotHang() {
        List<CudaBackend> devs = devices(2);
        try (RingAllReduce ar = new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, L, true, false))) {
            List<Tensor> bufs = List.of(devs.get(0).allocate(DType.FLOAT32, Shape.of(35)),
                    devs.get(1).allocate(DType.FLOAT32, Shape.of(35)));
            assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
                AllReduce.InFlight flight = ar.begin(bufs);
                flight.ready(0, 0, 35);        // device 0 is done and waits for device 1 ...
                flight.ready(1, 20, 35);       // ... which finished only the last layers, then failed
                flight.abort(new IllegalStateException("replica 1 failed"));
            });
        } finally {
            devs.forEach(CudaBackend::close);
        }
    }

    @Test
    void reportingAnElementTwiceIsAnError() {
        List<CudaBackend> devs = devices(2);
        try (RingAllReduce ar = new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, L, true, false))) {
            List<Tensor> bufs = List.of(devs.get(0).allocate(DType.FLOAT32, Shape.of(8)),
                    devs.get(1).allocate(DType.FLOAT32, Shape.of(8)));
            AllReduce.InFlight flight = ar.begin(bufs);
            flight.ready(0, 0, 8);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> flight.ready(0, 4, 6));
            assertTrue(e.getMessage().contains("twice"), e.getMessage());
            flight.abort(e);
        } finally {
            devs.forEach(CudaBackend::close);
        }
    }

    @Test
    void bucketsNeverCrossACut() {
        assertArrayEquals(new long[] {0, 10, 13, 23, 25}, RingAllReduce.buckets(25, 10, new long[] {13}));
        assertArrayEquals(new long[] {0, 10, 20, 25}, RingAllReduce.buckets(25, 10, new long[] {0, 25}));
        assertArrayEquals(new long[] {0, 7}, RingAllReduce.buckets(7, 10, new long[0]));
        assertThrows(IllegalArgumentException.class, () -> RingAllReduce.buckets(25, 10, new long[] {13, 12}));
        // and a reduction over cut buckets (lengths 3, 10, 4, 10, 10, 1) is still the mean
        float[][] g = gradients(4, 38, 77);
        List<CudaBackend> devs = devices(4);
        try (RingAllReduce ar = new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, L, true, false))) {
            List<Tensor> bufs = new ArrayList<>();
            for (int r = 0; r < 4; r++) {
                Tensor t = devs.get(r).allocate(DType.FLOAT32, Shape.of(38));
                devs.get(r).copyIn(g[r], 0, t);
                bufs.add(t);
            }
            AllReduce.InFlight flight = ar.begin(bufs, new long[] {3, 17, 37});
            for (int r = 0; r < 4; r++) {
                flight.ready(r, 37, 38); // the one-element bucket after the last cut can go first
            }
            flight.finish();
            assertMean(g, results(devs, bufs), GradPrecision.FP32);
        } finally {
            devs.forEach(CudaBackend::close);
        }
    }
}
