package org.vgg4j.examples;

import java.io.IOException;
import java.io.PrintStream;
import java.util.Locale;
import java.util.SplittableRandom;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.data.Batch;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxBatcher;
import org.vgg4j.data.IdxImages;

/**
 * README's main job: trains a narrow VGG on real images on the CPU in a few minutes and prints a falling loss
 * and a rising test accuracy.
 *
 * <p>Data: the Fashion-MNIST sample bundled in vgg-data (5,000 training / 1,000 test images), or the full
 * 60k/10k set with {@code --full} (Debian's dataset-fashion-mnist). 28x28 grayscale images are zero-padded to
 * 32x32, VGG's smallest input, and replicated to 3 channels. Model: configuration A (VGG-11) at a quarter of the
 * paper's width, FC 128-128-10. Training: Glorot initialisation, momentum SGD with the paper's momentum and
 * weight decay, dropout 0.5, learning rate on a cosine schedule.
 *
 * <p>Run: {@code mvn -q -DskipTests package exec:java} (add {@code -Dexec.args="--epochs 8 --backend reference"}
 * for options; {@code --help} lists them). This is a demo program, not the trainer of the vgg-train module.
 */
public final class TrainFashionMnist {

    /** Command-line options with their defaults. */
    record Options(String backend, VggConfig config, double width, int hidden, int epochs, int batch, double lr,
                   long seed, boolean full, int limit) {
        static Options parse(String[] args) {
            String backend = "cpu";
            VggConfig config = VggConfig.A;
            double width = 0.25;
            int hidden = 128;
            int epochs = 4;
            int batch = 64;
            double lr = 0.02;
            long seed = 1;
            boolean full = false;
            int limit = 0;
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (a.equals("--help") || a.equals("-h")) {
                    throw new UsageException(null);
                }
                if (a.equals("--full")) {
                    full = true;
                    continue;
                }
                if (i + 1 >= args.length) {
                    throw new UsageException("option " + a + " needs a value");
                }
                String v = args[++i];
                try {
                    switch (a) {
                        case "--backend" -> backend = v;
                        case "--config" -> config = VggConfig.parse(v);
                        case "--width" -> width = Double.parseDouble(v);
                        case "--hidden" -> hidden = Integer.parseInt(v);
                        case "--epochs" -> epochs = positive(a, Integer.parseInt(v));
                        case "--batch" -> batch = positive(a, Integer.parseInt(v));
                        case "--lr" -> lr = Double.parseDouble(v);
                        case "--seed" -> seed = Long.parseLong(v);
                        case "--limit" -> limit = positive(a, Integer.parseInt(v));
                        default -> throw new UsageException("unknown option " + a);
                    }
                } catch (NumberFormatException e) {
                    throw new UsageException("option " + a + " expects a number, got '" + v + "'");
                }
            }
            return new Options(backend, config, width, hidden, epochs, batch, lr, seed, full, limit);
        }

