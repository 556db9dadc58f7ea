package org.vgg4j.cuda;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * A test class whose tests run on four emulated devices: the emulator is required (in CI a missing one fails, see
 * {@link Parity#assumeEmulator}), the device count is set before the first test and restored after the last.
 */
abstract class OnFourEmulatedDevices {
    private static String savedDevices;

    @BeforeAll
    static void fourDevices() {
        Parity.assumeEmulator();
        savedDevices = Parity.useEmulatedDevices(4);
    }

    @AfterAll
    static void restoreDevices() {
        Parity.restoreEmulatedDevices(savedDevices);
    }
}
