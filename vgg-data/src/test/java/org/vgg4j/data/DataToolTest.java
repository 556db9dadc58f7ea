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

    /** Exit code, stdout, stderr. */
    private record Run(int code, String out, String err) {
    }

    private static Run tool(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = DataTool.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** Stdout of a run that must succeed. */
    private static String run(String... args) {
        Run r = tool(args);
        assertEquals(0, r.code(), r.err());
        return r.out();
    }

    /** A run that must be refused: exit code 2 and one line on stderr, which is returned. */
    private static String refused(String... args) {
        Run r = tool(args);
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        return r.err();
    }

    @Test
    void everyMisuseIsOneLineNamingTheValueWithExitCode2(@TempDir Path root) throws Exception {
        Path file = Files.writeString(root.resolve("f.txt"), "x");
        assertTrue(refused().contains("no command; usage: DataTool scan|pack|stats|bench"));
        assertTrue(refused("scna", root.toString()).contains("unknown command 'scna'; expected scan, pack, stats or bench"));
        assertTrue(refused("scan").contains("missing argument DIR"));
        assertTrue(refused("scan", root.resolve("nope").toString()).contains("DIR '" + root.resolve("nope") + "': no such directory"));
        assertTrue(refused("scan", file.toString()).contains("DIR '" + file + "': not a directory"));
        assertTrue(refused("scan", root.toString(), "--threads", "0").contains("--threads '0': expected an integer >= 1"));
        assertTrue(refused("scan", root.toString(), "--threads", "many").contains("--threads 'many': expected an integer >= 1"));
        assertTrue(refused("scan", root.toString(), "--threads").contains("--threads needs a value"));
        assertTrue(refused("scan", root.toString(), "--thread", "2").contains("unknown option --thread for scan; expected [--threads]"));
        assertTrue(refused("scan", root.toString(), "extra").contains("unexpected argument 'extra' for scan"));
        assertTrue(refused("pack", root.toString()).contains("missing argument OUT_DIR"));
        assertTrue(refused("pack", root.toString(), root.resolve("o").toString(), "--format", "gif")
                .contains("--format 'gif': expected jpg or ppm"));
        assertTrue(refused("pack", root.toString(), root.resolve("o").toString(), "--quality", "9")
                .contains("--quality '9': expected a number in [0.0, 1.0]"));
        assertTrue(refused("stats", root.toString(), "--max-images", "-1").contains("--max-images '-1': expected an integer >= 1"));
        assertTrue(refused("bench", root.toString(), "--s", "100").contains("--s '100': expected an integer >= 224"));

        Run verbose = tool("scan", root.resolve("nope").toString(), "--verbose"); // the trace only when asked for
        assertEquals(2, verbose.code());
        assertTrue(verbose.err().contains("\tat ") && verbose.err().contains("DataTool.directory"), verbose.err());
    }

    @Test
    void aFailureWhileWorkingIsOneLineWithExitCode1() throws Exception {
        Path empty = Files.createTempDirectory("datatool-empty"); // no class folders: the library refuses it
        try {
            Run r = tool("stats", empty.toString());
            assertTrue(r.code() != 0 && r.err().lines().count() == 1 && r.err().contains(empty.toString()), r.err());
            assertTrue(!r.err().contains("\tat "), r.err());
        } finally {
            Files.delete(empty);
        }
    }

    @Test
    void scanReportsAFileOver2GiBAndEveryOtherFile(@TempDir Path root) throws Exception {
        ShardTest.folder(root); // 6 files, 2 bad (truncated 2.jpg, empty 4.jpg)
        Path huge = root.resolve("src").resolve("apple").resolve("3huge.jpg");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(huge.toFile(), "rw")) {
            f.setLength(3L << 30); // sparse: 3 GiB that take no disk
        }
        String scan = run("scan", root.resolve("src").toString(), "--threads", "1");
        List<String> bad = scan.lines().filter(l -> l.startsWith("BAD\t")).toList();
        assertEquals(3, bad.size(), scan);
        assertTrue(bad.stream().anyMatch(l -> l.contains("3huge.jpg") && l.contains("too large: 3,221,225,472 bytes")), scan);
        assertTrue(bad.stream().anyMatch(l -> l.contains("2.jpg") && l.contains("corrupt")), scan);
        assertTrue(bad.stream().anyMatch(l -> l.contains("4.jpg") && l.contains("zero-byte")), scan);
        assertTrue(scan.contains("scanned 7 image files"), scan);
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
    void scanReportsLinksDirectoriesAndFifosNamedLikeImagesInsteadOfIgnoringThem(@TempDir Path root) throws Exception {
        ShardTest.folder(root); // 6 files, 2 bad (truncated 2.jpg, empty 4.jpg)
        Path apple = root.resolve("src").resolve("apple");
        Files.createSymbolicLink(apple.resolve("7dangling.JPEG"), root.resolve("nowhere.jpg"));
        Files.createDirectory(apple.resolve("8dir.JPEG"));
        Path fifo = apple.resolve("9fifo.JPEG");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor(), "mkfifo");
        String scan = run("scan", root.resolve("src").toString(), "--threads", "2");
        List<String> bad = scan.lines().filter(l -> l.startsWith("BAD\t")).toList();
        assertEquals(5, bad.size(), scan);
        assertTrue(scan.contains("7dangling.JPEG\tdangling symbolic link"), scan);
        assertTrue(scan.contains("8dir.JPEG\ta directory, not an image file"), scan);
        assertTrue(scan.contains("9fifo.JPEG\tnot a regular file"), scan);
        assertTrue(scan.contains("scanned 9 image files"), scan);
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
