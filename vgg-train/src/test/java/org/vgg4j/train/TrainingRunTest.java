package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxBatcher;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.IdxImages;
import org.vgg4j.data.SmallImageTransform;
import org.vgg4j.train.cli.VggCli;

/**
 * {@link TrainingRun} on the bundled Fashion-MNIST sample, reference backend: it writes what {@code vgg train}
 * writes, the same numbers for the same settings (the command line is this class plus option parsing), refuses an
 * output folder holding checkpoints unless resuming, and names every missing or conflicting part.
 */
class TrainingRunTest {
    /** {@code vgg train} with these options trains what {@link #run} builds. */
    private static final String[] CLI = {"train", "--backend", "reference", "--data", "fashion-mnist-sample", "--limit",
        "48", "--batch", "16", "--width", "0.0625", "--hidden", "16", "--no-progress", "--schedule", "constant", "--lr",
        "0.02"};

    /** The command line's small-image defaults for {@code --width 0.0625 --hidden 16} (BN, 32x32, seed 1). */
    private static final VggSpec SPEC = new VggSpec(VggConfig.A, true, 10, 32, 0.0625, 16, 0.5, 1);

    private static Recipe recipe(int epochs) {
        return Recipes.fashion().toBuilder().batchSize(16).schedule(new Schedule.Constant()).baseLr(0.02)
                .maxEpochs(epochs).build();
    }

    /** The first 48 training images with the CLI's augmentation (pixel statistics of those 48), the test sample. */
    private static TrainingRun.Builder run(Recipe recipe) {
        IdxImages all = FashionMnist.bundledSample(FashionMnist.Split.TRAIN);
        int n = 48;
        int px = all.rows() * all.cols();
        IdxImages train = new IdxImages(n, all.rows(), all.cols(), Arrays.copyOf(all.pixels(), n * px),
                Arrays.copyOf(all.labels(), n));
        double[] stats = IdxBatcher.pixelStatistics(train);
        SmallImageTransform t = SmallImageTransform.grey(32, 2, true, stats[0], stats[1]);
        return TrainingRun.builder().model(SPEC).recipe(recipe).backend("reference")
                .train(new IdxDataset(train, FashionMnist.CLASS_NAMES), t)
                .validation(new IdxDataset(FashionMnist.bundledSample(FashionMnist.Split.TEST), FashionMnist.CLASS_NAMES),
                        t.testView());
    }

    private static String[] concat(String[] a, String... b) {
        String[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** metrics.csv without the timing columns (seconds, images/s). */
    private static List<String> metricsWithoutTimes(Path dir) throws IOException {
        List<String> rows = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve(MetricsLog.CSV))) {
            String[] f = line.split(",", -1);
            rows.add(String.join(",", Arrays.copyOf(f, 6)));
        }
        return rows;
    }

    private static List<String> checkpointNames(Path dir) throws IOException {
        try (var files = Files.list(dir.resolve(TrainingRun.CHECKPOINTS))) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void trainsAndWritesWhatTheCommandLineWritesWithTheSameNumbers(@TempDir Path dir) throws Exception {
        Path lib = dir.resolve("lib");
        List<Integer> epochsSeen = new ArrayList<>();
        TrainingRun run = run(recipe(2)).out(lib).listener(new TrainingListener() {
            @Override
            public void onEpoch(EpochMetrics m) {
                epochsSeen.add(m.epoch());
            }
        }).build();
        assertEquals(lib.resolve("checkpoints"), run.checkpointDirectory());
        Trainer.Result r = run.run();
        assertEquals(6, r.state().step()); // 48 images / batch 16 = 3 steps per epoch, 2 epochs
        assertEquals("reached 2 epochs", r.stopReason());
        assertEquals(List.of(1, 2), epochsSeen);
        List<String> csv = Files.readAllLines(lib.resolve(MetricsLog.CSV));
        assertEquals(3, csv.size(), csv.toString());
        assertTrue(csv.get(2).startsWith("2,6,"), csv.get(2));
        assertTrue(Files.readString(lib.resolve(MetricsLog.JSON)).contains("\"epoch\": 2"));
        assertTrue(Files.size(lib.resolve(CurvePlot.FILE)) > 1000);
        assertTrue(checkpointNames(lib).contains("step-0000000006.safetensors"), checkpointNames(lib).toString());
        assertTrue(checkpointNames(lib).contains(Checkpointer.BEST), checkpointNames(lib).toString());

        Path cli = dir.resolve("cli");
        StringWriter err = new StringWriter();
        int code = VggCli.run(concat(CLI, "--epochs", "2", "--out", cli.toString()), new PrintWriter(new StringWriter(), true),
                new PrintWriter(err, true));
        assertEquals(0, code, err.toString());
        assertEquals(metricsWithoutTimes(cli), metricsWithoutTimes(lib)); // losses, errors and rates bit for bit
        assertEquals(checkpointNames(cli), checkpointNames(lib));
    }

    @Test
    void aFolderWithCheckpointsIsRefusedUnlessTheRunResumes(@TempDir Path dir) throws Exception {
        run(recipe(1)).out(dir).build().run();
        assertTrue(TrainingRun.holdsCheckpoints(dir));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(recipe(2)).out(dir).build().run());
        assertTrue(e.getMessage().contains(dir.toString()) && e.getMessage().contains("resume"), e.getMessage());

        Trainer.Result resumed = run(recipe(2)).out(dir).resume(true).build().run();
        assertEquals(6, resumed.state().step());
        assertEquals(1, resumed.epochs().size()); // only the second epoch ran here
        List<String> csv = Files.readAllLines(dir.resolve(MetricsLog.CSV));
        assertEquals(3, csv.size(), csv.toString()); // the first run's row kept, the second appended
        assertTrue(csv.get(2).startsWith("2,6,"), csv.get(2));
    }

