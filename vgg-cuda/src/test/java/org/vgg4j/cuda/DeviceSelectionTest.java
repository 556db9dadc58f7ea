package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;

/** Per-rank device selection through the ServiceLoader path: {@code Backends.create("cuda-emulated", r)}. */
@Tag(Parity.EMULATOR_TAG)
class DeviceSelectionTest {

    @Test
    void eachIndexOpensItsDeviceAndAnIndexPastTheCountIsRefused() {
        Parity.assumeEmulator();
        assertEquals(EmulatedDriver.deviceCount(), Backends.deviceCount("cuda-emulated"));
        try (Backend b0 = Backends.create("cuda-emulated", 0); Backend b1 = Backends.create("cuda-emulated", 1)) {
            assertTrue(b0.describe().contains("emulated CUDA device 0 of "), b0.describe());
            assertTrue(b1.describe().contains("emulated CUDA device 1 of "), b1.describe());
        }
        int count = EmulatedDriver.deviceCount();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Backends.create("cuda-emulated", count));
        assertTrue(e.getMessage().contains("has " + count + " device(s)") && e.getMessage().contains("device " + count),
                e.getMessage());
    }
}
