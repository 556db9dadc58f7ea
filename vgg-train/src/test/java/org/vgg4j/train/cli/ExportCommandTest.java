package org.vgg4j.train.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.train.cli.CliRun.vgg;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.Checkpoint;
import org.vgg4j.core.io.OnnxExport;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;

/**
 * {@code vgg export}: the file it writes is byte for byte what {@link OnnxExport} writes for the same network
 * (vgg-core's OnnxExportTest runs such files in ONNX Runtime against our forward).
 */
class ExportCommandTest {
    /** --small-images: A with BN, width 0.25, FC 128, 32x32, 10 classes. */
    private static final VggSpec SMALL = new VggSpec(VggConfig.A, true, 10, 32, 0.25, 128, 0.5, 0);

    @TempDir
    Path dir;


    /** What the library writes for SMALL with weights set by {@code init}. */
    private byte[] expected(java.util.function.Consumer<Network> init, int opset) throws IOException {
        Path p = dir.resolve("expected.onnx");
        try (Backend b = Backends.create("reference"); Network n = Vgg.build(b, DType.FLOAT32, SMALL)) {
            init.accept(n);
            OnnxExport.write(n, p, OnnxExport.Options.defaults().withOpset(opset));
        }
        return Files.readAllBytes(p);
    }

    @Test
    void aCheckpointThatRecordsItsModelNeedsNoModelOptions() throws IOException {
        Path ckpt = dir.resolve("recorded.safetensors");
        try (Backend b = Backends.create("reference"); Network n = Vgg.build(b, DType.FLOAT32, SMALL)) {
            Initializers.initialize(n, Initializers.Scheme.GLOROT_UNIFORM, 5);
            Checkpoint.save(n, ckpt, org.vgg4j.core.io.ModelMetadata.of(SMALL), 0);
        }
        Path onnx = dir.resolve("model.onnx");
        CliRun r = vgg("export", "--checkpoint", ckpt.toString(), "--onnx", onnx.toString(), "--backend", "reference");
        assertEquals(0, r.code(), r.err());
        assertArrayEquals(expected(n -> Initializers.initialize(n, Initializers.Scheme.GLOROT_UNIFORM, 5), 13),
                Files.readAllBytes(onnx));
        r = vgg("export", "--checkpoint", ckpt.toString(), "--onnx", onnx.toString(), "--backend", "reference",
                "--config", "E");
        assertEquals(2, r.code(), r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("--config E contradicts --checkpoint " + ckpt + ", which records configuration A"),
                r.err());
    }

    @Test
    void aFileThatRecordsNoModelNeedsModelOptions() throws IOException {
        Path ckpt = dir.resolve("old.safetensors");
        try (Backend b = Backends.create("reference"); Network n = Vgg.build(b, DType.FLOAT32, SMALL)) {
            Checkpoint.save(n, ckpt, Map.of(), 0);
        }
        CliRun r = vgg("export", "--checkpoint", ckpt.toString(), "--onnx", dir.resolve("m.onnx").toString(),
                "--backend", "reference");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains(ckpt + " records no model architecture"), r.err());
    }

    @Test
    void writesTheLibrarysModelFromACheckpoint() throws IOException {
        Path ckpt = dir.resolve("trained.safetensors");
        try (Backend b = Backends.create("reference"); Network n = Vgg.build(b, DType.FLOAT32, SMALL)) {
            Initializers.initialize(n, Initializers.Scheme.GLOROT_UNIFORM, 5);
            Checkpoint.save(n, ckpt, Map.of(), 0);
        }
        Path onnx = dir.resolve("model.onnx");
        CliRun r = vgg("export", "--small-images", "--checkpoint", ckpt.toString(), "--onnx", onnx.toString(),
                "--backend", "reference", "--opset", "17");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("input 'input' (N,3,32,32), output 'logits' (N,10), opset 17"), r.out());
        assertArrayEquals(expected(n -> Initializers.initialize(n, Initializers.Scheme.GLOROT_UNIFORM, 5), 17),
                Files.readAllBytes(onnx));
    }

    @Test
    void writesFreshSeededWeightsWhenAskedTo() throws IOException {
        Path onnx = dir.resolve("random.onnx");
        CliRun r = vgg("export", "--small-images", "--random-init", "9", "--onnx", onnx.toString(), "--backend", "reference");
        assertEquals(0, r.code(), r.err());
        assertArrayEquals(expected(n -> Initializers.initialize(n, Initializers.Scheme.GLOROT_UNIFORM, 9), 13),
                Files.readAllBytes(onnx));
    }

    @Test
    void badUsageNamesWhatIsWrong() {
        Path onnx = dir.resolve("none.onnx");
        CliRun r = vgg("export", "--small-images", "--onnx", onnx.toString(), "--backend", "reference");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--checkpoint") && r.err().contains("--random-init"), r.err());

        r = vgg("export", "--small-images", "--random-init", "1", "--checkpoint", "x.safetensors", "--onnx",
                onnx.toString(), "--backend", "reference");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("mutually exclusive"), r.err());

        r = vgg("export", "--small-images", "--random-init", "1", "--opset", "11", "--onnx", onnx.toString(),
                "--backend", "reference");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("opset 11") && r.err().contains("13..21"), r.err());
        assertFalse(Files.exists(onnx));
    }
}
