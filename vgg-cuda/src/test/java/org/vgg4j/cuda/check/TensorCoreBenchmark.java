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
 * convs and fc6-fc8, without the NCHW layout conversions and weight packing around them that the backend adds
 * (GpuBenchmark layers times those, what a user gets). One line per pass, in the format of the peer's channels_last
 * rows: {@code LAYER impl=ours-tc math=bf16 layer=conv3_2 pass=fwd ms=... tflops=...}
 * <pre>
 *   fwd         conv_tc_fwd_bf16 (x NHWC, w K,R,S,C; conv1_1's C = 3 padded to 8 as the backend does)
 *   bwd_data    conv_tc_fwd_bf16 on dy with the flipped weights (the flip itself, once per step, not timed)
 *   bwd_filter  conv_tc_wgrad_bf16 + conv_tc_wgrad_reduce, split-K as the backend plans it
 *   fc6-fc8     the same kernels as 1x1 convolutions of a 1x1 image (TensorCoreGemm): fwd y = x w^T, bwd_data
 *               dx = dy w (w transposed once, not timed), bwd_filter dw += dy^T x (wgrad adding onto dw, or
 *               split-K partials + splitk_gemm_epilogue, as the backend plans it); fwd and bwd_data split Kd
 *               where the backend does (CudaBackend.tensorCoreProductSplit): conv_tc_wgrad_bf16 on the operands
 *               transposed to (Kd, M) and (Kd, Nd) (not timed, as the layout conversions everywhere here), then
 *               splitk_gemm_epilogue
 * </pre>
 * A pass whose shape the kernels do not take prints a "#" line saying so. Is: a command-line tool that asserts
 * nothing; correctness is TensorCorePathTest's and TensorCoreGemmTest's.
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
            int cp = (c + 7) / 8 * 8; // the channels the kernels run with (TensorCoreConv.paddedChannels)
            int k = GpuBenchmark.scaled((Integer) l[2], width);
            int h = Math.max(1, (Integer) l[3] * size / 224);
            long pixels = (long) n * h * h;
            double flops = 2.0 * pixels * k * c * 9;
            Shape xs = Shape.of(n, c, h, h);
            Shape ws = Shape.of(k, c, 3, 3);
            Tensor x = KernelSweep.rnd(be, xs, 4);
            Tensor w = KernelSweep.rnd(be, ws, 5);
            Tensor dy = KernelSweep.rnd(be, Shape.of(n, k, h, h), 6);
            Tensor xh = bf16(be, pixels * cp);
            Tensor dyh = bf16(be, pixels * k);
            Tensor wp = bf16(be, 9L * k * cp);
            Tensor wt = bf16(be, 9L * k * c);
            Tensor out = be.allocate(DType.FLOAT32, Shape.of(Math.toIntExact(pixels * Math.max(c, k))));
            toBf16(be, new Tensor[] {x, dy, w}, new Tensor[] {xh, dyh, wp, wt}, n, h * h, c, cp, k, 3);
            if (cp != c) {
                System.out.println("# " + name + " fwd, bwd_filter: C = " + c + " padded to " + cp);
            }
            reportFwd(be, name, "fwd", flops, reps, xh, wp, out, n, h, cp, k, 3, 1);
            if (k % 8 == 0) {
                reportFwd(be, name, "bwd_data", flops, reps, dyh, wt, out, n, h, k, c, 3, 1);
                CudaBackend.SplitK sk = be.tensorCoreWgradSplit(xs, ws, 1);
                Tensor partial = be.allocate(DType.FLOAT32, Shape.of(Math.toIntExact((long) sk.splits() * k * cp * 9)));
                Tensor dw = be.allocate(DType.FLOAT32, ws);
                Driver.Function wgrad = d.function(MODULE, "conv_tc_wgrad_bf16");
                KernelArgs a2 = KernelArgs.of().ptr(ptr(be, xh)).ptr(ptr(be, dyh)).ptr(ptr(be, partial)).i32(n).i32(h)
                        .i32(h).i32(cp).i32(k).i32(3).i32(3).i32(1).i32(sk.chunk()).i32(0);
                KernelArgs r = KernelArgs.of().ptr(ptr(be, partial)).ptr(ptr(be, dw)).i32(sk.splits()).i32(k).i32(c)
                        .i32(cp).i32(3).i32(3);
                System.out.println("# " + name + " bwd_filter: split-K " + sk.splits() + " x " + sk.chunk() + " pixels");
                report(name, "bwd_filter", flops, reps, be, () -> {
                    d.launch(wgrad, tiles(9L * cp), tiles(k), sk.splits(), THREADS, a2);
                    elementwise(d, "conv_tc_wgrad_reduce", 9L * k * c, r);
                });
                be.free(partial);
                be.free(dw);
            } else {
                System.out.println("# " + name + " bwd_data, bwd_filter: K = " + k
                        + " is not a multiple of 8 (the backend runs v1)");
            }
            for (Tensor t : new Tensor[] {x, w, dy, xh, dyh, wp, wt, out}) {
                be.free(t);
            }
        }
        int[][] fcs = GpuBenchmark.fcs(size, width);
        for (int i = 0; i < fcs.length; i++) {
            fc(be, "fc" + (6 + i), n, fcs[i][0], fcs[i][1], reps);
        }
    }

    /** One fully connected layer, x (N,in), w (out,in), as TensorCoreGemm launches it. */
    private static void fc(CudaBackend be, String name, int n, int in, int out, int reps) {
        Driver d = be.driver();
        double flops = 2.0 * n * in * out;
        if (in % 8 != 0 || out % 8 != 0) {
            System.out.println("# " + name + ": in " + in + ", out " + out + " not both multiples of 8 (v1 for some)");
            return;
        }
        Tensor x = KernelSweep.rnd(be, Shape.of(n, in), 6);
        Tensor w = KernelSweep.rnd(be, Shape.of(out, in), 7);
        Tensor dy = KernelSweep.rnd(be, Shape.of(n, out), 8);
        Tensor xh = bf16(be, (long) n * in);
        Tensor dyh = bf16(be, (long) n * out);
        Tensor wp = bf16(be, (long) out * in);
        Tensor wt = bf16(be, (long) out * in);
        Tensor y = be.allocate(DType.FLOAT32, Shape.of(Math.toIntExact((long) n * Math.max(in, out))));
        // a 1x1 convolution over N images of 1x1 pixels with C = in, K = out
        toBf16(be, new Tensor[] {x, dy, w}, new Tensor[] {xh, dyh, wp, wt}, n, 1, in, in, out, 1);
        // fwd y (n,out) = x (n,in) w^T: split, the wgrad kernel's "x" is w^T (in,out) = wt, its "dy" x^T (in,n)
        product(be, name, "fwd", flops, reps, new Tensor[] {xh, wp, wt}, x, y, n, in, out);
        // bwd_data dx (n,in) = dy (n,out) w: split, its "x" is w (out,in) rounded = wp, its "dy" dy^T (out,n)
        product(be, name, "bwd_data", flops, reps, new Tensor[] {dyh, wt, wp}, dy, y, n, out, in);
        // the split-K plan of the backend's gemm(true, false): M = out, Kd = n rows, Nd = in; in one slice the kernel
        // adds onto dw itself (a Linear layer's alpha = 1, beta = 1), else partials and splitk_gemm_epilogue
        CudaBackend.SplitK sk = be.tensorCoreWgradSplit(Shape.of(n, in, 1, 1), Shape.of(out, in, 1, 1), 0);
        boolean direct = sk.splits() == 1;
        Tensor partial = be.allocate(DType.FLOAT32, Shape.of(direct ? 1 : Math.toIntExact((long) sk.splits() * out * in)));
        Tensor dw = be.allocate(DType.FLOAT32, Shape.of(out, in));
        Driver.Function wgrad = d.function(MODULE, "conv_tc_wgrad_bf16");
        KernelArgs aw = KernelArgs.of().ptr(ptr(be, xh)).ptr(ptr(be, dyh)).ptr(ptr(be, direct ? dw : partial)).i32(n)
                .i32(1).i32(1).i32(in).i32(out).i32(1).i32(1).i32(0).i32(sk.chunk()).i32(direct ? 1 : 0);
        long mn = (long) out * in;
        KernelArgs ae = KernelArgs.of().ptr(ptr(be, partial)).i32(sk.splits()).i64(mn).ptr(ptr(be, dw)).f32(1f).f32(1f);
        System.out.println("# " + name + " bwd_filter: split-K " + sk.splits() + " x " + sk.chunk() + " rows");
        report(name, "bwd_filter", flops, reps, be, () -> {
            d.launch(wgrad, tiles(in), tiles(out), sk.splits(), THREADS, aw);
            if (!direct) {
                d.launch(d.function("elementwise", "splitk_gemm_epilogue"), grid(mn), 1, 1, THREADS, ae);
            }
        });
        for (Tensor t : new Tensor[] {x, w, dy, xh, dyh, wp, wt, y, partial, dw}) {
            be.free(t);
        }
    }

    /**
     * The FORWARD or BACKWARD_DATA GEMM out (m,nd) = a (m,kd) op(b) (kd,nd) as the backend launches it: unsplit,
     * conv_tc_fwd_bf16 on bf16 = {a rounded, op(b)^T (nd,kd)}; split, conv_tc_wgrad_bf16 on a (f32, transposed here
     * to (kd,m)) and bf16[2] = op(b) (kd,nd), then splitk_gemm_epilogue.
     */
    private static void product(CudaBackend be, String layer, String pass, double flops, int reps, Tensor[] bf16,
                                Tensor a, Tensor out, int m, int kd, int nd) {
        CudaBackend.SplitK sk = be.tensorCoreProductSplit(m, kd, nd);
        if (sk.splits() == 1) {
            reportFwd(be, layer, pass, flops, reps, bf16[0], bf16[1], out, m, 1, kd, nd, 1, 0);
            return;
        }
        Driver d = be.driver();
        Tensor at = bf16(be, (long) kd * m);
        elementwise(d, "nchw_to_nhwc_bf16", (long) kd * m, KernelArgs.of().ptr(ptr(be, a)).ptr(ptr(be, at)).i32(1)
                .i32(m).i32(m).i32(kd));
        long mn = (long) m * nd;
        Tensor partial = be.allocate(DType.FLOAT32, Shape.of(Math.toIntExact(sk.splits() * mn)));
        Driver.Function wgrad = d.function(MODULE, "conv_tc_wgrad_bf16");
        KernelArgs aw = KernelArgs.of().ptr(ptr(be, bf16[2])).ptr(ptr(be, at)).ptr(ptr(be, partial)).i32(kd).i32(1)
                .i32(1).i32(nd).i32(m).i32(1).i32(1).i32(0).i32(sk.chunk()).i32(0);
        KernelArgs ae = KernelArgs.of().ptr(ptr(be, partial)).i32(sk.splits()).i64(mn).ptr(ptr(be, out)).f32(1f)
                .f32(0f);
        System.out.println("# " + layer + " " + pass + ": split-K " + sk.splits() + " x " + sk.chunk() + " of Kd = "
                + kd + " (conv_tc_wgrad_bf16 + splitk_gemm_epilogue)");
        report(layer, pass, flops, reps, be, () -> {
            d.launch(wgrad, tiles(nd), tiles(m), sk.splits(), THREADS, aw);
            d.launch(d.function("elementwise", "splitk_gemm_epilogue"), grid(mn), 1, 1, THREADS, ae);
        });
        be.free(at);
        be.free(partial);
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
        d.launch(d.function(MODULE, kernel), grid(n), 1, 1, THREADS, args);
    }

    /** Blocks for a grid-stride loop over n elements. */
    private static int grid(long n) {
        return (int) Math.max(1, Math.min((n + THREADS - 1) / THREADS, 8192));
    }

    /**
     * The bf16 operands as TensorCoreConv prepares them: f32 = {x (N,C,HW), dy (N,K,HW), w (K,C,R,R)} into
     * bf16 = {xh NHWC with C padded to cp, dyh NHWC, wp packed (K,R,R,cp), wt flipped for backward-data}.
     */
    private static void toBf16(CudaBackend be, Tensor[] f32, Tensor[] bf16, int n, int hw, int c, int cp, int k, int r) {
        Driver d = be.driver();
        long pixels = (long) n * hw;
        elementwise(d, "nchw_to_nhwc_bf16", pixels * cp, KernelArgs.of().ptr(ptr(be, f32[0])).ptr(ptr(be, bf16[0]))
                .i32(n).i32(c).i32(cp).i32(hw));
        elementwise(d, "nchw_to_nhwc_bf16", pixels * k, KernelArgs.of().ptr(ptr(be, f32[1])).ptr(ptr(be, bf16[1]))
                .i32(n).i32(k).i32(k).i32(hw));
        elementwise(d, "conv_tc_pack_weights_bf16", (long) r * r * k * cp, KernelArgs.of().ptr(ptr(be, f32[2]))
                .ptr(ptr(be, bf16[2])).i32(k).i32(c).i32(cp).i32(r).i32(r));
        elementwise(d, "conv_tc_flip_weights_bf16", (long) r * r * k * c, KernelArgs.of().ptr(ptr(be, f32[2]))
                .ptr(ptr(be, bf16[3])).i32(k).i32(c).i32(r).i32(r));
    }

    /**
     * Reports conv_tc_fwd_bf16 (no bias, no ReLU) on in, NHWC (n,h,h,cin), with weights (cout,r,r,cin) into out:
     * the forward pass, or backward-data on dy with the flipped weights.
     */
    private static void reportFwd(CudaBackend be, String layer, String pass, double flops, int reps, Tensor in,
                                  Tensor weights, Tensor out, int n, int h, int cin, int cout, int r, int pad) {
        Driver d = be.driver();
        Driver.Function fwd = d.function(MODULE, "conv_tc_fwd_bf16");
        KernelArgs a = KernelArgs.of().ptr(ptr(be, in)).ptr(ptr(be, weights)).ptr(0).ptr(ptr(be, out)).i32(n)
                .i32(h).i32(h).i32(cin).i32(cout).i32(r).i32(r).i32(pad).i32(0);
        long pixels = (long) n * h * h;
        report(layer, pass, flops, reps, be, () -> d.launch(fwd, tiles(pixels), tiles(cout), 1, THREADS, a));
    }

    private static int tiles(long n) {
        return Math.toIntExact(Math.max(1, (n + TILE - 1) / TILE));
    }
}
