package org.vgg4j.cuda.check;

import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.CudaBackend;
import org.vgg4j.cuda.Driver;
import org.vgg4j.cuda.KernelArgs;
import org.vgg4j.cuda.MathMode;

/**
 * {@code GpuBenchmark tc-layers}: the raw tensor-core kernels of conv_tc.cu on NHWC BF16 buffers, for VGG-16's 13
 * convs, without the NCHW layout conversions around them that the backend adds (GpuBenchmark layers times those,
 * what a user gets). One line per pass, in the format of the peer's channels_last rows:
 * {@code LAYER impl=ours-tc math=bf16 layer=conv3_2 pass=fwd ms=... tflops=...}
 * <pre>
 *   fwd         conv_tc_fwd_bf16 (x NHWC, w K,R,S,C)
 *   bwd_data    conv_tc_fwd_bf16 on dy with the flipped weights (the flip itself, once per step, not timed)
 *   bwd_filter  conv_tc_wgrad_bf16 + conv_tc_wgrad_reduce, split-K as the backend plans it
 * </pre>
 * A pass whose shape the kernels do not take (conv1_1's C = 3: forward and backward-filter) prints a "#" line
 * saying so. Is: a command-line tool that asserts nothing; correctness is TensorCorePathTest's.
 */
final class TensorCoreBenchmark {
    private static final int THREADS = 256;
    private static final int TILE = 128;
    private static final String MODULE = "conv_tc";

    private TensorCoreBenchmark() {
    }

