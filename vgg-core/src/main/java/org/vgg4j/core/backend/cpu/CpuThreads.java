package org.vgg4j.core.backend.cpu;

import com.sun.jna.Platform;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Shares this machine's cores among the {@code cpu}-backend replicas of one process before the backend loads:
 * {@code cores / replicas} threads each (at least 1), for OpenMP (oneDNN, ND4J: {@code OMP_NUM_THREADS}) and for
 * the backend's Java loops ({@code -Dvgg4j.cpu.threads}).
 *
 * <p>Why: N replicas each with as many threads as cores oversubscribe the machine; one core per replica is the
 * fast configuration for small networks (docs/training.md, "One step": the cpu backend's replicas). Both counts are
 * read once, when OpenMP loads and when the loops' pool starts, so this must run first.
 *
 * <p>What it is not: an override. A count the user set ({@code OMP_NUM_THREADS} in the environment or
 * {@code -Dvgg4j.cpu.threads}) is kept. When the backend has already loaded in this process, nothing can change
 * and a warning says what to set instead.
 */
public final class CpuThreads {
    private static final Logger LOG = LoggerFactory.getLogger(CpuThreads.class);

    private CpuThreads() {
    }

    /**
     * Threads per replica for {@code replicas} replicas: 0 where this leaves the counts alone (one replica, a
     * count the user set, or the backend already loaded), else {@code max(1, cores / replicas)}.
     */
    static int decide(int replicas, String property, String environment, boolean loaded, int cores) {
        if (replicas < 1) {
            throw new IllegalArgumentException("replicas " + replicas + ": expected at least 1");
        }
        if (replicas == 1 || property != null || environment != null || loaded) {
            return 0;
        }
        return Math.max(1, cores / replicas);
    }

    /**
     * Sets the thread counts for {@code replicas} cpu replicas in this process (see the class comment); returns the
     * count per replica it set, or 0 where it left them alone.
     */
    public static synchronized int shareCores(int replicas) {
        String property = System.getProperty(CpuBackend.Options.THREADS);
        String environment = System.getenv("OMP_NUM_THREADS");
        boolean loaded = CpuBackendProvider.loaded();
        int cores = Runtime.getRuntime().availableProcessors();
        int t = decide(replicas, property, environment, loaded, cores);
        if (t == 0) {
            if (loaded && replicas > 1 && property == null && environment == null) {
                LOG.warn("{} cpu replicas share {} cores, but the cpu backend had already loaded with {} threads each;"
                        + " set OMP_NUM_THREADS={} (or -D{}={}) to give each replica its share", replicas, cores,
                        Parallel.THREADS, Math.max(1, cores / replicas), CpuBackend.Options.THREADS,
                        Math.max(1, cores / replicas));
            }
            return 0;
        }
        System.setProperty(CpuBackend.Options.THREADS, Integer.toString(t));
        if (Platform.isLinux()) {
            try {
                LibC.load().setenv("OMP_NUM_THREADS", Integer.toString(t), 0);
            } catch (Throwable e) {
                LOG.warn("could not set OMP_NUM_THREADS={} for {} replicas (oneDNN keeps {} threads each): {}", t,
                        replicas, cores, e.toString());
            }
        }
        LOG.info("{} cpu replicas on {} cores: {} thread(s) each", replicas, cores, t);
        return t;
    }
}
