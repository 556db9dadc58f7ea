package org.vgg4j.cuda.check;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import org.vgg4j.core.backend.Backend;
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
import org.vgg4j.cuda.CudaBackend;
import org.vgg4j.cuda.MathMode;
import org.vgg4j.cuda.api.CudaOutOfMemoryException;

/**
 * Stages e, f and h of scripts/gpu-check.sh: our side of the per-layer and per-step tables (the peer's is
 * scripts/torch_vgg16_bench.py, with the same layer names and line format, which scripts/gpu_tables.py joins).
 * <pre>
 *   GpuBenchmark layers [--batch 64] [--size 224] [--width 1.0] [--maths fp32,tf32,bf16] [--reps 5] [--emulated]
 *       VGG-16's 13 convs (forward, backward-data, backward-filter) and fc6-fc8 (the same three GEMMs), one line each:
 *       LAYER impl=ours math=fp32 layer=conv1_1 pass=fwd ms=... tflops=...
 *       (BF16 goes through the backend's tensor-core path where a pass or GEMM qualifies, layout conversions
 *       included)
 *   GpuBenchmark tc-layers [--batch 64] [--size 224] [--width 1.0] [--reps 5] [--emulated]
 *       the raw tensor-core kernels of conv_tc.cu on NHWC bf16 buffers for the 13 convs and fc6-fc8
 *       (TensorCoreBenchmark):
 *       LAYER impl=ours-tc math=bf16 layer=conv3_2 pass=fwd ms=... tflops=...
 *   GpuBenchmark steps [--batch 64] [--max-batch 512] [--size 224] [--width 1.0] [--maths ...] [--steps 5]
 *                      [--warmup 2] [--probe] [--emulated]
 *       VGG-16 training steps (forward, loss, backward, momentum SGD) at --batch, then at doubling batches up to
 *       --max-batch until one does not fit (those, and every batch with --probe, time 3 steps after 1); one line
 *       per run that fitted, and one saying which batch did not:
 *       STEP impl=ours math=fp32 batch=64 img_per_s=... step_ms=... peak_MiB=...
 * </pre>
 * Times are wall-clock around a device synchronize: the median of --reps runs after one warm-up (layers), the mean
 * of --steps steps after --warmup (steps). Is: a command-line tool (prints; asserts nothing; correctness is the
 * suite's). Is not: library code -- it lives in vgg-cuda's test sources and travels only in the GPU bundle.
 */
public final class GpuBenchmark {
    /** name, C, K, input side at 224 -- VGG-16 (configuration D). */
    static final Object[][] CONVS = {{"conv1_1", 3, 64, 224}, {"conv1_2", 64, 64, 224},
            {"conv2_1", 64, 128, 112}, {"conv2_2", 128, 128, 112}, {"conv3_1", 128, 256, 56},
            {"conv3_2", 256, 256, 56}, {"conv3_3", 256, 256, 56}, {"conv4_1", 256, 512, 28},
            {"conv4_2", 512, 512, 28}, {"conv4_3", 512, 512, 28}, {"conv5_1", 512, 512, 14},
            {"conv5_2", 512, 512, 14}, {"conv5_3", 512, 512, 14}};

    private GpuBenchmark() {
    }

    public static void main(String[] args) {
        if (args.length == 0 || !List.of("layers", "tc-layers", "steps").contains(args[0])) {
            System.err.println("usage: GpuBenchmark layers|tc-layers|steps [options]; see the class javadoc");
            System.exit(2);
        }
        boolean emulated = Devices.emulated(args);
        int batch = Devices.intArg(args, "--batch", 64);
        int size = Devices.intArg(args, "--size", 224);
        double width = Double.parseDouble(Devices.arg(args, "--width", "1.0"));
        List<MathMode> maths = new ArrayList<>();
        for (String m : Devices.arg(args, "--maths", "fp32,tf32,bf16").split(",")) {
            maths.add(MathMode.parse(m));
        }
        if (args[0].equals("tc-layers")) {
            try (CudaBackend be = Devices.open(emulated, 0, MathMode.BF16)) {
                System.out.println("# " + be.describe() + ": the raw tensor-core kernels, NHWC bf16");
                TensorCoreBenchmark.run(be, batch, size, width, Devices.intArg(args, "--reps", 5));
            }
        } else if (args[0].equals("layers")) {
            int reps = Devices.intArg(args, "--reps", 5);
            for (MathMode math : maths) {
                try (CudaBackend be = Devices.open(emulated, 0, math)) {
                    System.out.println("# " + be.describe());
                    layers(be, math, batch, size, width, reps);
                }
            }
        } else {
            int maxBatch = Devices.intArg(args, "--max-batch", 512);
            int steps = Devices.intArg(args, "--steps", 5);
            int warmup = Devices.intArg(args, "--warmup", 2);
            boolean probe = Arrays.asList(args).contains("--probe");
            for (MathMode math : maths) {
                for (int b = batch; b <= Math.max(batch, maxBatch); b = b == batch ? Math.max(2 * batch, b + 1) : 2 * b) {
                    if (!step(emulated, math, b, size, width, steps, warmup, probe || b > batch)) {
                        System.out.printf(Locale.ROOT, "STEP impl=ours math=%s batch=%d does_not_fit%n", math, b);
                        break;
                    }
                }
            }
        }
    }

    static int scaled(int channels, double width) {
        return channels == 3 ? 3 : Math.max(1, (int) Math.round(channels * width));
    }

