package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** JpegLibrary reads which libjpeg is mapped next to the JDK's JPEG reader out of a maps file. */
class JpegLibraryTest {
    private static final String JAVAJPEG =
            "7f10a0000000-7f10a0004000 r-xp 00000000 08:01 123 /usr/lib/jvm/x/lib/libjavajpeg.so\n";

    @Test
    void systemLibjpegIsNamedWithItsPath(@TempDir Path dir) throws Exception {
        Path maps = dir.resolve("maps");
        Files.writeString(maps, JAVAJPEG
                + "7f10b0000000-7f10b0060000 r-xp 00000000 08:01 456 /usr/lib/x86_64-linux-gnu/libjpeg.so.62.3.0\n");
        assertEquals("system libjpeg /usr/lib/x86_64-linux-gnu/libjpeg.so.62.3.0", JpegLibrary.fromMaps(maps));
    }

    @Test
    void jdkOwnLibjpegWhenOnlyLibjavajpegIsMapped(@TempDir Path dir) throws Exception {
        Path maps = dir.resolve("maps");
        // libjpegxx names that are not libjpeg itself must not count
        Files.writeString(maps, JAVAJPEG + "7f10c0000000-7f10c0001000 r-xp 00000000 08:01 789 /opt/libjpeg.so.d/readme\n");
        assertTrue(JpegLibrary.fromMaps(maps).startsWith("the JDK's own libjpeg"), JpegLibrary.fromMaps(maps));
    }

    @Test
    void unknownWithoutTheReaderOrTheFile(@TempDir Path dir) throws Exception {
        Path maps = dir.resolve("maps");
        Files.writeString(maps, "7f10a0000000-7f10a0004000 r-xp 00000000 08:01 1 /usr/lib/libc.so.6\n");
        assertTrue(JpegLibrary.fromMaps(maps).startsWith("an unknown libjpeg"), JpegLibrary.fromMaps(maps));
        assertTrue(JpegLibrary.fromMaps(dir.resolve("absent")).startsWith("an unknown libjpeg"));
    }

    @Test
    void thisJvmGivesAnAnswer() {
        String d = JpegLibrary.describe();
        assertTrue(d.startsWith("system libjpeg /") || d.startsWith("the JDK's own") || d.startsWith("an unknown"), d);
    }

    @Test
    void logsOncePerJvmWhenDecoderThreadsRace() throws Exception {
        int threads = 8;
        java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(threads);
        try {
            java.util.List<java.util.concurrent.Future<Boolean>> logged = new java.util.ArrayList<>();
            for (int t = 0; t < threads; t++) {
                logged.add(pool.submit(() -> {
                    start.await();
                    return JpegLibrary.logOnce();
                }));
            }
            start.countDown();
            int count = 0;
            for (java.util.concurrent.Future<Boolean> f : logged) {
                count += f.get() ? 1 : 0;
            }
            // at most one: another test of this JVM may have decoded a JPEG (and logged) before this one ran
            assertTrue(count <= 1, count + " threads logged the JPEG library line, expected at most 1");
            assertFalse(JpegLibrary.logOnce(), "a later call logged again");
        } finally {
            pool.shutdownNow();
        }
    }
}
