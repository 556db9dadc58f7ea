package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.FashionMnist;

class GuardrailsTest {
    private static final VggSpec SPEC = Tiny.spec(false, 0.0);

    private static void poison(Replicas r, String key) {
        var t = r.primary().params().get(key).value();
        r.primary().backend().fill(t.reshape(Math.toIntExact(t.size())).view(0, Shape.of(1)), Double.NaN);
    }

    private static Trainer trainer(Replicas r, DataPipeline train, Recipe recipe, Checkpointer c, Initialization init,
                                   List<TrainingListener> ls) {
        return new Trainer(r, train, null, recipe, c, init, ls);
    }

    private static Recipe recipe() {
        return Recipes.fashion().toBuilder().batchSize(8).microBatch(0).maxEpochs(2).maxIterations(0)
                .schedule(new Schedule.Constant()).baseLr(0.01).stuckLossSteps(0).build();
    }

    @Test
    void aNonFiniteParameterStopsTheRunNamingStepAndLayer() throws IOException {
        try (DataPipeline train = Tiny.pipeline(Tiny.fashion(24, FashionMnist.Split.TRAIN), 8, 1, true);
             Replicas r = Tiny.replicas(1, SPEC, DType.FLOAT32, 0.9, 5e-4)) {
            Initialization init = net -> {
                Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1);
            };
            List<TrainingListener> ls = List.of(new TrainingListener() {
                @Override
                public void onStep(Step s) {
                    if (s.step() == 2) {
                        poison(r, "features.3.weight");
                    }
                }
            });
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> trainer(r, train, recipe(), null, init, ls).run());
            assertTrue(e.getMessage().contains("step 2") && e.getMessage().contains("features.3"), e.getMessage());
        }
    }

    @Test
    void nonFiniteNamesTheGradientNearestTheOutput() {
        try (Replicas r = Tiny.replicas(1, SPEC, DType.FLOAT32, 0.9, 5e-4)) {
            Initializers.initialize(r.primary(), Initializers.Scheme.GLOROT_UNIFORM, 1);
            assertNull(Guardrails.nonFinite(3, 2.3, r.primary()));
            var g = r.primary().params().get("classifier.3.weight").grad();
            r.primary().backend().fill(g, Double.POSITIVE_INFINITY);
            var g0 = r.primary().params().get("features.0.weight").grad();
            r.primary().backend().fill(g0, Double.NaN);
            String m = Guardrails.nonFinite(7, Double.NaN, r.primary());
            assertTrue(m.startsWith("step 7") && m.contains("gradient of classifier.3.weight"), m);
        }
    }

    @Test
    void rollbackReloadsTheLastCheckpointWithATenthOfTheRate(@TempDir Path dir) throws IOException {
        Recipe recipe = recipe().toBuilder().checkpointEvery(2).keepLast(3).onNonFinite(Recipe.NonFinitePolicy.ROLLBACK).build();
        List<String> warnings = new ArrayList<>();
        List<Double> rates = new ArrayList<>();
        try (DataPipeline train = Tiny.pipeline(Tiny.fashion(32, FashionMnist.Split.TRAIN), 8, 1, true);
             Replicas r = Tiny.replicas(1, SPEC, DType.FLOAT32, 0.9, 5e-4)) {
            boolean[] done = {false};
            List<TrainingListener> ls = List.of(new TrainingListener() {
                @Override
                public void onStep(Step s) {
                    rates.add(s.lr());
                    if (s.step() == 3 && !done[0]) {
                        done[0] = true;
                        poison(r, "classifier.0.weight");
                    }
                }

                @Override
                public void onWarning(String message) {
                    warnings.add(message);
                }
            });
            Trainer.Result res = trainer(r, train, recipe, new Checkpointer(dir, 3),
                    net -> Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1), ls).run();
            assertEquals(8, res.state().step());
            assertEquals(1, res.state().rollbacks());
            assertEquals(0.1, res.state().lrScale(), 1e-15);
            assertEquals(1, warnings.size());
            assertTrue(warnings.get(0).contains("rolled back to step 2") && warnings.get(0).contains("classifier.0"),
                    warnings.get(0));
            // steps 1..3 at 0.01, then steps 3..8 again at 0.001
            assertEquals(List.of(0.01, 0.01, 0.01), rates.subList(0, 3));
            assertEquals(0.001, rates.get(3), 1e-15);
            assertEquals(9, rates.size());
        }
    }

    @Test
    void aLossStuckAtLnClassesIsReported() throws IOException {
        Recipe recipe = recipe().toBuilder().baseLr(1e-9).stuckLossSteps(4).build();
        List<String> warnings = new ArrayList<>();
        try (DataPipeline train = Tiny.pipeline(Tiny.fashion(48, FashionMnist.Split.TRAIN), 8, 1, true);
             Replicas r = Tiny.replicas(1, SPEC, DType.FLOAT32, 0.9, 5e-4)) {
            // tiny weights: uniform predictions, loss = ln 10
            Initialization init = net -> {
                Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1);
                net.backend().scale(net.params().values(), 1e-3);
            };
            trainer(r, train, recipe, null, init, List.of(new TrainingListener() {
                @Override
                public void onWarning(String message) {
                    warnings.add(message);
                }
            })).run();
        }
        assertEquals(1, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).contains("ln(10)") && warnings.get(0).startsWith("step 4"), warnings.get(0));
    }

    @Test
    void theDivergenceLimitIsAHundredTimesTheChanceLoss() {
        assertEquals(100 * Math.log(10), Guardrails.explodedLimit(10), 1e-12);
        assertEquals(100 * Math.log(1000), Guardrails.explodedLimit(1000), 1e-12);
        assertEquals(100, Guardrails.explodedLimit(2), 1e-12); // ln 2 < 1: at least 100 nats
        assertNull(Guardrails.lossExploded(5, 230, 10));
        assertNull(Guardrails.lossExploded(5, Double.NaN, 10)); // nonFinite names the layer of a NaN
        String m = Guardrails.lossExploded(5, 2e28, 10);
        assertTrue(m.startsWith("step 5: loss 2.000e+28 is above 100 x ln(10) = 230.3") && m.contains("exploded"), m);
        assertTrue(Guardrails.lossExploded(5, Double.POSITIVE_INFINITY, 10).contains("exploded"));
    }

    /** Learning rate 10 on the tiny VGG: the loss goes 2.3, 3.8, then thousands, finite all the way. */
    private static Recipe absurdRate() {
        return recipe().toBuilder().baseLr(10).maxEpochs(1).build();
    }

    @Test
    void anExplodingFiniteLossStopsTheRunLikeANaN() throws IOException {
        List<Double> losses = new ArrayList<>();
        try (DataPipeline train = Tiny.pipeline(Tiny.fashion(32, FashionMnist.Split.TRAIN), 8, 1, true);
             Replicas r = Tiny.replicas(1, SPEC, DType.FLOAT32, 0.9, 5e-4)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> trainer(r, train, absurdRate(), null,
                    net -> Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1), List.of(new TrainingListener() {
                        @Override
                        public void onStep(Step s) {
                            losses.add(s.loss());
                        }
                    })).run());
            assertTrue(e.getMessage().startsWith("training diverged at step 2: loss ") && e.getMessage().contains("exploded"),
                    e.getMessage());
            assertEquals(2, losses.size(), losses.toString()); // steps 0 and 1 were taken, all finite and sane
            assertTrue(losses.stream().allMatch(l -> l < 10), losses.toString());
        }
    }

    @Test
    void anExplodingFiniteLossRollsBackLikeANaN(@TempDir Path dir) throws IOException {
        Recipe recipe = absurdRate().toBuilder().checkpointEvery(1).keepLast(2)
                .onNonFinite(Recipe.NonFinitePolicy.ROLLBACK).build();
        List<String> warnings = new ArrayList<>();
        List<Double> rates = new ArrayList<>();
        try (DataPipeline train = Tiny.pipeline(Tiny.fashion(32, FashionMnist.Split.TRAIN), 8, 1, true);
             Replicas r = Tiny.replicas(1, SPEC, DType.FLOAT32, 0.9, 5e-4)) {
            Trainer.Result res = trainer(r, train, recipe, new Checkpointer(dir, 2),
                    net -> Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1), List.of(new TrainingListener() {
                        @Override
                        public void onStep(Step s) {
                            rates.add(s.lr());
                        }

                        @Override
                        public void onWarning(String message) {
                            warnings.add(message);
                        }
                    })).run();
            assertEquals(4, res.state().step());
            assertEquals(1, res.state().rollbacks());
            assertEquals(0.1, res.state().lrScale(), 1e-15);
        }
        assertEquals(1, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).startsWith("rolled back to step 1 ") && warnings.get(0).contains("exploded"),
                warnings.get(0));
        // steps 1 and 2 at rate 10, step 3 diverged; from the step-1 checkpoint steps 2..4 at rate 1
        assertEquals(List.of(10.0, 10.0), rates.subList(0, 2));
        assertEquals(List.of(1.0, 1.0, 1.0), rates.subList(2, 5).stream().map(x -> Math.round(x * 1e12) / 1e12).toList());
    }

    /**
     * The README's demo ({@code vgg train --recipe fashion --batch 64}: BN, width 0.25, FC 256 without dropout,
     * Glorot, lr 0.05 after a short warm-up) on 1,280 images for one epoch: 20 steps from a fresh start through the
     * peak rate. Its losses stay a tenth of the limit away.
     */
    @Test
    void theReadmeDemoRecipeStaysFarBelowTheDivergenceLimit() throws IOException {
        org.vgg4j.data.IdxImages all = FashionMnist.bundledSample(FashionMnist.Split.TRAIN);
        int n = Math.min(1280, all.count());
        int px = all.rows() * all.cols();
        org.vgg4j.data.IdxImages images = new org.vgg4j.data.IdxImages(n, all.rows(), all.cols(),
                java.util.Arrays.copyOf(all.pixels(), n * px), java.util.Arrays.copyOf(all.labels(), n));
        double[] stats = org.vgg4j.data.IdxBatcher.pixelStatistics(images);
        VggSpec demo = new VggSpec(org.vgg4j.core.model.VggConfig.A, true, 10, 32, 0.25, 256, 0.0, 1);
        Recipe recipe = Recipes.fashion().toBuilder().batchSize(64).maxEpochs(1).build();
        List<Double> losses = new ArrayList<>();
        boolean cpu = org.vgg4j.core.backend.Backends.names().contains("cpu");
        TrainingRun.builder().model(demo).recipe(recipe).backend(cpu ? "cpu" : "reference")
                .train(new org.vgg4j.data.IdxDataset(images, FashionMnist.CLASS_NAMES),
                        org.vgg4j.data.SmallImageTransform.grey(32, 1, true, stats[0], stats[1]))
                .listener(new TrainingListener() {
                    @Override
                    public void onStep(Step s) {
                        losses.add(s.loss());
                    }
                }).build().run();
        assertEquals(n / 64, losses.size());
        double max = losses.stream().mapToDouble(Double::doubleValue).max().orElseThrow();
        assertTrue(max < Guardrails.explodedLimit(10) / 10, losses.toString());
        assertTrue(losses.get(losses.size() - 1) < losses.get(0), losses.toString()); // and it learns
    }
}
