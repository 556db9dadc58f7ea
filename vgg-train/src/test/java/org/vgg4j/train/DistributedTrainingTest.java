package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.train.dist.Ranks;
import org.vgg4j.train.dist.TcpAllReduce;
import org.vgg4j.train.dist.TcpProcessGroup;

/**
 * N processes with the same Trainer code, each a rank with its own TCP group, replicas, backends and data shard.
 * The ranks run as threads of this JVM (dist.Ranks) rather than child JVMs: each has its own sockets exactly as
 * separate processes would, the whole Trainer runs per rank, and a test costs no JVM start-up or ND4J loading per
 * rank (the suite stays fast on 2 cores); a dying process is its sockets closing without a word, which is what a
 * thread closing them abruptly does. (ResumeTest already covers kill -9 of a real JVM for checkpoints.)
 *
 * <p>Float64 on the reference backend: N processes and one process differ only in the order of float64 sums
 * (per-replica gradient sums, the all-reduce's), ~1e-16 relative per operation, so after a few SGD steps 1e-10
 * relative is a tolerance with six orders of magnitude to spare that a wrong weighting (a factor 2 on a share)
 * or a missing example (1/8 of the gradient) would blow by far.
 */
class DistributedTrainingTest {
    private static final Duration T = Duration.ofSeconds(60);

    private static Recipe recipe(int batch, int micro, long steps) {
        return Recipes.paperA().toBuilder().batchSize(batch).microBatch(micro).maxEpochs(5).maxIterations(steps).baseLr(0.05)
                .stuckLossSteps(0).schedule(Schedule.parse("constant")).checkpointEvery(2).keepLast(3).build();
    }

    /** What one rank (or the one process) ended with. */
    private record Outcome(double[] params, double[] momentum, List<Double> losses, TrainState state) {
    }

    private static Outcome train(int rank, int world, AllReduce allReduce, int local, VggSpec spec, IdxDataset data,
                                 Recipe recipe, Path checkpoints, List<TrainingListener> extra) throws Exception {
        return train(rank, world, allReduce, local, spec, data, recipe, checkpoints, extra, 1000L);
    }

