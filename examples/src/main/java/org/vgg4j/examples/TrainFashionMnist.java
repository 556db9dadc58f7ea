package org.vgg4j.examples;

import java.io.PrintWriter;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

import org.vgg4j.core.backend.Backends;
import org.vgg4j.train.cli.VggCli;

/**
 * README's main job: trains a small VGG on real images on the CPU in about a minute, with a progress bar (loss,
 * img/s, ETA), a falling validation error per epoch, metrics (CSV/JSON), a PNG of the training curves and
 * checkpoints in {@code runs/fashion-mnist-*}.
 *
 * <p>It is {@code vgg train} with demo defaults: the Fashion-MNIST sample bundled in vgg-data (5,000 training /
 * 1,000 test images; {@code --full} takes the 60k/10k set from Debian's dataset-fashion-mnist), configuration A
 * with BatchNorm at a quarter of the paper's width and FC 256-256-10 without dropout on 32x32 inputs (28x28 images
 * in a 2-pixel border, shifted by up to 1 pixel and mirrored at random), the {@code fashion} recipe (Glorot,
 * momentum SGD, weight decay 5e-4, cosine learning rate) with batch 64 for 10 epochs. Its accuracy on the
 * sample's 1,000 held-out test images: docs/benchmarks.md "README's main job". Any {@code vgg train} option
 * overrides a default. These are also what {@code vgg train} alone (neither {@code --data} nor {@code --recipe})
 * trains; the demo names them all so that {@code --full}, which names the data, keeps them.
 *
 * <p>Run: {@code mvn -q -DskipTests package exec:java}; options after {@code -Dexec.args=}, e.g.
 * {@code -Dexec.args="--epochs 8 --config D"}; {@code -Dexec.args=--help} lists them.
 */
public final class TrainFashionMnist {
    private TrainFashionMnist() {
    }

    /** The {@code vgg train} arguments this demo runs for {@code args}. */
    static String[] arguments(String[] args) {
        String stamp = LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
        // Chosen so the job stays about a minute on 2 cores and still convinces: docs/benchmarks.md "README's main job".
        List<String> a = new ArrayList<>(List.of("train", "--recipe", "fashion", "--data", "fashion-mnist-sample",
                "--epochs", "10", "--batch", "64", "--hidden", "256", "--dropout", "0", "--pad", "1",
                "--out", "runs/fashion-mnist-" + stamp));
        List<String> given = List.of(args);
        if (!Backends.names().contains("cpu") && !given.contains("--backend") && !given.contains("--limit")) {
            // Only the plain-Java reference backend is here (~10x slower than 'cpu'): keep the demo to a few minutes.
            System.out.println("note: the 'cpu' backend is not on the class path; on the reference backend the demo uses "
                    + "1,000 training images and width 0.125 (override with --limit, --width)");
            a.addAll(List.of("--limit", "1000", "--width", "0.125"));
        }
        for (String s : args) {
            if (s.equals("--full")) {
                a.addAll(List.of("--data", "fashion-mnist", "--threads", "2"));
            } else {
                a.add(s);
            }
        }
        return a.toArray(new String[0]);
    }

    public static void main(String[] args) {
        int code = VggCli.run(arguments(args), new PrintWriter(System.out, true), new PrintWriter(System.err, true));
        if (code != 0) {
            System.exit(code);
        }
    }
}
