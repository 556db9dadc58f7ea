package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DataToolTest {

    private static String run(String... args) throws Exception {
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            DataTool.main(args);
        } finally {
            System.setOut(old);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    @Test
    void scanListsExactlyTheBadFilesAndPackDropsThem(@TempDir Path root) throws Exception {
        ShardTest.folder(root); // 6 files, 2 bad (truncated 2.jpg, empty 4.jpg)
        String scan = run("scan", root.resolve("src").toString(), "--threads", "2");
        List<String> bad = scan.lines().filter(l -> l.startsWith("BAD\t")).toList();
        assertEquals(2, bad.size(), scan);
        assertTrue(bad.get(0).contains("2.jpg") && bad.get(0).contains("corrupt"), bad.get(0)); // cut before its SOS
        assertTrue(bad.get(1).contains("4.jpg") && bad.get(1).contains("zero-byte"), bad.get(1));
        assertTrue(scan.contains("scanned 6 image files"), scan);

        String pack = run("pack", root.resolve("src").toString(), root.resolve("out").toString(), "--format", "ppm",
                "--threads", "1");
        assertTrue(pack.contains("packed 4 of 6 samples into 1 shards"), pack);
        assertTrue(Files.exists(root.resolve("out/train-000000.tar")));
    }

    @Test
    void statsPrintsTheMeanOfAConstantDataset(@TempDir Path root) throws Exception {
        Path dir = root.resolve("d/only");
        Files.createDirectories(dir);
        java.awt.image.BufferedImage im = new java.awt.image.BufferedImage(8, 8, java.awt.image.BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 8; y++) {
            for (int x = 0; x < 8; x++) {
                im.setRGB(x, y, (y < 4 ? 0x0A1428 : 0x1E2832)); // (10,20,40) top, (30,40,50) bottom
            }
        }
        Files.write(dir.resolve("a.png"), TestImages.png(im));
        String out = run("stats", root.resolve("d").toString(), "--threads", "1");
        assertTrue(out.contains("Normalization.meanRgb(20.000, 30.000, 45.000)"), out);
        // Covariance along (1,1,.5)*10: the largest eigenvalue is (10^2 + 10^2 + 5^2)/255^2 = 0.0035 (0..1 scale).
        assertTrue(out.contains("new double[] {0.0035, 0.0000, 0.0000}"), out);
    }

    @Test
    void benchFindsImagesThroughALinkedFolderAndRefusesAnEmptyOne(@TempDir Path root) throws Exception {
        Path real = Files.createDirectories(root.resolve("real"));
        for (int i = 0; i < 3; i++) {
            Files.write(real.resolve(i + ".jpg"), new byte[] {1}); // content is not read here
        }
        Path link = Files.createSymbolicLink(root.resolve("link"), real);
        assertEquals(3, DataTool.flatOrFolders(link, new ImageDecoder()).size());
        Path empty = Files.createDirectories(root.resolve("empty"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DataTool.flatOrFolders(empty, new ImageDecoder()));
        assertTrue(e.getMessage().contains("no image files") && e.getMessage().contains(empty.toString()), e.getMessage());
    }
}