    static void run(CudaBackend be, int n, int size, double width, int reps) {
        Driver d = be.driver();
        for (Object[] l : GpuBenchmark.CONVS) {
            String name = (String) l[0];
            int c = GpuBenchmark.scaled((Integer) l[1], width);
            int k = GpuBenchmark.scaled((Integer) l[2], width);
            int h = Math.max(1, (Integer) l[3] * size / 224);
            long pixels = (long) n * h * h;
            double flops = 2.0 * pixels * k * c * 9;
            Shape xs = Shape.of(n, c, h, h);
            Shape ws = Shape.of(k, c, 3, 3);
            Tensor x = KernelSweep.rnd(be, xs, 4);
            Tensor w = KernelSweep.rnd(be, ws, 5);
            Tensor dy = KernelSweep.rnd(be, Shape.of(n, k, h, h), 6);
            Tensor xh = bf16(be, pixels * c);
            Tensor dyh = bf16(be, pixels * k);
            Tensor wp = bf16(be, 9L * k * c);
            Tensor wt = bf16(be, 9L * k * c);
            Tensor out = be.allocate(DType.FLOAT32, Shape.of(Math.toIntExact(pixels * Math.max(c, k))));
            elementwise(d, "nchw_to_nhwc_bf16", pixels * c, KernelArgs.of().ptr(ptr(be, x)).ptr(ptr(be, xh)).i32(n)
                    .i32(c).i32(h * h));
            elementwise(d, "nchw_to_nhwc_bf16", pixels * k, KernelArgs.of().ptr(ptr(be, dy)).ptr(ptr(be, dyh)).i32(n)
                    .i32(k).i32(h * h));
            elementwise(d, "conv_tc_pack_weights_bf16", 9L * k * c, KernelArgs.of().ptr(ptr(be, w)).ptr(ptr(be, wp))
                    .i32(k).i32(c).i32(3).i32(3));
            elementwise(d, "conv_tc_flip_weights_bf16", 9L * k * c, KernelArgs.of().ptr(ptr(be, w)).ptr(ptr(be, wt))
                    .i32(k).i32(c).i32(3).i32(3));
            if (c % 8 == 0) {
                Driver.Function fwd = d.function(MODULE, "conv_tc_fwd_bf16");
                KernelArgs a = KernelArgs.of().ptr(ptr(be, xh)).ptr(ptr(be, wp)).ptr(0).ptr(ptr(be, out)).i32(n)
                        .i32(h).i32(h).i32(c).i32(k).i32(3).i32(3).i32(1).i32(0);
                report(name, "fwd", flops, reps, be, () -> d.launch(fwd, tiles(pixels), tiles(k), 1, THREADS, a));
            } else {
                System.out.println("# " + name + " fwd: C = " + c + " is not a multiple of 8 (the backend runs v1)");
            }
            if (k % 8 == 0) {
                Driver.Function fwd = d.function(MODULE, "conv_tc_fwd_bf16");
                KernelArgs a = KernelArgs.of().ptr(ptr(be, dyh)).ptr(ptr(be, wt)).ptr(0).ptr(ptr(be, out)).i32(n)
                        .i32(h).i32(h).i32(k).i32(c).i32(3).i32(3).i32(1).i32(0);
                report(name, "bwd_data", flops, reps, be, () -> d.launch(fwd, tiles(pixels), tiles(c), 1, THREADS, a));
            } else {
                System.out.println("# " + name + " bwd_data: K = " + k + " is not a multiple of 8 (the backend runs v1)");
            }
            if (c % 8 == 0 && k % 8 == 0) {
                CudaBackend.SplitK sk = be.tensorCoreWgradSplit(xs, ws, 1);
                Tensor partial = be.allocate(DType.FLOAT32, Shape.of(Math.toIntExact((long) sk.splits() * k * c * 9)));
                Tensor dw = be.allocate(DType.FLOAT32, ws);
                Driver.Function wgrad = d.function(MODULE, "conv_tc_wgrad_bf16");
                KernelArgs a = KernelArgs.of().ptr(ptr(be, xh)).ptr(ptr(be, dyh)).ptr(ptr(be, partial)).i32(n).i32(h)
                        .i32(h).i32(c).i32(k).i32(3).i32(3).i32(1).i32(sk.chunk());
                KernelArgs r = KernelArgs.of().ptr(ptr(be, partial)).ptr(ptr(be, dw)).i32(sk.splits()).i32(k).i32(c)
                        .i32(3).i32(3);
                System.out.println("# " + name + " bwd_filter: split-K " + sk.splits() + " x " + sk.chunk() + " pixels");
                report(name, "bwd_filter", flops, reps, be, () -> {
                    d.launch(wgrad, tiles(9L * c), tiles(k), sk.splits(), THREADS, a);
                    elementwise(d, "conv_tc_wgrad_reduce", 9L * k * c, r);
                });
                be.free(partial);
                be.free(dw);
            } else {
                System.out.println("# " + name + " bwd_filter: C = " + c + ", K = " + k
                        + " not both multiples of 8 (the backend runs v1)");
            }
            for (Tensor t : new Tensor[] {x, w, dy, xh, dyh, wp, wt, out}) {
                be.free(t);
            }
        }
    }

    private static void report(String layer, String pass, double flops, int reps, CudaBackend be, Runnable op) {
        GpuBenchmark.report("ours-tc", MathMode.BF16, layer, pass, flops, reps, op, be);
    }

    /** A device buffer for {@code elements} bf16 values (a FLOAT32 tensor of half as many, rounded up). */
    private static Tensor bf16(CudaBackend be, long elements) {
        return be.allocate(DType.FLOAT32, Shape.of(Math.toIntExact((elements + 1) / 2)));
    }

    private static long ptr(CudaBackend be, Tensor t) {
        return be.devicePointer(t);
    }

    private static void elementwise(Driver d, String kernel, long n, KernelArgs args) {
        int grid = (int) Math.max(1, Math.min((n + THREADS - 1) / THREADS, 8192));
        d.launch(d.function(MODULE, kernel), grid, 1, 1, THREADS, args);
    }

    private static int tiles(long n) {
        return Math.toIntExact(Math.max(1, (n + TILE - 1) / TILE));
    }
}
