package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.Batch;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.FashionMnist;

/**
 * Gradient accumulation and data parallelism against one big batch, on the reference backend. In float64 the
 * different summation orders agree to ~1e-12, so any mistake in the weighting (a factor m/B, N) shows at once.
 */
class ReplicasTest {

    /** Copies of the first {@code steps} batches (the pipeline reuses its buffers). */
    static List<Batch> batches(int batch, int steps) {
        List<Batch> out = new ArrayList<>();
        try (DataPipeline p = Tiny.pipeline(Tiny.fashion(batch * steps, FashionMnist.Split.TRAIN), batch, 3, true);
             DataPipeline.Epoch e = p.epoch(0, 0)) {
            for (int i = 0; i < steps; i++) {
                Batch b = e.next();
                Batch c = new Batch(b.capacity(), b.channels(), b.height(), b.width());
                System.arraycopy(b.hostImages(), 0, c.hostImages(), 0, b.size() * b.exampleSize());
                System.arraycopy(b.labels(), 0, c.labels(), 0, b.size());
                c.setSize(b.size());
                out.add(c);
            }
        }
        return out;
    }

    /** Trains {@code replicas} x {@code micro} on the batches; returns replica 0's parameters and the losses. */
    private static double[][] train(int replicas, int micro, List<Batch> data, VggSpec spec) {
        return train(Tiny.replicas(replicas, spec, DType.FLOAT64, 0.9, 5e-4), micro, data);
    }

    /** As above with every replica's Dropout layers on the spec's own seed. */
    private static double[][] trainOneSeed(int replicas, int micro, List<Batch> data, VggSpec spec) {
        return train(Replicas.create("reference", replicas, (b, k) -> Vgg.build(b, DType.FLOAT64, spec),
                new Sgd.Settings(0.9, 5e-4), new HostAllReduce()), micro, data);
    }

    /** {@code n} replicas of {@code spec} in float64 on the cpu backend, one dropout seed. */
    private static Replicas cpu(int n, VggSpec spec) {
        return Replicas.create("cpu", n, (b, k) -> Vgg.build(b, DType.FLOAT64, spec), new Sgd.Settings(0.9, 5e-4),
                new HostAllReduce());
    }

    private static double[][] train(Replicas replicas, int micro, List<Batch> data) {
        try (Replicas r = replicas) {
            Initializers.initialize(r.primary(), Initializers.Scheme.GLOROT_UNIFORM, 11);
            r.broadcastFromPrimary();
            double[] losses = new double[data.size()];
            for (int i = 0; i < data.size(); i++) {
                losses[i] = r.forwardBackward(data.get(i), micro, i);
                r.step(0.05);
            }
            double[] p0 = Tiny.values(r.primary());
            for (int k = 1; k < r.size(); k++) {
                // bitwise identical replicas: parameters and momentum
                assertArrayEquals(p0, Tiny.values(r.network(k)), 0.0, "replica " + k + " parameters");
                assertArrayEquals(Tiny.host(r.optimizer(0).velocity(), r.primary()),
                        Tiny.host(r.optimizer(k).velocity(), r.network(k)), 0.0, "replica " + k + " momentum");
            }
            return new double[][] {p0, losses};
        }
    }

