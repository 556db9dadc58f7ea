package org.vgg4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every ```java block of README.md is a whole program that compiles as written (javac against this module's test
 * class path) and runs (a child JVM) to exit code 0, printing what its "// prints: ..." comments say.
 */
class ReadmeSnippetsTest {
    private static final Pattern BLOCK = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL);
    private static final Pattern CLASS = Pattern.compile("public class (\\w+)");
    private static final Pattern PRINTS = Pattern.compile("// prints: (.*)");

    @Test
    void everyJavaBlockOfTheReadmeCompilesAndRuns(@TempDir Path dir) throws Exception {
        List<String> blocks = javaBlocks(Files.readString(readme(), StandardCharsets.UTF_8));
        assertTrue(blocks.size() >= 2, "README.md has " + blocks.size() + " java blocks; expected the two of 'Using the library'");
        String classPath = classAndModulePath();
        for (int i = 0; i < blocks.size(); i++) {
            String code = blocks.get(i);
            Matcher m = CLASS.matcher(code);
            assertTrue(m.find(), "README java block " + (i + 1) + " declares no public class:\n" + code);
            String name = m.group(1);
            Path src = dir.resolve("block" + i).resolve(name + ".java");
            Path out = dir.resolve("block" + i).resolve("classes");
            Files.createDirectories(out);
            Files.writeString(src, code, StandardCharsets.UTF_8);

            Result javac = run(List.of(tool("javac"), "-Xlint:all,-path", "-Werror", "-cp", classPath, "-d", out.toString(),
                    src.toString()));
            assertEquals(0, javac.code, "README block " + (i + 1) + " (" + name + ") does not compile:\n" + javac.output);

            Result java = run(List.of(tool("java"), "-Xmx1g", "-cp", out + File.pathSeparator + classPath, name));
            assertEquals(0, java.code, "README block " + (i + 1) + " (" + name + ") failed:\n" + java.output);
            Matcher p = PRINTS.matcher(code);
            while (p.find()) {
                assertTrue(java.output.contains(p.group(1).trim()), name + " should print '" + p.group(1).trim()
                        + "':\n" + java.output);
            }
        }
    }

    @Test
    void blocksAreFoundAsFencedInMarkdown() {
        List<String> b = javaBlocks("text\n```java\nclass A {}\n```\n```bash\nls\n```\n```java\nclass B {}\n```\n");
        assertEquals(List.of("class A {}\n", "class B {}\n"), b);
        assertFalse(javaBlocks("```bash\nls\n```").iterator().hasNext());
    }

    static List<String> javaBlocks(String markdown) {
        List<String> blocks = new ArrayList<>();
        Matcher m = BLOCK.matcher(markdown);
        while (m.find()) {
            blocks.add(m.group(1));
        }
        return blocks;
    }

    /** README.md at the root of the reactor, found from this module's directory upwards. */
    private static Path readme() {
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            if (Files.exists(d.resolve("README.md")) && Files.exists(d.resolve("examples"))) {
                return d.resolve("README.md");
            }
        }
        throw new IllegalStateException("no README.md above " + Path.of("").toAbsolutePath());
    }

    /** This JVM's class path and module path (surefire runs the modules), as one class path for javac and java. */
    private static String classAndModulePath() {
        return Stream.of(System.getProperty("java.class.path"), System.getProperty("jdk.module.path"))
                .filter(Objects::nonNull).filter(s -> !s.isEmpty()).collect(Collectors.joining(File.pathSeparator));
    }

    private static String tool(String name) {
        Path p = Path.of(System.getProperty("java.home"), "bin", name);
        if (!Files.isExecutable(p)) {
            throw new IllegalStateException(p + " is missing: the README test needs a JDK, not a JRE");
        }
        return p.toString();
    }

    private record Result(int code, String output) {
    }

    private static Result run(List<String> command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(10, TimeUnit.MINUTES)) { // a guard against a hung child, not a measurement
            p.destroyForcibly();
            throw new AssertionError("hung: " + String.join(" ", command));
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }
}
