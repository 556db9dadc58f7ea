package org.vgg4j.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;

/** The model a checkpoint records: written, read back equal, absent for files that record none, malformed named. */
class ModelMetadataTest {
    private static final Path FILE = Path.of("x.safetensors");

    @Test
    void aSpecAndANormalisationReadBackEqual() throws IOException {
        VggSpec s = new VggSpec(VggConfig.A_LRN, true, 7, 64, 0.3, 96, 0.25, -12);
        ModelMetadata.Norm n = new ModelMetadata.Norm(new float[] {1.5f, 2f, 0.1f}, new float[] {58.395f, 57.12f, 57.375f});
        Map<String, String> meta = new HashMap<>(ModelMetadata.of(s));
        meta.putAll(ModelMetadata.of(n));
        assertEquals("A_LRN", meta.get("vgg4j.model.config"));
        assertEquals("0.3", meta.get("vgg4j.model.width"));
        assertEquals("58.395,57.12,57.375", meta.get("vgg4j.input.std"));
        assertEquals(s, ModelMetadata.spec(meta, FILE).orElseThrow());
        ModelMetadata.Norm back = ModelMetadata.normalization(meta, FILE).orElseThrow();
        assertArrayEquals(n.mean(), back.mean());
        assertArrayEquals(n.std(), back.std());
    }

    @Test
    void aFileWithoutTheKeysRecordsNothing(@TempDir Path dir) throws IOException {
        assertTrue(ModelMetadata.spec(Map.of("network", "D"), FILE).isEmpty());
        assertTrue(ModelMetadata.normalization(Map.of(), FILE).isEmpty());
        Path f = dir.resolve("w.safetensors");
        Safetensors.write(f, List.of(Safetensors.ofLongs("a", new long[] {1}, new long[] {3})), Map.of("k", "v"));
        assertEquals(Map.of("k", "v"), ModelMetadata.read(f));
    }

    @Test
    void malformedKeysAreNamed() {
        Map<String, String> meta = new HashMap<>(ModelMetadata.of(VggSpec.paper(VggConfig.D)));
        meta.put("vgg4j.model.hidden", "many");
        IOException e = assertThrows(IOException.class, () -> ModelMetadata.spec(meta, FILE));
        assertTrue(e.getMessage().startsWith("x.safetensors: malformed model metadata") && e.getMessage().contains("many"),
                e.getMessage());
        meta.remove("vgg4j.model.hidden");
        e = assertThrows(IOException.class, () -> ModelMetadata.spec(meta, FILE));
        assertTrue(e.getMessage().contains("key vgg4j.model.hidden is missing"), e.getMessage());
        e = assertThrows(IOException.class, () -> ModelMetadata.normalization(
                Map.of("vgg4j.input.mean", "1,2", "vgg4j.input.std", "1,1,1"), FILE));
        assertTrue(e.getMessage().contains("'1,2' does not hold 3 numbers"), e.getMessage());
    }
}
