package org.vgg4j.core.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's resident memory, for tests that check what a buffer costs (Linux: /proc/self/status). */
public final class ProcessMemory {
    private ProcessMemory() {
    }

    /** VmRSS in KiB; an error where /proc/self/status has none (the tests run on Linux, CI included). */
    public static long rssKib() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }
}
