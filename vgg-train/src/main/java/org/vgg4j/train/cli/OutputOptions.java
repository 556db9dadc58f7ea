package org.vgg4j.train.cli;

import picocli.CommandLine.Option;

/**
 * How {@code vgg train} shows progress. The bar is redrawn in place with carriage returns, which only a terminal
 * shows as one line: in a file, a pipe or a captured stream every frame would pile up. So the bar is drawn when the
 * process's stdout is a terminal ({@link System#console()} is not null) or when {@code --progress} asks for it;
 * otherwise the output is the plain lines (start, one per epoch, the end).
 */
public final class OutputOptions {
    @Option(names = "--progress", description = "draw the progress bar even when stdout is not a terminal "
            + "(default: only on a terminal; --no-progress never)")
    boolean progress;

    /** Whether the bar is drawn, given the user's {@code --no-progress}. */
    boolean drawBar(boolean noProgress) {
        if (noProgress && progress) {
            throw new IllegalArgumentException("--progress and --no-progress: expected at most one of the two");
        }
        return !noProgress && (progress || System.console() != null);
    }
}
