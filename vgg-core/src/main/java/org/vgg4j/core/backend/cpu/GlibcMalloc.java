package org.vgg4j.core.backend.cpu;

import com.sun.jna.Platform;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes glibc's malloc return large freed blocks to the system at once, for the {@code cpu} backend's peak memory.
 *
 * <p>Why: inside every convolution call oneDNN mallocs and frees reorder buffers of a few to tens of MB. glibc
 * serves blocks above its mmap threshold with mmap and unmaps them on free, but it RAISES that threshold each
 * time such a block is freed (up to 32 MB), after which the buffers come from per-thread heaps that keep freed
 * memory resident, which raises the peak resident set of a VGG-16 step. Fixing the threshold at 1 MiB (mallopt
 * M_MMAP_THRESHOLD, which also stops the adjustment) removes that at no measurable speed cost
 * (docs/benchmarks.md, "Memory (W1 peak resident set)"). It is what the MALLOC_MMAP_THRESHOLD_ environment
 * variable does.
 *
 * <p>What it is not: a memory manager. It acts once, process-wide, on Linux only; {@code -Dvgg4j.cpu.mallocTuning=false}
 * or an explicit MALLOC_MMAP_THRESHOLD_ leaves malloc as it is. Failure (musl, no JNA) is logged and ignored.
 */
final class GlibcMalloc {
    private static final Logger LOG = LoggerFactory.getLogger(GlibcMalloc.class);
    private static final int M_MMAP_THRESHOLD = -3; // glibc's malloc.h
    static final int THRESHOLD_BYTES = 1 << 20;
    private static boolean done;

    private GlibcMalloc() {
    }

    static synchronized void tune() {
        if (done) {
            return;
        }
        done = true;
        if (!CpuBackend.Options.mallocTuning()
                || System.getenv("MALLOC_MMAP_THRESHOLD_") != null) {
            return;
        }
        try {
            if (!Platform.isLinux()) {
                return;
            }
            int ok = LibC.load().mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES);
            LOG.debug("mallopt(M_MMAP_THRESHOLD, {}) = {}", THRESHOLD_BYTES, ok);
        } catch (Throwable t) {
            LOG.info("could not set glibc's mmap threshold (peak memory may be higher): {}", t.toString());
        }
    }
}
