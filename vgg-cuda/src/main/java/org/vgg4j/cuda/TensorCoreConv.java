package org.vgg4j.cuda;

import java.util.Locale;

/**
 * The BF16 tensor-core convolutions (conv_tc.cu) behind {@link CudaBackend}'s three conv passes: the rule that
 * decides which pass qualifies, and the launches of one pass on NCHW f32 tensors.
 *
 * <p>Inside, the kernels work channels-last: operands NHWC (or K,R,S,C for weights) in BF16 (round to nearest even),
 * results NHWC f32 from FP32 accumulators. A pass therefore converts its operands, runs one implicit GEMM, and
 * converts the result back:
 * <pre>
 *   forward          x -> xh (N,H,W,C bf16); w -> wp (K,R,S,C bf16); conv_tc_fwd_bf16 -> yh (N,P,Q,K f32) (+ bias);
 *                    yh -> y (N,K,P,Q)
 *   backward-data    dy -> dyh (N,P,Q,K bf16); w -> wt (C,R,S,K bf16, flipped); conv_tc_fwd_bf16 with pad' =
 *                    R-1-pad -> dxh (N,H,W,C f32); dxh -> dx (N,C,H,W, overwritten)
 *   backward-filter  x -> xh, dy -> dyh; conv_tc_wgrad_bf16 sums Z chunks of N*P*Q into partial (Z,K,R*S*C);
 *                    conv_tc_wgrad_reduce adds the Z slices to dw (K,C,R,S) in order (deterministic)
 * </pre>
 * The converted copies live in {@link Scratch} buffers of the backend, grown to the largest layer and reused; the
 * split-K partials in the backend's split-K workspace.
 *
 * <p>Which pass qualifies (the kernels' own requirements; stride 1 as everywhere): math {@link MathMode#BF16} and
 * tensor cores not switched off ({@value #PROPERTY}); forward: C % 8 == 0 (16-byte cp.async of 8 channels);
 * backward-data: K % 8 == 0 (its GEMM reads dy's K channels 8 at a time) and R == S with pad &lt;= R - 1 (the
 * flipped convolution has one padding R-1-pad for both axes); backward-filter: C % 8 == 0 and K % 8 == 0. Anything
 * else runs the v1 kernels of conv.cu (VGG's conv1_1 forward and backward-filter, C = 3).
 */
final class TensorCoreConv {
    /** The system property that switches the tensor-core path off: auto (default) or off. */
    static final String PROPERTY = "vgg4j.cuda.tensorcores";
    static final String MODULE = "conv_tc";
    /** The block tile of conv_tc.cu's GEMMs (128 x 128), for the grids. */
    private static final int TILE = 128;
    /** conv_tc_wgrad_bf16's BK: its split-K chunks must be multiples of it. */
    static final int WGRAD_CHUNK = 32;

    /** The kernels a pass runs on, as {@link CudaBackend#convPath} reports them. */
    enum Path {
        TENSOR_CORES("tensor cores"), V1("v1");

        final String label;

        Path(String label) {
            this.label = label;
        }
    }

    /** {@value #PROPERTY}: auto takes the tensor cores where a pass qualifies, off never does (comparisons). */
    enum Setting {
        AUTO, OFF;

        static Setting fromProperty() {
            String v = System.getProperty(PROPERTY, "auto");
            for (Setting s : values()) {
                if (s.name().equalsIgnoreCase(v.trim())) {
                    return s;
                }
            }
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + v + " is not one of auto, off");
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** Null when {@code pass} of this geometry runs on the tensor cores, else why it does not (for the log). */
    static String whyNot(MathMode math, Setting setting, CudaBackend.ConvPass pass, int c, int k, int r, int s, int pad) {
        if (math != MathMode.BF16) {
            return math + " math (the tensor-core path is BF16)";
        }
        if (setting == Setting.OFF) {
            return "-D" + PROPERTY + "=off";
        }
        boolean cOk = c % 8 == 0;
        boolean kOk = k % 8 == 0;
        return switch (pass) {
            case FORWARD -> cOk ? null : "C = " + c + " is not a multiple of 8";
            case BACKWARD_DATA -> !kOk ? "K = " + k + " is not a multiple of 8"
                    : r != s ? "R = " + r + " differs from S = " + s + " (the flipped kernel has one padding)"
                    : pad > r - 1 ? "pad " + pad + " exceeds R - 1 = " + (r - 1) : null;
            case BACKWARD_FILTER -> !cOk ? "C = " + c + " is not a multiple of 8"
                    : !kOk ? "K = " + k + " is not a multiple of 8" : null;
        };
    }

    /** Launches for one op: module conv_tc or elementwise kernels, errors naming the op and its tensors. */
    interface Launcher {
        void launch(String kernel, int gx, int gy, int gz, KernelArgs args);

        /** A grid-stride kernel of conv_tc over n elements. */
        void elementwise(String kernel, long n, KernelArgs args);
    }

    private final Scratch first;
    private final Scratch second;
    private final Scratch weights;
    private final Scratch output;

    TensorCoreConv(DeviceAllocator allocator, Driver driver) {
        first = new Scratch(allocator, driver);
        second = new Scratch(allocator, driver);
        weights = new Scratch(allocator, driver);
        output = new Scratch(allocator, driver);
    }

