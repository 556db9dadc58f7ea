package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.FileImageDataset;
import org.vgg4j.data.IdxBatcher;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.IdxImages;
import org.vgg4j.data.ImageDecoder;
import org.vgg4j.data.ImageFolders;
import org.vgg4j.data.Normalization;
import org.vgg4j.data.SmallImageTransform;

/**
 * {@link Training} and {@link Evaluation}, the fluent facade: a tiny run on the bundled Fashion-MNIST sample writes
 * what {@link TrainingRun} writes with the same numbers, resumes, and names missing parts; a checkpoint evaluated on a
 * tiny image folder gives what {@link Evaluator} gives on the same network directly.
 */
class TrainingApiTest {
    private static final VggSpec SPEC = new VggSpec(VggConfig.A, true, 10, 32, 0.0625, 16, 0.5, 1);
    private static final Normalization NORM = Normalization.meanRgb(120, 115, 100);

    private static Recipe recipe(int epochs) {
        return Recipes.fashion().toBuilder().batchSize(16).schedule(new Schedule.Constant()).baseLr(0.02)
                .maxEpochs(epochs).build();
    }

    private static IdxImages first48() {
        IdxImages all = FashionMnist.bundledSample(FashionMnist.Split.TRAIN);
        int n = 48;
        int px = all.rows() * all.cols();
        return new IdxImages(n, all.rows(), all.cols(), Arrays.copyOf(all.pixels(), n * px), Arrays.copyOf(all.labels(), n));
    }

    private static SmallImageTransform augment() {
        double[] stats = IdxBatcher.pixelStatistics(first48());
        return SmallImageTransform.grey(32, 2, true, stats[0], stats[1]);
    }

    private static IdxDataset train() {
        return new IdxDataset(first48(), FashionMnist.CLASS_NAMES);
    }

    private static IdxDataset test() {
        return new IdxDataset(FashionMnist.bundledSample(FashionMnist.Split.TEST), FashionMnist.CLASS_NAMES);
    }

    private static Training fluent(int epochs, Path out) {
        return Training.of(SPEC).data(train(), augment()).validation(test(), augment().testView()).recipe(recipe(epochs))
                .backend("reference").normalization(NORM).out(out);
    }

