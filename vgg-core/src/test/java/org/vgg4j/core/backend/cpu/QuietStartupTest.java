package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;

/**
 * Building the cpu backend prints nothing uninvited: in a fresh JVM whose logging binding writes INFO to stdout
 * (as logback's default does), stdout holds only what the program itself printed. Before, ND4J's initialisation
 * log (backend loaded, thread counts, the native build's compiler and features) came out there.
 */
class QuietStartupTest {
    static final String READY = "cpu backend ready";

    /** The child: builds the cpu backend and prints one line. */
    public static final class Child {
        public static void main(String[] args) {
            Backend cpu = Backends.cpu();
            System.out.println(READY + (cpu != null ? "" : " (null)"));
        }
    }

    @Test
    void buildingTheCpuBackendPrintsNothingToStdout() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // the child runs on the class path alone: this JVM's class path and its module path (the module under test)
        String cp = Stream.of(System.getProperty("java.class.path"), System.getProperty("jdk.module.path"))
                .filter(p -> p != null && !p.isEmpty()).collect(Collectors.joining(File.pathSeparator));
        ProcessBuilder pb = new ProcessBuilder(java, "-Xmx256m",
                "-Dorg.slf4j.simpleLogger.logFile=System.out", "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-cp", cp, Child.class.getName());
        pb.redirectError(ProcessBuilder.Redirect.DISCARD);
        Process child = pb.start();
        String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(child.waitFor(120, TimeUnit.SECONDS), "child did not finish");
        assertEquals(0, child.exitValue(), "child's exit status; stdout:\n" + out);
        assertEquals(READY + System.lineSeparator(), out, "stdout of a program that printed one line");
    }
}
