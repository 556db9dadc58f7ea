package org.vgg4j.examples;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.data.ImageDecoder;
import org.vgg4j.data.ImageFolders;
import org.vgg4j.train.Checkpointer;
import org.vgg4j.train.Evaluation;
import org.vgg4j.train.Evaluator;
import org.vgg4j.train.Recipe;
import org.vgg4j.train.Recipes;
import org.vgg4j.train.Training;
import org.vgg4j.train.TrainingRun;
import org.vgg4j.train.cli.ProgressBar;

/**
 * The paper's full recipe for VGG-16 (configuration D) on ImageNet, stage by stage, with the Java API
 * ({@link Training}, {@link Evaluation}):
 * <ol>
 *   <li>{@code paper-a}: configuration A from N(0, 10^-2), S = 256, batch 256, lr 10^-2 / 10 on plateau (3x),
 *       74 epochs at most;</li>
 *   <li>{@code paper-warm}: D from A's first four convs and three FC layers, otherwise the same;</li>
 *   <li>{@code paper-s384}: D at S = 384 from the S = 256 model, lr 10^-3;</li>
 *   <li>{@code paper-multiscale}: D at S ~ U[256, 512] fine-tuned from the S = 384 model;</li>
 *   <li>evaluation: dense + multi-crop at Q = {256, 384, 512} (the paper's Table 5 protocol).</li>
 * </ol>
 * Data: {@code IMAGENET_DIR/train/<wnid>/*.JPEG} and {@code IMAGENET_DIR/val/<wnid>/*.JPEG} (validation images
 * sorted into class folders). Checkpoints, metrics and curves go to {@code runs/imagenet/<stage>}; a stage whose
 * folder holds checkpoints resumes from the newest intact one, so starting the example again continues after a crash.
 *
 * <p>Run: {@code mvn -q -DskipTests package exec:java -Dexec.mainClass=org.vgg4j.examples.TrainVgg16OnImageNet
 * -Dexec.args="/data/imagenet cuda 4"} (arguments: the data, a backend, devices; for a quick trial a width multiplier
 * and an epoch limit may follow, e.g. {@code /data/imagenet cpu 1 0.125 1}).
 */
public final class TrainVgg16OnImageNet {
    /** The test scales Q of the final evaluation: S's range 256..512 and its middle (Table 5). */
    static final int[] TEST_SCALES = {256, 384, 512};

    private TrainVgg16OnImageNet() {
    }

    /** One training stage: its network, its recipe and its output folder. */
    record Stage(VggSpec model, Recipe recipe, Path out) {
        /** Its best checkpoint, the next stage's start. */
        Path best() {
            return out.resolve(TrainingRun.CHECKPOINTS).resolve(Checkpointer.BEST);
        }
    }

    /**
     * The four stages under {@code out}, each starting from the previous stage's best checkpoint.
     *
     * @param a         configuration A's spec; D is the same network otherwise (classes, width, input size, ...)
     * @param maxEpochs epochs per stage (0: the recipe's 74)
     */
    static List<Stage> stages(Path out, VggSpec a, int maxEpochs) {
        VggSpec d = new VggSpec(VggConfig.D, a.batchNorm(), a.numClasses(), a.inputSize(), a.widthMultiplier(),
                a.hiddenFeatures(), a.dropout(), a.seed());
        Stage sA = new Stage(a, limit(Recipes.PAPER_A, maxEpochs), out.resolve("A-S256"));
        Stage s256 = new Stage(d, limit(Recipes.paperWarmStart(sA.best()), maxEpochs), out.resolve("D-S256"));
        Stage s384 = new Stage(d, limit(Recipes.paperS384(s256.best()), maxEpochs), out.resolve("D-S384"));
        Stage multi = new Stage(d, limit(Recipes.paperMultiScale(s384.best()), maxEpochs), out.resolve("D-S256-512"));
        return List.of(sA, s256, s384, multi);
    }

    private static Recipe limit(Recipe r, int maxEpochs) {
        return maxEpochs > 0 ? r.toBuilder().maxEpochs(maxEpochs).build() : r;
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1 || args.length > 5) {
            System.err.println("usage: TrainVgg16OnImageNet IMAGENET_DIR [BACKEND [DEVICES [WIDTH [EPOCHS]]]]");
            System.exit(2);
        }
        Path data = Path.of(args[0]);
        String backend = args.length > 1 ? args[1] : "cpu";
        int devices = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        double width = args.length > 3 ? Double.parseDouble(args[3]) : 1.0;
        int epochs = args.length > 4 ? Integer.parseInt(args[4]) : 0;
        var val = ImageFolders.imageFolder(data.resolve("val"), new ImageDecoder());
        VggSpec a = new VggSpec(VggConfig.A, false, val.classes().size(), 224, width, 4096, 0.5, 1);
        List<Stage> stages = stages(Path.of("runs", "imagenet"), a, epochs);
        for (Stage s : stages) {
            System.out.println("== " + s.recipe().name() + ": " + s.model().name() + " -> " + s.out());
            Training t = Training.of(s.model()).imageFolders(data).recipe(s.recipe()).backend(backend).devices(devices)
                    .out(s.out()).listener(new ProgressBar(System.out, s.recipe().maxEpochs()));
            if (TrainingRun.holdsCheckpoints(s.out())) {
                t.resume(); // after a crash, or a stage that already finished (it stops at once)
            }
            System.out.println(t.run().stopReason());
        }
        Evaluator.Result r = Evaluation.of(stages.get(3).best()).protocol(Evaluator.View.DENSE_AND_MULTI_CROP)
                .scales(TEST_SCALES).backend(backend).on(val);
        System.out.printf(Locale.ROOT, "D, dense + multi-crop, Q = 256, 384, 512: %s%n", r);
    }
}
