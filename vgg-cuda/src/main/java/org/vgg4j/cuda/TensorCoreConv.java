package org.vgg4j.cuda;

import java.util.Locale;

/**
 * The BF16 tensor-core convolutions (conv_tc.cu) behind {@link CudaBackend}'s three conv passes: the rule that
 * decides which pass qualifies, and the launches of one pass on NCHW f32 tensors.
 *
 * <p>Inside, the kernels work channels-last: operands NHWC (or K,R,S,C for weights) in BF16 (round to nearest even),
 * results NHWC f32 from FP32 accumulators. A pass therefore converts its operands, runs one implicit GEMM, and
 * converts the result back (Cp = C rounded up to a multiple of 8, the kernels' channel step; the padding channels
 * are zeros, so they add nothing):
 * <pre>
 *   forward          x -> xh (N,H,W,Cp bf16); w -> wp (K,R,S,Cp bf16); conv_tc_fwd_bf16 -> yh (N,P,Q,K f32)
 *                    (+ bias, ReLU when fused); yh -> y (N,K,P,Q)
 *   backward-data    dy -> dyh (N,P,Q,K bf16); w -> wt (C,R,S,K bf16, flipped); conv_tc_fwd_bf16 with pad' =
 *                    R-1-pad -> dxh (N,H,W,C f32); dxh -> dx (N,C,H,W, overwritten)
 *   backward-filter  x -> xh (Cp), dy -> dyh; conv_tc_wgrad_bf16 sums Z chunks of N*P*Q into partial
 *                    (Z,K,R*S*Cp); conv_tc_wgrad_reduce adds the Z slices' C real channels to dw (K,C,R,S) in order
 *                    (deterministic)
 *   both backwards   ({@link #backward}) dy is converted once and read by both GEMMs, x once -- or not at all
 *                    where the layer's {@link TensorCoreMemo} kept x as its forward converted it
 * </pre>
 * The converted copies live in the backend's {@link TensorCoreScratch} buffers, grown to the largest layer and
 * reused; the split-K partials in the backend's split-K workspace.
 *
 * <p>Which pass qualifies (the kernels' own requirements; stride 1 as everywhere): math {@link MathMode#BF16} and
 * tensor cores not switched off ({@value #PROPERTY}); forward: any shape (C is padded); backward-data: K % 8 == 0
 * (its GEMM reads dy's K channels 8 at a time) and R == S with pad &lt;= R - 1 (the flipped convolution has one
 * padding for both axes); backward-filter: K % 8 == 0 (C is padded). Anything else runs the v1 kernels of conv.cu.
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
        boolean kOk = k % 8 == 0;
        return switch (pass) {
            case FORWARD -> null;
            case BACKWARD_DATA -> !kOk ? "K = " + k + " is not a multiple of 8"
                    : r != s ? "R = " + r + " differs from S = " + s + " (the flipped kernel has one padding)"
                    : pad > r - 1 ? "pad " + pad + " exceeds R - 1 = " + (r - 1) : null;
            case BACKWARD_FILTER -> kOk ? null : "K = " + k + " is not a multiple of 8";
        };
    }

    /** Launches for one op: module conv_tc or elementwise kernels, errors naming the op and its tensors. */
    interface Launcher {
        void launch(String kernel, int gx, int gy, int gz, KernelArgs args);

        /** A grid-stride kernel of {@code module} over n elements. */
        void elementwise(String module, String kernel, long n, KernelArgs args);

        /** A grid-stride kernel of conv_tc over n elements. */
        default void elementwise(String kernel, long n, KernelArgs args) {
            elementwise(MODULE, kernel, n, args);
        }
    }

    private final TensorCoreScratch scratch;

    TensorCoreConv(TensorCoreScratch scratch) {
        this.scratch = scratch;
    }

    /** C rounded up to the kernels' channel step of 8: the channels the tensor-core kernels run with. */
    static int paddedChannels(int c) {
        return (c + 7) / 8 * 8;
    }

    /**
     * y (N,K,P,Q) = conv(x, w) + b, then max(., 0) when {@code relu}; bias 0 for none. x is converted into
     * {@code xInto}: the backend's first scratch buffer, or a {@link TensorCoreMemo}'s, which then holds it
     * (N,H,W,Cp bf16) for the backward. The ReLU is conv_tc_fwd_bf16's epilogue (tc_relu): on each f32 sum after
     * the bias, before the copy back to NCHW, with relu_fwd's rule (NaN kept, -0 to +0), so y has the bits of this
     * forward without it followed by {@link CudaBackend#reluForward}.
     */
    void forward(Launcher l, CudaBackend.Conv g, long x, Scratch xInto, long w, long bias, long y, boolean relu) {
        int cp = paddedChannels(g.c());
        long xh = toNhwc(l, x, xInto, g.n(), g.c(), cp, (long) g.h() * g.w());
        long wp = scratch.weights.atLeast(2L * g.k() * cp * g.r() * g.s());
        l.elementwise("conv_tc_pack_weights_bf16", (long) g.k() * cp * g.r() * g.s(), KernelArgs.of().ptr(w).ptr(wp)
                .i32(g.k()).i32(g.c()).i32(cp).i32(g.r()).i32(g.s()));
        long pq = (long) g.p() * g.q();
        long yh = scratch.output.atLeast(4L * g.n() * pq * g.k());
        l.launch("conv_tc_fwd_bf16", tiles(g.n() * pq), tiles(g.k()), 1, KernelArgs.of().ptr(xh).ptr(wp).ptr(bias)
                .ptr(yh).i32(g.n()).i32(g.h()).i32(g.w()).i32(cp).i32(g.k()).i32(g.r()).i32(g.s()).i32(g.pad())
                .i32(relu ? 1 : 0));
        fromNhwc(l, yh, y, g.n(), g.k(), pq);
    }

    /** dx (N,C,H,W) = conv_transpose(dy, w), overwritten: the forward kernel on dy with flipped weights. */
    void backwardData(Launcher l, CudaBackend.Conv g, long dy, long w, long dx) {
        long dyh = toNhwc(l, dy, scratch.first, g.n(), g.k(), g.k(), (long) g.p() * g.q());
        data(l, g, dyh, w, dx);
    }

    /**
     * dw (K,C,R,S) += corr(x, dy), the N*P*Q pixels summed in {@code splits} chunks of {@code chunk} (a multiple of
     * {@link #WGRAD_CHUNK}) into {@code workspace} (at least {@link #wgradWorkspaceFloats} floats), then reduced in
     * order.
     */
    void backwardFilter(Launcher l, CudaBackend.Conv g, long x, long dy, long dw, long workspace, int splits,
                        int chunk) {
        backward(l, g, x, 0, 0, dy, 0, dw, workspace, splits, chunk);
    }

    /**
     * Both gradients from one conversion of dy (and of x): dw += corr(x, dy) as {@link #backwardFilter}, then, when
     * {@code dx} is not 0, dx = conv_transpose(dy, w) as {@link #backwardData} (w is not read when dx is 0). The
     * same kernels on the same operands as the two separate calls, so the same values bit for bit. {@code xh} is x
     * already converted by its forward (a {@link TensorCoreMemo}'s buffer), or 0: x is converted here.
     */
    void backward(Launcher l, CudaBackend.Conv g, long x, long xh, long w, long dy, long dx, long dw,
                  long workspace, int splits, int chunk) {
        if (chunk % WGRAD_CHUNK != 0) {
            throw new IllegalArgumentException("split-K chunk " + chunk + " of conv_tc_wgrad_bf16 must be a multiple of "
                    + WGRAD_CHUNK);
        }
        int cp = paddedChannels(g.c());
        long pq = (long) g.p() * g.q();
        if (xh == 0) {
            xh = toNhwc(l, x, scratch.first, g.n(), g.c(), cp, (long) g.h() * g.w());
        }
        long dyh = toNhwc(l, dy, scratch.second, g.n(), g.k(), g.k(), pq);
        long rscp = (long) g.r() * g.s() * cp;
        l.launch("conv_tc_wgrad_bf16", tiles(rscp), tiles(g.k()), splits, KernelArgs.of().ptr(xh).ptr(dyh)
                .ptr(workspace).i32(g.n()).i32(g.h()).i32(g.w()).i32(cp).i32(g.k()).i32(g.r()).i32(g.s())
                .i32(g.pad()).i32(chunk).i32(0));
        l.elementwise("conv_tc_wgrad_reduce", (long) g.k() * g.c() * g.r() * g.s(), KernelArgs.of().ptr(workspace)
                .ptr(dw).i32(splits).i32(g.k()).i32(g.c()).i32(cp).i32(g.r()).i32(g.s()));
        if (dx != 0) {
            data(l, g, dyh, w, dx);
        }
    }

    /** dx from dy already in NHWC bf16 ({@code dyh}, in a scratch buffer other than weights and output). */
    private void data(Launcher l, CudaBackend.Conv g, long dyh, long w, long dx) {
        long wt = scratch.weights.atLeast(2L * g.k() * g.c() * g.r() * g.s());
        l.elementwise("conv_tc_flip_weights_bf16", (long) g.k() * g.c() * g.r() * g.s(), KernelArgs.of().ptr(w)
                .ptr(wt).i32(g.k()).i32(g.c()).i32(g.r()).i32(g.s()));
        long hw = (long) g.h() * g.w();
        long dxh = scratch.output.atLeast(4L * g.n() * hw * g.c());
        // the flipped convolution of dy (N,P,Q,K) with wt (C,R,S,K) and padding R-1-pad is (N,H,W,C)
        l.launch("conv_tc_fwd_bf16", tiles(g.n() * hw), tiles(g.c()), 1, KernelArgs.of().ptr(dyh).ptr(wt).ptr(0)
                .ptr(dxh).i32(g.n()).i32(g.p()).i32(g.q()).i32(g.k()).i32(g.c()).i32(g.r()).i32(g.s())
                .i32(g.r() - 1 - g.pad()).i32(0));
        fromNhwc(l, dxh, dx, g.n(), g.c(), hw);
    }

    /** Output tiles of the wgrad GEMM (K x R*S*Cp), for the split-K plan. */
    static int wgradTiles(CudaBackend.Conv g) {
        return tiles((long) g.r() * g.s() * paddedChannels(g.c())) * tiles(g.k());
    }

    /** Floats of the split-K workspace the wgrad of {@code g} needs in {@code splits} slices (K x R*S*Cp each). */
    static long wgradWorkspaceFloats(CudaBackend.Conv g, int splits) {
        return (long) splits * g.k() * g.r() * g.s() * paddedChannels(g.c());
    }

    /** (N,C,HW) f32 at {@code src} -> (N,HW,Cp) bf16 in {@code into}, channels past C zero; returns its address. */
    static long toNhwc(Launcher l, long src, Scratch into, int n, int c, int cp, long hw) {
        long dst = into.atLeast(2L * n * cp * hw);
        l.elementwise("nchw_to_nhwc_bf16", (long) n * cp * hw, KernelArgs.of().ptr(src).ptr(dst).i32(n).i32(c).i32(cp)
                .i32(Math.toIntExact(hw)));
        return dst;
    }

    /** (N,PQ,K) f32 -> (N,K,PQ) f32. */
    private static void fromNhwc(Launcher l, long src, long dst, int n, int k, long pq) {
        l.elementwise("nhwc_to_nchw_f32", n * k * pq, KernelArgs.of().ptr(src).ptr(dst).i32(n).i32(k)
                .i32(Math.toIntExact(pq)));
    }

    static int tiles(long n) {
        return Math.toIntExact(Math.max(1, (n + TILE - 1) / TILE));
    }
}
