package org.vgg4j.core.backend;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/** Finds backends through {@link ServiceLoader}. Asking for one that is absent or cannot run fails loudly. */
public final class Backends {
    private Backends() {
    }

    /** Names of every backend on the class path, available here or not. */
    public static List<String> names() {
        List<String> names = new ArrayList<>();
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            names.add(p.name());
        }
        return names;
    }

    /** Creates the backend called {@code name}; no silent fallback to another one. */
    public static Backend create(String name) {
        return provider(name).create();
    }

    /**
     * Creates the backend called {@code name} on device {@code device} (replica r of a data-parallel run goes on
     * device r). For a backend without devices ({@link #deviceCount} 0) only device 0 exists.
     */
    public static Backend create(String name, int device) {
        BackendProvider p = provider(name);
        int count = p.deviceCount();
        if (device < 0 || (count > 0 && device >= count)) {
            throw new IllegalArgumentException("backend '" + name + "' has " + count + " device(s) (0.."
                    + (count - 1) + "); device " + device + " does not exist");
        }
        return p.create(device);
    }

    /**
     * A new {@code cpu} backend (ND4J + OpenBLAS, oneDNN where present); fails with the reason when its natives do
     * not load here. The caller owns it: close it after every network built on it.
     */
    public static Backend cpu() {
        return create("cpu");
    }

    /**
     * As {@link #cpu()}, with the operand precision of its float32 convolutions: {@link CpuPrecision#BF16} fails
     * naming the missing instruction set where the CPU lacks AVX512-BF16; {@link CpuPrecision#AUTO} then runs FP32
     * after one warning line. This argument overrides {@code -Dvgg4j.cpu.precision}; the other {@code vgg4j.cpu.*}
     * properties still apply.
     */
    public static Backend cpu(CpuPrecision precision) {
        provider("cpu"); // present and able to run here, else the error names why
        return new org.vgg4j.core.backend.cpu.CpuBackendProvider().create(precision);
    }

    /**
     * Call before the first {@code cpu} backend of a process that will run {@code replicas} of them side by side
     * (data-parallel replicas): gives each {@code cores / replicas} threads (at least 1) for OpenMP and for the
     * backend's Java loops, unless the user set {@code OMP_NUM_THREADS} or {@code -Dvgg4j.cpu.threads}. Both are read
     * once when the backend loads; called later it changes nothing and logs what to set instead. Returns the
     * threads per replica it set, 0 where it left the counts alone. {@code Replicas} calls it for {@code --devices N}.
     */
    public static int shareCpuCores(int replicas) {
        return org.vgg4j.core.backend.cpu.CpuThreads.shareCores(replicas);
    }

    /**
     * A new {@code cuda} backend on GPU {@code device} (0-based); needs the org.vgg4j:vgg-cuda dependency and a CUDA
     * driver, else fails saying which is missing. The caller owns it: close it after every network built on it.
     */
    public static Backend cuda(int device) {
        return create("cuda", device);
    }

    /**
     * A new {@code reference} backend: plain Java, always available, slow; the definition the other backends are
     * tested against. The caller owns it: close it after every network built on it.
     */
    public static Backend reference() {
        return create("reference");
    }

    /** Devices backend {@code name} can open; 0 for a backend not bound to devices (the CPU ones). */
    public static int deviceCount(String name) {
        return provider(name).deviceCount();
    }

    /** The provider called {@code name}, checked to be able to run here. */
    private static BackendProvider provider(String name) {
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            if (p.name().equals(name)) {
                String why = p.unavailableReason();
                if (why != null) {
                    throw new IllegalStateException("backend '" + name + "' cannot run here: " + why);
                }
                return p;
            }
        }
        throw new IllegalArgumentException("no backend named '" + name + "'; on the class path: " + names()
                + (name.startsWith("cuda") ? " (add the org.vgg4j:vgg-cuda dependency)" : ""));
    }
}
