package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.Checkpoint;
import org.vgg4j.core.io.Safetensors;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.IdxImages;
import org.vgg4j.data.SmallImageTransform;
import org.vgg4j.train.cli.VggCli;

/**
 * Fine-tuning through {@link TrainingRun}: a checkpoint of 10 classes starts a 5-class network with a fresh head,
 * the frozen layers end exactly as loaded, a run with frozen layers resumes bit for bit, and {@code vgg train
 * --init-from --classes --freeze --lr-mult} does the same from the command line. Reference backend, tiny sizes.
 */
class TransferTrainingTest {
    private static final VggSpec SPEC10 = new VggSpec(VggConfig.A, true, 10, 32, 0.0625, 16, 0.5, 1);
    private static final VggSpec SPEC5 = new VggSpec(VggConfig.A, true, 5, 32, 0.0625, 16, 0.5, 1);
    /** conv1 and its BatchNorm: features.0 conv, .1 BN, .2 ReLU, .3 pool */
    private static final List<String> FROZEN = List.of("features.0.weight", "features.0.bias", "features.1.weight",
            "features.1.bias");

    /** The first {@code n} bundled sample images of classes [from, from + 5), labelled 0..4. */
    static IdxDataset classes(FashionMnist.Split split, int from, int n) {
        IdxImages all = FashionMnist.bundledSample(split);
        int px = all.rows() * all.cols();
        byte[] pixels = new byte[n * px];
        byte[] labels = new byte[n];
        int k = 0;
        for (int i = 0; i < all.count() && k < n; i++) {
            int label = all.label(i);
            if (label >= from && label < from + 5) {
                System.arraycopy(all.pixels(), i * px, pixels, k * px, px);
                labels[k++] = (byte) (label - from);
            }
        }
        return new IdxDataset(new IdxImages(n, all.rows(), all.cols(), pixels, labels),
                FashionMnist.CLASS_NAMES.subList(from, from + 5));
    }

    /** A 10-class network, Glorot with seed 99, saved as a plain weights file (stands in for a trained one). */
    private static Path pretrained(Path dir, VggSpec spec) throws IOException {
        Path file = dir.resolve("pretrained.safetensors");
        try (Backend b = Backends.create("reference"); Network n = Vgg.build(b, DType.FLOAT32, spec)) {
            Initializers.initialize(n, Initializers.Scheme.GLOROT_UNIFORM, 99);
            Checkpoint.save(n, file, Map.of());
        }
        return file;
    }

    private static Recipe fineTune(Path from, int epochs) {
        return Recipes.fashion().toBuilder().batchSize(16).schedule(new Schedule.Constant()).baseLr(0.02).maxEpochs(epochs)
                .init(Recipe.Init.FROM_CHECKPOINT).initFrom(from).newHead(true).freezeUpTo("features.3")
                .lrMult("features", 0.5).build();
    }

    private static TrainingRun.Builder run(Recipe recipe) {
        SmallImageTransform t = SmallImageTransform.grey(32, 2, true, 0.286, 0.353);
        return TrainingRun.builder().model(SPEC5).recipe(recipe).train(classes(FashionMnist.Split.TRAIN, 5, 48), t)
                .validation(classes(FashionMnist.Split.TEST, 5, 32), t.testView());
    }

    private static Replicas replicas(Recipe recipe) {
        return Replicas.create("reference", 1, (b, rank) -> Vgg.build(b, DType.FLOAT32, SPEC5), recipe.sgdSettings(),
                new HostAllReduce());
    }

    private static float[] floats(Tensor t) {
        float[] v = new float[Math.toIntExact(t.size())];
        t.backend().copyOut(t, v, 0);
        return v;
    }

    private static float[] fileFloats(Path file, String key) throws IOException {
        try (Safetensors.Reader r = Safetensors.open(file)) {
            double[] d = r.readDoubles(key);
            float[] f = new float[d.length];
            for (int i = 0; i < d.length; i++) {
                f[i] = (float) d[i];
            }
            return f;
        }
    }

    @Test
    void aNewHeadTrainsWhileTheFrozenLayersStayAsLoaded(@TempDir Path dir) throws Exception {
        Path from = pretrained(dir, SPEC10);
        Recipe recipe = fineTune(from, 1);
        try (Replicas replicas = replicas(recipe)) {
            Trainer.Result r = run(recipe).replicas(replicas).build().run();
            assertEquals(3, r.state().step());
            Network net = replicas.primary();
            for (String k : FROZEN) {
                assertArrayEquals(fileFloats(from, k), floats(net.params().get(k).value()), k);
                assertEquals(0.0, net.params().lrMultiplier(k));
            }
            assertEquals(0.5, net.params().lrMultiplier("features.4.weight"));
            assertEquals(1.0, net.params().lrMultiplier("classifier.6.weight"));
            assertFalse(Arrays.equals(fileFloats(from, "features.4.weight"), floats(net.params().get("features.4.weight").value())));
            assertEquals(List.of(5, 16), Arrays.stream(net.params().get("classifier.6.weight").value().shape().dims()).boxed().toList());
            float[] v = floats(replicas.optimizer(0).velocity());
            long off = net.params().get("features.0.weight").value().offset() - net.params().values().offset();
            for (int i = 0; i < net.params().get("features.0.weight").value().size(); i++) {
                assertEquals(0f, v[(int) off + i]); // a frozen tensor never moves its velocity
            }
        }
    }

