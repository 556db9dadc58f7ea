package org.vgg4j.train;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.FashionMnist;

/**
 * One small, fully specified training run (VGG-A_bn x1/16 with dropout, 40 training images, batch 8, 3 epochs,
 * a checkpoint every step) that the resume tests run in this JVM and in a child JVM they kill. {@link #main} is
 * the child: {@code Scenario DIR MODE} prints "STEP n" after each step; MODE "slow" sleeps after each step, MODE
 * "midwrite:K" blocks forever in the middle of writing step K's checkpoint after printing "MIDWRITE".
 */
final class Scenario {
    static final VggSpec SPEC = Tiny.spec(true, 0.5);

    static Recipe recipe() {
        return Recipes.fashion().toBuilder().batchSize(8).microBatch(3).maxEpochs(3).maxIterations(0).checkpointEvery(1)
                .keepLast(2).schedule(new Schedule.Cosine(2, 0)).baseLr(0.02).stuckLossSteps(0).build();
    }

    /** Runs (or resumes) the scenario with checkpoints in {@code dir}; returns the replicas' final tensors. */
    static Outcome run(Path dir, List<TrainingListener> listeners, Checkpointer.WriteHook hook) throws IOException {
        return run(dir, recipe(), listeners, hook);
    }

    /** As above with another recipe (same data, network and seeds). */
    static Outcome run(Path dir, Recipe recipe, List<TrainingListener> listeners, Checkpointer.WriteHook hook)
            throws IOException {
        try (DataPipeline train = Tiny.pipeline(Tiny.fashion(40, FashionMnist.Split.TRAIN), 8, recipe.dataSeed(), true);
             DataPipeline val = Tiny.pipeline(Tiny.fashion(16, FashionMnist.Split.TEST), 8, 0, false);
             Replicas replicas = Tiny.replicas(1, SPEC, DType.FLOAT32, recipe.momentum(), recipe.weightDecay())) {
            Trainer t = new Trainer(replicas, train, Evaluator.onBatches(val), recipe, new Checkpointer(dir, recipe.keepLast(), hook),
                    Initialization.forRecipe(recipe, SPEC), listeners);
            Trainer.Result r = t.run();
            return new Outcome(floats(replicas, 0), floats(replicas, 1), floats(replicas, 2), r);
        }
    }

    record Outcome(float[] params, float[] state, float[] momentum, Trainer.Result result) {
    }

    private static float[] floats(Replicas r, int which) {
        var net = r.primary();
        var t = which == 0 ? net.params().values() : which == 1 ? net.params().state() : r.optimizer(0).velocity();
        float[] out = new float[Math.toIntExact(t.size())];
        net.backend().copyOut(t, out, 0);
        return out;
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        String mode = args[1];
        PrintStream out = System.out;
        List<TrainingListener> ls = new ArrayList<>();
        ls.add(new TrainingListener() {
            @Override
            public void onStep(Step s) {
                out.println("STEP " + s.step());
                out.flush();
                if (mode.equals("slow")) {
                    sleep(200);
                }
            }
        });
        long stopAt = mode.startsWith("midwrite:") ? Long.parseLong(mode.substring(9)) : -1;
        Checkpointer.WriteHook hook = (target, tensor) -> {
            if (target.getFileName().toString().equals(String.format("step-%010d.safetensors", stopAt))
                    && tensor.equals("features.4.weight")) {
                out.println("MIDWRITE " + target);
                out.flush();
                sleep(60_000);
            }
        };
        run(dir, ls, hook);
        out.println("DONE");
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
