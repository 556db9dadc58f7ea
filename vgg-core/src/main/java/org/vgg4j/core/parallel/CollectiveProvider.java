package org.vgg4j.core.parallel;

import java.util.ServiceLoader;

/**
 * A device-specific {@link AllReduce} for multi-process runs, found through {@link ServiceLoader} so that the
 * trainer (vgg-train) can use NCCL from vgg-cuda without depending on it (dependencies point one way).
 * vgg-cuda registers one for the {@code cuda} backend. Is not: a fallback chain — {@link #forBackend} either finds
 * the provider of the backend named, or says there is none; it never substitutes a slower collective.
 */
public interface CollectiveProvider {

    /** A short name ("nccl") for messages and the command line. */
    String name();

    /** True when this provider's collective is the one for tensors of the backend called {@code backendName}. */
    boolean handles(String backendName);

    /** Why the collective cannot run on this machine (missing native library, ...), or null when it can. */
    String unavailableReason();

    /**
     * A collective averaging over every rank of {@code group}; each process hands in its local replicas' buffers.
     * It may connect lazily, at its first {@link AllReduce#average} (all ranks call that together).
     */
    AllReduce create(ProcessGroup group);

    /** The provider for {@code backendName}, or null when no provider on the class path handles it. */
    static CollectiveProvider forBackend(String backendName) {
        for (CollectiveProvider p : ServiceLoader.load(CollectiveProvider.class)) {
            if (p.handles(backendName)) {
                return p;
            }
        }
        return null;
    }
}
