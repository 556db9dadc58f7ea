package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.core.testing.Approx.assertClose;

import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.LowRankGradient;
import org.vgg4j.core.layers.ReLU;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.ProcessMemory;
import org.vgg4j.core.testing.TestTensors;

/**
 * FC weight gradients held as factors ({@link LowRankGradient}, {@link Network#deferLinearWeightGradients}): the SGD
 * step's {@link Backend#sgdStepLowRank} against the dense gradient's gemm + sgdStep, on the cpu backend and the
 * reference; whole training steps of a deferred network against the same network kept dense (micro-batches, the
 * overflow to dense, frozen layers); the finiteness check; and the cpu backend's {@link Backend#zeroAndRelease}.
 */
class LowRankGradientTest {
    private static final Backend CPU = Backends.cpu();
    private static final Backend REF = Backends.create("reference");

    @AfterAll
    static void close() {
        CPU.close();
        REF.close();
    }

    /**
     * One low-rank step against gemm + sgdStep, on a weight of 100 x 20,000: with the cpu backend's 2^20-element
     * pieces that is pieces of 52 rows, the last one 48 (a tail). Weight decay on and off, 1 and 7 examples.
     */
    @Test
    void lowRankStepIsTheDenseStep() {
        for (Backend b : List.of(CPU, REF)) {
            for (DType dtype : List.of(DType.FLOAT32, DType.FLOAT64)) {
                for (int r : new int[] {1, 7}) {
                    for (boolean decayed : new boolean[] {true, false}) {
                        int m = 100;
                        int k = 20_000;
                        long seed = 31L * r + (decayed ? 1 : 0) + (dtype == DType.FLOAT64 ? 100 : 0);
                        Tensor dy = TestTensors.random(b, dtype, Shape.of(r, m), seed, -1, 1);
                        Tensor x = TestTensors.random(b, dtype, Shape.of(r, k), seed + 1, -1, 1);
                        Tensor[] fused = {TestTensors.random(b, dtype, Shape.of(m, k), seed + 2, -1, 1),
                            TestTensors.random(b, dtype, Shape.of(m, k), seed + 3, -0.1, 0.1)};
                        Tensor[] dense = {copy(b, fused[0]), copy(b, fused[1])};
                        b.sgdStepLowRank(fused[0], fused[1], dy, x, 0.05, 0.9, 5e-4, decayed);
                        Tensor g = b.allocate(dtype, Shape.of(m, k));
                        b.gemm(true, false, 1.0, dy, x, 0.0, g);
                        b.sgdStep(dense[0], g, dense[1], 0.05, 0.9, 5e-4, decayed ? (long) m * k : 0);
                        String what = b.name() + " " + dtype + " r" + r + (decayed ? " decayed" : "");
                        double tol = dtype == DType.FLOAT32 ? 1e-6 : 1e-13;
                        assertClose(TestTensors.toArray(dense[0]), TestTensors.toArray(fused[0]), tol, tol, what + ": weight");
                        assertClose(TestTensors.toArray(dense[1]), TestTensors.toArray(fused[1]), tol, tol, what + ": velocity");
                        for (Tensor t : new Tensor[] {dy, x, fused[0], fused[1], dense[0], dense[1], g}) {
                            b.free(t);
                        }
                    }
                }
            }
        }
    }

