package org.vgg4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.train.EpochMetrics;
import org.vgg4j.train.cli.VggCli;

/** The examples at toy sizes on the reference backend: they run, and what they claim holds. */
class ExamplesTest {

    @Test
    void theMainJobIsVggTrainWithDemoDefaultsThatOptionsOverride(@TempDir Path dir) throws Exception {
        String[] a = TrainFashionMnist.arguments(new String[] {"--full", "--epochs", "8"});
        String joined = String.join(" ", a);
        assertTrue(joined.startsWith("train --recipe fashion --data fashion-mnist-sample --epochs 10 --batch 64 --hidden 256 --dropout 0"
                + " --pad 1 --out runs/fashion-mnist-"), joined);
        assertTrue(joined.endsWith("--data fashion-mnist --threads 2 --epochs 8"), joined);
        // with an explicit backend the reference-backend shortcut stays out of the way
        String withBackend = String.join(" ", TrainFashionMnist.arguments(new String[] {"--backend", "reference"}));
        assertTrue(withBackend.endsWith("runs/fashion-mnist-" + withBackend.split("runs/fashion-mnist-")[1].split(" ")[0]
                + " --backend reference"), withBackend);

        String[] tiny = TrainFashionMnist.arguments(new String[] {"--backend", "reference", "--limit", "64", "--batch", "32",
            "--width", "0.0625", "--hidden", "16", "--epochs", "2", "--out", dir.toString(), "--no-progress"});
        StringWriter out = new StringWriter();
        int code = VggCli.run(tiny, new PrintWriter(out, true), new PrintWriter(new StringWriter(), true));
        assertEquals(0, code);
        assertEquals(3, Files.readAllLines(dir.resolve("metrics.csv")).size());
        assertTrue(Files.size(dir.resolve("curves.png")) > 1000);
    }

    /** {@code vgg train} alone (no --data, no --recipe) trains what the main job trains: same first line, numbers, model. */
    @Test
    void vggTrainAloneIsTheMainJob(@TempDir Path dir) throws Exception {
        String[] small = {"--backend", "reference", "--limit", "128", "--width", "0.0625", "--epochs", "1", "--no-progress"};
        List<String> alone = new java.util.ArrayList<>(List.of("train"));
        alone.addAll(List.of(small));
        alone.addAll(List.of("--out", dir.resolve("alone").toString()));
        List<String> demo = new java.util.ArrayList<>(List.of(small));
        demo.addAll(List.of("--out", dir.resolve("demo").toString()));
        String aloneOut = trainOutput(alone.toArray(new String[0]));
        String demoOut = trainOutput(TrainFashionMnist.arguments(demo.toArray(new String[0])));
        String firstLine = aloneOut.lines().findFirst().orElse("");
        assertTrue(firstLine.startsWith("recipe fashion: batch 64, lr 0.05, "), aloneOut);
        assertTrue(firstLine.contains("data fashion-mnist-sample (128 train / 1,000 validation images)"), aloneOut);
        assertEquals(firstLine, demoOut.lines().findFirst().orElse(""));
        assertEquals(metricsWithoutTimes(dir.resolve("demo")), metricsWithoutTimes(dir.resolve("alone")));
        Path best = Path.of("checkpoints", "best.safetensors");
        VggSpec recorded = org.vgg4j.core.io.ModelMetadata.spec(org.vgg4j.core.io.ModelMetadata.read(dir.resolve("alone")
                .resolve(best)), best).orElseThrow();
        assertEquals(new VggSpec(VggConfig.A, true, 10, 32, 0.0625, 256, 0.0, 1), recorded); // FC 256, no dropout
        assertEquals(recorded, org.vgg4j.core.io.ModelMetadata.spec(org.vgg4j.core.io.ModelMetadata.read(dir.resolve("demo")
                .resolve(best)), best).orElseThrow());
    }

    private static String trainOutput(String[] args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = VggCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        assertEquals(0, code, err.toString());
        return out.toString();
    }

    /** metrics.csv without the timing columns (seconds, images/s). */
    private static List<String> metricsWithoutTimes(Path run) throws java.io.IOException {
        return Files.readAllLines(run.resolve("metrics.csv")).stream()
                .map(l -> String.join(",", java.util.Arrays.copyOf(l.split(",", -1), 6))).toList();
    }

