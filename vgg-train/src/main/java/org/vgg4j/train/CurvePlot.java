package org.vgg4j.train;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

import javax.imageio.ImageIO;

/**
 * Training curves drawn with the JDK's Java2D into {@code curves.png} after every epoch (headless, no plotting
 * library): three panels against epochs — training loss (per-step losses of this session as a faint line, epoch
 * means as points), validation top-1 and top-5 error in %, and the learning rate. Reads its epochs from a
 * {@link MetricsLog} so a resumed run plots its whole history. Not an interactive chart.
 */
public final class CurvePlot implements TrainingListener {
    public static final String FILE = "curves.png";
    private static final int W = 1200;
    private static final int H = 400;

    private final Path dir;
    private final MetricsLog metrics;
    private final List<double[]> steps = new ArrayList<>(); // (epoch position as a fraction, loss)
    private int batchesPerEpoch = 1;

    public CurvePlot(Path dir, MetricsLog metrics) {
        this.dir = dir;
        this.metrics = metrics;
    }

    @Override
    public void onStart(Start start) {
        batchesPerEpoch = Math.max(1, start.batchesPerEpoch());
    }

    @Override
    public void onStep(Step s) {
        steps.add(new double[] {s.epoch() + s.batch() / (double) batchesPerEpoch, s.loss()});
    }

    @Override
    public void onEpoch(EpochMetrics m) {
        try {
            write(dir.resolve(FILE));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot draw " + dir.resolve(FILE), e);
        }
    }

    /** Draws the current history into {@code target} (atomically). */
    public void write(Path target) throws IOException {
        // runs after MetricsLog's onEpoch when registered after it
        List<EpochMetrics> rows = metrics.rows();
        BufferedImage img = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, W, H);
        int pw = W / 3;
        double maxEpoch = 1;
        for (EpochMetrics r : rows) {
            maxEpoch = Math.max(maxEpoch, r.epoch());
        }
        for (double[] s : steps) {
            maxEpoch = Math.max(maxEpoch, s[0]);
        }
        Panel loss = new Panel(g, 0, pw, "training loss", maxEpoch, false);
        loss.fit(steps.stream().mapToDouble(s -> s[1]).toArray());
        loss.fit(values(rows, EpochMetrics::trainLoss));
        loss.axes();
        loss.line(steps.stream().mapToDouble(s -> s[0]).toArray(), steps.stream().mapToDouble(s -> s[1]).toArray(),
                new Color(150, 170, 230), 1f, false);
        loss.line(epochs(rows), values(rows, EpochMetrics::trainLoss), new Color(20, 60, 200), 2f, true);

        Panel err = new Panel(g, pw, pw, "validation error %  (top-1 red, top-5 orange)", maxEpoch, false);
        double[] top1 = scaled(values(rows, EpochMetrics::valTop1Error));
        double[] top5 = scaled(values(rows, EpochMetrics::valTop5Error));
        err.fit(top1);
        err.fit(top5);
        err.axes();
        err.line(epochs(rows), top1, new Color(200, 30, 30), 2f, true);
        err.line(epochs(rows), top5, new Color(230, 140, 20), 2f, true);

        Panel lr = new Panel(g, 2 * pw, pw, "learning rate (end of epoch)", maxEpoch, true);
        lr.fit(values(rows, EpochMetrics::lr));
        lr.axes();
        lr.line(epochs(rows), values(rows, EpochMetrics::lr), new Color(30, 140, 60), 2f, true);
        g.dispose();
        Files.createDirectories(target.toAbsolutePath().getParent());
        Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp");
        ImageIO.write(img, "png", tmp.toFile());
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static double[] epochs(List<EpochMetrics> rows) {
        return rows.stream().mapToDouble(EpochMetrics::epoch).toArray();
    }

    private static double[] values(List<EpochMetrics> rows, ToDoubleFunction<EpochMetrics> f) {
        return rows.stream().mapToDouble(f).toArray();
    }

    private static double[] scaled(double[] v) {
        double[] o = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            o[i] = 100 * v[i];
        }
        return o;
    }

    /** One chart: x from 0 to maxEpoch, y fitted to the data (log scale for the learning rate). */
    private static final class Panel {
        private final Graphics2D g;
        private final int x0;
        private final int x1;
        private final int y0 = 40;
        private final int y1 = H - 45;
        private final double maxX;
        private final boolean log;
        private double lo = Double.POSITIVE_INFINITY;
        private double hi = Double.NEGATIVE_INFINITY;

        Panel(Graphics2D g, int left, int width, String title, double maxX, boolean log) {
            this.g = g;
            this.x0 = left + 65;
            this.x1 = left + width - 15;
            this.maxX = maxX;
            this.log = log;
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
            g.drawString(title, left + 65, 22);
        }

        void fit(double[] v) {
            for (double d : v) {
                if (Double.isFinite(d) && (!log || d > 0)) {
                    double t = log ? Math.log10(d) : d;
                    lo = Math.min(lo, t);
                    hi = Math.max(hi, t);
                }
            }
        }

        void axes() {
            if (!(lo <= hi)) {
                lo = 0;
                hi = 1;
            }
            if (hi - lo < 1e-12) {
                lo -= 0.5;
                hi += 0.5;
            }
            if (!log) {
                lo = Math.min(lo, Math.max(0, lo - 0.05 * (hi - lo)));
            }
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
            g.setStroke(new BasicStroke(1f));
            for (int i = 0; i <= 5; i++) {
                double v = lo + (hi - lo) * i / 5;
                int y = py(v);
                g.setColor(new Color(225, 225, 225));
                g.drawLine(x0, y, x1, y);
                g.setColor(Color.DARK_GRAY);
                String label = log ? String.format(Locale.ROOT, "%.0e", Math.pow(10, v))
                        : String.format(Locale.ROOT, Math.abs(hi - lo) < 1 ? "%.3f" : "%.2f", v);
                g.drawString(label, x0 - 60, y + 4);
            }
            // ticks at whole epochs (every k-th so there are at most 12), or at tenths for runs under 2 epochs
            double step = maxX < 2 ? 0.1 * Math.ceil(maxX) : Math.ceil(maxX / 12);
            for (int i = 0; i * step <= maxX + 1e-9; i++) {
                double e = i * step;
                int x = px(e);
                g.setColor(Color.DARK_GRAY);
                g.drawLine(x, y1, x, y1 + 4);
                g.drawString(String.format(Locale.ROOT, step < 1 ? "%.1f" : "%.0f", e), x - 8, y1 + 17);
            }
            g.drawString("epoch", (x0 + x1) / 2 - 15, y1 + 33);
            g.setColor(Color.BLACK);
            g.drawRect(x0, y0, x1 - x0, y1 - y0);
        }

        void line(double[] xs, double[] ys, Color c, float width, boolean points) {
            g.setColor(c);
            g.setStroke(new BasicStroke(width));
            int px = -1;
            int py = -1;
            for (int i = 0; i < xs.length; i++) {
                if (!Double.isFinite(ys[i]) || (log && ys[i] <= 0)) {
                    continue;
                }
                int x = px(xs[i]);
                int y = py(log ? Math.log10(ys[i]) : ys[i]);
                if (px >= 0) {
                    g.drawLine(px, py, x, y);
                }
                if (points) {
                    g.fillOval(x - 3, y - 3, 7, 7);
                }
                px = x;
                py = y;
            }
        }

        private int px(double x) {
            return x0 + (int) Math.round((x1 - x0) * x / maxX);
        }

        private int py(double v) {
            return y1 - (int) Math.round((y1 - y0) * (v - lo) / (hi - lo));
        }
    }
}
