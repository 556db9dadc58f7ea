package org.vgg4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

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
 * library module: vgg-core, vgg-data, vgg-train, vgg-cuda, each at that version.
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

    private static String version(String pom) {
        Matcher m = VERSION.matcher(pom);
        assertFalse(!m.find(), "no vgg4j-parent/vgg4j-bom version in\n" + pom.substring(0, Math.min(400, pom.length())));
        return m.group(1);
    }
}
