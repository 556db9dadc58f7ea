package org.vgg4j.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * Per-epoch metrics as {@code metrics.csv} and {@code metrics.json} in a run directory, rewritten atomically after
 * every epoch (temporary file + rename) so a killed run never leaves half a row. Rows already in metrics.csv are
 * read back on construction, so a resumed run extends its history (an epoch written again replaces its row).
 * Errors are fractions in [0, 1]; NaN (no validation) is written as an empty CSV field and JSON null. The last
 * column, {@code skipped_images}, came after the others (rows of an older metrics.csv, without it, read back as 0),
 * so a reader that takes the columns by position still finds the first eight where they were.
 */
public final class MetricsLog implements TrainingListener {
    public static final String CSV = "metrics.csv";
    public static final String JSON = "metrics.json";
    private static final String HEADER_V1 = "epoch,step,train_loss,val_top1_error,val_top5_error,lr,seconds,images_per_second";
    private static final String HEADER = HEADER_V1 + ",skipped_images";

    private final Path dir;
    private final List<EpochMetrics> rows = new ArrayList<>();

    public MetricsLog(Path dir) throws IOException {
        this.dir = dir;
        Path csv = dir.resolve(CSV);
        if (Files.exists(csv)) {
            List<String> lines = Files.readAllLines(csv, StandardCharsets.UTF_8);
            for (String line : lines.subList(Math.min(1, lines.size()), lines.size())) {
                if (!line.isBlank()) {
                    rows.add(parse(line));
                }
            }
        }
    }

    /** Every epoch recorded so far, in order. */
    public List<EpochMetrics> rows() {
        return Collections.unmodifiableList(rows);
    }

    @Override
    public void onEpoch(EpochMetrics m) {
        rows.removeIf(r -> r.epoch() >= m.epoch());
        rows.add(m);
        try {
            write();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write metrics to " + dir, e);
        }
    }

    private void write() throws IOException {
        StringBuilder csv = new StringBuilder(HEADER).append('\n');
        StringBuilder json = new StringBuilder("[\n");
        for (int i = 0; i < rows.size(); i++) {
            EpochMetrics r = rows.get(i);
            csv.append(String.format(Locale.ROOT, "%d,%d,%s,%s,%s,%s,%.3f,%.1f,%d%n", r.epoch(), r.step(), num(r.trainLoss()),
                    num(r.valTop1Error()), num(r.valTop5Error()), num(r.lr()), r.seconds(), r.imagesPerSecond(),
                    r.skippedImages()));
            json.append(String.format(Locale.ROOT,
                    "  {\"epoch\": %d, \"step\": %d, \"train_loss\": %s, \"val_top1_error\": %s, \"val_top5_error\": %s, "
                            + "\"lr\": %s, \"seconds\": %.3f, \"images_per_second\": %.1f, \"skipped_images\": %d}%s%n",
                    r.epoch(), r.step(), jnum(r.trainLoss()), jnum(r.valTop1Error()), jnum(r.valTop5Error()), jnum(r.lr()),
                    r.seconds(), r.imagesPerSecond(), r.skippedImages(), i + 1 < rows.size() ? "," : ""));
        }
        json.append("]\n");
        Files.createDirectories(dir);
        atomicWrite(dir.resolve(CSV), csv.toString());
        atomicWrite(dir.resolve(JSON), json.toString());
    }

    static void atomicWrite(Path target, String text) throws IOException {
        Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp");
        Files.writeString(tmp, text, StandardCharsets.UTF_8);
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static String num(double v) {
        return Double.isNaN(v) ? "" : Double.toString(v);
    }

    private static String jnum(double v) {
        return Double.isFinite(v) ? Double.toString(v) : "null";
    }

    private static EpochMetrics parse(String line) {
        String[] f = line.split(",", -1);
        if (f.length != 8 && f.length != 9) {
            throw new IllegalArgumentException("metrics row '" + line + "' has " + f.length + " fields; expected 9 (" + HEADER
                    + ") or 8 (" + HEADER_V1 + ")");
        }
        return new EpochMetrics(Integer.parseInt(f[0]), Long.parseLong(f[1]), d(f[2]), d(f[3]), d(f[4]), d(f[5]),
                Double.parseDouble(f[6]), Double.parseDouble(f[7]), f.length == 9 ? Long.parseLong(f[8]) : 0);
    }

    private static double d(String s) {
        return s.isEmpty() ? Double.NaN : Double.parseDouble(s);
    }
}