    private static List<String> metricsWithoutTimes(Path dir) throws IOException {
        List<String> rows = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve(MetricsLog.CSV))) {
            rows.add(String.join(",", Arrays.copyOf(line.split(",", -1), 6)));
        }
        return rows;
    }

    private static List<String> files(Path dir) throws IOException {
        try (var s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).map(p -> dir.relativize(p).toString()).sorted().toList();
        }
    }

    @Test
    void aFluentRunWritesWhatTrainingRunWritesAndResumes(@TempDir Path dir) throws Exception {
        Path fluent = dir.resolve("fluent");
        List<Integer> epochs = new ArrayList<>();
        Trainer.Result r = fluent(2, fluent).listener(new TrainingListener() {
            @Override
            public void onEpoch(EpochMetrics m) {
                epochs.add(m.epoch());
            }
        }).run();
        assertEquals(6, r.state().step()); // 48 images / batch 16 = 3 steps per epoch
        assertEquals(List.of(1, 2), epochs);

        Path direct = dir.resolve("direct");
        TrainingRun.builder().model(SPEC).recipe(recipe(2)).backend("reference").train(train(), augment())
                .validation(test(), augment().testView())
                .normalization(new org.vgg4j.core.io.ModelMetadata.Norm(NORM.mean(), NORM.std())).out(direct).build().run();
        assertEquals(files(direct), files(fluent));
        assertEquals(metricsWithoutTimes(direct), metricsWithoutTimes(fluent));

        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> fluent(3, fluent).run());
        assertTrue(refused.getMessage().contains("resume"), refused.getMessage());
        Trainer.Result resumed = fluent(3, fluent).resume().run();
        assertEquals(9, resumed.state().step());
        assertEquals(1, resumed.epochs().size()); // only the third epoch ran
        assertEquals(4, Files.readAllLines(fluent.resolve(MetricsLog.CSV)).size());
    }

    /** What {@code vgg train} sets beyond the basics: the paper's validation flips, gradient format, first device. */
    @Test
    void theCommandLinesOtherPartsReachTheRun(@TempDir Path dir) throws Exception {
        Path fluent = dir.resolve("fluent");
        fluent(1, fluent).validationFlips().gradPrecision(GradPrecision.FP32).firstDevice(0).run();
        Path direct = dir.resolve("direct");
        TrainingRun.builder().model(SPEC).recipe(recipe(1)).backend("reference").train(train(), augment())
                .validation(test(), augment().testView()).validationFlips(true).gradPrecision(GradPrecision.FP32)
                .normalization(new org.vgg4j.core.io.ModelMetadata.Norm(NORM.mean(), NORM.std())).out(direct).build().run();
        assertEquals(metricsWithoutTimes(direct), metricsWithoutTimes(fluent));

        IllegalArgumentException both = assertThrows(IllegalArgumentException.class, () -> fluent(1, dir.resolve("x"))
                .allReduce(new HostAllReduce()).gradPrecision(GradPrecision.BF16).run());
        assertTrue(both.getMessage().startsWith("grad precision bf16"), both.getMessage());
        IllegalArgumentException device = assertThrows(IllegalArgumentException.class,
                () -> fluent(1, dir.resolve("y")).firstDevice(-1).run());
        assertTrue(device.getMessage().startsWith("first device -1"), device.getMessage());
    }

    @Test
    void missingPartsAreNamed(@TempDir Path dir) throws Exception {
        IllegalArgumentException noRecipe = assertThrows(IllegalArgumentException.class,
                () -> Training.of(SPEC).data(train(), augment()).backend("reference").run());
        assertTrue(noRecipe.getMessage().startsWith("recipe not set"), noRecipe.getMessage());
        IllegalArgumentException noData = assertThrows(IllegalArgumentException.class,
                () -> Training.of(SPEC).recipe(recipe(1)).backend("reference").run());
        assertTrue(noData.getMessage().startsWith("training data not set"), noData.getMessage());
        IllegalArgumentException noFolders = assertThrows(IllegalArgumentException.class,
                () -> Training.of(SPEC).imageFolders(dir).recipe(recipe(1)).run());
        assertTrue(noFolders.getMessage().contains("no train/ folder"), noFolders.getMessage());
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class,
                () -> Training.of(SPEC).data(train(), augment()).imageFolders(dir).recipe(recipe(1)).run());
        assertTrue(twice.getMessage().startsWith("data given twice"), twice.getMessage());
        IllegalArgumentException noFile = assertThrows(IllegalArgumentException.class,
                () -> Evaluation.of(dir.resolve("x")));
        assertTrue(noFile.getMessage().contains("no such file"), noFile.getMessage());
    }

    /** Two class folders of random PNG images of different sizes. */
    private static FileImageDataset folder(Path root) throws IOException {
        SplittableRandom rnd = new SplittableRandom(5);
        for (int i = 0; i < 4; i++) {
            Path cls = Files.createDirectories(root.resolve(i % 2 == 0 ? "cat" : "dog"));
            BufferedImage img = new BufferedImage(34 + 3 * i, 40 - 2 * i, BufferedImage.TYPE_INT_RGB);
            for (int y = 0; y < img.getHeight(); y++) {
                for (int x = 0; x < img.getWidth(); x++) {
                    img.setRGB(x, y, rnd.nextInt(1 << 24));
                }
            }
            ImageIO.write(img, "png", cls.resolve("img" + i + ".png").toFile());
        }
        return ImageFolders.imageFolder(root, new ImageDecoder());
    }

    @Test
    void aCheckpointEvaluatesAsEvaluatorEvaluatesItsNetwork(@TempDir Path dir) throws Exception {
        fluent(1, dir.resolve("run")).run();
        Path best = dir.resolve("run").resolve(TrainingRun.CHECKPOINTS).resolve(Checkpointer.BEST);
        FileImageDataset images = folder(dir.resolve("images"));
        Evaluator.Result fluent = Evaluation.of(best).protocol(Evaluator.View.DENSE_AND_MULTI_CROP).scales(33, 40).grid(2)
                .backend("reference").on(images);
        assertEquals(4, fluent.count());
        try (Backend b = Backends.create("reference"); Network net = Vgg.build(b, DType.FLOAT32, SPEC)) {
            Initialization.loadWeights(net, best);
            Evaluator.Protocol p = new Evaluator.Protocol(Evaluator.View.DENSE_AND_MULTI_CROP, new int[] {33, 40}, 2, true, NORM);
            assertEquals(Evaluator.evaluate(List.of(net), images, p), fluent); // the recorded normalisation was used
            assertEquals(fluent, Evaluation.of(net).protocol(Evaluator.View.DENSE_AND_MULTI_CROP).scales(33, 40).grid(2)
                    .normalization(NORM).on(images));
        }
        IllegalArgumentException noScales = assertThrows(IllegalArgumentException.class, () -> Evaluation.of(best).on(images));
        assertTrue(noScales.getMessage().startsWith("scales not set"), noScales.getMessage());
    }
}
