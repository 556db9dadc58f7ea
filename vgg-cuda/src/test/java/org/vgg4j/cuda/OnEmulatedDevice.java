package org.vgg4j.cuda;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;

/**
 * A test class whose tests each open one emulated device {@link #d} and close it afterwards: the emulator is required
 * (in CI a missing one fails, see {@link Parity#assumeEmulator}).
 */
abstract class OnEmulatedDevice {
    private final int device;
    protected EmulatedDriver d;

    /** @param device the emulated device each test opens */
    OnEmulatedDevice(int device) {
        this.device = device;
    }

    @BeforeAll
    static void emulator() {
        Parity.assumeEmulator();
    }

    @BeforeEach
    void open() {
        d = EmulatedDriver.open(device);
    }

    @AfterEach
    void close() {
        d.close();
    }

    /** A device copy of host's floats. */
    protected long upload(float[] host) {
        long p = d.malloc(4L * host.length);
        d.copyIn(host, 0, p, host.length);
        return p;
    }

    /** n floats from the device. */
    protected float[] download(long p, int n) {
        return Parity.download(d, p, n);
    }
}
