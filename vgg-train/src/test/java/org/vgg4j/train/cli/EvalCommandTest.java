package org.vgg4j.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.train.cli.CliRun.vgg;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.Checkpoint;
import org.vgg4j.core.io.ModelMetadata;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.data.Normalization;

/**
 * {@code vgg eval} on an image folder: a bad validation image is skipped, counted and named under every protocol
 * (not a stack trace), and a checkpoint with NaN weights is an error naming the layer (not 0.00 % error).
 */
class EvalCommandTest {
    /** What {@code --width 0.0625 --hidden 16 --input-size 32} builds for two classes of an image folder. */
    private static final VggSpec SPEC = new VggSpec(VggConfig.A, false, 2, 32, 0.0625, 16, 0.5, 0);


    private static void png(Path file, long seed) throws Exception {
        SplittableRandom r = new SplittableRandom(seed);
        BufferedImage im = new BufferedImage(40, 36, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 36; y++) {
            for (int x = 0; x < 40; x++) {
                im.setRGB(x, y, r.nextInt(1 << 24));
            }
        }
        Files.createDirectories(file.getParent());
        ImageIO.write(im, "png", file.toFile());
    }

    /** data/{train,val}/{c0,c1}: two good images per validation class, a truncated PNG and an empty file. */
    private static Path folder(Path root) throws Exception {
        Path data = root.resolve("data");
        for (String split : new String[] {"train", "val"}) {
            for (int k = 0; k < 2; k++) {
                png(data.resolve(split).resolve("c" + k).resolve("a.png"), 10 * k + 1);
                png(data.resolve(split).resolve("c" + k).resolve("b.png"), 10 * k + 2);
            }
        }
        byte[] whole = Files.readAllBytes(data.resolve("val/c1/a.png"));
        Files.write(data.resolve("val/c1/cut.png"), Arrays.copyOf(whole, whole.length / 2));
        Files.write(data.resolve("val/c0/empty.png"), new byte[0]);
        return data;
    }