    /** Replica k of rank r has dropout seed spec.seed() + seedStride * (r * local + k). */
    private static Outcome train(int rank, int world, AllReduce allReduce, int local, VggSpec spec, IdxDataset data,
                                 Recipe recipe, Path checkpoints, List<TrainingListener> extra, long seedStride)
            throws Exception {
        DataPipeline.Config cfg = DataPipeline.Config.training(recipe.batchSize() / world, 1, 5).sharded(rank, world);
        List<Double> losses = new ArrayList<>();
        List<TrainingListener> listeners = new ArrayList<>(extra);
        listeners.add(new TrainingListener() {
            @Override
            public void onStep(Step s) {
                losses.add(s.loss());
            }
        });
        try (DataPipeline train = new DataPipeline(data, Tiny.augment(), cfg);
             Replicas r = Replicas.create("reference", local,
                     (b, k) -> Vgg.build(b, DType.FLOAT64, spec.withSeed(spec.seed() + seedStride * (rank * local + k))),
                     new Sgd.Settings(0.9, 5e-4), allReduce)) {
            Trainer.Result res = new Trainer(r, train, null, recipe,
                    checkpoints == null ? null : new Checkpointer(checkpoints, 3),
                    net -> Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 11), listeners).run();
            for (int k = 1; k < local; k++) {
                assertArrayEquals(Tiny.values(r.primary()), Tiny.values(r.network(k)), "local replica " + k);
            }
            return new Outcome(Tiny.values(r.primary()), Tiny.host(r.optimizer(0).velocity(), r.primary()), losses,
                    res.state());
        }
    }

    private static Outcome single(VggSpec spec, IdxDataset data, Recipe recipe) throws Exception {
        return train(0, 1, new HostAllReduce(), 1, spec, data, recipe, null, List.of());
    }

    private static List<Outcome> distributed(int world, int local, VggSpec spec, IdxDataset data, Recipe recipe,
                                             Path dir) throws Exception {
        List<Object> res = Ranks.run(world, T, (rank, group) -> train(rank, world, new TcpAllReduce(group), local, spec,
                data, recipe, dir == null ? null : dir.resolve("rank" + rank), List.of()));
        List<Outcome> out = new ArrayList<>();
        for (Object o : res) {
            if (o instanceof Throwable t) {
                throw new AssertionError("a rank failed: " + t, t);
            }
            out.add((Outcome) o);
        }
        return out;
    }

    private static void assertClose(double[] want, double[] got, double rel, String what) {
        double scale = 0;
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            scale = Math.max(scale, Math.abs(want[i]));
            worst = Math.max(worst, Math.abs(want[i] - got[i]));
        }
        assertTrue(worst <= rel * scale, what + ": max difference " + worst + " > " + rel + " x " + scale);
    }

    @Test
    void twoAndThreeProcessesEqualOneProcessOnTheWholeBatch() throws Exception {
        VggSpec spec = Tiny.spec(false, 0.0);
        IdxDataset data = Tiny.fashion(48, FashionMnist.Split.TRAIN);
        // 2 processes x 1 replica, global batch 8 (4 per rank); 4 steps
        Recipe r = recipe(8, 0, 4);
        Outcome one = single(spec, data, r);
        List<Outcome> two = distributed(2, 1, spec, data, r, null);
        // 3 processes x 2 replicas, global batch 12: each rank's 4 examples split 2+2, micro-batches of 1
        Recipe r12 = recipe(12, 1, 3);
        Outcome one12 = single(spec, data, r12);
        List<Outcome> six = distributed(3, 2, spec, data, r12, null);
        for (List<Outcome> run : List.of(two, six)) {
            Outcome want = run == two ? one : one12;
            for (int k = 0; k < run.size(); k++) {
                // replicas identical across ranks: bit for bit
                assertArrayEquals(run.get(0).params(), run.get(k).params(), "rank " + k + " parameters");
                assertArrayEquals(run.get(0).momentum(), run.get(k).momentum(), "rank " + k + " momentum");
            }
            assertClose(want.params(), run.get(0).params(), 1e-10, run.size() + " ranks: parameters");
            assertClose(want.momentum(), run.get(0).momentum(), 1e-10, run.size() + " ranks: momentum");
            assertEquals(want.losses().size(), run.get(0).losses().size());
            for (int i = 0; i < want.losses().size(); i++) { // the loss every rank sees is the global batch's
                assertEquals(want.losses().get(i), run.get(0).losses().get(i), 1e-10 * want.losses().get(i), "step " + i);
                assertEquals(run.get(0).losses().get(i), run.get(run.size() - 1).losses().get(i), 0.0);
            }
            double moved = 0;
            for (int i = 0; i < want.params().length; i++) { // the steps did something to compare
                moved = Math.max(moved, Math.abs(want.params()[i]));
            }
            assertTrue(moved > 0);
        }
    }

    /**
     * Dropout masks are keyed by (step, position in the global batch), and rank k of W holds positions k, k+W, ...:
     * with one seed everywhere, 3 processes x 2 replicas with micro-batches of 1 draw one process's masks.
     */
    @Test
    void dropoutMasksDoNotDependOnTheSplitOverProcesses() throws Exception {
        VggSpec spec = Tiny.spec(false, 0.5);
        IdxDataset data = Tiny.fashion(48, FashionMnist.Split.TRAIN);
        Recipe r12 = recipe(12, 1, 3);
        Outcome one = train(0, 1, new HostAllReduce(), 1, spec, data, r12, null, List.of(), 0);
        List<Object> res = Ranks.run(3, T, (rank, group) -> train(rank, 3, new TcpAllReduce(group), 2, spec, data, r12,
                null, List.of(), 0));
        for (int k = 0; k < res.size(); k++) {
            if (res.get(k) instanceof Throwable t) {
                throw new AssertionError("rank " + k + " failed: " + t, t);
            }
            Outcome six = (Outcome) res.get(k);
            assertClose(one.params(), six.params(), 1e-10, "rank " + k + ": parameters");
            for (int i = 0; i < one.losses().size(); i++) {
                assertEquals(one.losses().get(i), six.losses().get(i), 1e-10 * one.losses().get(i), "step " + i);
            }
        }
    }

    @Test
    void onlyRankZeroWritesCheckpointsAndAResumedRunEqualsAnUninterruptedOne(@TempDir Path dir) throws Exception {
        VggSpec spec = Tiny.spec(true, 0.5); // BatchNorm state must survive, and dropout draw the same masks
        IdxDataset data = Tiny.fashion(32, FashionMnist.Split.TRAIN);
        List<Outcome> straight = distributed(2, 2, spec, data, recipe(8, 0, 6), dir.resolve("straight"));
        List<Outcome> first = distributed(2, 2, spec, data, recipe(8, 0, 4), dir.resolve("resumed"));
        assertEquals(4, first.get(0).state().step());
        // resume from the mid-epoch save at step 2 (position 2 of 4): the epoch-end save at step 4 goes away
        Files.delete(dir.resolve("resumed").resolve("rank0").resolve("step-0000000004.safetensors"));
        // rank 1 writes nothing
        assertTrue(!Files.exists(dir.resolve("resumed").resolve("rank1")), "rank 1 wrote to its checkpoint directory");
        // the second run: rank 0 restores step 2 (the last save) and hands the state to rank 1 (an empty directory)
        List<Outcome> resumed = distributed(2, 2, spec, data, recipe(8, 0, 6), dir.resolve("resumed"));
        for (int k = 0; k < 2; k++) {
            assertArrayEquals(straight.get(k).params(), resumed.get(k).params(), "rank " + k);
            assertArrayEquals(straight.get(k).momentum(), resumed.get(k).momentum(), "rank " + k);
        }
        assertEquals(6, resumed.get(1).state().step());
    }

    @Test
    void aRankThatDiesMidRunMakesTheOthersFailNamingIt() throws Exception {
        VggSpec spec = Tiny.spec(false, 0.0);
        IdxDataset data = Tiny.fashion(48, FashionMnist.Split.TRAIN);
        Recipe r = recipe(12, 0, 20);
        List<Object> res = Ranks.run(3, T, (rank, group) -> {
            TrainingListener dies = new TrainingListener() {
                @Override
                public void onStep(Step s) {
                    if (rank == 2 && s.step() == 2) {
                        group.close(); // the process is gone: its sockets close, nothing is said
                        throw new IllegalStateException("rank 2 is dead");
                    }
                }
            };
            return train(rank, 3, new TcpAllReduce(group), 1, spec, data, r, null, List.of(dies));
        });
        assertInstanceOf(IllegalStateException.class, res.get(2));
        for (int k = 0; k < 2; k++) {
            IllegalStateException e = assertInstanceOf(TcpProcessGroup.GroupFailure.class, res.get(k), String.valueOf(res.get(k)));
            assertTrue(e.getMessage().contains("rank 2 closed its connection"), e.getMessage());
        }
    }
}
