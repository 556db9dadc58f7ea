package org.vgg4j.data;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Remembers every bad sample seen, so each is reported through SLF4J exactly once (with path and reason) however
 * many epochs or threads meet it. Thread-safe. Not a statistics object per epoch: the pipeline counts those.
 */
public final class BadImageLog {
    private static final Logger LOG = LoggerFactory.getLogger(BadImageLog.class);
    private final Map<String, String> seen = new ConcurrentHashMap<>();

    /** Records {@code e}; logs a warning the first time its source is seen. Returns true if it was new. */
    public boolean report(BadImageException e) {
        boolean fresh = seen.putIfAbsent(e.source(), e.reason()) == null;
        if (fresh) {
            LOG.warn("skipping bad image {}: {}", e.source(), e.reason());
        }
        return fresh;
    }

    /** Distinct bad sources seen so far. */
    public int size() {
        return seen.size();
    }

    /** Source to reason, sorted by source. */
    public Map<String, String> snapshot() {
        return new TreeMap<>(seen);
    }
}
