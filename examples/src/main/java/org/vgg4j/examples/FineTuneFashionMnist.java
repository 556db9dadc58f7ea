package org.vgg4j.examples;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.TransferLearning;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.IdxImages;
import org.vgg4j.data.SmallImageTransform;
import org.vgg4j.train.Checkpointer;
import org.vgg4j.train.EpochMetrics;
import org.vgg4j.train.Evaluator;
import org.vgg4j.train.Initialization;
import org.vgg4j.train.Recipe;
import org.vgg4j.train.Recipes;
import org.vgg4j.train.Schedule;
import org.vgg4j.train.TrainingListener;
import org.vgg4j.train.TrainingRun;

/**
 * Transfer learning through the library API: pretrain a narrow VGG-A (BatchNorm, 32x32) on Fashion-MNIST classes
 * 0-4 (T-shirt, trouser, pullover, dress, coat) from the sample bundled in vgg-data, then fine-tune it on classes
 * 5-9 (sandal, shirt, sneaker, bag, ankle boot), which it has never seen: a new 5-class head (classifier.6 fresh,
 * every other tensor from the pretrained checkpoint), the layers up to {@value #FREEZE} (the first three convs and
 * their BatchNorms) frozen, the other conv layers at a tenth of the rate (Caffe's lr_mult), the classifier at the
 * full rate. Prints the accuracy on classes 5-9 before fine-tuning (new head, chance level) and after.
 *
 * <p>Run: {@code mvn -q -DskipTests package exec:java -Dexec.mainClass=org.vgg4j.examples.FineTuneFashionMnist}
 * (args: [BACKEND [EPOCHS [TRAIN_IMAGES]]], default cpu when present, 3 epochs per stage, 2500 images per stage).
 */
public final class FineTuneFashionMnist {
    /** The last layer frozen: the pool after conv3_2 of configuration A with BatchNorm. */
    public static final String FREEZE = "features.14";

    private FineTuneFashionMnist() {
    }

    /** Top-1 accuracy on classes 5-9: with the new head before fine-tuning, and after; and of the pretrained on 0-4. */
    public record Outcome(double pretrained, double before, double after) {
    }

    /**
     * The first {@code n} bundled sample images (at most those there are) of classes [from, from + 5), labelled 0..4.
     */
    static IdxDataset fiveClasses(FashionMnist.Split split, int from, int n) {
        IdxImages all = FashionMnist.bundledSample(split);
        int px = all.rows() * all.cols();
        int count = 0;
        for (int i = 0; i < all.count() && count < n; i++) {
            if (all.label(i) >= from && all.label(i) < from + 5) {
                count++;
            }
        }
        byte[] pixels = new byte[count * px];
        byte[] labels = new byte[count];
        int k = 0;
        for (int i = 0; i < all.count() && k < count; i++) {
            int label = all.label(i);
            if (label >= from && label < from + 5) {
                System.arraycopy(all.pixels(), i * px, pixels, k * px, px);
                labels[k++] = (byte) (label - from);
            }
        }
        return new IdxDataset(new IdxImages(count, all.rows(), all.cols(), pixels, labels),
                FashionMnist.CLASS_NAMES.subList(from, from + 5));
    }

    /** Trains one stage; returns its last epoch's metrics. */
    private static EpochMetrics train(String stage, VggSpec spec, Recipe recipe, int from, int images, Path dir,
                                      String backend, PrintStream out) throws IOException {
        SmallImageTransform t = SmallImageTransform.grey(32, 2, true, 0.286, 0.353);
        EpochMetrics[] last = new EpochMetrics[1];
        TrainingRun.builder().model(spec).recipe(recipe).backend(backend)
                .train(fiveClasses(FashionMnist.Split.TRAIN, from, images), t)
                .validation(fiveClasses(FashionMnist.Split.TEST, from, Integer.MAX_VALUE), t.testView())
                .out(dir).listener(new TrainingListener() {
                    @Override
                    public void onEpoch(EpochMetrics m) {
                        last[0] = m;
                        out.printf(Locale.ROOT, "  %s epoch %d: train loss %.4f, validation accuracy %.1f %%%n", stage,
                                m.epoch(), m.trainLoss(), 100 * (1 - m.valTop1Error()));
                    }

                    @Override
                    public void onWarning(String message) {
                        out.println("  warning: " + message);
                    }
                }).build().run();
        return last[0];
    }