    @Test
    void aRunWithFrozenLayersResumesBitForBit(@TempDir Path dir) throws Exception {
        Path from = pretrained(dir, SPEC10);
        float[][] straight;
        try (Replicas replicas = replicas(fineTune(from, 2))) {
            run(fineTune(from, 2)).replicas(replicas).out(dir.resolve("straight")).build().run();
            straight = new float[][] {floats(replicas.primary().params().values()),
                floats(replicas.primary().params().state()), floats(replicas.optimizer(0).velocity())};
        }
        Path split = dir.resolve("split");
        run(fineTune(from, 1)).backend("reference").out(split).build().run(); // stops after epoch 1, as a killed run
        try (Replicas replicas = replicas(fineTune(from, 2))) {
            Trainer.Result r = run(fineTune(from, 2)).replicas(replicas).out(split).resume(true).build().run();
            assertEquals(6, r.state().step());
            assertEquals(1, r.epochs().size());
            assertArrayEquals(straight[0], floats(replicas.primary().params().values()));
            assertArrayEquals(straight[1], floats(replicas.primary().params().state()));
            assertArrayEquals(straight[2], floats(replicas.optimizer(0).velocity()));
        }
    }

    @Test
    void everythingButTheHeadLoadsStrictly(@TempDir Path dir) throws Exception {
        Path wider = pretrained(dir, new VggSpec(VggConfig.A, true, 10, 32, 0.125, 16, 0.5, 1));
        IOException e = assertThrows(IOException.class, () -> run(fineTune(wider, 1)).backend("reference").build().run());
        assertTrue(e.getMessage().contains("features.0.weight") && e.getMessage().contains(wider.toString()), e.getMessage());
        // without a new head the 10-class file does not fit the 5-class network: strict as before
        Path from = pretrained(Files.createDirectories(dir.resolve("x")), SPEC10);
        Recipe keep = fineTune(from, 1).toBuilder().newHead(false).build();
        e = assertThrows(IOException.class, () -> run(keep).backend("reference").build().run());
        assertTrue(e.getMessage().contains("classifier.6.weight"), e.getMessage());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> run(fineTune(from, 1).toBuilder().freezeUpTo("features.99").build()).backend("reference").build().run());
        assertTrue(bad.getMessage().contains("features.99"), bad.getMessage());
        bad = assertThrows(IllegalArgumentException.class, () -> Recipe.builder().name("x").batchSize(1).baseLr(0.1)
                .schedule(new Schedule.Constant()).maxEpochs(1).newHead(true).build());
        assertTrue(bad.getMessage().contains("FROM_CHECKPOINT"), bad.getMessage());
    }

    @Test
    void theCommandLineFineTunesWithANewHead(@TempDir Path dir) throws Exception {
        Path from = pretrained(dir, SPEC10);
        Path out = dir.resolve("tuned");
        StringWriter lines = new StringWriter();
        StringWriter err = new StringWriter();
        int code = VggCli.run(new String[] {"train", "--backend", "reference", "--data", "fashion-mnist-sample", "--limit",
            "32", "--batch", "16", "--width", "0.0625", "--hidden", "16", "--no-progress", "--epochs", "1", "--out",
            out.toString(), "--init-from", from.toString(), "--classes", "12", "--freeze", "features.3", "--lr-mult",
            "features=0.5", "--lr-mult", "classifier=2"}, new PrintWriter(lines, true), new PrintWriter(err, true));
        assertEquals(0, code, err.toString());
        Path last = new Checkpointer(out.resolve(TrainingRun.CHECKPOINTS), 2).list().get(0);
        try (Safetensors.Reader r = Safetensors.open(last)) {
            assertArrayEquals(new long[] {12, 16}, r.tensors().get("classifier.6.weight").shape());
        }
        for (String k : FROZEN) {
            assertArrayEquals(fileFloats(from, k), fileFloats(last, k), k);
        }
        assertFalse(Arrays.equals(fileFloats(from, "classifier.3.weight"), fileFloats(last, "classifier.3.weight")));
        assertTrue(Files.exists(out.resolve(MetricsLog.CSV)));
    }
}
