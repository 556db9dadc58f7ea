package org.vgg4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

/**
 * docs/vgg4j-bom/pom.xml (no parent, so its version is written out) carries the reactor's version and manages every
 * library module: vgg-core, vgg-data, vgg-train, vgg-cuda, each at that version; README's consumer pom is the main
 * part of examples/consumer/pom.xml, the project scripts/consumer-check.sh builds against the installed artifacts.
 */
class BomTest {
    private static final Pattern VERSION = Pattern.compile("<artifactId>vgg4j-(?:parent|bom)</artifactId>\\s*"
            + "(?:<!--.*?-->\\s*)?<version>([^<]+)</version>", Pattern.DOTALL);
    private static final Pattern MANAGED = Pattern.compile(
            "<groupId>org\\.vgg4j</groupId>\\s*<artifactId>([^<]+)</artifactId>\\s*<version>([^<]+)</version>");

    @Test
    void theBomHasTheReactorsVersionAndManagesEveryLibraryModule() throws Exception {
        Path root = Path.of("").toAbsolutePath();
        while (!Files.exists(root.resolve("docs/vgg4j-bom/pom.xml"))) {
            root = root.getParent();
            assertFalse(root == null, "no docs/vgg4j-bom/pom.xml above the working directory");
        }
        String parent = Files.readString(root.resolve("pom.xml"), StandardCharsets.UTF_8);
        String bom = Files.readString(root.resolve("docs/vgg4j-bom/pom.xml"), StandardCharsets.UTF_8);
        assertEquals(version(parent), version(bom), "the BOM's version against the root pom's");
        assertFalse(bom.contains("<parent>"), "the BOM must have no parent (its dependencyManagement would be imported)");
        List<String> managed = new ArrayList<>();
        Matcher m = MANAGED.matcher(bom);
        while (m.find()) {
            managed.add(m.group(1));
            assertEquals("${project.version}", m.group(2), m.group(1) + "'s version in the BOM");
        }
        assertEquals(List.of("vgg-core", "vgg-data", "vgg-train", "vgg-cuda"), managed, "artifacts the BOM manages");
    }

    /** groupId, artifactId and, when written, version of every dependency and plugin (and the BOM's import). */
    private static final Pattern COORDINATES = Pattern.compile("<groupId>([^<]+)</groupId>\\s*<artifactId>([^<]+)</artifactId>"
            + "\\s*(?:<!--.*?-->\\s*)?(?:<version>([^<]+)</version>)?", Pattern.DOTALL);

    @Test
    void readmesConsumerPomIsTheConsumerProjectsMainPart() throws Exception {
        Path root = Path.of("").toAbsolutePath();
        while (!Files.exists(root.resolve("examples/consumer/pom.xml"))) {
            root = root.getParent();
            assertFalse(root == null, "no examples/consumer/pom.xml above the working directory");
        }
        String readme = Files.readString(root.resolve("README.md"), StandardCharsets.UTF_8);
        Matcher xml = Pattern.compile("```xml\\n(.*?)```", Pattern.DOTALL).matcher(readme);
        assertTrue(xml.find(), "README.md has no ```xml block (the consumer pom of 'Add to your project')");
        List<String> inReadme = coordinates(xml.group(1));
        List<String> inProject = coordinates(Files.readString(root.resolve("examples/consumer/pom.xml"), StandardCharsets.UTF_8));
        assertTrue(inReadme.contains("org.vgg4j:vgg4j-bom:" + version(Files.readString(root.resolve("pom.xml"),
                StandardCharsets.UTF_8))), "README's pom imports the BOM at the reactor's version: " + inReadme);
        for (String c : inReadme) {
            assertTrue(inProject.contains(c), c + " of README's pom is not in examples/consumer/pom.xml: " + inProject);
        }
    }

    private static List<String> coordinates(String pom) {
        List<String> all = new ArrayList<>();
        Matcher m = COORDINATES.matcher(pom);
        while (m.find()) {
            all.add(m.group(1) + ":" + m.group(2) + (m.group(3) != null ? ":" + m.group(3) : ""));
        }
        return all;
    }

    private static String version(String pom) {
        Matcher m = VERSION.matcher(pom);
        assertFalse(!m.find(), "no vgg4j-parent/vgg4j-bom version in\n" + pom.substring(0, Math.min(400, pom.length())));
        return m.group(1);
    }
}
