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
        return status("VmRSS:");
    }

    /** VmHWM, the peak resident memory since the process started or since {@link #resetPeak}, in KiB. */
    public static long peakKib() throws IOException {
        return status("VmHWM:");
    }

    /** Sets the peak to the present resident memory (writes 5 to /proc/self/clear_refs; Linux 4.0 and later). */
    public static void resetPeak() throws IOException {
        Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    }

    private static long status(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field)) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException("no " + field + " in /proc/self/status");
    }
}
