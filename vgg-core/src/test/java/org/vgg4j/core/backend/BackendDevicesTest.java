package org.vgg4j.core.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * Device selection through {@link Backends#create(String, int)} for a backend without devices: device 0 is the
 * ordinary instance, any other index is refused with the device count in the message.
 */
class BackendDevicesTest {

    @Test
    void backendsWithoutDevicesAcceptOnlyDeviceZero() {
        assertEquals(0, Backends.deviceCount("reference"));
        try (Backend b = Backends.create("reference", 0)) {
            assertEquals("reference", b.name());
            assertEquals("reference", b.describe());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Backends.create("reference", 1));
        assertTrue(e.getMessage().contains("0 selectable devices") && e.getMessage().contains("device index 1"),
                e.getMessage());
        IllegalArgumentException neg = assertThrows(IllegalArgumentException.class, () -> Backends.create("reference", -1));
        assertTrue(neg.getMessage().contains("device -1 does not exist"), neg.getMessage());
    }
}
