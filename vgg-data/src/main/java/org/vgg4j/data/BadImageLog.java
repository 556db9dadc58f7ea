package org.vgg4j.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Remembers every bad sample seen, so each is reported through SLF4J exactly once (with path and reason) however
 * many epochs or threads meet it. Thread-safe. Not a statistics object per epoch: the pipeline counts those.
 *
 * <p>With a file ({@link #BadImageLog(Path)}, a run's {@value #FILE}) the list is also kept where a user can read
 * it: one line {@code <source> TAB <reason>} per bad sample, appended when it is first seen, and read back on
 * construction so that a resumed run continues the same list (and counts the samples it already holds).
 */
public final class BadImageLog {
    /** The file name of the list in a run's output folder. */
    public static final String FILE = "bad-images.tsv";
    private static final Logger LOG = LoggerFactory.getLogger(BadImageLog.class);
    private final Map<String, String> seen = new ConcurrentHashMap<>();
    private final Path file; // null: the log only

    /** A list kept in memory (and the log) only. */
    public BadImageLog() {
        this.file = null;
    }

    /**
     * A list also written to {@code file} (its folder is created when the first entry comes); the entries already
     * in it are read back.
     *
     * @throws IOException when the file exists but cannot be read, or a line is not {@code <source> TAB <reason>}
     */
    public BadImageLog(Path file) throws IOException {
        this.file = file;
        if (Files.exists(file)) {
            int lineNo = 0;
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                lineNo++;
                if (line.isBlank()) {
                    continue;
                }
                int tab = line.indexOf('\t');
                if (tab < 1) {
                    throw new IOException(file + ":" + lineNo + ": '" + line + "' is not '<source> TAB <reason>'");
                }
                seen.put(line.substring(0, tab), line.substring(tab + 1));
            }
        }
    }

    /**
     * Records {@code e}; logs a warning (and appends to the file) the first time its source is seen. Returns true
     * if it was new.
     *
     * @throws UncheckedIOException when the file cannot be written (naming it)
     */
    public boolean report(BadImageException e) {
        boolean fresh = seen.putIfAbsent(e.source(), e.reason()) == null;
        if (fresh) {
            LOG.warn("skipping bad image {}: {}", e.source(), e.reason());
            if (file != null) {
                append(oneLine(e.source()) + "\t" + oneLine(e.reason()) + "\n");
            }
        }
        return fresh;
    }

    private synchronized void append(String line) {
        try {
            Path dir = file.toAbsolutePath().getParent();
            if (dir != null) {
                Files.createDirectories(dir);
            }
            Files.writeString(file, line, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException x) {
            throw new UncheckedIOException("cannot add to the bad-image list " + file + ": " + x.getMessage(), x);
        }
    }

    /** Tabs and line breaks would break the one-line-per-sample format: they become spaces. */
    private static String oneLine(String s) {
        return s.replace('\t', ' ').replace('\n', ' ').replace('\r', ' ');
    }

    /** Distinct bad sources seen so far (with a file: those it held too). */
    public int size() {
        return seen.size();
    }

    /** Where the list is written; null when it is kept in memory and the log only. */
    public Path file() {
        return file;
    }

    /** Source to reason, sorted by source. */
    public Map<String, String> snapshot() {
        return new TreeMap<>(seen);
    }
}