    private static void assertClose(double[] want, double[] got, double tol) {
        assertEquals(want.length, got.length);
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            worst = Math.max(worst, Math.abs(want[i] - got[i]) / (1e-3 + Math.abs(want[i])));
        }
        assertTrue(worst < tol, "largest relative difference " + worst);
    }

    @Test
    void accumulatedMicroBatchesEqualOneBigBatch() {
        VggSpec spec = Tiny.spec(false, 0.0);
        List<Batch> data = batches(10, 3);
        double[][] big = train(1, 0, data, spec);
        double[][] micro = train(1, 3, data, spec); // shares of 3, 3, 3, 1: unequal micro-batches
        assertClose(big[0], micro[0], 1e-9);
        assertClose(big[1], micro[1], 1e-12);
        // and the run moved: the first update is not a no-op
        double[][] none = train(1, 0, data.subList(0, 1), spec);
        assertTrue(Math.abs(none[0][0] - big[0][0]) > 0 || Math.abs(none[0][5] - big[0][5]) > 0);
    }

    @Test
    void twoAndThreeReplicasEqualOneReplicaOnTheWholeBatch() {
        VggSpec spec = Tiny.spec(false, 0.0);
        List<Batch> data = batches(10, 3); // 10 = 5 + 5 and 4 + 3 + 3
        double[][] one = train(1, 0, data, spec);
        double[][] two = train(2, 0, data, spec);
        double[][] three = train(3, 2, data, spec); // replicas and accumulation together
        assertClose(one[0], two[0], 1e-9);
        assertClose(one[0], three[0], 1e-9);
        assertClose(one[1], three[1], 1e-12);
    }

    /**
     * One replica on the cpu backend holds the FC weights' gradients as factors (Network#deferLinearWeightGradients:
     * here fc7, 512 x 512), two replicas keep them dense for the all-reduce, and the reference backend, where the
     * factors would not pay, never defers: the same training every way (float64).
     */
    @Test
    void oneCpuReplicaDefersItsFcGradientsAndTrainsAsTwoDense() {
        VggSpec spec = new VggSpec(VggConfig.A, false, 10, 32, 0.0625, 512, 0.0, 7);
        List<Batch> data = batches(10, 3);
        try (Replicas one = cpu(1, spec); Replicas two = cpu(2, spec);
             Replicas ref = Tiny.replicas(1, spec, DType.FLOAT64, 0.9, 5e-4)) {
            assertEquals(1, one.primary().params().lowRank().size(), "one replica: fc7's gradient as factors");
            assertEquals(0, two.primary().params().lowRank().size(), "two replicas: dense for the all-reduce");
            assertEquals(0, ref.primary().params().lowRank().size(), "reference backend: dense");
        }
        double[][] one = train(cpu(1, spec), 3, data); // micro-batches: factors accumulate over 4 backward passes
        double[][] two = train(cpu(2, spec), 0, data);
        assertClose(one[0], two[0], 1e-9);
        assertClose(one[1], two[1], 1e-12);
    }

    /**
     * Dropout masks are keyed by (step, position in the global batch): with one seed for every replica, replicas and
     * micro-batches draw the masks one replica draws for the whole batch, so the runs agree as without dropout.
     */
    @Test
    void dropoutMasksDoNotDependOnTheSplitOverReplicasAndMicroBatches() {
        VggSpec spec = Tiny.spec(false, 0.5);
        List<Batch> data = batches(10, 3);
        double[][] one = trainOneSeed(1, 0, data, spec);
        double[][] micro = trainOneSeed(1, 3, data, spec);
        double[][] two = trainOneSeed(2, 0, data, spec);
        double[][] three = trainOneSeed(3, 2, data, spec);
        for (double[][] run : List.of(micro, two, three)) {
            assertClose(one[0], run[0], 1e-9);
            assertClose(one[1], run[1], 1e-12);
        }
        // and the masks mattered: another dropout seed trains to other parameters
        double[][] other = trainOneSeed(1, 0, data, spec.withSeed(spec.seed() + 1));
        assertTrue(Math.abs(other[1][1] - one[1][1]) > 1e-6, "losses " + other[1][1] + " and " + one[1][1]);
    }

    @Test
    void float32ReplicasStayBitwiseIdenticalWithBatchNormAndDropout() {
        VggSpec spec = Tiny.spec(true, 0.5);
        List<Batch> data = batches(8, 2);
        try (Replicas r = Tiny.replicas(2, spec, DType.FLOAT32, 0.9, 5e-4)) {
            Initializers.initialize(r.primary(), Initializers.Scheme.GLOROT_UNIFORM, 5);
            r.broadcastFromPrimary();
            for (Batch b : data) {
                r.forwardBackward(b, 0);
                r.step(0.01);
            }
            float[] a = new float[Math.toIntExact(r.primary().params().values().size())];
            float[] b = new float[a.length];
            r.primary().backend().copyOut(r.primary().params().values(), a, 0);
            r.network(1).backend().copyOut(r.network(1).params().values(), b, 0);
            assertArrayEquals(a, b);
            float[] sa = new float[Math.toIntExact(r.primary().params().state().size())];
            float[] sb = new float[sa.length];
            r.primary().backend().copyOut(r.primary().params().state(), sa, 0);
            r.network(1).backend().copyOut(r.network(1).params().state(), sb, 0);
            assertArrayEquals(sa, sb, "BatchNorm running statistics are averaged so replicas stay identical");
        }
    }

    /**
     * The overlap protocol: in the last micro-batch only, every gradient element of every replica is reported final
     * exactly once, and the first report is the last layer's (its backward runs first), so a device all-reduce can
     * start on the end of the buffer while the rest is still in backward.
     */
    @Test
    void readyReportsEveryGradientOnceLastLayerFirst() {
        VggSpec spec = Tiny.spec(false, 0.0);
        List<Batch> data = batches(10, 1);
        List<List<long[]>> reports = new ArrayList<>();
        AllReduce recording = new AllReduce() {
            private final HostAllReduce host = new HostAllReduce();

            @Override
            public void average(List<org.vgg4j.core.tensor.Tensor> buffers) {
                host.average(buffers);
            }

            @Override
            public InFlight begin(List<org.vgg4j.core.tensor.Tensor> buffers) {
                for (int r = 0; r < buffers.size(); r++) {
                    reports.add(java.util.Collections.synchronizedList(new ArrayList<>()));
                }
                return new InFlight() {
                    @Override
                    public void ready(int rank, long from, long to) {
                        reports.get(rank).add(new long[] {from, to});
                    }

                    @Override
                    public void finish() {
                        average(buffers);
                    }

                    @Override
                    public void abort(Throwable cause) {
                    }
                };
            }
        };
        try (Replicas r = Replicas.create("reference", 2, (b, k) -> Vgg.build(b, DType.FLOAT32, spec),
                new Sgd.Settings(0.9, 0), recording)) {
            r.forwardBackward(data.get(0), 2); // shares of 5: micro-batches of 2, 2, 1
            long total = r.primary().params().trainedCount();
            long decayed = r.primary().params().decayedCount();
            for (int k = 0; k < 2; k++) {
                List<long[]> got = reports.get(k);
                boolean[] seen = new boolean[Math.toIntExact(total)];
                for (long[] range : got) {
                    for (long i = range[0]; i < range[1]; i++) {
                        assertTrue(!seen[(int) i], "element " + i + " reported twice by replica " + k);
                        seen[(int) i] = true;
                    }
                }
                for (int i = 0; i < seen.length; i++) {
                    assertTrue(seen[i], "element " + i + " of " + total + " never reported by replica " + k);
                }
                // the last Linear layer: its weight ends the decayed block, its bias ends the buffer
                assertEquals(decayed, got.get(0)[1], "first report: the last layer's weight");
                assertEquals(total, got.get(1)[1], "second report: the last layer's bias");
            }
        }
    }
}