    /**
     * The accuracy on classes 5-9 of the pretrained network with the fresh head that fine-tuning starts from (the
     * same seed): {@link TransferLearning#withNewHead}, evaluated as the trainer validates.
     */
    private static double accuracyWithNewHead(VggSpec spec, Path checkpoint, long seed, String backend) throws IOException {
        SmallImageTransform t = SmallImageTransform.grey(32, 2, true, 0.286, 0.353);
        try (Backend b = Backends.create(backend);
             Network pretrained = Vgg.build(b, DType.FLOAT32, spec)) {
            Initialization.loadWeights(pretrained, checkpoint);
            try (Network tuned = TransferLearning.withNewHead(pretrained, spec, Initializers.Scheme.GLOROT_UNIFORM, seed);
                 DataPipeline val = new DataPipeline(fiveClasses(FashionMnist.Split.TEST, 5, Integer.MAX_VALUE), t.testView(),
                         DataPipeline.Config.training(256, 1, 0).withShuffle(false))) {
                return 1 - Evaluator.onBatches(val).evaluate(tuned).top1Error();
            }
        }
    }

    public static Outcome run(Path work, String backend, int epochs, int images, double width, int hidden, int batch,
                              PrintStream out) throws IOException {
        VggSpec spec = new VggSpec(VggConfig.A, true, 5, 32, width, hidden, 0.0, 1); // no dropout: a few epochs only
        Recipe base = Recipes.FASHION.toBuilder().batchSize(batch).maxEpochs(epochs).schedule(new Schedule.Cosine(0, 0))
                .stuckLossSteps(0).build();
        out.println("1. pretrain " + spec.name() + " on classes 0-4 (" + String.join(", ", FashionMnist.CLASS_NAMES.subList(0, 5)) + ")");
        EpochMetrics pre = train("pretrain", spec, base, 0, images, work.resolve("pretrain"), backend, out);
        Path checkpoint = work.resolve("pretrain").resolve(TrainingRun.CHECKPOINTS).resolve(Checkpointer.BEST);

        Recipe fineTune = base.toBuilder().init(Recipe.Init.FROM_CHECKPOINT).initFrom(checkpoint).newHead(true)
                .freezeUpTo(FREEZE).lrMult("features", 0.1).build();
        double before = accuracyWithNewHead(spec, checkpoint, fineTune.initSeed(), backend);
        out.printf(Locale.ROOT, "2. fine-tune on classes 5-9 (%s): new head, frozen up to %s, features x0.1%n",
                String.join(", ", FashionMnist.CLASS_NAMES.subList(5, 10)), FREEZE);
        out.printf(Locale.ROOT, "  before fine-tuning: accuracy %.1f %% (chance: 20 %%)%n", 100 * before);
        EpochMetrics after = train("fine-tune", spec, fineTune, 5, images, work.resolve("finetune"), backend, out);
        Outcome o = new Outcome(1 - pre.valTop1Error(), before, 1 - after.valTop1Error());
        out.printf(Locale.ROOT, "pretrained on 0-4: %.1f %%; on 5-9 before fine-tuning: %.1f %%, after: %.1f %%%n",
                100 * o.pretrained(), 100 * o.before(), 100 * o.after());
        return o;
    }

    public static void main(String[] args) throws IOException {
        String backend = args.length > 0 ? args[0] : Backends.names().contains("cpu") ? "cpu" : "reference";
        int epochs = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int images = args.length > 2 ? Integer.parseInt(args[2]) : 2500;
        run(Files.createTempDirectory("vgg4j-finetune"), backend, epochs, images, 0.25, 128, 64, System.out);
    }
}
