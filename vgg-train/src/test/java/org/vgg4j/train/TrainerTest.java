package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.FashionMnist;

/** The loop's bookkeeping: the plateau rule driven by validation, the iteration limit, per-epoch metrics. */
class TrainerTest {

    @Test
    void plateauDropsTheRateAfterEpochsWithoutImprovementAndTheIterationLimitStopsMidEpoch() throws IOException {
        Recipe recipe = Recipes.paperA().toBuilder().batchSize(8).microBatch(0).maxEpochs(10).maxIterations(17).baseLr(0.01)
                .stuckLossSteps(0).schedule(new Schedule.Plateau(1, 0.0, 0.1, 2)).build();
        double[] errors = {0.5, 0.4, 0.4, 0.45, 0.3, 0.3};
        int[] calls = {0};
        Validation scripted = net -> {
            double e = errors[calls[0]++];
            return new Evaluator.Result(100, Math.round(e * 100), 0);
        };
        List<Double> rates = new ArrayList<>();
        List<EpochMetrics> epochs = new ArrayList<>();
        try (DataPipeline train = Tiny.pipeline(Tiny.fashion(24, FashionMnist.Split.TRAIN), 8, 1, true);
             Replicas r = Tiny.replicas(1, Tiny.spec(false, 0.5), DType.FLOAT32, 0.9, 5e-4)) {
            Trainer.Result res = new Trainer(r, train, scripted, recipe, null,
                    net -> Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1),
                    List.of(new TrainingListener() {
                        @Override
                        public void onStep(Step s) {
                            rates.add(s.lr());
                        }

                        @Override
                        public void onEpoch(EpochMetrics m) {
                            epochs.add(m);
                        }
                    })).run();
            assertEquals(17, res.state().step());
            assertEquals("reached 17 iterations", res.stopReason());
        }
        // 3 steps per epoch; epoch 3 (0.4) does not improve on 0.4 -> /10; epoch 4 (0.45) -> /10 again (max 2)
        List<Double> want = new ArrayList<>();
        double[] perEpoch = {0.01, 0.01, 0.01, 0.001, 1e-4, 1e-4};
        for (int i = 0; i < 17; i++) {
            want.add(perEpoch[i / 3]);
        }
        for (int i = 0; i < 17; i++) {
            assertEquals(want.get(i), rates.get(i), 1e-18, "step " + i);
        }
        assertEquals(6, epochs.size()); // the last, partial epoch is validated too
        assertEquals(17, epochs.get(5).step());
        assertEquals(0.3, epochs.get(5).valTop1Error(), 1e-12);
    }

    @Test
    void validationEveryNthEpochAndAfterTheLast() throws IOException {
        Recipe recipe = Recipes.fashion().toBuilder().batchSize(8).microBatch(0).maxEpochs(5).stuckLossSteps(0).build();
        int[] calls = {0};
        Validation counted = net -> {
            calls[0]++;
            return new Evaluator.Result(100, 10, 0);
        };
        List<EpochMetrics> epochs = new ArrayList<>();
        try (DataPipeline train = Tiny.pipeline(Tiny.fashion(16, FashionMnist.Split.TRAIN), 8, 1, true);
             Replicas r = Tiny.replicas(1, Tiny.spec(false, 0.5), DType.FLOAT32, 0.9, 5e-4)) {
            Trainer t = new Trainer(r, train, counted, recipe, null,
                    net -> Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1),
                    List.of(new TrainingListener() {
                        @Override
                        public void onEpoch(EpochMetrics m) {
                            epochs.add(m);
                        }
                    }));
            assertThrows(IllegalArgumentException.class, () -> t.validateEvery(0));
            t.validateEvery(2).run();
        }
        assertEquals(3, calls[0], "after epochs 2, 4 and the last (5)");
        assertEquals(5, epochs.size());
        for (int e = 0; e < 5; e++) {
            boolean validated = e == 1 || e == 3 || e == 4;
            assertEquals(validated, !Double.isNaN(epochs.get(e).valTop1Error()), "epoch " + (e + 1));
        }
    }

    @Test
    void thePlateauScheduleNeedsValidationEveryEpoch() throws IOException {
        Recipe recipe = Recipes.paperA().toBuilder().batchSize(8).microBatch(0).maxEpochs(2).build();
        try (DataPipeline train = Tiny.pipeline(Tiny.fashion(16, FashionMnist.Split.TRAIN), 8, 1, true);
             Replicas r = Tiny.replicas(1, Tiny.spec(false, 0.5), DType.FLOAT32, 0.9, 5e-4)) {
            Trainer t = new Trainer(r, train, net -> new Evaluator.Result(100, 10, 0), recipe, null,
                    net -> Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1), List.of());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.validateEvery(3));
            assertTrue(e.getMessage().contains("plateau"), e.getMessage());
            t.validateEvery(1); // allowed
        }
    }

    @Test
    void theRecipesLabelSmoothingReachesTheLoss() throws IOException {
        double[] firstEpochLoss = new double[2];
        for (int run = 0; run < 2; run++) {
            Recipe recipe = Recipes.fashion().toBuilder().batchSize(8).microBatch(0).maxEpochs(1).stuckLossSteps(0)
                    .labelSmoothing(run == 0 ? 0 : 0.3).build();
            try (DataPipeline train = Tiny.pipeline(Tiny.fashion(16, FashionMnist.Split.TRAIN), 8, 1, true);
                 Replicas r = Tiny.replicas(1, Tiny.spec(false, 0.5), DType.FLOAT32, 0.9, 5e-4)) {
                Trainer.Result res = new Trainer(r, train, null, recipe, null,
                        net -> Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1), List.of()).run();
                firstEpochLoss[run] = res.epochs().get(0).trainLoss();
            }
        }
        assertTrue(Double.isFinite(firstEpochLoss[0]) && Double.isFinite(firstEpochLoss[1]));
        assertTrue(Math.abs(firstEpochLoss[0] - firstEpochLoss[1]) > 1e-4,
                "smoothing 0.3 must change the loss: " + firstEpochLoss[0] + " and " + firstEpochLoss[1]);
    }
}
