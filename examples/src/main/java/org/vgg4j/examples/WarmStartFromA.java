package org.vgg4j.examples;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.model.WarmStart;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.IdxImages;
import org.vgg4j.data.SmallImageTransform;
import org.vgg4j.train.Checkpointer;
import org.vgg4j.train.EpochMetrics;
import org.vgg4j.train.Recipe;
import org.vgg4j.train.Recipes;
import org.vgg4j.train.Schedule;
import org.vgg4j.train.TrainingListener;
import org.vgg4j.train.TrainingRun;

/**
 * The paper's §3.1 warm start through the library API (no command line): train the shallow configuration A from
 * N(0, 10^-2) (recipe paper-a, here without BatchNorm, as the paper), then build the deep configuration D and
 * start it from A's first four convolutional and three fully-connected layers (recipe paper-warm, WarmStart), the
 * other layers fresh, and train it. Small scale: narrow networks on the bundled Fashion-MNIST sample at 32x32.
 * Each stage is one {@link TrainingRun}; its checkpoints, metrics and curves go to {@code A/} and {@code D/}.
 *
 * <p>Run: {@code mvn -q -DskipTests package exec:java -Dexec.mainClass=org.vgg4j.examples.WarmStartFromA}
 * (args: [BACKEND [EPOCHS [TRAIN_IMAGES]]], default cpu when present, 3 epochs, 5000 images).
 */
public final class WarmStartFromA {
    private WarmStartFromA() {
    }

    static VggSpec spec(VggConfig c, double width) {
        return new VggSpec(c, false, 10, 32, width, width >= 0.25 ? 128 : 16, 0.5, 1);
    }

    /**
     * Trains {@code spec} with {@code recipe} into {@code dir} (checkpoints, metrics, curves, as {@code vgg train
     * --out}); returns the last epoch's metrics.
     */
    static EpochMetrics train(VggSpec spec, Recipe recipe, Path dir, String backend, int images, PrintStream out)
            throws IOException {
        IdxImages sample = FashionMnist.bundledSample(FashionMnist.Split.TRAIN);
        int n = Math.min(images, sample.count());
        IdxDataset train = new IdxDataset(new IdxImages(n, sample.rows(), sample.cols(),
                Arrays.copyOf(sample.pixels(), n * sample.rows() * sample.cols()), Arrays.copyOf(sample.labels(), n)),
                FashionMnist.CLASS_NAMES);
        IdxDataset test = new IdxDataset(FashionMnist.bundledSample(FashionMnist.Split.TEST), FashionMnist.CLASS_NAMES);
        SmallImageTransform t = SmallImageTransform.grey(32, 2, true, 0.286, 0.353);
        EpochMetrics[] last = new EpochMetrics[1];
        TrainingRun.builder().model(spec).recipe(recipe).backend(backend).train(train, t).validation(test, t.testView())
                .out(dir).listener(new TrainingListener() {
                    @Override
                    public void onEpoch(EpochMetrics m) {
                        last[0] = m;
                        out.printf(Locale.ROOT, "  %s epoch %d: train loss %.4f, validation top-1 error %.2f %%%n",
                                spec.name(), m.epoch(), m.trainLoss(), 100 * m.valTop1Error());
                    }

                    @Override
                    public void onWarning(String message) {
                        out.println("  warning: " + message);
                    }
                }).build().run();
        return last[0];
    }

    /** Returns {A's last metrics, D's last metrics}. */
    static EpochMetrics[] run(Path work, String backend, int epochs, int images, double width, PrintStream out) throws IOException {
        // The paper's solver at this small scale: batch 64, lr 10^-2, N(0, 10^-2) for A; a cosine decay stands in
        // for the plateau rule so a few epochs suffice.
        Recipe a = Recipes.paperA().toBuilder().batchSize(64).microBatch(0).maxEpochs(epochs).maxIterations(0)
                .schedule(new Schedule.Cosine(0, 0)).stuckLossSteps(50).build();
        out.println("1. configuration A from N(0, 1e-2)");
        EpochMetrics ma = train(spec(VggConfig.A, width), a, work.resolve("A"), backend, images, out);
        Path trainedA = work.resolve("A").resolve(TrainingRun.CHECKPOINTS).resolve(Checkpointer.BEST);
        out.println("2. configuration D warm-started from A's " + WarmStart.PAPER_LAYERS + ", the rest Glorot");
        Recipe d = Recipes.paperWarmStart(trainedA).toBuilder().batchSize(64).microBatch(0).maxEpochs(epochs).maxIterations(0)
                .schedule(new Schedule.Cosine(0, 0)).stuckLossSteps(50).build();
        EpochMetrics md = train(spec(VggConfig.D, width), d, work.resolve("D"), backend, images, out);
        return new EpochMetrics[] {ma, md};
    }

    public static void main(String[] args) throws IOException {
        String backend = args.length > 0 ? args[0] : org.vgg4j.core.backend.Backends.names().contains("cpu") ? "cpu" : "reference";
        int epochs = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int images = args.length > 2 ? Integer.parseInt(args[2]) : 5000;
        run(Files.createTempDirectory("vgg4j-warmstart"), backend, epochs, images, 0.25, System.out);
    }
}
