package org.vgg4j.cuda.tools;

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
import org.vgg4j.cuda.CudaBackendProvider;
import org.vgg4j.cuda.EmulatedDriver;
import org.vgg4j.cuda.JCudaDriver;
import org.vgg4j.cuda.MathMode;

/**
 * Command-line benchmark of the CUDA backend (run by scripts/gpu-check.sh): VGG-16 training steps (forward, backward,
 * momentum SGD) in img/s, and each conv layer shape's kernels plus a large GEMM in TFLOP/s.
 *
 * <p>Is: a command-line tool, so it prints its results to stdout, one {@code RESULT} / {@code KERNEL} line each, for
 * the script to collect. Is not: a test (nothing is asserted; correctness is the suite's job) nor part of the library
 * API. Usage:
 * <pre>
 *   java -cp ... org.vgg4j.cuda.tools.GpuBenchmark [--math fp32|tf32|bf16] [--batch 64] [--size 224] [--steps 10]
 *        [--warmup 2] [--width 1.0] [--kernels] [--emulated]
 * </pre>
 * {@code --emulated} runs on the emulated device (only sensible with a tiny --size/--width: a smoke test of the tool).
 */
public final class GpuBenchmark {
    private GpuBenchmark() {
    }

    public static void main(String[] args) {
        MathMode math = MathMode.FP32;
        int batch = 64;
        int size = 224;
        int steps = 10;
        int warmup = 2;
        double width = 1.0;
        boolean kernels = false;
        boolean emulated = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--math" -> math = MathMode.parse(args[++i]);
                case "--batch" -> batch = Integer.parseInt(args[++i]);
                case "--size" -> size = Integer.parseInt(args[++i]);
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--width" -> width = Double.parseDouble(args[++i]);
                case "--kernels" -> kernels = true;
                case "--emulated" -> emulated = true;
                default -> throw new IllegalArgumentException("unknown argument '" + args[i] + "'; see the class javadoc");
            }
        }
        if (!emulated) {
            String why = new CudaBackendProvider().unavailableReason();
            if (why != null) {
                System.err.println("GpuBenchmark: the cuda backend cannot run here: " + why);
                System.exit(2);
            }
        }
        try (CudaBackend be = emulated
                ? new CudaBackend("cuda-emulated", EmulatedDriver.open(0), math)
                : new CudaBackend("cuda", JCudaDriver.open(Integer.getInteger("vgg4j.cuda.device", 0)), math)) {
            System.out.println("DEVICE " + be.driver().describe());
            if (kernels) {
                kernels(be, batch, size, width, math);
            }
            training(be, batch, size, width, steps, warmup, math);
        }
    }

    private static void training(CudaBackend be, int batch, int size, double width, int steps, int warmup,
                                 MathMode math) {
        VggSpec spec = new VggSpec(VggConfig.D, false, 1000, size, width, width == 1.0 ? 4096 : 64, 0.5, 1);
        try (Network net = Vgg.build(be, DType.FLOAT32, spec); Sgd sgd = new Sgd(net.params(), Sgd.Settings.PAPER)) {
            Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 1);
            Tensor x = random(be, Shape.of(batch, 3, size, size), 2);
            int[] labels = new SplittableRandom(3).ints(batch, 0, 1000).toArray();
            SoftmaxCrossEntropy ce = new SoftmaxCrossEntropy(be);
            double loss = 0;
            long t0 = 0;
            for (int s = 0; s < warmup + steps; s++) {
                if (s == warmup) {
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
            System.out.printf(Locale.ROOT, "RESULT vgg16_train math=%s batch=%d size=%d steps=%d img_per_s=%.2f"
                    + " step_ms=%.1f last_loss=%.4f device_MiB_in_use=%d%n", math, batch, size, steps,
                    batch * steps / sec, 1000 * sec / steps, loss, be.deviceBytesInUse() >> 20);
            ce.release();
        }
    }

    /** conv (C, K, H) of VGG-16's thirteen layers (at size 224; scaled with size and width). */
    private static final int[][] VGG16_CONVS = {{3, 64, 224}, {64, 64, 224}, {64, 128, 112}, {128, 128, 112},
            {128, 256, 56}, {256, 256, 56}, {256, 512, 28}, {512, 512, 28}, {512, 512, 14}};

    private static void kernels(CudaBackend be, int batch, int size, double width, MathMode math) {
        for (int[] l : VGG16_CONVS) {
            int c = l[0] == 3 ? 3 : Math.max(1, (int) Math.round(l[0] * width));
            int k = Math.max(1, (int) Math.round(l[1] * width));
            int h = Math.max(1, l[2] * size / 224);
            Tensor x = random(be, Shape.of(batch, c, h, h), 4);
            Tensor w = random(be, Shape.of(k, c, 3, 3), 5);
            Tensor y = be.allocate(DType.FLOAT32, Shape.of(batch, k, h, h));
            Tensor dx = be.allocate(DType.FLOAT32, Shape.of(batch, c, h, h));
            Tensor dw = be.allocate(DType.FLOAT32, Shape.of(k, c, 3, 3));
            double flops = 2.0 * batch * k * c * 9 * h * h;
            report("conv_fwd", c, k, h, flops, math, () -> be.conv2dForward(x, w, null, y, 1), be);
            report("conv_bwd_data", c, k, h, flops, math, () -> be.conv2dBackwardData(y, w, dx, 1), be);
            report("conv_bwd_filter", c, k, h, flops, math, () -> be.conv2dBackwardFilter(x, y, dw, null, 1), be);
            for (Tensor t : new Tensor[] {x, w, y, dx, dw}) {
                be.free(t);
            }
        }
        int n = (int) Math.max(64, Math.round(4096 * width));
        Tensor a = random(be, Shape.of(n, n), 6);
        Tensor b = random(be, Shape.of(n, n), 7);
        Tensor c = be.allocate(DType.FLOAT32, Shape.of(n, n));
        double sec = time(() -> be.gemm(false, false, 1.0, a, b, 0.0, c), be);
        System.out.printf(Locale.ROOT, "KERNEL gemm math=%s M=N=K=%d ms=%.3f tflops=%.2f%n", math, n, 1000 * sec,
                2.0 * n * n * n / sec / 1e12);
    }

    private static void report(String kernel, int c, int k, int h, double flops, MathMode math, Runnable op,
                               Backend be) {
        double sec = time(op, be);
        System.out.printf(Locale.ROOT, "KERNEL %s math=%s C=%d K=%d HW=%dx%d ms=%.3f tflops=%.2f%n", kernel, math, c, k,
                h, h, 1000 * sec, flops / sec / 1e12);
    }

    /** Median-free simple timing: one warm-up run, then the mean of three. */
    private static double time(Runnable op, Backend be) {
        op.run();
        be.synchronize();
        long t0 = System.nanoTime();
        for (int i = 0; i < 3; i++) {
            op.run();
        }
        be.synchronize();
        return (System.nanoTime() - t0) / 3e9;
    }

    private static Tensor random(Backend be, Shape s, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[Math.toIntExact(s.size())];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextDouble() * 2 - 1);
        }
        Tensor t = be.allocate(DType.FLOAT32, s);
        be.copyIn(v, 0, t);
        return t;
    }
}