    @Test
    void resumeAfterCrashIsBitwiseIdentical(@TempDir Path dir) throws Exception {
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        boolean same;
        try {
            same = ResumeAfterCrash.run(dir, "reference", 13);
        } finally {
            System.setOut(old);
        }
        String text = buf.toString(StandardCharsets.UTF_8);
        assertTrue(same, text);
        assertTrue(text.contains("bitwise identical: true"), text);
        // the child really was killed before the end: its newest checkpoint is not the last step's
        assertTrue(text.contains("step-0000000012") || text.contains("step-0000000010"), text);
    }

    @Test
    void theCrashedChildGetsTheExamplesClassPathNotMavensUnderExecJava(@TempDir Path dir) throws Exception {
        Path classes = Files.createDirectories(dir.resolve("examples-classes"));
        Path dep = Files.createFile(dir.resolve("vgg-core.jar"));
        String sep = java.io.File.pathSeparator;
        // java -cp / surefire: this JVM's class path holds the example, and is passed on as it is
        assertEquals(classes + sep + dep, ResumeAfterCrash.childClassPath(classes + sep + dep, null, null, classes));
        // exec:java: java.class.path is Maven's launcher; the example's own class loader holds the project's classes
        Path maven = Files.createFile(dir.resolve("plexus-classworlds.jar"));
        try (java.net.URLClassLoader loader = new java.net.URLClassLoader(
                new java.net.URL[] {classes.toUri().toURL(), dep.toUri().toURL()}, null)) {
            assertEquals(classes + sep + dep, ResumeAfterCrash.childClassPath(maven.toString(), "", loader, classes));
        }
        // neither: a clear error, no guess
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> ResumeAfterCrash.childClassPath(maven.toString(), null, ClassLoader.getPlatformClassLoader(), classes));
        assertTrue(e.getMessage().contains(classes.toString()) && e.getMessage().contains("plexus-classworlds.jar"),
                e.getMessage());
    }

    @Test
    void warmStartTrainsAThenDAndBothLearn(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        // the cpu backend when present: on the reference backend the few steps a test affords learn too little
        String backend = org.vgg4j.core.backend.Backends.names().contains("cpu") ? "cpu" : "reference";
        EpochMetrics[] m = WarmStartFromA.run(dir, backend, 3, 1500, 0.25, new PrintStream(buf, true, StandardCharsets.UTF_8));
        String text = buf.toString(StandardCharsets.UTF_8);
        assertTrue(Double.isFinite(m[0].trainLoss()) && Double.isFinite(m[1].trainLoss()), text);
        assertTrue(Files.exists(dir.resolve("A").resolve("checkpoints").resolve("best.safetensors")));
        assertEquals(4, Files.readAllLines(dir.resolve("D").resolve("metrics.csv")).size()); // header + 3 epochs
        assertTrue(text.contains("Dx0.25 epoch 3"), text);
        // both learn: chance is 90 % error on ten classes (they stayed there when A started from N(0, 1e-2))
        assertTrue(m[0].valTop1Error() < 0.6, text);
        assertTrue(m[1].valTop1Error() < 0.6, text);
        assertTrue(WarmStartFromA.learned(m[0]) && WarmStartFromA.learned(m[1]), text);
    }

    @Test
    void fineTuningOnFiveNewClassesBeatsChanceClearly(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        // the cpu backend when present: on the reference backend the few steps a test affords learn too little
        String backend = org.vgg4j.core.backend.Backends.names().contains("cpu") ? "cpu" : "reference";
        FineTuneFashionMnist.Outcome o = FineTuneFashionMnist.run(dir, backend, 2, 1000, 0.25, 64, 32,
                new PrintStream(buf, true, StandardCharsets.UTF_8));
        String text = buf.toString(StandardCharsets.UTF_8);
        assertTrue(o.after() >= 0.5, text); // chance is 20 % on five classes
        assertTrue(o.after() > o.before() + 0.2, text);
        assertTrue(text.contains("frozen up to features.14"), text);
        assertTrue(Files.exists(dir.resolve("finetune").resolve("checkpoints").resolve("best.safetensors")));
    }

    @Test
    void evaluateDensesTableKeepsItsColumnsAlignedForEveryProtocolName() {
        List<org.vgg4j.train.Evaluator.Protocol> all = EvaluateDense.protocols(
                List.of(org.vgg4j.train.Evaluator.View.values()), 256, 512, org.vgg4j.data.Normalization.TORCHVISION, false);
        assertEquals(8, all.size()); // four views at one test scale, then at three
        int width = EvaluateDense.protocolWidth(all);
        assertEquals("DENSE_AND_MULTI_CROP Q=[256, 384, 512] grid 5x5 +flips".length(), width);
        String header = EvaluateDense.header(width);
        int top1End = header.indexOf("top-1 err") + "top-1 err".length();
        int top5End = header.indexOf("top-5 err") + "top-5 err".length();
        assertEquals(header.length(), top5End);
        List<String> rows = new java.util.ArrayList<>();
        for (int i = 0; i < all.size(); i++) {
            rows.add(EvaluateDense.row(all.get(i), new org.vgg4j.train.Evaluator.Result(7, i, i == 0 ? 7 : 0), width));
        }
        assertEquals("CENTRE Q=[384] +flips" + " ".repeat(width - 21) + "       0.00%     100.00%", rows.get(0));
        for (String r : rows) {
            assertEquals(header.length(), r.length(), r);
            assertEquals('%', r.charAt(top1End - 1), r); // the numbers end under their headers
            assertEquals('%', r.charAt(top5End - 1), r);
            assertTrue(r.startsWith(all.get(rows.indexOf(r)).toString()), r);
        }
        assertTrue(rows.get(7).startsWith("DENSE_AND_MULTI_CROP Q=[256, 384, 512] grid 5x5 +flips  "), rows.get(7));
        assertTrue(rows.get(1).contains("  14.29%"), rows.get(1)); // 1 of 7 wrong
    }

    @Test
    void evaluateDenseCanRunFewerRowsForADemo() {
        List<org.vgg4j.train.Evaluator.Protocol> few = EvaluateDense.protocols(EvaluateDense.views("centre, dense"), 256, 256,
                org.vgg4j.data.Normalization.TORCHVISION, true);
        assertEquals(List.of("CENTRE Q=[256] +flips", "DENSE Q=[256] +flips"), few.stream().map(Object::toString).toList());
        assertEquals(List.of(org.vgg4j.train.Evaluator.View.MULTI_CROP), EvaluateDense.views("multi-crop"));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> EvaluateDense.views("centre,crops"));
        assertTrue(e.getMessage().contains("'crops'") && e.getMessage().contains("MULTI_CROP"), e.getMessage());
    }

    @Test
    void theImageNetChainPassesEachStagesBestCheckpointToTheNext() {
        VggSpec a = new VggSpec(VggConfig.A, false, 1000, 224, 0.5, 4096, 0.5, 1);
        List<TrainVgg16OnImageNet.Stage> s = TrainVgg16OnImageNet.stages(Path.of("runs"), a, 2);
        assertEquals(List.of("paper-a", "paper-warm", "paper-s384", "paper-multiscale"),
                s.stream().map(x -> x.recipe().name()).toList());
        assertEquals(List.of(VggConfig.A, VggConfig.D, VggConfig.D, VggConfig.D), s.stream().map(x -> x.model().config()).toList());
        assertEquals(new VggSpec(VggConfig.D, false, 1000, 224, 0.5, 4096, 0.5, 1), s.get(1).model()); // D otherwise as A
        assertEquals(List.of(Path.of("runs/A-S256"), Path.of("runs/D-S256"), Path.of("runs/D-S384"), Path.of("runs/D-S256-512")),
                s.stream().map(TrainVgg16OnImageNet.Stage::out).toList());
        assertEquals(null, s.get(0).recipe().initFrom());
        for (int i = 1; i < 4; i++) {
            assertEquals(Path.of(s.get(i - 1).out() + "/checkpoints/best.safetensors"), s.get(i).recipe().initFrom());
        }
        assertEquals(List.of(256, 384, 256), s.stream().skip(1).map(x -> x.recipe().scaleMin()).toList());
        assertEquals(512, s.get(3).recipe().scaleMax());
        assertEquals(List.of(2, 2, 2, 2), s.stream().map(x -> x.recipe().maxEpochs()).toList());
        assertEquals(74, TrainVgg16OnImageNet.stages(Path.of("runs"), a, 0).get(0).recipe().maxEpochs());
        assertEquals("[256, 384, 512]", java.util.Arrays.toString(TrainVgg16OnImageNet.TEST_SCALES));
    }
}
