package org.vgg4j.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.imageio.ImageIO;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which libjpeg the JDK's JPEG reader runs, the largest single factor in JPEG loading speed: Debian's and Ubuntu's
 * OpenJDK packages link the system's libjpeg-turbo (SIMD), while OpenJDK's own builds (Temurin, Oracle) carry the
 * IJG libjpeg 6b inside {@code libjavajpeg.so}. Measured here: decoding the benchmark's 500x375 photographs ran
 * at 1127-1131 images per CPU-second on Debian's JDK 17 and 546-559 on Temurin 25 (docs/benchmarks.md).
 *
 * <p>How: the reader's native library is loaded once a JPEG reader exists; on Linux, {@code /proc/self/maps}
 * then shows whether a separate {@code libjpeg.so} is mapped next to it. Elsewhere the answer is "unknown".
 * Not a decoder and not a switch: it only reports, once per JVM ({@link #logOnce()}).
 */
final class JpegLibrary {
    private static final Logger LOG = LoggerFactory.getLogger(JpegLibrary.class);
    private static volatile String described;
    /** Set by the one caller of {@link #logOnce()} that logs: decoder threads race to it, exactly one wins. */
    private static final AtomicBoolean LOGGED = new AtomicBoolean();

    private JpegLibrary() {
    }

    /** A one-line description, e.g. "system libjpeg /usr/lib/x86_64-linux-gnu/libjpeg.so.62.3.0". */
    static String describe() {
        String d = described;
        if (d == null) {
            ImageIO.getImageReadersByFormatName("jpeg").forEachRemaining(r -> r.dispose()); // loads libjavajpeg
            d = fromMaps(Path.of("/proc/self/maps"));
            described = d;
        }
        return d;
    }

    /** Logs {@link #describe()} at INFO the first time it is called in this JVM, whichever thread calls first;
     * true for that one call (package-private for the test). */
    static boolean logOnce() {
        if (!LOGGED.compareAndSet(false, true)) {
            return false;
        }
        String d = describe();
        LOG.info("JPEG decoding through the JDK's reader with {}{}", d, d.startsWith("the JDK's own")
                ? " (about half the speed of a JDK linked to libjpeg-turbo, e.g. Debian's and Ubuntu's openjdk"
                + " packages; packed shards avoid most decoding: docs/data.md)" : "");
        return true;
    }

    /** The description from a maps file's library paths (package-private for the test). */
    static String fromMaps(Path maps) {
        List<String> lines;
        try {
            lines = Files.readAllLines(maps);
        } catch (IOException | SecurityException e) {
            return "an unknown libjpeg (cannot read " + maps + ")";
        }
        Optional<String> system = lines.stream().map(JpegLibrary::path)
                .filter(p -> p.toLowerCase(Locale.ROOT).matches(".*/lib(turbo)?jpeg\\.so[.0-9]*")).findFirst();
        if (system.isPresent()) {
            return "system libjpeg " + system.get();
        }
        boolean javajpeg = lines.stream().map(JpegLibrary::path).anyMatch(p -> p.endsWith("/libjavajpeg.so"));
        return javajpeg ? "the JDK's own libjpeg inside libjavajpeg.so (IJG 6b in OpenJDK's builds: no SIMD)"
                : "an unknown libjpeg (libjavajpeg.so not mapped)";
    }

    private static String path(String mapsLine) {
        int slash = mapsLine.indexOf('/');
        return slash < 0 ? "" : mapsLine.substring(slash).trim();
    }
}