    private static void layers(CudaBackend be, MathMode math, int n, int size, double width, int reps) {
        for (Object[] l : CONVS) {
            int c = scaled((Integer) l[1], width);
            int k = scaled((Integer) l[2], width);
            int h = Math.max(1, (Integer) l[3] * size / 224);
            Tensor x = random(be, Shape.of(n, c, h, h), 4);
            Tensor w = random(be, Shape.of(k, c, 3, 3), 5);
            Tensor y = be.allocate(DType.FLOAT32, Shape.of(n, k, h, h));
            Tensor dx = be.allocate(DType.FLOAT32, Shape.of(n, c, h, h));
            Tensor dw = be.allocate(DType.FLOAT32, Shape.of(k, c, 3, 3));
            double flops = 2.0 * n * k * c * 9 * h * h;
            String name = (String) l[0];
            report(math, name, "fwd", flops, reps, () -> be.conv2dForward(x, w, null, y, 1), be);
            report(math, name, "bwd_data", flops, reps, () -> be.conv2dBackwardData(y, w, dx, 1), be);
            report(math, name, "bwd_filter", flops, reps, () -> be.conv2dBackwardFilter(x, y, dw, null, 1), be);
            for (Tensor t : new Tensor[] {x, w, y, dx, dw}) {
                be.free(t);
            }
        }
        int[][] fcs = fcs(size, width);
        for (int i = 0; i < fcs.length; i++) {
            int in = fcs[i][0];
            int out = fcs[i][1];
            Tensor x = random(be, Shape.of(n, in), 6);
            Tensor w = random(be, Shape.of(out, in), 7);
            Tensor y = be.allocate(DType.FLOAT32, Shape.of(n, out));
            Tensor dx = be.allocate(DType.FLOAT32, Shape.of(n, in));
            Tensor dw = be.allocate(DType.FLOAT32, Shape.of(out, in));
            double flops = 2.0 * n * in * out;
            String name = "fc" + (6 + i);
            report(math, name, "fwd", flops, reps, () -> be.gemm(false, true, 1.0, x, w, 0.0, y), be);
            report(math, name, "bwd_data", flops, reps, () -> be.gemm(false, false, 1.0, y, w, 0.0, dx), be);
            report(math, name, "bwd_filter", flops, reps, () -> be.gemm(true, false, 1.0, y, x, 1.0, dw), be);
            for (Tensor t : new Tensor[] {x, w, y, dx, dw}) {
                be.free(t);
            }
        }
    }

    /** fc6, fc7, fc8 as {in, out} features: VGG-16's classifier at this input size and width. */
    static int[][] fcs(int size, double width) {
        int side = Math.max(1, size / 32);
        int hidden = width == 1.0 ? 4096 : 64;
        return new int[][] {{scaled(512, width) * side * side, hidden}, {hidden, hidden}, {hidden, 1000}};
    }

    private static void report(MathMode math, String layer, String pass, double flops, int reps, Runnable op,
                               Backend be) {
        report("ours", math, layer, pass, flops, reps, op, be);
    }

    /** Times {@code op} (median of reps after a warm-up) and prints its LAYER line as implementation {@code impl}. */
    static void report(String impl, MathMode math, String layer, String pass, double flops, int reps, Runnable op,
                       Backend be) {
        op.run(); // warm-up: module load, split-K workspace
        be.synchronize();
        double[] ms = new double[Math.max(1, reps)];
        for (int i = 0; i < ms.length; i++) {
            long t0 = System.nanoTime();
            op.run();
            be.synchronize();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(ms);
        double med = ms[ms.length / 2];
        System.out.printf(Locale.ROOT, "LAYER impl=%s math=%s layer=%s pass=%s ms=%.4f tflops=%.2f%n", impl,
                math.name().toLowerCase(Locale.ROOT), layer, pass, med, flops / med / 1e9);
    }

    /** One run of training steps at batch {@code batch} on a fresh backend; false when it does not fit. */
    private static boolean step(boolean emulated, MathMode math, int batch, int size, double width, int steps,
                                int warmup, boolean probing) {
        VggSpec spec = new VggSpec(VggConfig.D, false, 1000, size, width, width == 1.0 ? 4096 : 64, 0.5, 1);
        try (CudaBackend be = Devices.open(emulated, 0, math)) {
            try (Network net = Vgg.build(be, DType.FLOAT32, spec); Sgd sgd = new Sgd(net.params(), Sgd.Settings.PAPER)) {
                Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1);
                Tensor x = random(be, Shape.of(batch, 3, size, size), 2);
                int[] labels = new SplittableRandom(3).ints(batch, 0, 1000).toArray();
                SoftmaxCrossEntropy ce = new SoftmaxCrossEntropy(be);
                double loss = 0;
                long t0 = 0;
                int w = probing ? 1 : warmup;
                int s = probing ? Math.min(steps, 3) : steps;
                for (int i = 0; i < w + s; i++) {
                    if (i == w) {
                        be.synchronize();
                        t0 = System.nanoTime();
                    }
                    Tensor logits = net.forward(x, true);
                    loss = ce.forwardBackward(logits, labels);
                    net.backward(ce.gradient());
                    sgd.step(0.01);
                }
                be.synchronize();
                double sec = (System.nanoTime() - t0) / 1e9;
                System.out.printf(Locale.ROOT, "STEP impl=ours math=%s batch=%d img_per_s=%.2f step_ms=%.1f"
                                + " peak_MiB=%d last_loss=%.4f%n", math.name().toLowerCase(Locale.ROOT), batch,
                        batch * s / sec, 1000 * sec / s, be.peakDeviceBytes() >> 20, loss);
                ce.release();
                return true;
            } catch (CudaOutOfMemoryException oom) {
                return false;
            }
        }
    }

    private static Tensor random(Backend be, Shape s, long seed) {
        return KernelSweep.rnd(be, s, seed);
    }
}
