package org.vgg4j.train.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.train.cli.CliRun.vgg;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.Checkpoint;
import org.vgg4j.core.io.ModelMetadata;
import org.vgg4j.core.io.Safetensors;
import org.vgg4j.core.model.Features;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.data.ImageDecoder;
import org.vgg4j.data.Normalization;
import org.vgg4j.data.Resampler;
import org.vgg4j.data.SampleTransform;

/** {@code vgg features} on a tiny folder: one row per image, equal to the network's own activations, labels in order. */
class FeaturesCommandTest {
    private static final VggSpec SPEC = new VggSpec(VggConfig.A, true, 3, 32, 0.0625, 16, 0.5, 0);

    @TempDir
    Path dir;


    private static void png(Path file, long seed, int w, int h) throws Exception {
        SplittableRandom r = new SplittableRandom(seed);
        BufferedImage im = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                im.setRGB(x, y, r.nextInt(1 << 24));
            }
        }
        Files.createDirectories(file.getParent());
        ImageIO.write(im, "png", file.toFile());
    }

    /** images/{cat,dog}: three images, of different sizes. */
    private Path folder() throws Exception {
        Path data = dir.resolve("images");
        png(data.resolve("cat/a.png"), 1, 40, 36);
        png(data.resolve("cat/b.png"), 2, 50, 64);
        png(data.resolve("dog/c.png"), 3, 37, 37);
        return data;
    }

    private Path checkpoint() throws Exception {
        Path f = dir.resolve("model.safetensors");
        try (Backend b = Backends.create("reference"); Network net = Vgg.build(b, DType.FLOAT32, SPEC)) {
            Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 3);
            Map<String, String> meta = new HashMap<>(ModelMetadata.of(SPEC));
            meta.putAll(ModelMetadata.of(new ModelMetadata.Norm(Normalization.TORCHVISION.mean(), Normalization.TORCHVISION.std())));
            Checkpoint.save(net, f, meta);
        }
        return f;
    }

    /** The activation of {@code layer} for one image, computed directly. */
    private static float[] expected(Path ck, Path image, String layer) throws Exception {
        SampleTransform view = SampleTransform.centreCrop(37, 32, Normalization.TORCHVISION);
        float[] host = new float[3 * 32 * 32];
        view.apply(new ImageDecoder().decode(Files.readAllBytes(image), image.toString()), new SplittableRandom(0), new Resampler(), host, 0);
        try (Backend b = Backends.create("reference"); Network net = Vgg.build(b, DType.FLOAT32, SPEC)) {
            Checkpoint.load(net, ck);
            Tensor x = b.allocate(DType.FLOAT32, Shape.of(1, 3, 32, 32));
            b.copyIn(host, 0, x);
            try (Features f = net.featuresAt(x, layer)) {
                return f.toFloats(layer);
            }
        }
    }

    @Test
    void writesOneRowPerImageWithLabelsAndFileOrder() throws Exception {
        Path data = folder();
        Path ck = checkpoint();
        Path out = dir.resolve("fc7.safetensors");
        CliRun r = vgg("features", "--checkpoint", ck.toString(), "--data", data.toString(), "--out", out.toString(),
                "--backend", "reference", "--batch", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("3 images x 16 features of fc7 (classifier.4 of A_bnx0.0625"), r.out());
        try (Safetensors.Reader f = Safetensors.open(out)) {
            assertArrayEquals(new long[] {3, 16}, f.tensors().get("features").shape());
            assertArrayEquals(new long[] {0, 0, 1}, f.readLongs("labels"));
            Map<String, String> meta = f.metadata();
            assertEquals("cat/a.png\ncat/b.png\ndog/c.png", meta.get("vgg4j.features.files"));
            assertEquals("cat\ndog", meta.get("vgg4j.features.classes"));
            assertEquals("0,0,1", meta.get("vgg4j.features.labels"));
            assertEquals("fc7 (classifier.4)", meta.get("vgg4j.features.layer"));
            assertEquals(SPEC, ModelMetadata.spec(meta, out).orElseThrow());
            float[] rows = new float[48];
            f.readFloats(f.tensors().get("features"), 0, 48, rows, 0);
            String[] files = {"cat/a.png", "cat/b.png", "dog/c.png"};
            for (int i = 0; i < 3; i++) {
                float[] want = expected(ck, data.resolve(files[i]), "classifier.4");
                float[] got = java.util.Arrays.copyOfRange(rows, 16 * i, 16 * i + 16);
                assertArrayEquals(want, got, 1e-5f, files[i]); // the batch of 2 against a batch of 1
            }
        }
        // pool5: the last pooling (A_bn: 8 x conv, BN, ReLU and 5 pools = features.0..28), 512 x 0.0625 = 32 channels of 1x1
        Path pool5 = dir.resolve("pool5.safetensors");
        r = vgg("features", "--checkpoint", ck.toString(), "--data", data.toString(), "--out", pool5.toString(),
                "--backend", "reference", "--layer", "pool5");
        assertEquals(0, r.code(), r.err());
        try (Safetensors.Reader f = Safetensors.open(pool5)) {
            assertArrayEquals(new long[] {3, 32}, f.tensors().get("features").shape());
            assertEquals("(32,1,1)", f.metadata().get("vgg4j.features.shape"));
            assertEquals("pool5 (features.28)", f.metadata().get("vgg4j.features.layer"));
        }
    }

    @Test
    void anUnknownLayerOrAnUnreadableImageIsOneLine() throws Exception {
        Path data = folder();
        Path ck = checkpoint();
        CliRun r = vgg("features", "--checkpoint", ck.toString(), "--data", data.toString(), "--out",
                dir.resolve("x.safetensors").toString(), "--backend", "reference", "--layer", "conv9");
        assertEquals(2, r.code(), r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("has no layer 'conv9'; valid names: [features.0,"), r.err());
        Files.write(data.resolve("dog/empty.png"), new byte[0]);
        r = vgg("features", "--checkpoint", ck.toString(), "--data", data.toString(), "--out",
                dir.resolve("x.safetensors").toString(), "--backend", "reference");
        assertEquals(1, r.code(), r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains(data.resolve("dog/empty.png") + ": zero-byte file; expected a readable image"), r.err());
        assertTrue(!Files.exists(dir.resolve("x.safetensors")));
    }
}