        private static int positive(String option, int v) {
            if (v < 1) {
                throw new UsageException("option " + option + " must be >= 1, got " + v);
            }
            return v;
        }
    }

    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }

    static final String USAGE = """
            usage: TrainFashionMnist [options]
              --backend NAME   cpu (default) or reference
              --config C       A (default), A-LRN, B, C, D, E
              --width W        channel multiplier (default 0.25)
              --hidden F       width of FC6/FC7 (default 128)
              --epochs N       default 4
              --batch N        default 64
              --lr X           peak learning rate (default 0.02; cosine decay to 0)
              --seed N         default 1
              --full           the full 60k/10k Fashion-MNIST from /usr/share/datasets/fashion-mnist
              --limit N        use only the first N training images
            """;

    private TrainFashionMnist() {
    }

    public static void main(String[] args) throws IOException {
        Options o;
        try {
            o = Options.parse(args);
        } catch (UsageException e) {
            if (e.getMessage() != null) {
                System.err.println("error: " + e.getMessage());
            }
            System.err.print(USAGE);
            System.exit(e.getMessage() == null ? 0 : 2);
            return;
        }
        double accuracy = run(o, System.out);
        System.out.printf(Locale.ROOT, "final test accuracy %.2f %%%n", 100 * accuracy);
    }

    /** Trains as {@code o} says, printing progress to {@code out}; returns the final test accuracy. */
    static double run(Options o, PrintStream out) throws IOException {
        IdxImages train = o.full() ? FashionMnist.read(FashionMnist.DEBIAN_DIR, FashionMnist.Split.TRAIN)
                : FashionMnist.bundledSample(FashionMnist.Split.TRAIN);
        IdxImages test = o.full() ? FashionMnist.read(FashionMnist.DEBIAN_DIR, FashionMnist.Split.TEST)
                : FashionMnist.bundledSample(FashionMnist.Split.TEST);
        double[] stats = IdxBatcher.pixelStatistics(train);
        IdxBatcher trainBatcher = new IdxBatcher(train, 32, 3, stats[0], stats[1]);
        IdxBatcher testBatcher = new IdxBatcher(test, 32, 3, stats[0], stats[1]);
        int trainCount = o.limit() > 0 ? Math.min(o.limit(), train.count()) : train.count();

        VggSpec spec = new VggSpec(o.config(), false, 10, 32, o.width(), o.hidden(), 0.5, o.seed());
        try (Backend backend = Backends.create(o.backend());
             Network net = Vgg.build(backend, DType.FLOAT32, spec)) {
            Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, o.seed());
            out.printf(Locale.ROOT, "VGG %s on backend '%s': %,d parameters; Fashion-MNIST %s: %,d train / %,d test images%n",
                    spec.name(), backend.name(), net.params().trainedCount(), o.full() ? "full" : "bundled sample",
                    trainCount, test.count());
            try (Sgd sgd = new Sgd(net.params(), Sgd.Settings.PAPER);
                 InputBuffer input = new InputBuffer(backend, net.dtype())) {
                SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(backend);
                Batch batch = trainBatcher.newBatch(o.batch());
                int stepsPerEpoch = (trainCount + o.batch() - 1) / o.batch();
                long totalSteps = (long) stepsPerEpoch * o.epochs();
                SplittableRandom shuffle = new SplittableRandom(o.seed());
                long step = 0;
                long start = System.nanoTime();
                double accuracy = 0;
                for (int epoch = 1; epoch <= o.epochs(); epoch++) {
                    int[] order = permutation(trainCount, shuffle.split());
                    double lossSum = 0;
                    int seen = 0;
                    for (int from = 0; from < trainCount; from += o.batch()) {
                        int n = Math.min(o.batch(), trainCount - from);
                        trainBatcher.fill(batch, order, from, n);
                        double lr = o.lr() * 0.5 * (1 + Math.cos(Math.PI * step / totalSteps));
                        lossSum += trainStep(net, loss, sgd, input, batch, lr) * n;
                        seen += n;
                        step++;
                        double elapsed = (System.nanoTime() - start) / 1e9;
                        double rate = step * (double) o.batch() / elapsed;
                        double eta = (totalSteps - step) * elapsed / step;
                        out.printf(Locale.ROOT, "\repoch %d/%d %s loss %.4f  %.0f img/s  lr %.4f  ETA %s   ", epoch, o.epochs(),
                                bar(seen, trainCount), lossSum / seen, rate, lr, clock(eta));
                    }
                    accuracy = evaluate(net, testBatcher, input, o.batch());
                    out.printf(Locale.ROOT, "%nepoch %d: train loss %.4f, test accuracy %.2f %% (%s elapsed)%n", epoch,
                            lossSum / seen, 100 * accuracy, clock((System.nanoTime() - start) / 1e9));
                }
                loss.release();
                return accuracy;
            }
        }
    }

    /** The device-side input batch, reallocated only when the batch shape changes (the last, smaller batch). */
    static final class InputBuffer implements AutoCloseable {
        private final Backend backend;
        private final DType dtype;
        private Tensor x; // (N,C,H,W)

        InputBuffer(Backend backend, DType dtype) {
            this.backend = backend;
            this.dtype = dtype;
        }

        /** Copies the batch's valid examples in and returns the tensor holding them. */
        Tensor load(Batch batch) {
            Shape shape = Shape.of(batch.size(), batch.channels(), batch.height(), batch.width());
            if (x == null || !x.shape().equals(shape)) {
                close();
                x = backend.allocate(dtype, shape);
            }
            backend.copyIn(batch.hostImages(), 0, x);
            return x;
        }

        @Override
        public void close() {
            if (x != null) {
                backend.free(x);
                x = null;
            }
        }
    }

    /** One SGD step on a batch; returns the mean loss. */
    static double trainStep(Network net, SoftmaxCrossEntropy loss, Sgd sgd, InputBuffer input, Batch batch, double lr) {
        Tensor logits = net.forward(input.load(batch), true);
        double value = loss.forwardBackward(logits, java.util.Arrays.copyOf(batch.labels(), batch.size()));
        if (!Double.isFinite(value)) {
            throw new IllegalStateException("loss became " + value + "; lower --lr (now " + lr + ")");
        }
        net.backward(loss.gradient());
        sgd.step(lr);
        return value;
    }

    /** Top-1 accuracy over the whole set, dropout off. */
    static double evaluate(Network net, IdxBatcher batcher, InputBuffer input, int batchSize) {
        int count = batcher.images().count();
        int[] order = permutation(count, null);
        Batch batch = batcher.newBatch(batchSize);
        float[] hostLogits = null;
        int correct = 0;
        for (int from = 0; from < count; from += batchSize) {
            int n = Math.min(batchSize, count - from);
            batcher.fill(batch, order, from, n);
            Tensor logits = net.forward(input.load(batch), false);
            int classes = logits.dim(1);
            if (hostLogits == null || hostLogits.length < n * classes) {
                hostLogits = new float[batchSize * classes];
            }
            net.backend().copyOut(logits, hostLogits, 0);
            for (int i = 0; i < n; i++) {
                int best = 0;
                for (int c = 1; c < classes; c++) {
                    if (hostLogits[i * classes + c] > hostLogits[i * classes + best]) {
                        best = c;
                    }
                }
                if (best == batch.labels()[i]) {
                    correct++;
                }
            }
        }
        return correct / (double) count;
    }

    /** 0..n-1, shuffled by Fisher-Yates when {@code random} is given. */
    static int[] permutation(int n, SplittableRandom random) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        if (random != null) {
            for (int i = n - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = p[i];
                p[i] = p[j];
                p[j] = t;
            }
        }
        return p;
    }

    private static String bar(int done, int total) {
        int width = 24;
        int filled = (int) ((long) done * width / total);
        return "[" + "#".repeat(filled) + ".".repeat(width - filled) + "]";
    }

    private static String clock(double seconds) {
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }
}
