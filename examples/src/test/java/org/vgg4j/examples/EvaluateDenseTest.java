package org.vgg4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.ImageDecoder;
import org.vgg4j.data.ImageFolders;
import org.vgg4j.data.Normalization;
import org.vgg4j.train.Evaluator;

/** EvaluateDense end to end on a narrow network and four images: every row, aligned, progress on its own stream. */
class EvaluateDenseTest {
    /** A 40x36 binary PPM of random pixels (the decoder reads PPM; no image library needed to write one). */
    private static void ppm(Path file, long seed) throws Exception {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] header = "P6\n40 36\n255\n".getBytes(StandardCharsets.US_ASCII);
        byte[] bytes = new byte[header.length + 40 * 36 * 3];
        System.arraycopy(header, 0, bytes, 0, header.length);
        for (int i = header.length; i < bytes.length; i++) {
            bytes[i] = (byte) r.nextInt(256);
        }
        Files.createDirectories(file.getParent());
        Files.write(file, bytes);
    }

    @Test
    void printsEveryProtocolsRowAlignedAndItsProgressToTheOtherStream(@TempDir Path dir) throws Exception {
        for (int k = 0; k < 2; k++) {
            ppm(dir.resolve("c" + k).resolve("a.ppm"), 10 * k + 1);
            ppm(dir.resolve("c" + k).resolve("b.ppm"), 10 * k + 2);
        }
        VggSpec spec = new VggSpec(VggConfig.A, false, 2, 32, 0.0625, 16, 0.5, 0);
        List<Evaluator.Protocol> protocols = EvaluateDense.protocols(List.of(Evaluator.View.values()), 32, 64,
                Normalization.TORCHVISION, false);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        List<Evaluator.Result> results;
        try (Backend b = Backends.create("reference"); Network net = Vgg.build(b, DType.FLOAT32, spec)) {
            Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1);
            results = EvaluateDense.table(List.of(net), ImageFolders.imageFolder(dir, new ImageDecoder()), protocols,
                    new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(progress, true, StandardCharsets.UTF_8));
        }
        List<String> table = out.toString(StandardCharsets.UTF_8).lines().toList();
        List<String> steps = progress.toString(StandardCharsets.UTF_8).lines().toList();
        assertEquals(9, table.size(), String.join("\n", table)); // header + 8 rows
        assertEquals(8, results.size());
        for (int i = 0; i < 8; i++) {
            assertEquals(4, results.get(i).count());
            assertEquals(table.get(0).length(), table.get(i + 1).length(), String.join("\n", table));
            assertTrue(table.get(i + 1).startsWith(protocols.get(i).toString()), table.get(i + 1));
            assertEquals("[" + (i + 1) + "/8] " + protocols.get(i) + " on 4 images...", steps.get(i));
        }
        assertEquals(8, steps.size());
    }
}
