package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.RingAllReduce;
import org.vgg4j.data.Batch;

/**
 * Synchronous data-parallel SGD on 2 and 4 emulated CUDA devices (backend "cuda-emulated", found through
 * ServiceLoader as in production; the ring all-reduce through {@link Replicas#allReduceFor} or built directly to set
 * its options): N devices train like one device on the whole batch, replicas stay bitwise identical, overlap does
 * not change a bit, bf16 gradients stay within their rounding, and a worker that fails ends the step for all,
 * naming its device. A tiny VGG-A (width 1/16, 32x32, FC 16): the emulator is slow.
 */
class DataParallelCudaTest {
    private static final String BACKEND = "cuda-emulated";
    private static final String DEVICES = "vgg4j.cuda.emulated.devices";
    private static String savedDevices;
    private static final VggSpec SPEC = Tiny.spec(false, 0.0);
    private static List<Batch> data;

    @BeforeAll
    static void fourEmulatedDevices() {
        String why = null;
        try {
            Backends.deviceCount(BACKEND);
        } catch (RuntimeException e) {
            why = e.getMessage();
        }
        String reason = why;
        Assumptions.assumeTrue(reason == null, () -> "emulated CUDA device not available: " + reason);
        savedDevices = System.getProperty(DEVICES);
        System.setProperty(DEVICES, "4");
        data = ReplicasTest.batches(8, 2);
    }

    @AfterAll
    static void restore() {
        if (savedDevices == null) {
            System.clearProperty(DEVICES);
        } else {
            System.setProperty(DEVICES, savedDevices);
        }
    }

    /** What a run leaves: replica 0's gradients after the first forward/backward, every replica's parameters. */
    private record Run(float[] firstGrads, float[][] params, float[][] velocity) {
    }

    private static float[] host(Tensor t) {
        float[] f = new float[Math.toIntExact(t.size())];
        t.backend().copyOut(t, f, 0);
        return f;
    }

    private static Run train(int n, AllReduce allReduce, Replicas.Factory factory) {
        try (Replicas r = Replicas.create(BACKEND, n, factory, new Sgd.Settings(0.9, 5e-4), allReduce)) {
            Initializers.initialize(r.primary(), Initializers.Scheme.GLOROT_UNIFORM, 11);
            r.broadcastFromPrimary();
            float[] first = null;
            for (Batch b : data) {
                r.forwardBackward(b, 0);
                if (first == null) {
                    first = host(r.primary().params().grads());
                }
                r.step(0.05);
            }
            float[][] params = new float[n][];
            float[][] velocity = new float[n][];
            for (int k = 0; k < n; k++) {
                params[k] = host(r.network(k).params().values());
                velocity[k] = host(r.optimizer(k).velocity());
            }
            return new Run(first, params, velocity);
        }
    }

    private static Run train(int n, AllReduce allReduce) {
        return train(n, allReduce, (b, rank) -> Vgg.build(b, DType.FLOAT32, SPEC));
    }

