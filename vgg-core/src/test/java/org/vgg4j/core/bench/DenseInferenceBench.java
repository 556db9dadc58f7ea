package org.vgg4j.core.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.backend.CpuPrecision;
import org.vgg4j.core.layers.ParamSpec;
import org.vgg4j.core.model.DenseEvaluation;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Benchmark (NOT a test): the paper's dense evaluation (§3.2, {@link DenseEvaluation}: FC6 as a 7x7 convolution,
 * FC7/FC8 as 1x1, the score map averaged) of VGG-16 in evaluation mode on one backend, median images per second and
 * peak resident memory. Its peer is scripts/bench_dense_peer_torch.py (the same fully convolutional network in
 * PyTorch, eval mode); scripts/bench-core.sh runs both side by side (WORKLOADS="D224 D384").
 *
 * <pre>
 *   java -cp ... org.vgg4j.core.bench.DenseInferenceBench D224|D384 [warmup=2] [steps=5] [backend=cpu]
 *   java -cp ... org.vgg4j.core.bench.DenseInferenceBench check DIR [backend=cpu]
 * </pre>
 * Workloads: VGG-16 (D) built for 224 (1000 classes, 4096-wide FC), dense-evaluated on N x 3 x S x S images with
 * S = 224 (score map 1x1) or 384 (score map 6x6), batch {@link #BATCH} on both sides. Parameters are seeded He-scaled
 * uniform values (as {@link TrainStepBench}); the images uniform in [-1, 1). Backends as TrainStepBench
 * ({@code cpu-fp32}, {@code cpu-bf16}). Output: one "RESULT key=value ..." line on stdout.
 *
 * <p>{@code check DIR} times nothing: it dense-evaluates a narrow VGG-16 (1/8 width, FC 24-24-10, built for 64x64
 * so FC6 is a 2x2 convolution) on two 96x96 images (score map 2x2) and writes what the peer needs to compute the
 * same thing: DIR/params.txt (one line per parameter: key and shape, torchvision's order), DIR/params.f32 (their
 * values, float32 little-endian, in that order), DIR/input.f32 and DIR/scores.f32 (N x classes). The peer's
 * {@code check DIR} loads them into its network and asserts the same scores and classes.
 */
public final class DenseInferenceBench {
    /** Images per forward on both sides. */
    static final int BATCH = 4;

    private DenseInferenceBench() {
    }

    public static void main(String[] args) throws IOException {
        PrintStream out = System.out;
        if (args.length == 0) {
            throw new IllegalArgumentException("usage: DenseInferenceBench D224|D384 [warmup] [steps] [backend] | check DIR [backend]");
        }
        String what = args[0];
        if (what.equals("check")) {
            if (args.length < 2) {
                throw new IllegalArgumentException("usage: DenseInferenceBench check DIR [backend]");
            }
            try (Backend backend = backend(args.length > 2 ? args[2] : "cpu")) {
                check(backend, Path.of(args[1]));
            }
            return;
        }
        int side = switch (what) {
            case "D224" -> 224;
            case "D384" -> 384;
            default -> throw new IllegalArgumentException("workload '" + what + "': expected D224, D384 or check");
        };
        int warmup = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        String backendName = args.length > 3 ? args[3] : "cpu";
        Backend backend = backend(backendName);
        String precision = TrainStepBench.precision(backend);
        Network fc = Vgg.build(backend, DType.FLOAT32, VggSpec.paper(VggConfig.D));
        TrainStepBench.initialise(fc.params(), backend, 42);
        DenseEvaluation dense = DenseEvaluation.sharing(fc); // one set of parameters, as the peer
        Network net = dense.network();
        long macs = forwardMacs(net, side);
        long initRss = TrainStepBench.rssMib("VmRSS:");
        Tensor x = images(backend, BATCH, side, 7);
        double[] times = new double[steps];
        double[] cpus = new double[steps];
        int classes = 0;
        for (int s = 0; s < warmup + steps; s++) {
            long t0 = System.nanoTime();
            long c0 = TrainStepBench.processCpuNanos();
            Tensor scores = dense.forward(x);
            backend.synchronize();
            double sec = (System.nanoTime() - t0) / 1e9;
            classes = scores.dim(1);
            if (s >= warmup) {
                times[s - warmup] = sec;
                cpus[s - warmup] = (TrainStepBench.processCpuNanos() - c0) / 1e9;
            }
        }
        double median = TrainStepBench.median(times);
        out.printf(Locale.ROOT, "RESULT workload=%s backend=%s precision=%s batch=%d side=%d classes=%d "
                        + "fwd_macs_per_img=%d median_step_s=%.4f img_s=%.4f cpu_s_per_img=%.4f peak_rss_mib=%d "
                        + "init_rss_mib=%d steps=%s%n",
                what, backendName.startsWith("cpu-") ? "cpu" : backendName, precision, BATCH, side, classes, macs,
                median, BATCH / median, TrainStepBench.median(cpus) / BATCH, TrainStepBench.rssMib("VmHWM:"), initRss,
                Arrays.toString(Arrays.stream(times).map(t -> Math.round(t * 1000) / 1000.0).toArray()));
        dense.close();
        fc.close();
        backend.close();
    }

    private static Backend backend(String name) {
        return name.startsWith("cpu-") ? Backends.cpu(CpuPrecision.parse(name.substring(4))) : Backends.create(name);
    }

    /** Forward multiply-accumulates of one image of side x side through the dense network. */
    static long forwardMacs(Network net, int side) {
        Shape s = Shape.of(1, net.inputShape().dim(0), side, side);
        long total = 0;
        for (var nl : net.layers()) {
            total += nl.layer().macs(s);
            s = nl.layer().outputShape(s);
        }
        return total;
    }

    /** n images (n,3,side,side), uniform in [-1, 1) from {@code seed}. */
    private static Tensor images(Backend backend, int n, int side, long seed) {
        Tensor x = backend.allocate(DType.FLOAT32, Shape.of(n, 3, side, side));
        float[] host = new float[n * 3 * side * side];
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < host.length; i++) {
            host[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        backend.copyIn(host, 0, x);
        return x;
    }

    /** The check of the peer's network: see the class comment. */
    static void check(Backend backend, Path dir) throws IOException {
        Files.createDirectories(dir);
        VggSpec spec = VggSpec.small(VggConfig.D, 64, 10).withWidth(0.125).withHidden(24);
        try (Network fc = Vgg.build(backend, DType.FLOAT32, spec); DenseEvaluation dense = DenseEvaluation.of(fc)) {
            ParamStore ps = dense.network().params();
            List<String> index = new ArrayList<>();
            ByteBuffer all = ByteBuffer.allocate(Math.toIntExact(ps.values().size() * 4)).order(ByteOrder.LITTLE_ENDIAN);
            SplittableRandom rnd = new SplittableRandom(5);
            for (ParamStore.Entry e : ps.entries()) {
                float[] v = new float[Math.toIntExact(e.value().size())];
                double bound = e.spec().role() == ParamSpec.Role.WEIGHT ? Math.sqrt(6.0 / e.spec().fanIn()) : 0.1;
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
                }
                backend.copyIn(v, 0, e.value());
                for (float f : v) {
                    all.putFloat(f);
                }
                StringBuilder line = new StringBuilder(e.key());
                for (int d : e.spec().shape().dims()) {
                    line.append(' ').append(d);
                }
                index.add(line.toString());
            }
            Files.write(dir.resolve("params.txt"), index);
            Files.write(dir.resolve("params.f32"), Arrays.copyOf(all.array(), all.position()));
            Tensor x = images(backend, 2, 96, 3);
            Tensor scores = dense.forward(x);
            write(backend, x, dir.resolve("input.f32"));
            write(backend, scores, dir.resolve("scores.f32"));
            System.out.printf(Locale.ROOT, "CHECK wrote %d parameters, input %s, scores %s to %s%n", index.size(),
                    x.shape(), scores.shape(), dir);
        }
    }

    private static void write(Backend backend, Tensor t, Path file) throws IOException {
        float[] v = new float[Math.toIntExact(t.size())];
        backend.copyOut(t, v, 0);
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        Files.write(file, b.array());
    }
}