    private static Path checkpoint(Path file, String poisonKey) throws Exception {
        try (Backend b = Backends.create("reference"); Network net = Vgg.build(b, DType.FLOAT32, SPEC)) {
            Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1);
            if (poisonKey != null) {
                Tensor t = net.params().get(poisonKey).value();
                float[] host = new float[Math.toIntExact(t.size())];
                b.copyOut(t, host, 0);
                host[0] = Float.NaN;
                b.copyIn(host, 0, t);
            }
            Checkpoint.save(net, file, Map.of());
        }
        return file;
    }

    private static String[] eval(Path data, Path ck, String... more) {
        String[] base = {"eval", "--backend", "reference", "--data", data.toString(), "--width", "0.0625", "--hidden", "16",
            "--input-size", "32", "--scales", "36", "--grid", "1", "--normalization", "paper", "--checkpoint", ck.toString()};
        String[] all = Arrays.copyOf(base, base.length + more.length);
        System.arraycopy(more, 0, all, base.length, more.length);
        return all;
    }

    @Test
    void badValidationImagesAreSkippedCountedAndNamedUnderEveryProtocol(@TempDir Path root) throws Exception {
        Path data = folder(root);
        Path ck = checkpoint(root.resolve("a.safetensors"), null);
        for (String protocol : new String[] {"CENTRE", "DENSE", "MULTI_CROP"}) {
            CliRun r = vgg(eval(data, ck, "--protocol", protocol));
            assertEquals(0, r.code(), protocol + ": " + r.err());
            assertTrue(r.out().contains("(4 images evaluated; 2 unreadable images skipped)"), r.out());
            assertTrue(r.out().contains("2 unreadable images skipped (errors are over the 4 evaluated):"), r.out());
            assertTrue(r.out().contains(data.resolve("val/c0/empty.png") + ": zero-byte file"), r.out());
            assertTrue(r.out().contains(data.resolve("val/c1/cut.png") + ": "), r.out());
        }
    }

    @Test
    void aFolderWithNoReadableImageIsAnErrorNotNaNPercent(@TempDir Path root) throws Exception {
        Path data = folder(root);
        for (String good : new String[] {"val/c0/a.png", "val/c0/b.png", "val/c1/a.png", "val/c1/b.png"}) {
            Files.write(data.resolve(good), new byte[0]);
        }
        CliRun r = vgg(eval(data, checkpoint(root.resolve("a.safetensors"), null), "--protocol", "CENTRE"));
        assertEquals(1, r.code(), r.out());
        assertTrue(!r.out().contains("top-1 error"), r.out());
        assertTrue(r.err().contains("error: none of the 6 images of " + data + " could be read"), r.err());
        assertTrue(r.err().contains(data.resolve("val/c1/b.png") + ": zero-byte file"), r.err());
    }

    @Test
    void nonFiniteWeightsAreAnErrorNamingTheLayer(@TempDir Path root) throws Exception {
        Path data = folder(root);
        Path ck = checkpoint(root.resolve("nan.safetensors"), "features.3.weight");
        CliRun r = vgg(eval(data, ck, "--protocol", "CENTRE"));
        assertTrue(r.code() != 0, r.out());
        assertTrue(!r.out().contains("top-1 error"), r.out());
        assertTrue(r.err().contains("parameter features.3.weight of layer features.3 holds NaN or infinity"), r.err());
    }

    /** A checkpoint that records its model (as vgg train's do): SPEC and the paper's normalisation. */
    private static Path recording(Path file) throws Exception {
        try (Backend b = Backends.create("reference"); Network net = Vgg.build(b, DType.FLOAT32, SPEC)) {
            Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1);
            Map<String, String> meta = new java.util.HashMap<>(ModelMetadata.of(SPEC));
            meta.putAll(ModelMetadata.of(new ModelMetadata.Norm(Normalization.IMAGENET_MEAN_RGB.mean(),
                    Normalization.IMAGENET_MEAN_RGB.std())));
            Checkpoint.save(net, file, meta);
        }
        return file;
    }

    private static String[] plainEval(Path data, Path ck, String... more) {
        String[] base = {"eval", "--backend", "reference", "--data", data.toString(), "--scales", "36", "--grid", "1",
            "--protocol", "CENTRE", "--checkpoint", ck.toString()};
        String[] all = Arrays.copyOf(base, base.length + more.length);
        System.arraycopy(more, 0, all, base.length, more.length);
        return all;
    }

    @Test
    void aCheckpointThatRecordsItsModelNeedsNoModelOptions(@TempDir Path root) throws Exception {
        Path data = folder(root);
        CliRun old = vgg(eval(data, checkpoint(root.resolve("old.safetensors"), null), "--protocol", "CENTRE"));
        assertEquals(0, old.code(), old.err());
        CliRun r = vgg(plainEval(data, recording(root.resolve("new.safetensors"))));
        assertEquals(0, r.code(), r.err());
        assertEquals(old.out(), r.out()); // same weights, same model, same normalisation: the same errors
        assertTrue(r.out().startsWith("Ax0.0625, 1 network, "), r.out());
        // options that agree with the file are accepted
        r = vgg(plainEval(data, root.resolve("new.safetensors"), "--hidden", "16", "--no-bn", "--normalization", "paper"));
        assertEquals(0, r.code(), r.err());
    }

    @Test
    void optionsThatContradictTheCheckpointAreOneLineNamingBothValues(@TempDir Path root) throws Exception {
        Path data = folder(root);
        Path ck = recording(root.resolve("new.safetensors"));
        CliRun r = vgg(plainEval(data, ck, "--hidden", "32"));
        assertEquals(2, r.code(), r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("--hidden 32 contradicts --checkpoint " + ck + ", which records hidden features 16"),
                r.err());
        r = vgg(plainEval(data, ck, "--config", "D"));
        assertTrue(r.err().contains("--config D contradicts") && r.err().contains("records configuration A"), r.err());
        r = vgg(plainEval(data, ck, "--bn"));
        assertTrue(r.err().contains("--bn contradicts") && r.err().contains("records BatchNorm off"), r.err());
        r = vgg(plainEval(data, ck, "--normalization", "imagenet"));
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("--normalization imagenet contradicts --checkpoint " + ck
                + ", which records mean (123.68, 116.779, 103.939) and std (1, 1, 1)"), r.err());
    }

    @Test
    void aFileThatRecordsNoModelSaysWhichOptionsItNeeds(@TempDir Path root) throws Exception {
        Path data = folder(root);
        Path ck = checkpoint(root.resolve("old.safetensors"), null);
        CliRun r = vgg(plainEval(data, ck));
        assertEquals(2, r.code(), r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains(ck + " records no model architecture") && r.err().contains("--config, --bn or --no-bn,"
                + " --width, --hidden, --input-size, --classes"), r.err());
        r = vgg(plainEval(data, ck, "--width", "0.0625", "--hidden", "16", "--input-size", "32"));
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains(ck + " records no input normalisation; give --normalization imagenet"), r.err());
        // a wrong architecture for such a file: one line saying what does not fit, no stack trace
        r = vgg(plainEval(data, ck, "--width", "0.0625", "--hidden", "64", "--input-size", "32", "--normalization", "paper"));
        assertEquals(1, r.code(), r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("does not fit network") && r.err().contains("classifier.0.weight"), r.err());
    }
}
