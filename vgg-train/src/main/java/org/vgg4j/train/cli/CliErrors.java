package org.vgg4j.train.cli;

import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;

/**
 * How the command line words a failure: one line naming the value and what was expected. The stack trace is for
 * {@code --verbose} only (VggCli prints it).
 */
final class CliErrors {
    private CliErrors() {
    }

    /**
     * A failure in words. File system exceptions often carry only a path ({@code NoSuchFileException: x}), so the
     * reason is added; other exceptions without a message are named by their class.
     */
    static String describe(Throwable t) {
        if (t instanceof UncheckedIOException u && u.getCause() != null) {
            return describe(u.getCause());
        }
        if (t instanceof FileSystemException f) {
            String why = f.getReason() != null ? f.getReason()
                    : t instanceof NoSuchFileException ? "no such file or directory"
                    : t instanceof AccessDeniedException ? "permission denied"
                    : t instanceof FileAlreadyExistsException ? "already exists"
                    : t instanceof NotDirectoryException ? "not a directory" : t.getClass().getSimpleName();
            return (f.getFile() != null ? f.getFile() + ": " : "") + why
                    + (f.getOtherFile() != null ? " (" + f.getOtherFile() + ")" : "");
        }
        String m = t.getMessage();
        if (t instanceof java.io.IOException || t instanceof IllegalArgumentException || t instanceof IllegalStateException) {
            return m != null ? m : t.getClass().getSimpleName();
        }
        return t.getClass().getSimpleName() + (m != null ? ": " + m : ""); // unexpected: say what it was
    }

    /** Refuses {@code option}'s file unless it is a regular file (a checkpoint, say) that is there. */
    static void requireFile(String option, Path p, String expected) {
        if (Files.isDirectory(p)) {
            throw new IllegalArgumentException(option + " " + p + ": is a directory; expected " + expected);
        }
        if (!Files.exists(p)) {
            throw new IllegalArgumentException(option + " " + p + ": no such file; expected " + expected);
        }
        if (!Files.isRegularFile(p)) {
            throw new IllegalArgumentException(option + " " + p + ": not a regular file; expected " + expected);
        }
    }
}
