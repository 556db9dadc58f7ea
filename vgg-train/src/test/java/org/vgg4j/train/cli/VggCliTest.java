package org.vgg4j.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.train.cli.CliRun.vgg;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.model.ModelInfo;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;

class VggCliTest {


    @Test
    void badOptionsNameTheOptionAndTheAcceptedValues() {
        CliRun r = vgg("train", "--backend", "tpu");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--backend") && r.err().contains("'tpu'") && r.err().contains("reference"), r.err());

        r = vgg("train", "--recipe", "imagenet-fast", "--backend", "reference");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--recipe") && r.err().contains("paper-a") && r.err().contains("paper-multiscale"), r.err());

        r = vgg("eval", "--checkpoint", "x.safetensors", "--protocol", "tencrop");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--protocol") && r.err().contains("DENSE_AND_MULTI_CROP"), r.err());

        r = vgg("info", "--config", "F");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--config") && r.err().contains("A-LRN"), r.err());

        r = vgg("train", "--schedule", "linear", "--backend", "reference");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--schedule") && r.err().contains("cosine:WARMUP"), r.err());
    }

    @Test
    void infoCountsThePapersParameters() {
        // torchvision's vgg16 / vgg19 at 1000 classes: 138,357,544 and 143,667,240
        CliRun r = vgg("info", "--config", "D");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("parameters: 138,357,544"), r.out());
        assertTrue(r.out().contains("15.470 GMACs"), r.out());
        r = vgg("info", "--config", "vgg19", "--batch", "1,8");
        assertTrue(r.out().contains("parameters: 143,667,240"), r.out());
        // the memory table: both estimates, the second without the FC weight gradients (ModelInfoTest has the sums)
        r = vgg("info", "--config", "D", "--batch", "4");
        var info = ModelInfo.of(VggSpec.paper(VggConfig.D), 4);
        assertTrue(r.out().contains("one cpu replica MiB") && r.out().contains(String.format(Locale.ROOT,
                "%8d %18.1f %18.1f %22.1f", 4, info.activationBytes() / 1048576.0,
                info.trainingBytes() / 1048576.0, info.factoredTrainingBytes() / 1048576.0)), r.out());
    }

    @Test
    void trainWritesMetricsCurvesCheckpointsAndResumes(@TempDir Path dir) throws Exception {
        String[] common = {"train", "--backend", "reference", "--data", "fashion-mnist-sample", "--limit", "48",
            "--batch", "16", "--width", "0.0625", "--hidden", "16", "--out", dir.toString(), "--no-progress",
            "--schedule", "constant", "--lr", "0.02"};
        CliRun r = vgg(concat(common, "--epochs", "2"));
        assertEquals(0, r.code(), r.err());
        List<String> csv = Files.readAllLines(dir.resolve("metrics.csv"));
        assertEquals(3, csv.size(), csv.toString());
        assertTrue(csv.get(0).startsWith("epoch,step,train_loss,val_top1_error"));
        assertTrue(csv.get(2).startsWith("2,6,"), csv.get(2));
        assertTrue(Files.readString(dir.resolve("metrics.json")).contains("\"epoch\": 2"));
        BufferedImage png = ImageIO.read(dir.resolve("curves.png").toFile());
        assertEquals(1200, png.getWidth());
        assertTrue(Files.exists(dir.resolve("checkpoints").resolve("step-0000000006.safetensors")));

        r = vgg(concat(common, "--epochs", "3"));
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--resume"), r.err());

        r = vgg(concat(common, "--epochs", "3", "--resume"));
        assertEquals(0, r.code(), r.err());
        csv = Files.readAllLines(dir.resolve("metrics.csv"));
        assertEquals(4, csv.size(), csv.toString());
        assertTrue(csv.get(3).startsWith("3,9,"), csv.get(3));

        r = vgg("eval", "--backend", "reference", "--data", "fashion-mnist-sample", "--width", "0.0625", "--hidden", "16",
                "--checkpoint", dir.resolve("checkpoints").resolve("step-0000000009.safetensors").toString());
        assertEquals(0, r.code(), r.err());
        String lastError = csv.get(3).split(",")[3];
        assertTrue(r.out().contains(String.format(java.util.Locale.ROOT, "top-1 error %.2f %%", 100 * Double.parseDouble(lastError))),
                r.out() + " vs " + lastError);

        // the checkpoint records its model and normalisation: eval needs no model option, and a wrong one is one line
        Path last = dir.resolve("checkpoints").resolve("step-0000000009.safetensors");
        CliRun plain = vgg("eval", "--backend", "reference", "--data", "fashion-mnist-sample", "--checkpoint", last.toString());
        assertEquals(0, plain.code(), plain.err());
        assertEquals(r.out(), plain.out());
        says(refused("eval", "--backend", "reference", "--hidden", "32", "--checkpoint", last.toString()),
                "--hidden 32 contradicts --checkpoint " + last + ", which records hidden features 16;");
        java.util.Map<String, String> meta;
        try (org.vgg4j.core.io.Safetensors.Reader f = org.vgg4j.core.io.Safetensors.open(last)) {
            meta = f.metadata();
        }
        assertEquals(new org.vgg4j.core.model.VggSpec(org.vgg4j.core.model.VggConfig.A, true, 10, 32, 0.0625, 16, 0.5, 1),
                org.vgg4j.core.io.ModelMetadata.spec(meta, last).orElseThrow());
        assertTrue(org.vgg4j.core.io.ModelMetadata.normalization(meta, last).isPresent(), meta.toString());
    }

    @Test
    void trainWritesThroughTheGivenStreamWithoutBarFramesWhenNotATerminal(@TempDir Path dir) throws Exception {
        // surefire's stdout is a pipe (System.console() is null): plain lines only, all in the captured stream
        String[] common = {"train", "--backend", "reference", "--data", "fashion-mnist-sample", "--limit", "32",
            "--batch", "16", "--width", "0.0625", "--hidden", "16", "--epochs", "1", "--schedule", "constant"};
        CliRun r = vgg(concat(common, "--out", dir.resolve("plain").toString()));
        assertEquals(0, r.code(), r.err());
        assertTrue(!r.out().contains("\r"), r.out());
        List<String> lines = r.out().lines().toList();
        assertTrue(lines.get(0).startsWith("recipe fashion: batch 16,"), lines.toString());
        assertTrue(lines.get(1).startsWith("training A_bnx0.0625 ("), lines.toString());
        assertTrue(lines.get(2).startsWith("epoch 1: train loss "), lines.toString());
        assertTrue(lines.get(3).startsWith("stopped: "), lines.toString());
        assertEquals(4, lines.size(), lines.toString());
        // --progress asks for the bar anyway: its frames go to the same stream
        r = vgg(concat(common, "--out", dir.resolve("bar").toString(), "--progress"));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("\repoch 1/1 [########################] 2/2"), r.out());
        says(refused(concat(common, "--out", dir.resolve("both").toString(), "--progress", "--no-progress")),
                "--progress and --no-progress: expected at most one of the two");
    }

    @Test
    void valEveryValidatesEveryNthEpochAndTheLast(@TempDir Path dir) throws Exception {
        String[] common = {"train", "--backend", "reference", "--data", "fashion-mnist-sample", "--limit", "32",
            "--batch", "16", "--width", "0.0625", "--hidden", "16", "--epochs", "3", "--schedule", "constant"};
        CliRun r = vgg(concat(common, "--val-every", "2", "--out", dir.resolve("run").toString()));
        assertEquals(0, r.code(), r.err());
        List<String> epochs = r.out().lines().filter(l -> l.startsWith("epoch ")).toList();
        assertEquals(3, epochs.size(), r.out());
        assertTrue(epochs.get(0).contains(", no validation this epoch, "), epochs.get(0));
        assertTrue(epochs.get(1).contains(", validation top-1 error "), epochs.get(1));
        assertTrue(epochs.get(2).contains(", validation top-1 error "), epochs.get(2)); // the last epoch is validated
        List<String> csv = Files.readAllLines(dir.resolve("run").resolve("metrics.csv"));
        assertTrue(csv.get(1).matches("1,2,[^,]+,,,.*"), csv.get(1)); // no validation figures: empty fields
        assertTrue(csv.get(2).matches("2,4,[^,]+,0\\.\\d+,0\\.\\d+,.*"), csv.get(2));
        says(refused(concat(common, "--val-every", "0", "--out", dir.resolve("zero").toString())),
                "--val-every 0: expected 1 or more epochs from one validation to the next (1: every epoch)");
        says(refused(concat(common, "--val-every", "2", "--schedule", "plateau", "--out", dir.resolve("p").toString())),
                "--val-every 2: the plateau schedule of recipe fashion decides after every epoch's validation");
    }

    @Test
    void versionIsThePomsVersion() throws Exception {
        CliRun r = vgg("--version");
        assertEquals(0, r.code(), r.err());
        String pom = Files.readString(Path.of("pom.xml")); // vgg-train's, whose version is the parent's
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("<parent>.*?<version>([^<]+)</version>",
                java.util.regex.Pattern.DOTALL).matcher(pom);
        assertTrue(m.find(), pom);
        assertEquals("VGG4J " + m.group(1), r.out().strip());
    }

    /** A run that must be refused as a usage error: exit code 2, one line on stderr (no stack trace), returned. */
    private static String refused(String... args) {
        CliRun r = vgg(args);
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        return r.err();
    }

    private static void says(String err, String expected) {
        assertTrue(err.contains(expected), "expected '" + expected + "' in: " + err);
    }

    @Test
    void userMistakesAreOneLineNamingTheOptionTheValueAndWhatWasExpected(@TempDir Path dir) throws Exception {
        String[] t = {"train", "--backend", "reference", "--no-progress", "--out", dir.resolve("run").toString()};
        says(refused(concat(t, "--micro-batch", "0")), "--micro-batch 0: expected 1 or more images per forward/backward");
        says(refused(concat(t, "--limit", "0")), "--limit 0: expected 1 or more training images (omit it to use them all)");
        says(refused(concat(t, "--threads", "0")), "--threads 0: expected 1 or more data loading threads");
        says(refused(concat(t, "--pad", "-1")), "--pad -1: expected 0 or more pixels of random shift");
        says(refused(concat(t, "--checkpoint-every", "-1")), "--checkpoint-every -1: expected 0 or more steps (0: at epoch ends only)");
        says(refused(concat(t, "--epochs", "0")), "--epochs 0: expected 1 or more epochs");
        says(refused(concat(t, "--label-smoothing", "1")), "--label-smoothing 1.0: expected a value in [0, 1) (0: the plain cross-entropy)");
        says(refused(concat(t, "--label-smoothing", "-0.1")), "--label-smoothing -0.1: expected a value in [0, 1)");
        int cores = Runtime.getRuntime().availableProcessors();
        says(refused(concat(t, "--devices", Integer.toString(cores + 1))), "--devices " + (cores + 1)
                + ": the reference backend runs every replica on this machine's " + cores + " CPU core");
        says(refused(concat(t, "--epoch", "3")), "Unknown options: '--epoch', '3' (did you mean --epochs?)");

        Path file = Files.writeString(dir.resolve("file.txt"), "x");
        says(refused("train", "--backend", "reference", "--out", "/dev/null"), "--out /dev/null: not a directory; expected a directory");
        says(refused("train", "--backend", "reference", "--out", file.toString()), "--out " + file + ": not a directory");
        says(refused("train", "--backend", "reference", "--no-progress", "--epochs", "1", "--limit", "16", "--out",
                file.resolve("sub").toString()), "--out " + file.resolve("sub") + ": cannot create the directory: ");
        says(refused(concat(t, "--init-from", dir.resolve("a.safetensors").toString())),
                "--init-from " + dir.resolve("a.safetensors") + ": no such file; expected a safetensors checkpoint");

        Path empty = Files.createDirectories(dir.resolve("empty"));
        String err = refused(concat(t, "--data", empty.toString()));
        says(err, "--data '" + empty + "' holds neither train/ and val/ class folders nor any of the IDX files");
        Files.createDirectories(empty.resolve("train"));
        says(refused(concat(t, "--data", empty.toString())), "--data '" + empty + "' has train/ but no val/");

        says(refused("eval", "--backend", "reference", "--checkpoint", dir.resolve("none.safetensors").toString()),
                "--checkpoint " + dir.resolve("none.safetensors") + ": no such file; expected a safetensors checkpoint");
        says(refused("eval", "--backend", "reference", "--checkpoint", dir.toString()),
                "--checkpoint " + dir + ": is a directory; expected a safetensors checkpoint");
    }

    @Test
    void checkpointEveryZeroMeansEpochEndsAndTheHelpSaysSo() {
        CliRun r = vgg("train", "--help");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().replaceAll("\\s+", " ").contains("--checkpoint-every=STEPS steps between checkpoints besides epoch ends; 0: at"
                + " epoch ends only"), r.out());
    }

    @Test
    void aFailureIsOneLineNamingTheFileAndTheTraceComesOnlyWithVerbose(@TempDir Path dir) throws Exception {
        Path bad = Files.write(dir.resolve("bad.safetensors"), new byte[] {1, 2, 3});
        String[] eval = {"eval", "--backend", "reference", "--width", "0.0625", "--hidden", "16", "--checkpoint", bad.toString()};
        CliRun r = vgg(eval);
        assertEquals(1, r.code(), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        says(r.err(), bad + ": not a weights file this library reads (expected safetensors");
        says(r.err(), "(--verbose for the stack trace)");
        r = vgg(concat(eval, "--verbose"));
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().lines().count() > 3 && r.err().contains("\tat "), r.err());
    }

    private static String[] concat(String[] a, String... b) {
        String[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
