package org.vgg4j.core.bench;

import java.io.IOException;
import java.io.PrintStream;
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
import org.vgg4j.core.backend.cpu.CpuBackend;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Benchmark (NOT a test): float32 training steps of a VGG on one backend, median images per second and peak
 * resident memory. One workload per JVM, so that peaks do not mix. Run through scripts/bench-core.sh, which runs
 * the PyTorch peer (scripts/bench_peer_torch.py) side by side and prints the comparison table.
 *
 * <pre>
 *   java -Xmx1g -cp ... org.vgg4j.core.bench.TrainStepBench W1|W2|W3 [warmup=2] [steps=5] [backend=cpu] [profile] [dense-fc]
 *   java -cp ... org.vgg4j.core.bench.TrainStepBench sgemm      (sgemm 2048^3 through the backend: oneDNN's, or OpenBLAS without it)
 *   java -cp ... org.vgg4j.core.bench.TrainStepBench W1 2 5 cpu-bf16   (the cpu backend in BF16: Backends.cpu(BF16))
 * </pre>
 * Precision: backend {@code cpu-fp32}, {@code cpu-bf16} or {@code cpu-auto} is the cpu backend in that
 * {@link CpuPrecision}; plain {@code cpu} takes {@code -Dvgg4j.cpu.precision} (default fp32). The RESULT line names
 * the precision the backend runs in ({@code precision=bf16}; auto resolved); with cpu-bf16, {@code sgemm} is the
 * bf16 GEMM's rate (f32 C).
 * Workloads: W1 VGG-16 (D) 3x224x224 batch 4, 1000 classes; W2 VGG-11 (A) the same; W3 VGG-16's conv stack at
 * 3x32x32 batch 64, classifier 512-512-512-10. A step is forward, SoftmaxCrossEntropy, backward and Sgd.step with
 * the paper's momentum 0.9 and weight decay 5e-4. Parameters are seeded small random values (He-scaled uniform).
 * Output: one "RESULT key=value ..." line on stdout (this is a program, not the library, so it prints): medians of
 * wall time, process CPU time, kernel CPU time and minor page faults per step (the last two show what fresh
 * mappings cost: docs/benchmarks.md, "Page faults"), peak RSS; with "profile", per-layer-kind times of one extra step.
 * The FC layers' weight gradients are held as factors (Network#deferLinearWeightGradients), as the Trainer holds
 * them for one replica; "dense-fc" keeps them dense, as data-parallel training does.
 */
public final class TrainStepBench {
    private TrainStepBench() {
    }

    public static void main(String[] args) throws IOException {
        PrintStream out = System.out;
        if (args.length == 0) {
            throw new IllegalArgumentException("usage: TrainStepBench W1|W2|W3|sgemm [warmup] [steps] [backend] [profile] [dense-fc]");
        }
        String what = args[0];
        String backendName = args.length > 3 ? args[3] : "cpu";
        Backend backend = backendName.startsWith("cpu-")
                ? Backends.cpu(CpuPrecision.parse(backendName.substring(4))) : Backends.create(backendName);
        backendName = backendName.startsWith("cpu-") ? "cpu" : backendName; // the precision has its own key
        String precision = precision(backend);
        if (what.equals("sgemm")) {
            out.printf(Locale.ROOT, "RESULT workload=sgemm precision=%s gflops=%.1f%n", precision,
                    sgemmRate(backend, 2048, 5));
            return;
        }
        int warmup = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int steps = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        boolean profile = Arrays.asList(args).contains("profile");
        VggSpec spec;
        int batch;
        switch (what) {
            case "W1" -> { spec = VggSpec.paper(VggConfig.D); batch = 4; }
            case "W2" -> { spec = VggSpec.paper(VggConfig.A); batch = 4; }
            case "W3" -> { spec = VggSpec.small(VggConfig.D, 32, 10); batch = 64; }
            case "F" -> { spec = fashionSpec(); batch = 128; }
            default -> throw new IllegalArgumentException("workload '" + what + "': expected W1, W2, W3, F or sgemm");
        }
        Network net = Vgg.build(backend, DType.FLOAT32, spec);
        if (!Arrays.asList(args).contains("dense-fc")) {
            net.deferLinearWeightGradients(); // as the Trainer does for one replica ("dense-fc": as before)
        }
        long params = net.params().trainedCount();
        if (what.equals("W3") && params != 15_245_130L) {
            throw new IllegalStateException("W3 must have exactly 15,245,130 parameters, has " + params);
        }
        long macs = forwardMacs(net);
        initialise(net.params(), backend, 42);
        long initRss = rssMib("VmRSS:");
        int side = spec.inputSize();
        Tensor x = backend.allocate(DType.FLOAT32, Shape.of(batch, 3, side, side));
        SplittableRandom rnd = new SplittableRandom(7);
        float[] host = new float[batch * 3 * side * side];
        for (int i = 0; i < host.length; i++) {
            host[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        backend.copyIn(host, 0, x);
        int[] labels = new int[batch];
        for (int i = 0; i < batch; i++) {
            labels[i] = rnd.nextInt(spec.numClasses());
        }
        SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(backend);
        Sgd sgd = new Sgd(net.params(), Sgd.Settings.PAPER);
        double lr = 1e-3;
        for (String a : args) {
            if (a.equals("profile-first")) {
                profileStep(out, net, backend, x, labels, loss, sgd, lr); // cold steps: where the memory peak forms
            }
        }
        double[] times = new double[steps];
        double[] cpus = new double[steps]; // process CPU seconds (all threads): robust-er than wall time when shared
        double[] sys = new double[steps]; // of which in the kernel (page faults of fresh mappings, thread wake-ups)
        double[] faults = new double[steps]; // minor page faults (each a fresh 4 KiB page zeroed by the kernel)
        double lastLoss = 0;
        for (int s = 0; s < warmup + steps; s++) {
            long t0 = System.nanoTime();
            long c0 = processCpuNanos();
            long[] st0 = procStat();
            Tensor logits = net.forward(x, true);
            lastLoss = loss.forwardBackward(logits, labels);
            net.backward(loss.gradient());
            sgd.step(lr);
            backend.synchronize();
            double sec = (System.nanoTime() - t0) / 1e9;
            if (s >= warmup) {
                times[s - warmup] = sec;
                cpus[s - warmup] = (processCpuNanos() - c0) / 1e9;
                long[] st1 = procStat();
                faults[s - warmup] = st1[0] - st0[0];
                sys[s - warmup] = (st1[1] - st0[1]) / 100.0;
            }
        }
        double median = median(times);
        double cpuMedian = median(cpus);
        if (profile) {
            profileStep(out, net, backend, x, labels, loss, sgd, lr);
        }
        out.printf(Locale.ROOT, "RESULT workload=%s backend=%s precision=%s batch=%d params=%d fwd_macs_per_img=%d "
                        + "median_step_s=%.4f img_s=%.4f cpu_s_per_img=%.4f sys_s_per_step=%.2f minflt_per_step=%.0f peak_rss_mib=%d "
                        + "init_rss_mib=%d loss=%.5f steps=%s%n",
                what, backendName, precision, batch, params, macs, median, batch / median, cpuMedian / batch, median(sys),
                median(faults), rssMib("VmHWM:"), initRss, lastLoss,
                Arrays.toString(Arrays.stream(times).map(t -> Math.round(t * 1000) / 1000.0).toArray()));
    }

    /**
     * Workload F, the Fashion-MNIST acceptance network: A with BatchNorm at a quarter of the paper's width
     * (16-32-64-64-128-128-128-128), 3x32x32 input, FC 256-256-10, no dropout (679,882 parameters).
     */
    static VggSpec fashionSpec() {
        return VggSpec.small(VggConfig.A, 32, 10).withBatchNorm(true).withWidth(0.25).withHidden(256).withDropout(0);
    }

    /**
     * The operand precision of a backend's convolutions and GEMMs: the cpu backend's (auto resolved), the cuda
     * backend's -Dvgg4j.cuda.math (its MathMode), fp32 for the reference.
     */
    static String precision(Backend backend) {
        if (backend instanceof CpuBackend cpu) {
            return cpu.precision().toString();
        }
        return backend.name().startsWith("cuda") ? System.getProperty("vgg4j.cuda.math", "fp32") : "fp32";
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** CPU time of the whole process (every thread, native ones included), in nanoseconds. */
    static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getProcessCpuTime();
    }

    /**
     * Minor page faults and kernel CPU time (clock ticks, 100 per second on Linux) of the whole process, from
     * /proc/self/stat (fields 10 and 15); zeros elsewhere.
     */
    static long[] procStat() {
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" "); // f[0] is field 3 (state)
            return new long[]{Long.parseLong(f[7]), Long.parseLong(f[12])};
        } catch (IOException | RuntimeException e) {
            return new long[]{0, 0};
        }
    }

    /** Forward multiply-accumulates of one example (convolutions and FC layers). */
    static long forwardMacs(Network net) {
        Shape s = Shape.of(1, net.inputShape().dim(0), net.inputShape().dim(1), net.inputShape().dim(2));
        long total = 0;
        for (NamedLayer nl : net.layers()) {
            total += nl.layer().macs(s);
            s = nl.layer().outputShape(s);
        }
        return total;
    }

    /** He-scaled uniform weights, zero biases, written chunk by chunk so the Java heap stays small. */
    static void initialise(ParamStore params, Backend backend, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] chunk = new float[1 << 20];
        for (ParamStore.Entry e : params.entries()) {
            if (e.spec().role() != org.vgg4j.core.layers.ParamSpec.Role.WEIGHT) {
                continue;
            }
            double bound = Math.sqrt(6.0 / e.spec().fanIn());
            Tensor v = e.value();
            for (long done = 0; done < v.size(); done += chunk.length) {
                int len = (int) Math.min(chunk.length, v.size() - done);
                for (int i = 0; i < len; i++) {
                    chunk[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
                }
                backend.copyIn(chunk, 0, v.view(done, Shape.of(len)));
            }
        }
    }

    /** One extra step timed layer by layer, summed by kind. */
    static void profileStep(PrintStream out, Network net, Backend backend, Tensor x, int[] labels,
                            SoftmaxCrossEntropy loss, Sgd sgd, double lr) throws IOException {
        double convF = 0, convB = 0, fcF = 0, fcB = 0, otherF = 0, otherB = 0;
        List<NamedLayer> layers = net.layers();
        List<String> perConv = new ArrayList<>();
        double[] fwd = new double[layers.size()];
        Tensor h = x;
        for (int i = 0; i < layers.size(); i++) {
            long t = System.nanoTime();
            h = layers.get(i).layer().forward(h, true);
            backend.synchronize();
            fwd[i] = (System.nanoTime() - t) / 1e9;
            out.println("PROFILE rss after forward " + layers.get(i).name() + ": current " + rssMib("VmRSS:") + " peak " + rssMib("VmHWM:"));
        }
        long t = System.nanoTime();
        loss.forwardBackward(h, labels);
        double lossT = (System.nanoTime() - t) / 1e9;
        Tensor g = loss.gradient();
        for (int i = layers.size() - 1; i >= 0 && g != null; i--) {
            Layer l = layers.get(i).layer();
            t = System.nanoTime();
            g = l.backward(g);
            backend.synchronize();
            double b = (System.nanoTime() - t) / 1e9;
            out.println("PROFILE rss after backward " + layers.get(i).name() + ": current " + rssMib("VmRSS:") + " peak " + rssMib("VmHWM:"));
            out.printf(Locale.ROOT, "PROFILE layer %s %s fwd %.5f bwd %.5f%n", layers.get(i).name(),
                    l.getClass().getSimpleName(), fwd[i], b);
            if (l instanceof Conv2d c) {
                convF += fwd[i];
                convB += b;
                perConv.add(String.format(Locale.ROOT, "%s(%s) fwd %.3f bwd %.3f", layers.get(i).name(), c.describe(), fwd[i], b));
            } else if (l instanceof Linear) {
                fcF += fwd[i];
                fcB += b;
            } else {
                otherF += fwd[i];
                otherB += b;
            }
        }
        t = System.nanoTime();
        sgd.step(lr);
        backend.synchronize();
        double sgdT = (System.nanoTime() - t) / 1e9;
        out.printf(Locale.ROOT, "PROFILE conv_fwd=%.3f conv_bwd_data+filter=%.3f fc_fwd=%.3f fc_bwd=%.3f other_fwd=%.3f "
                + "other_bwd=%.3f loss=%.3f sgd=%.3f (seconds per step)%n", convF, convB, fcF, fcB, otherF, otherB, lossT, sgdT);
        for (int i = perConv.size() - 1; i >= 0; i--) {
            out.println("PROFILE " + perConv.get(i));
        }
    }

    /** GFLOP/s of a float32 n x n x n GEMM through the backend, best of {@code reps}. */
    static double sgemmRate(Backend backend, int n, int reps) {
        Tensor a = backend.allocate(DType.FLOAT32, Shape.of(n, n));
        Tensor b = backend.allocate(DType.FLOAT32, Shape.of(n, n));
        Tensor c = backend.allocate(DType.FLOAT32, Shape.of(n, n));
        float[] host = new float[n * n];
        SplittableRandom rnd = new SplittableRandom(3);
        for (int i = 0; i < host.length; i++) {
            host[i] = (float) rnd.nextDouble();
        }
        backend.copyIn(host, 0, a);
        backend.copyIn(host, 0, b);
        double best = Double.MAX_VALUE;
        for (int r = 0; r < reps; r++) {
            long t = System.nanoTime();
            backend.gemm(false, false, 1.0, a, b, 0.0, c);
            backend.synchronize();
            best = Math.min(best, (System.nanoTime() - t) / 1e9);
        }
        return 2.0 * n * n * n / best / 1e9;
    }

    /** A /proc/self/status figure (VmHWM: peak resident, VmRSS: current) in MiB (Linux); -1 elsewhere. */
    static long rssMib(String key) throws IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.exists(status)) {
            return -1;
        }
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith(key)) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
            }
        }
        return -1;
    }
}