    /** Every file under {@code dir} with its bytes and modification time. */
    private static java.util.Map<String, String> snapshot(Path dir) throws IOException {
        java.util.Map<String, String> m = new java.util.TreeMap<>();
        try (var files = Files.walk(dir)) {
            for (Path p : files.filter(Files::isRegularFile).toList()) {
                m.put(dir.relativize(p).toString(), Arrays.hashCode(Files.readAllBytes(p)) + "@"
                        + Files.getLastModifiedTime(p).toMillis());
            }
        }
        return m;
    }

    @Test
    void aResumeWhoseModelDoesNotFitTheCheckpointsStopsAndTouchesNothing(@TempDir Path dir) throws Exception {
        run(recipe(1)).out(dir).build().run();
        var before = snapshot(dir);
        assertTrue(before.containsKey("checkpoints/" + Checkpointer.BEST) && before.containsKey(MetricsLog.CSV), before.toString());
        VggSpec wider = new VggSpec(VggConfig.A, true, 10, 32, 0.125, 16, 0.5, 1); // another --width
        Thread.sleep(20); // a rewrite would show in the modification times too
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> run(recipe(2)).model(wider).out(dir).resume(true).build().run());
        assertTrue(e.getMessage().startsWith("cannot resume: " + dir.resolve("checkpoints/step-0000000003.safetensors")
                + " does not fit") && e.getMessage().contains("shape"), e.getMessage());
        assertEquals(before, snapshot(dir));
    }

    @Test
    void aResumeWhoseEveryCheckpointIsDamagedStopsAndTouchesNothing(@TempDir Path dir) throws Exception {
        run(recipe(1)).out(dir).build().run();
        Path only = dir.resolve("checkpoints/step-0000000003.safetensors");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(only.toFile(), "rw")) {
            f.setLength(f.length() - 4);
        }
        var before = snapshot(dir);
        Thread.sleep(20);
        IOException e = assertThrows(IOException.class, () -> run(recipe(2)).out(dir).resume(true).build().run());
        assertTrue(e.getMessage().startsWith("cannot resume from " + dir.resolve("checkpoints")) && e.getMessage()
                .contains(only.toString()), e.getMessage());
        assertEquals(before, snapshot(dir));
    }

    @Test
    void readyReplicasStayOpenWithTheTrainedParameters() throws Exception {
        Recipe recipe = recipe(1);
        try (Replicas replicas = Replicas.create("reference", 1, (b, rank) -> Vgg.build(b, DType.FLOAT32, SPEC),
                recipe.sgdSettings(), new HostAllReduce())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> run(recipe).replicas(replicas).build()); // run() sets backend reference
            assertTrue(e.getMessage().contains("ready replicas given together with backend reference"), e.getMessage());
            TrainingRun run = run(recipe).backend(null).replicas(replicas).build();
            assertEquals(null, run.checkpointDirectory()); // no output folder: nothing written
            Trainer.Result r = run.run();
            assertEquals(3, r.state().step());
            double[] trained = Tiny.values(replicas.primary()); // still open
            assertTrue(Arrays.stream(trained).allMatch(Double::isFinite));
            assertTrue(Arrays.stream(trained).anyMatch(v -> v != 0));
        }
    }

    /** The message of the error {@code change} applied to a complete builder gives; asserts it names every part. */
    private static void refused(UnaryOperator<TrainingRun.Builder> change, String... parts) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> change.apply(run(recipe(1))).build());
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "'" + e.getMessage() + "' lacks '" + p + "'");
        }
    }

    @Test
    void eachMissingOrConflictingPartIsNamed() {
        refused(b -> b.model(null), "model not set", "model(VggSpec)");
        refused(b -> b.recipe(null), "recipe not set");
        refused(b -> b.train(null, null), "training data not set", "train(dataset, transform)");
        refused(b -> b.validation(null, SmallImageTransform.grey(32, 0, false, 0, 1)), "validation(dataset, transform)",
                "no dataset");
        refused(b -> b.validation(net -> null), "validation given twice");
        refused(b -> b.backend(null), "backend not set", "replicas(ready)");
        refused(b -> b.devices(0), "devices 0", ">= 1");
        refused(b -> b.firstDevice(-1), "first device -1", ">= 0");
        refused(b -> b.allReduce(new HostAllReduce()).gradPrecision(GradPrecision.BF16), "grad precision bf16",
                "all-reduce");
        refused(b -> b.threads(0), "threads 0", ">= 1");
        refused(b -> b.resume(true), "resume needs an output folder", "out(dir)");
    }
}