    @Test
    void lowRankStepRejectsShapesThatDoNotFit() {
        Tensor w = CPU.allocate(DType.FLOAT32, Shape.of(8, 6));
        Tensor v = CPU.allocate(DType.FLOAT32, Shape.of(8, 6));
        Tensor dy = CPU.allocate(DType.FLOAT32, Shape.of(3, 8));
        Tensor x = CPU.allocate(DType.FLOAT32, Shape.of(3, 5));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CPU.sgdStepLowRank(w, v, dy, x, 0.1, 0.9, 0, true));
        assertTrue(e.getMessage().contains("sgdStepLowRank") && e.getMessage().contains(Shape.of(3, 5).toString()),
                e.getMessage());
    }

    /** in -> 512 -> ReLU -> 10: fc1 (512 x 512) holds up to 64 examples as factors, fc2 (10 x 512) stays dense. */
    private static Network net(Backend b, DType dtype, int in) {
        Network n = new Network("lowrank", b, dtype, Shape.of(in), List.of(
                new NamedLayer("fc1", new Linear(b, in, 512)),
                new NamedLayer("relu", new ReLU(b)),
                new NamedLayer("fc2", new Linear(b, 512, 10))));
        Tensor v = n.params().values();
        b.copyIn(TestTensors.uniform(5, Math.toIntExact(v.size()), -0.08, 0.08), 0, v);
        return n;
    }

    /** Steps of {@code micro} forward/backward passes of {@code batch} examples each, then an SGD step. */
    private static double[] train(Network n, int steps, int micro, int batch, double frozenFc1) {
        Backend b = n.backend();
        if (frozenFc1 != 1) {
            n.params().setLrMultiplier("fc1.weight", frozenFc1);
        }
        SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(b);
        try (Sgd sgd = new Sgd(n.params(), Sgd.Settings.PAPER)) {
            int in = n.inputShape().dim(0);
            for (int s = 0; s < steps; s++) {
                for (int u = 0; u < micro; u++) {
                    Tensor x = TestTensors.random(b, n.dtype(), Shape.of(batch, in), 100L * s + u, -1, 1);
                    int[] labels = new int[batch];
                    for (int i = 0; i < batch; i++) {
                        labels[i] = (7 * i + s + u) % 10;
                    }
                    loss.forwardBackward(n.forward(x, true), labels);
                    n.backward(loss.gradient());
                    b.free(x);
                }
                sgd.step(0.05);
            }
        }
        return TestTensors.toArray(n.params().values());
    }

    @Test
    void deferredNetworkTrainsAsTheDenseOne() {
        for (int[] c : new int[][] {{8, 1}, {8, 3}, {40, 2}}) { // batch, micro-batches: 8, 24 and 80 (> 64) examples
            int batch = c[0];
            int micro = c[1];
            try (Network dense = net(CPU, DType.FLOAT32, 512); Network deferred = net(CPU, DType.FLOAT32, 512)) {
                assertEquals(1, deferred.deferLinearWeightGradients(), "fc1 deferred, fc2 (10 outputs) not");
                assertEquals(1, deferred.deferLinearWeightGradients(), "idempotent");
                double[] want = train(dense, 3, micro, batch, 1);
                double[] got = train(deferred, 3, micro, batch, 1);
                assertClose(want, got, 1e-5, 1e-6, "batch " + batch + " x " + micro);
                LowRankGradient g = deferred.params().lowRank().get(0);
                assertEquals(batch * micro > g.maxRows(), g.isDense(), "dense once a step overflows " + g.maxRows());
                assertEquals(0, g.rows(), "the step used the factors up");
            }
        }
    }

    @Test
    void deferredGradientIsZeroInTheBufferUntilDensified() {
        try (Network dense = net(CPU, DType.FLOAT64, 512); Network deferred = net(CPU, DType.FLOAT64, 512)) {
            deferred.deferLinearWeightGradients();
            for (Network n : List.of(dense, deferred)) {
                Tensor x = TestTensors.random(CPU, DType.FLOAT64, Shape.of(6, 512), 9, -1, 1);
                SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(CPU);
                loss.forwardBackward(n.forward(x, true), new int[] {1, 2, 3, 4, 5, 6});
                n.backward(loss.gradient());
            }
            Tensor fc1 = deferred.params().get("fc1.weight").grad();
            assertEquals(0.0, CPU.sumOfSquares(fc1), "zero while held as factors");
            assertEquals(6, deferred.params().lowRank().get(0).rows());
            assertTrue(deferred.params().gradsSurelyFinite());
            deferred.params().densifyGrads();
            assertClose(TestTensors.toArray(dense.params().grads()), TestTensors.toArray(deferred.params().grads()),
                    1e-12, 1e-14, "densified gradients");
            deferred.params().zeroGrads();
            assertEquals(0.0, CPU.sumOfSquares(deferred.params().grads()));
            assertEquals(0, deferred.params().lowRank().get(0).rows());
        }
    }

    @Test
    void frozenDeferredLayerStaysAndItsFactorsAreDropped() {
        try (Network n = net(CPU, DType.FLOAT32, 512)) {
            n.deferLinearWeightGradients();
            double[] before = TestTensors.toArray(n.params().get("fc1.weight").value());
            train(n, 2, 1, 8, 0.0);
            assertClose(before, TestTensors.toArray(n.params().get("fc1.weight").value()), 0, 0, "frozen fc1");
            assertEquals(0, n.params().lowRank().get(0).rows());
        }
    }

    /** Learning-rate multiplier 0.5 on the deferred layer: as the dense network with the same multiplier. */
    @Test
    void lrMultiplierAppliesToTheDeferredLayer() {
        try (Network dense = net(CPU, DType.FLOAT32, 512); Network deferred = net(CPU, DType.FLOAT32, 512)) {
            deferred.deferLinearWeightGradients();
            assertClose(train(dense, 2, 1, 8, 0.5), train(deferred, 2, 1, 8, 0.5), 1e-5, 1e-6, "lr_mult 0.5");
        }
    }

    @Test
    void finitenessCheckSeesThroughTheFactors() {
        try (Network n = net(CPU, DType.FLOAT32, 512)) {
            n.deferLinearWeightGradients();
            LowRankGradient g = n.params().lowRank().get(0);
            Tensor x = TestTensors.random(CPU, DType.FLOAT32, Shape.of(2, 512), 3, -1, 1);
            Tensor dy = TestTensors.random(CPU, DType.FLOAT32, Shape.of(2, 512), 4, -1, 1);
            g.add(dy, x);
            assertTrue(n.params().gradsSurelyFinite(), "small factors");
            assertFalse(g.isDense(), "conclusive: stays factors");
            CPU.fill(dy, 1e20); // finite factors whose products (1e40) are past float32's range
            CPU.fill(x, 1e20);
            g.add(dy, x);
            assertFalse(n.params().gradsSurelyFinite(), "products past float32's range");
            assertTrue(g.isDense(), "inconclusive bound: checked on the dense gradient");
            n.params().zeroGrads();
            CPU.fill(dy, Double.NaN);
            g.add(dy, x);
            assertFalse(n.params().gradsSurelyFinite(), "a NaN factor");
        }
    }

    @Test
    void smallLayersAreNotDeferred() {
        try (Network n = new Network("small", CPU, DType.FLOAT32, Shape.of(256), List.of(
                new NamedLayer("fc1", new Linear(CPU, 256, 256)), new NamedLayer("fc2", new Linear(CPU, 256, 10))))) {
            assertEquals(0, n.deferLinearWeightGradients(), "256 x 256 holds 32 examples' factors, fewer than 64");
            assertTrue(n.params().lowRank().isEmpty());
        }
        Tensor g = CPU.allocate(DType.FLOAT32, Shape.of(4, 10));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new LowRankGradient(CPU, g));
        assertTrue(e.getMessage().contains("4x10"), e.getMessage());
    }

    /** zeroAndRelease: zeros everywhere (an unaligned view's ends too), and the pages leave the RSS. */
    @Test
    void zeroAndReleaseZeroesAndHandsTheMemoryBack() throws Exception {
        int n = 16 << 20; // 64 MiB of float32
        Tensor t = CPU.allocate(DType.FLOAT32, Shape.of(n));
        CPU.fill(t, 1.0);
        long before = ProcessMemory.rssKib();
        Tensor view = t.view(3, Shape.of(n - 10)); // not page-aligned at either end
        CPU.zeroAndRelease(view);
        long after = ProcessMemory.rssKib();
        assertEquals(3.0 + 7.0, CPU.sumOfSquares(t), "only the 3 + 7 elements outside the view stay 1");
        assertEquals(0.0, CPU.sumOfSquares(view));
        assertTrue(before - after > 48 * 1024, "RSS " + before + " KiB -> " + after + " KiB: 64 MiB released");
        CPU.fill(t, 2.0); // written again: backed again, and correct
        assertEquals(4.0 * n, CPU.sumOfSquares(t));
        CPU.free(t);
    }

    private static Tensor copy(Backend b, Tensor t) {
        Tensor c = b.allocate(t.dtype(), t.shape());
        b.copy(t, c);
        return c;
    }
}
