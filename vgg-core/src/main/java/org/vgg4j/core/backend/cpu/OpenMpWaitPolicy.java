package org.vgg4j.core.backend.cpu;

import com.sun.jna.Platform;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sets OpenMP's wait policy for oneDNN's and ND4J's threads before their library loads: by default
 * {@code OMP_WAIT_POLICY=passive}, so a thread that finishes its share of a convolution sleeps at once.
 *
 * <p>Why: with no policy set, libgomp (the one OpenMP runtime oneDNN and ND4J share here) lets an idle thread
 * spin for a while after every parallel region. Between two convolutions this backend runs its own Java loops
 * (batch norm, ReLU, pooling) on its own worker threads, and on a machine with as many cores as threads the
 * spinning OpenMP thread takes a core from them. Passive waiting costs a wake-up per parallel region instead;
 * docs/benchmarks.md has the measurement behind the default.
 *
 * <p>What it is not: a setting a user cannot override. libgomp reads the variable once, when it loads: an
 * {@code OMP_WAIT_POLICY} already in the environment is kept as it is, {@code -Dvgg4j.cpu.ompWaitPolicy=active}
 * asks for spinning, and {@code -Dvgg4j.cpu.ompWaitPolicy=unset} leaves OpenMP's default. It acts once,
 * process-wide, on Linux only, before ND4J's natives load ({@link CpuBackendProvider#probe()}); if another part
 * of the program loaded OpenMP earlier, the setting comes too late and has no effect. Failure (no JNA) is logged.
 */
final class OpenMpWaitPolicy {
    static final String PROPERTY = "vgg4j.cpu.ompWaitPolicy";
    static final String VARIABLE = "OMP_WAIT_POLICY";
    private static final Logger LOG = LoggerFactory.getLogger(OpenMpWaitPolicy.class);
    private static boolean done;

    private OpenMpWaitPolicy() {
    }

    /**
     * The value to put in {@code OMP_WAIT_POLICY}, or null to leave the environment as it is.
     *
     * @param property    -Dvgg4j.cpu.ompWaitPolicy (null: the default, passive)
     * @param environment the variable's current value (null: not set), which always wins
     * @throws IllegalArgumentException for a property other than passive, active or unset, naming it
     */
    static String valueToSet(String property, String environment) {
        String p = property == null ? "passive" : property.trim().toLowerCase(Locale.ROOT);
        if (!p.equals("passive") && !p.equals("active") && !p.equals("unset")) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + property
                    + " is invalid; expected passive, active or unset");
        }
        if (environment != null || p.equals("unset")) {
            return null;
        }
        return p;
    }

    /** Applies {@link #valueToSet} to this process's environment, once. */
    static synchronized void apply() {
        if (done) {
            return;
        }
        done = true;
        String value = valueToSet(System.getProperty(PROPERTY), System.getenv(VARIABLE));
        if (value == null || !Platform.isLinux()) {
            return;
        }
        try {
            int rc = LibC.load().setenv(VARIABLE, value, 0);
            LOG.debug("setenv({}, {}) = {}", VARIABLE, value, rc);
        } catch (Throwable t) {
            LOG.info("could not set {} (OpenMP threads keep their default wait policy): {}", VARIABLE, t.toString());
        }
    }

    /** The variable as the C library sees it now (null: unset, or not Linux); for tests. */
    static String current() {
        if (!Platform.isLinux()) {
            return null;
        }
        return LibC.load().getenv(VARIABLE);
    }
}
