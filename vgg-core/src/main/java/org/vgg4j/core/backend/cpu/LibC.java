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

    /** The C library, loaded by JNA (throws where JNA or the library is missing). */
    static LibC load() {
        return Native.loadLibrary("c", LibC.class);
    }
}
