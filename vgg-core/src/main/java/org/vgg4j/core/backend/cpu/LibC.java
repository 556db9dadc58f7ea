package org.vgg4j.core.backend.cpu;

import com.sun.jna.Library;
import com.sun.jna.Native;

/**
 * The C library functions the {@code cpu} backend calls through JNA, process-wide settings made before its natives
 * load: malloc's mmap threshold ({@link GlibcMalloc}) and OpenMP's environment ({@link OpenMpWaitPolicy},
 * {@link CpuThreads}). Linux only; callers check {@code Platform.isLinux()} and handle a failure to load.
 */
interface LibC extends Library {
    int mallopt(int param, int value);

    int setenv(String name, String value, int overwrite);

    String getenv(String name);

    int madvise(com.sun.jna.Pointer address, long length, int advice);

    /** madvise's advice that drops the pages of a range; private anonymous memory then reads as zero. */
    int MADV_DONTNEED = 4;

    /**
     * Hands the pages of [address, address + length) back to the system (both page-aligned); true on success, false
     * where it could not (not Linux, no JNA, madvise refused).
     */
    static boolean madviseDontNeed(long address, long length) {
        if (!com.sun.jna.Platform.isLinux()) {
            return false;
        }
        try {
            return Holder.LIBC.madvise(new com.sun.jna.Pointer(address), length, MADV_DONTNEED) == 0;
        } catch (Throwable t) {
            return false;
        }
    }

    /** The C library, loaded once on first use. */
    final class Holder {
        static final LibC LIBC = load();

        private Holder() {
        }
    }

    /** The C library, loaded by JNA (throws where JNA or the library is missing). */
    static LibC load() {
        return Native.loadLibrary("c", LibC.class);
    }
}