    /** y (N,K,P,Q) = conv(x, w) + b; bias 0 for none. */
    void forward(Launcher l, CudaBackend.Conv g, long x, long w, long bias, long y) {
        long xh = toNhwc(l, x, first, g.n(), g.c(), (long) g.h() * g.w());
        long wp = weights.atLeast(2L * g.k() * g.c() * g.r() * g.s());
        l.elementwise("conv_tc_pack_weights_bf16", (long) g.k() * g.c() * g.r() * g.s(), KernelArgs.of().ptr(w).ptr(wp)
                .i32(g.k()).i32(g.c()).i32(g.r()).i32(g.s()));
        long pq = (long) g.p() * g.q();
        long yh = output.atLeast(4L * g.n() * pq * g.k());
        l.launch("conv_tc_fwd_bf16", tiles(g.n() * pq), tiles(g.k()), 1, KernelArgs.of().ptr(xh).ptr(wp).ptr(bias)
                .ptr(yh).i32(g.n()).i32(g.h()).i32(g.w()).i32(g.c()).i32(g.k()).i32(g.r()).i32(g.s()).i32(g.pad())
                .i32(0));
        fromNhwc(l, yh, y, g.n(), g.k(), pq);
    }

    /** dx (N,C,H,W) = conv_transpose(dy, w), overwritten: the forward kernel on dy with flipped weights. */
    void backwardData(Launcher l, CudaBackend.Conv g, long dy, long w, long dx) {
        long pq = (long) g.p() * g.q();
        long dyh = toNhwc(l, dy, first, g.n(), g.k(), pq);
        long wt = weights.atLeast(2L * g.k() * g.c() * g.r() * g.s());
        l.elementwise("conv_tc_flip_weights_bf16", (long) g.k() * g.c() * g.r() * g.s(), KernelArgs.of().ptr(w)
                .ptr(wt).i32(g.k()).i32(g.c()).i32(g.r()).i32(g.s()));
        long hw = (long) g.h() * g.w();
        long dxh = output.atLeast(4L * g.n() * hw * g.c());
        // the flipped convolution of dy (N,P,Q,K) with wt (C,R,S,K) and padding R-1-pad is (N,H,W,C)
        l.launch("conv_tc_fwd_bf16", tiles(g.n() * hw), tiles(g.c()), 1, KernelArgs.of().ptr(dyh).ptr(wt).ptr(0)
                .ptr(dxh).i32(g.n()).i32(g.p()).i32(g.q()).i32(g.k()).i32(g.c()).i32(g.r()).i32(g.s())
                .i32(g.r() - 1 - g.pad()).i32(0));
        fromNhwc(l, dxh, dx, g.n(), g.c(), hw);
    }

    /**
     * dw (K,C,R,S) += corr(x, dy), the N*P*Q pixels summed in {@code splits} chunks of {@code chunk} (a multiple of
     * {@link #WGRAD_CHUNK}) into {@code workspace} (at least splits x K x R*S*C floats), then reduced in order.
     */
    void backwardFilter(Launcher l, CudaBackend.Conv g, long x, long dy, long dw, long workspace, int splits,
                        int chunk) {
        if (chunk % WGRAD_CHUNK != 0) {
            throw new IllegalArgumentException("split-K chunk " + chunk + " of conv_tc_wgrad_bf16 must be a multiple of "
                    + WGRAD_CHUNK);
        }
        long pq = (long) g.p() * g.q();
        long xh = toNhwc(l, x, first, g.n(), g.c(), (long) g.h() * g.w());
        long dyh = toNhwc(l, dy, second, g.n(), g.k(), pq);
        long rsc = (long) g.r() * g.s() * g.c();
        l.launch("conv_tc_wgrad_bf16", tiles(rsc), tiles(g.k()), splits, KernelArgs.of().ptr(xh).ptr(dyh)
                .ptr(workspace).i32(g.n()).i32(g.h()).i32(g.w()).i32(g.c()).i32(g.k()).i32(g.r()).i32(g.s())
                .i32(g.pad()).i32(chunk));
        l.elementwise("conv_tc_wgrad_reduce", g.k() * rsc, KernelArgs.of().ptr(workspace).ptr(dw).i32(splits)
                .i32(g.k()).i32(g.c()).i32(g.r()).i32(g.s()));
    }

    /** Output tiles of the wgrad GEMM (K x R*S*C), for the split-K plan. */
    static int wgradTiles(CudaBackend.Conv g) {
        return tiles((long) g.r() * g.s() * g.c()) * tiles(g.k());
    }

    /** (N,C,HW) f32 at {@code src} -> (N,HW,C) bf16 in {@code into}; returns its address. */
    private static long toNhwc(Launcher l, long src, Scratch into, int n, int c, long hw) {
        long dst = into.atLeast(2L * n * c * hw);
        l.elementwise("nchw_to_nhwc_bf16", n * c * hw, KernelArgs.of().ptr(src).ptr(dst).i32(n).i32(c)
                .i32(Math.toIntExact(hw)));
        return dst;
    }

    /** (N,PQ,K) f32 -> (N,K,PQ) f32. */
    private static void fromNhwc(Launcher l, long src, long dst, int n, int k, long pq) {
        l.elementwise("nhwc_to_nchw_f32", n * k * pq, KernelArgs.of().ptr(src).ptr(dst).i32(n).i32(k)
                .i32(Math.toIntExact(pq)));
    }

    private static int tiles(long n) {
        return Math.toIntExact(Math.max(1, (n + TILE - 1) / TILE));
    }

    /** Hands every scratch buffer back (after the compute stream drained); true when one was held. */
    boolean releaseScratch() {
        boolean any = false;
        for (Scratch s : new Scratch[] {first, second, weights, output}) {
            any |= s.release();
        }
        return any;
    }

    /** Bytes held by the scratch buffers. */
    long scratchBytes() {
        return first.bytes() + second.bytes() + weights.bytes() + output.bytes();
    }
}
