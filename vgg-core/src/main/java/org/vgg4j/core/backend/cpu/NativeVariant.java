package org.vgg4j.core.backend.cpu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Chooses which ND4J native variant JavaCPP loads, before anything touches ND4J.
 *
 * <p>ND4J 1.0.0-M2.1 ships a plain {@code linux-x86_64} build and a {@code linux-x86_64-onednn-avx2} build
 * whose convolutions run in oneDNN, faster on every VGG layer (docs/benchmarks.md, "Decision 1"). Maven puts
 * exactly one of them on the class path (the parent pom's {@code javacpp.platform.extension}), but at run time
 * JavaCPP only loads the variant named by the system property {@code org.bytedeco.javacpp.platform.extension}.
 * This class sets that property to {@code -onednn-avx2} when (1) the user did not set it, (2) that variant's
 * natives are on the class path and (3) the CPU has AVX2 (the build would crash on an older CPU). Otherwise it
 * leaves the property alone and the plain build loads. What it is not: a loader; JavaCPP loads, on the first ND4J call.
 */
final class NativeVariant {
    static final String PROPERTY = "org.bytedeco.javacpp.platform.extension";
    static final String ONEDNN = "-onednn-avx2";
    /** ND4J's switch for its initialisation log (ND4JSystemProperties.LOG_INITIALIZATION). */
    static final String ND4J_LOG_INIT = "org.nd4j.log.initialization";
    private static final Logger LOG = LoggerFactory.getLogger(NativeVariant.class);

    private NativeVariant() {
    }

    /** Applies the choice (idempotent); returns the extension in force ("" for the plain build). */
    static synchronized String select() {
        String set = System.getProperty(PROPERTY);
        if (set != null) {
            return set;
        }
        String platform = platform();
        String lib = "org/nd4j/linalg/cpu/nativecpu/bindings/" + platform + ONEDNN + "/libjnind4jcpu.so";
        boolean present = NativeVariant.class.getClassLoader().getResource(lib) != null;
        if (present && cpuHasAvx2()) {
            System.setProperty(PROPERTY, ONEDNN);
            LOG.debug("ND4J native variant: {}{} (oneDNN convolutions)", platform, ONEDNN);
            return ONEDNN;
        }
        LOG.debug("ND4J native variant: {} (plain{})", platform,
                present ? "; the CPU lacks AVX2" : "; no oneDNN natives on the class path");
        return "";
    }

    /**
     * ND4J logs a dozen INFO lines when it initialises (backend loaded, thread counts, memory, and the native build's
     * compiler and feature list): with a logging binding that writes to stdout (logback's default, slf4j-simple's
     * {@code logFile=System.out}) they land in the user's output although nobody asked. Unless the user set ND4J's
     * own switch {@code org.nd4j.log.initialization}, it is turned off here; {@code -Dorg.nd4j.log.initialization=true}
     * brings the lines back. Our own choice of variant is logged at DEBUG for the same reason.
     */
    static synchronized void quietNd4jInitialization() {
        if (System.getProperty(ND4J_LOG_INIT) == null) {
            System.setProperty(ND4J_LOG_INIT, "false");
        }
    }

    /**
     * JavaCPP refuses native allocations once the process's resident size passes maxPhysicalBytes, by default
     * 4x the Java heap: with the small heap this backend wants (its data lives off heap, far more than a small
     * -Xmx) that limit is wrong, so unless the user set it, it is lifted (0 = none).
     */
    static synchronized void liftPhysicalBytesLimit() {
        if (System.getProperty("org.bytedeco.javacpp.maxPhysicalBytes") == null
                && System.getProperty("org.bytedeco.javacpp.maxphysicalbytes") == null) {
            System.setProperty("org.bytedeco.javacpp.maxPhysicalBytes", "0");
        }
    }

    /** JavaCPP's platform name for this JVM, e.g. linux-x86_64 (its own override property first). */
    static String platform() {
        String p = System.getProperty("org.bytedeco.javacpp.platform");
        if (p != null) {
            return p;
        }
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String o = os.startsWith("linux") ? "linux" : os.startsWith("mac") ? "macosx" : os.startsWith("windows") ? "windows" : os;
        String a = arch.equals("amd64") || arch.equals("x86_64") ? "x86_64" : arch.equals("aarch64") ? "arm64" : arch;
        return o + "-" + a;
    }

    /** True when /proc/cpuinfo lists avx2 (only Linux builds of the oneDNN variant exist). */
    static boolean cpuHasAvx2() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("flags")) {
                    return (" " + line + " ").contains(" avx2 ");
                }
            }
        } catch (IOException | RuntimeException e) {
            return false;
        }
        return false;
    }
}