    private static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    /** max_i |want_i - got_i| / max_i |want_i| */
    private static double relDiff(float[] want, float[] got) {
        assertEquals(want.length, got.length);
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            worst = Math.max(worst, Math.abs(want[i] - got[i]));
        }
        return worst / maxAbs(want);
    }

    private static void assertIdenticalReplicas(Run run) {
        for (int k = 1; k < run.params().length; k++) {
            assertArrayEquals(run.params()[0], run.params()[k], "replica " + k + " parameters");
            assertArrayEquals(run.velocity()[0], run.velocity()[k], "replica " + k + " momentum");
        }
    }

    /**
     * Tolerance: the gradient of a batch of 8 is the same sum of per-example terms either way, only grouped and
     * ordered differently (per-device shares, then the ring's fixed order), so float32 results differ by a few
     * roundings of the largest partial sums: ~10 * 2^-24 * max|g| ~ 6e-7 relative to the largest gradient (measured:
     * 5e-8). 1e-5 leaves room for the depth of the conv sums and is still ten thousand times smaller than any
     * weighting mistake (a missing 1/N, a share counted twice) would make. The parameters after two SGD steps move
     * by lr * gradient, so they differ by less still (measured: 3e-8 of the largest parameter; bound 1e-6).
     */
    @Test
    void twoAndFourDevicesTrainLikeOneDeviceOnTheWholeBatch() {
        Run one = train(1, new HostAllReduce());
        Run two = train(2, Replicas.allReduceFor(BACKEND, 2, GradPrecision.FP32));
        Run four = train(4, new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, 1000, true, false)));
        assertTrue(two.firstGrads().length > 10_000, "a network with several buckets of 1000");
        double g2 = relDiff(one.firstGrads(), two.firstGrads());
        double g4 = relDiff(one.firstGrads(), four.firstGrads());
        assertTrue(g2 < 1e-5 && g4 < 1e-5, "first-step gradients differ: 2 devices " + g2 + ", 4 devices " + g4);
        assertTrue(relDiff(one.params()[0], two.params()[0]) < 1e-6, "parameters after 2 steps, 2 devices");
        assertTrue(relDiff(one.params()[0], four.params()[0]) < 1e-6, "parameters after 2 steps, 4 devices");
        assertIdenticalReplicas(two);
        assertIdenticalReplicas(four);
    }

    /** Overlap (buckets sent while earlier layers are still in backward) changes timing, never a bit. */
    @Test
    void overlapOnOrOffGivesTheSameBits() {
        Run on = train(4, new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, 777, true, true)));
        Run off = train(4, new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, 777, false, false)));
        assertArrayEquals(off.firstGrads(), on.firstGrads());
        assertArrayEquals(off.params()[0], on.params()[0]);
        assertIdenticalReplicas(on);
    }

    /**
     * bf16 on the wire: the averaged gradient is bf16-representable and within bf16 rounding of the float32 one:
     * (N+2) roundings of relative size 2^-8 of sums bounded by the largest |g|, i.e. 4 * 2^-8 ~ 1.6e-2 for N = 2
     * (measured: 2.9e-3, i.e. most elements are far below the largest).
     */
    @Test
    void bfloat16GradientsStayWithinTheirRounding() {
        Run fp32 = train(2, Replicas.allReduceFor(BACKEND, 2, GradPrecision.FP32));
        Run bf16 = train(2, Replicas.allReduceFor(BACKEND, 2, GradPrecision.BF16));
        double d = relDiff(fp32.firstGrads(), bf16.firstGrads());
        assertTrue(d < 4 * 0x1p-8, "bf16 gradients differ by " + d);
        assertTrue(d > 0, "bf16 rounding must show");
        for (float v : bf16.firstGrads()) {
            assertEquals(0, Float.floatToRawIntBits(v) & 0xffff, "not a bf16 value: " + v);
        }
        assertIdenticalReplicas(bf16);
    }

    /** An identity layer whose backward fails: the "device error" of one worker. */
    private static final class FailingLayer implements Layer {
        @Override
        public String describe() {
            return "failing";
        }

        @Override
        public Shape outputShape(Shape input) {
            return input;
        }

        @Override
        public Tensor forward(Tensor x, boolean training) {
            return x;
        }

        @Override
        public Tensor backward(Tensor dy) {
            throw new IllegalStateException("injected failure in backward");
        }
    }

    @Test
    void aFailingWorkerBreaksTheStepForAllAndNamesItsDevice() {
        Replicas.Factory factory = (b, rank) -> {
            if (rank != 1) {
                return Vgg.build(b, DType.FLOAT32, SPEC);
            }
            List<NamedLayer> layers = new ArrayList<>(Vgg.layers(b, SPEC));
            layers.add(new NamedLayer("fail", new FailingLayer()));
            return new Network(SPEC.name(), b, DType.FLOAT32, Shape.of(3, SPEC.inputSize(), SPEC.inputSize()), layers);
        };
        IllegalStateException e = assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            try (Replicas r = Replicas.create(BACKEND, 4, factory, new Sgd.Settings(0.9, 0),
                    Replicas.allReduceFor(BACKEND, 4, GradPrecision.FP32))) {
                Initializers.initialize(r.primary(), Initializers.Scheme.GLOROT_UNIFORM, 11);
                r.broadcastFromPrimary();
                return assertThrows(IllegalStateException.class, () -> r.forwardBackward(data.get(0), 0));
            }
        });
        assertTrue(e.getMessage().contains("replica 1 of 4"), e.getMessage());
        assertTrue(e.getMessage().contains("emulated CUDA device 1 of 4"), e.getMessage());
        assertTrue(e.getMessage().contains("injected failure in backward"), e.getMessage());
    }

    @Test
    void moreReplicasThanDevicesIsRefusedNamingTheCount() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Replicas.create(BACKEND, 5,
                (b, rank) -> Vgg.build(b, DType.FLOAT32, SPEC), Sgd.Settings.PAPER, new HostAllReduce()));
        assertTrue(e.getMessage().contains("has only 4 device(s)"), e.getMessage());
        // and replica r really is on device r
        try (Replicas r = Replicas.create(BACKEND, 3, (b, rank) -> Vgg.build(b, DType.FLOAT32, SPEC),
                Sgd.Settings.PAPER, new HostAllReduce())) {
            for (int k = 0; k < 3; k++) {
                Backend b = r.network(k).backend();
                assertTrue(b.describe().contains("device " + k + " of 4"), b.describe());
            }
        }
    }
}
