package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.module.ModuleDescriptor;
import java.lang.reflect.Modifier;
import java.util.Set;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * What another module (this one) sees of vgg-core: its API packages and the backend SPI, not its backends,
 * benchmarks or internals. The tests run on the module path, so the module system itself is asked.
 */
class ModuleBoundariesTest {

    @Test
    void theseTestsRunAsModules() {
        assertEquals("org.vgg4j.train", getClass().getModule().getName());
        assertEquals("org.vgg4j.core", Tensor.class.getModule().getName());
    }

    @Test
    void coreExportsItsApiAndTheSpiOnly() {
        ModuleDescriptor core = Tensor.class.getModule().getDescriptor();
        assertEquals(Set.of("org.vgg4j.core.backend", "org.vgg4j.core.io", "org.vgg4j.core.layers",
                        "org.vgg4j.core.model", "org.vgg4j.core.optim", "org.vgg4j.core.parallel", "org.vgg4j.core.tensor"),
                core.exports().stream().map(ModuleDescriptor.Exports::source).collect(Collectors.toSet()));
        assertTrue(core.exports().stream().noneMatch(ModuleDescriptor.Exports::isQualified), core.exports().toString());
        assertTrue(core.opens().isEmpty(), core.opens().toString());
    }

    @Test
    void aBackendIsReachedThroughTheSpiNotItsClasses() throws Exception {
        Class<?> provider = Class.forName("org.vgg4j.core.backend.cpu.CpuBackendProvider");
        IllegalAccessException e = assertThrows(IllegalAccessException.class, () -> provider.getConstructor().newInstance());
        assertTrue(e.getMessage().contains("does not export org.vgg4j.core.backend.cpu to module org.vgg4j.train"),
                e.getMessage());
        try (Backend reference = Backends.create("reference")) {
            assertEquals("reference", reference.name());
        }
    }

    @Test
    void internalsAreNotPublic() throws Exception {
        assertEquals(0, Tensor.class.getConstructors().length, "Tensor's constructors");
        assertFalse(Modifier.isPublic(Class.forName("org.vgg4j.core.io.Json").getModifiers()), "Json");
        assertFalse(Modifier.isPublic(Class.forName("org.vgg4j.core.layers.GradientArena")
                .getDeclaredMethod("beside", Tensor.class, Shape.class).getModifiers()), "GradientArena.beside");
    }
}
