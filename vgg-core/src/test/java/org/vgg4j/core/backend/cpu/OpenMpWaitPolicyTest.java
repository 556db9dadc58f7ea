package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backends;

class OpenMpWaitPolicyTest {

    @Test
    void passiveByDefaultUnlessTheEnvironmentOrThePropertySaysOtherwise() {
        assertEquals("passive", OpenMpWaitPolicy.valueToSet(null, null));
        assertEquals("active", OpenMpWaitPolicy.valueToSet(" Active ", null));
        assertNull(OpenMpWaitPolicy.valueToSet("unset", null));
        assertNull(OpenMpWaitPolicy.valueToSet(null, "ACTIVE"), "the user's environment wins");
        assertNull(OpenMpWaitPolicy.valueToSet("passive", "active"), "the user's environment wins");
    }

    @Test
    void aBadValueIsRefusedNamingIt() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OpenMpWaitPolicy.valueToSet("sleepy", null));
        assertTrue(e.getMessage().contains("vgg4j.cpu.ompWaitPolicy=sleepy"), e.getMessage());
        assertTrue(e.getMessage().contains("passive, active or unset"), e.getMessage());
    }

    @Test
    void theCpuBackendSetsTheVariableBeforeOpenMpLoads() {
        Backends.create("cpu").close();
        String expected = System.getenv(OpenMpWaitPolicy.VARIABLE) != null ? System.getenv(OpenMpWaitPolicy.VARIABLE)
                : OpenMpWaitPolicy.valueToSet(System.getProperty(OpenMpWaitPolicy.PROPERTY), null);
        assertEquals(expected, OpenMpWaitPolicy.current());
    }
}
