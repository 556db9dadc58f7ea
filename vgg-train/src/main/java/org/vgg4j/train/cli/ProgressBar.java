package org.vgg4j.train.cli;

import java.io.PrintStream;
import java.util.Locale;

import org.vgg4j.data.BadImageLog;
import org.vgg4j.train.EpochMetrics;
import org.vgg4j.train.TrainingListener;

/**
 * The command line's progress display: one line redrawn in place ("\r") at most every 200 ms with the epoch, a
 * bar, the step's and the epoch's mean loss, the learning rate, images per second (smoothed) and the ETA of the
 * run; a summary line per epoch, which also says how many unreadable images were skipped so far and where they are
 * listed. Part of the command line, not of the library (which never prints). The redrawn line is for a terminal:
 * {@code vgg train} uses it only there (or with {@code --progress}, see {@link OutputOptions}).
 */
public final class ProgressBar implements TrainingListener {
    private static final int WIDTH = 24;
    private final PrintStream out;
    private final int maxEpochs;
    private long lastDraw;
    private double rate;        // smoothed images per second
    private double stepSeconds; // smoothed seconds per step
    private long startNanos;
    private boolean dirty;

    public ProgressBar(PrintStream out, int maxEpochs) {
        this.out = out;
        this.maxEpochs = maxEpochs;
    }

    @Override
    public void onStart(Start s) {
        startNanos = System.nanoTime();
        out.printf(Locale.ROOT, "training %s (%,d parameters) on %d replica%s: %d steps per epoch, %d steps%s%n", s.network(),
                s.parameters(), s.replicas(), s.replicas() == 1 ? "" : "s", s.batchesPerEpoch(), s.totalSteps(),
                s.resumedAtStep() > 0 ? ", resumed at step " + s.resumedAtStep() : "");
    }

    @Override
    public void onStep(Step s) {
        double r = s.examples() / Math.max(1e-9, s.seconds());
        rate = rate == 0 ? r : 0.9 * rate + 0.1 * r;
        stepSeconds = stepSeconds == 0 ? s.seconds() : 0.9 * stepSeconds + 0.1 * s.seconds();
        long now = System.nanoTime();
        if (now - lastDraw < 200_000_000L && s.batch() < s.batches()) {
            return;
        }
        lastDraw = now;
        int filled = (int) ((long) s.batch() * WIDTH / Math.max(1, s.batches()));
        double eta = (s.totalSteps() - s.step()) * stepSeconds;
        out.printf(Locale.ROOT, "\repoch %d/%d [%s%s] %d/%d  loss %.4f (epoch %.4f)  lr %.2e  %.0f img/s  ETA %s   ",
                s.epoch() + 1, maxEpochs, "#".repeat(filled), ".".repeat(WIDTH - filled), s.batch(), s.batches(), s.loss(),
                s.epochLoss(), s.lr(), rate, clock(eta));
        out.flush();
        dirty = true;
    }

    @Override
    public void onEpoch(EpochMetrics m) {
        if (dirty) {
            out.println();
            dirty = false;
        }
        String validation = Double.isNaN(m.valTop1Error()) ? "no validation this epoch"
                : String.format(Locale.ROOT, "validation top-1 error %.2f %% (accuracy %.2f %%), top-5 error %.2f %%",
                        100 * m.valTop1Error(), 100 * (1 - m.valTop1Error()), 100 * m.valTop5Error());
        out.printf(Locale.ROOT, "epoch %d: train loss %.4f, %s, %.0f img/s, %s elapsed%s%n", m.epoch(), m.trainLoss(),
                validation, m.imagesPerSecond(), clock((System.nanoTime() - startNanos) / 1e9),
                skippedNote(m.skippedImages()));
    }

    /**
     * "" when no image was skipped, else {@code "; N unreadable images skipped so far, listed in
     * <out>/bad-images.tsv"}: for the epoch line and the run's last line ({@code vgg train} always has an output
     * folder, where {@link org.vgg4j.train.TrainingRun} keeps the list).
     */
    public static String skippedNote(long skipped) {
        return note(skipped, " so far");
    }

    /** The same for the run's last line: "; N unreadable images skipped, listed in ..." (empty when none). */
    public static String skippedAtEnd(long skipped) {
        return note(skipped, "");
    }

    private static String note(long skipped, String when) {
        return skipped == 0 ? "" : String.format(Locale.ROOT, "; %d unreadable image%s skipped%s, listed in %s in the"
                + " output folder", skipped, skipped == 1 ? "" : "s", when, BadImageLog.FILE);
    }

    @Override
    public void onWarning(String message) {
        if (dirty) {
            out.println();
            dirty = false;
        }
        out.println("warning: " + message);
    }

    static String clock(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "?";
        }
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }
}
