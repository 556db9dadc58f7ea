package org.vgg4j.cuda;

/**
 * The BF16 tensor-core GEMMs of the fully connected layers on conv_tc.cu's kernels: a Linear layer is a 1x1
 * convolution of a 1x1 image, so its three GEMMs are the convolution kernels with N = batch, H = W = R = S = 1,
 * pad 0, and its row-major operands are already "NHWC" (x, dy) and "K,R,S,C" (w); they are only rounded to bf16.
 * <pre>
 *   FORWARD          gemm(false, true):  c (M,Nd) = a (M,Kd) b (Nd,Kd)^T      y = x w^T     conv_tc_fwd_bf16,
 *                                                                                          C = Kd, K = Nd
 *   BACKWARD_DATA    gemm(false, false): c (M,Nd) = a (M,Kd) b (Kd,Nd)        dx = dy w     conv_tc_fwd_bf16 with b
 *                                        transposed (conv_tc_flip_weights_bf16 at 1x1), C = Kd, K = Nd
 *   BACKWARD_FILTER  gemm(true, false):  c (M,Nd) = a (Kd,M)^T b (Kd,Nd)      dw = dy^T x   conv_tc_wgrad_bf16,
 *                                        N = Kd pixels in split-K chunks, K = M, C = Nd; in one chunk with
 *                                        alpha = 1, beta = 0 or 1 it stores into or adds onto c itself
 * </pre>
 * FORWARD and BACKWARD_DATA split Kd when their output tile grid is too small for the device and M, Nd are multiples
 * of 8 ({@link #productSplit}; fc6 at batch 64 is 32 tiles of 128 x 128): then they run on conv_tc_wgrad_bf16, whose
 * z-slices sum chunks of its pixels, with Kd as the pixels and the operands transposed to (Kd, M) and (Kd, Nd), and
 * splitk_gemm_epilogue adds the slices in order (deterministic), as BACKWARD_FILTER's split-K does.
 * alpha and beta keep the SPI's meaning exactly as gemm.cu applies them: c = alpha * sum when beta == 0 (the old c
 * never read), else fmaf(beta, c, alpha * sum), by splitk_gemm_epilogue over the f32 sums -- except where the kernel
 * writes c itself with the same value: the forward ones with alpha = 1, beta = 0, the weight gradient in one slice
 * with alpha = 1 and beta 0 (c = sum) or 1 (c + sum, one rounding as fmaf(1, c, sum)).
 *
 * <p>Which call qualifies: math BF16, tensor cores not switched off, one of the three patterns, and the kernels'
 * channel steps: Kd % 8 == 0 for FORWARD and BACKWARD_DATA (their C), M % 8 == 0 and Nd % 8 == 0 for
 * BACKWARD_FILTER (its K and C). Anything else runs gemm.cu's v1 kernel ({@link CudaBackend#gemmPath} says which).
 */
final class TensorCoreGemm {
    /** The Linear layer's three GEMMs, by their transposes. */
    enum Pattern {
        FORWARD, BACKWARD_DATA, BACKWARD_FILTER;

        /** The pattern of gemm(transA, transB, ...), null for both transposed (no Linear layer's). */
        static Pattern of(boolean transA, boolean transB) {
            if (transA) {
                return transB ? null : BACKWARD_FILTER;
            }
            return transB ? FORWARD : BACKWARD_DATA;
        }
    }

    private final TensorCoreScratch scratch;

    TensorCoreGemm(TensorCoreScratch scratch) {
        this.scratch = scratch;
    }

    /** Null when gemm(transA, transB) of these sizes runs on the tensor cores, else why it does not (for the log). */
    static String whyNot(MathMode math, TensorCoreConv.Setting setting, boolean transA, boolean transB, int m, int kd,
                         int nd) {
        if (math != MathMode.BF16) {
            return math + " math (the tensor-core path is BF16)";
        }
        if (setting == TensorCoreConv.Setting.OFF) {
            return "-D" + TensorCoreConv.PROPERTY + "=off";
        }
        Pattern p = Pattern.of(transA, transB);
        if (p == null) {
            return "both operands transposed (not one of a Linear layer's GEMMs)";
        }
        if (m == 0 || kd == 0 || nd == 0) {
            return "an empty dimension (M = " + m + ", Kd = " + kd + ", Nd = " + nd + ")";
        }
        return switch (p) {
            case FORWARD, BACKWARD_DATA -> kd % 8 == 0 ? null : "Kd = " + kd + " is not a multiple of 8";
            case BACKWARD_FILTER -> m % 8 != 0 ? "M = " + m + " is not a multiple of 8"
                    : nd % 8 != 0 ? "Nd = " + nd + " is not a multiple of 8" : null;
        };
    }

    /**
     * The split-K plan of the FORWARD or BACKWARD_DATA GEMM c (M,Nd) = op(a) (M,Kd) op(b) (Kd,Nd) on a device of
     * {@code multiprocessors}: {@link CudaBackend.SplitK#plan} over its 128 x 128 output tiles and its depth Kd,
     * chunks multiples of {@link TensorCoreConv#WGRAD_CHUNK} -- so it splits only while the tile grid is smaller than
     * about two blocks per multiprocessor (fc6 at batch 64: 32 tiles) and Kd is deep enough. The split runs on
     * conv_tc_wgrad_bf16, whose channel steps want M % 8 == 0 and Nd % 8 == 0: other sizes stay in one slice.
     */
    static CudaBackend.SplitK productSplit(int multiprocessors, int m, int kd, int nd) {
        if (m % 8 != 0 || nd % 8 != 0) {
            return new CudaBackend.SplitK(1, kd);
        }
        return CudaBackend.SplitK.plan(multiprocessors, weightGradientTiles(m, nd), kd, (long) m * nd,
                TensorCoreConv.WGRAD_CHUNK);
    }

    /**
     * c = alpha * op(a) op(b) + beta * c for FORWARD and BACKWARD_DATA (sizes checked by the caller, {@link #whyNot}
     * null), in {@code splits} slices of Kd ({@link #productSplit}; {@code chunk} rows each, a multiple of
     * {@link TensorCoreConv#WGRAD_CHUNK}) summed into {@code workspace} (at least splits x M x Nd floats; 0 for one
     * slice) and added in order by the epilogue.
     *
     * <p>One slice is conv_tc_fwd_bf16 (a 1x1 convolution: a's rows are the pixels). Several are conv_tc_wgrad_bf16,
     * the kernel that already splits its summed pixels: c (M,Nd) = a (M,Kd) op(b) (Kd,Nd) is its dw (K = M, C = Nd)
     * with the Kd rows as pixels, once its "dy" is a^T (Kd,M) and its "x" op(b) row-major (Kd,Nd). nchw_to_nhwc_bf16
     * of one image with C = M and HW = Kd transposes a (M,Kd) into (Kd,M) while rounding it; op(b) is b^T (Nd,Kd)
     * transposed the same way for FORWARD, and b (Kd,Nd) only rounded for BACKWARD_DATA.
     */
    void product(TensorCoreConv.Launcher l, Pattern p, int m, int kd, int nd, long a, long b, double alpha,
                 double beta, long c, long workspace, int splits, int chunk) {
        if (p == Pattern.BACKWARD_FILTER) {
            throw new IllegalArgumentException("product runs FORWARD and BACKWARD_DATA; BACKWARD_FILTER is weightGradient");
        }
        long mn = (long) m * nd;
        if (splits > 1) {
            long at = TensorCoreConv.toNhwc(l, a, scratch.first, 1, m, m, kd);
            long bk = p == Pattern.FORWARD ? TensorCoreConv.toNhwc(l, b, scratch.weights, 1, nd, nd, kd)
                    : TensorCoreConv.toNhwc(l, b, scratch.weights, kd, nd, nd, 1);
            wgrad(l, m, kd, nd, bk, at, workspace, splits, chunk, false);
            epilogue(l, workspace, splits, mn, c, alpha, beta);
            return;
        }
        long ah = TensorCoreConv.toNhwc(l, a, scratch.first, m, kd, kd, 1);
        long bh = scratch.weights.atLeast(2L * kd * nd);
        if (p == Pattern.FORWARD) { // b (Nd,Kd) is the (K,1,1,C) weight layout already: round it
            l.elementwise("conv_tc_pack_weights_bf16", (long) nd * kd, KernelArgs.of().ptr(b).ptr(bh).i32(nd).i32(kd)
                    .i32(kd).i32(1).i32(1));
        } else { // b (Kd,Nd) transposed to (Nd,Kd): the flip of a 1x1 kernel with K = Kd, C = Nd
            l.elementwise("conv_tc_flip_weights_bf16", (long) nd * kd, KernelArgs.of().ptr(b).ptr(bh).i32(kd).i32(nd)
                    .i32(1).i32(1));
        }
        boolean direct = alpha == 1.0 && beta == 0.0;
        long out = direct ? c : scratch.output.atLeast(4L * mn);
        l.launch("conv_tc_fwd_bf16", TensorCoreConv.tiles(m), TensorCoreConv.tiles(nd), 1, KernelArgs.of().ptr(ah)
                .ptr(bh).ptr(0).ptr(out).i32(m).i32(1).i32(1).i32(kd).i32(nd).i32(1).i32(1).i32(0).i32(0));
        if (!direct) {
            epilogue(l, out, 1, mn, c, alpha, beta);
        }
    }

    /**
     * Whether the BACKWARD_FILTER GEMM in {@code splits} slices with this alpha and beta needs the split-K workspace:
     * not for one slice with alpha = 1 and beta 0 or 1 (a Linear layer's dw += dy^T x), which the kernel stores into
     * c or adds onto it itself -- for fc6 that is a workspace as large as its weights saved.
     */
    static boolean needsWorkspace(int splits, double alpha, double beta) {
        return !(splits == 1 && alpha == 1.0 && (beta == 0.0 || beta == 1.0));
    }

    /**
     * c (M,Nd) = alpha * a^T b + beta * c, a (Kd,M), b (Kd,Nd) (BACKWARD_FILTER): the Kd rows summed in {@code splits}
     * chunks of {@code chunk} rows (a multiple of {@link TensorCoreConv#WGRAD_CHUNK}) into {@code workspace} (at
     * least splits x M x Nd floats; 0 when {@link #needsWorkspace} is false), then added in order by the epilogue.
     */
    void weightGradient(TensorCoreConv.Launcher l, int m, int kd, int nd, long a, long b, double alpha, double beta,
                        long c, long workspace, int splits, int chunk) {
        long xh = TensorCoreConv.toNhwc(l, b, scratch.first, kd, nd, nd, 1);
        long dyh = TensorCoreConv.toNhwc(l, a, scratch.second, kd, m, m, 1);
        boolean direct = !needsWorkspace(splits, alpha, beta);
        wgrad(l, m, kd, nd, xh, dyh, direct ? c : workspace, splits, chunk, direct && beta == 1.0);
        if (!direct) {
            epilogue(l, workspace, splits, (long) m * nd, c, alpha, beta);
        }
    }

    /**
     * out (M,Nd) [+]= sum over the Kd rows of dyh (Kd,M)^T xh (Kd,Nd), both bf16: conv_tc_wgrad_bf16 at 1x1 with the
     * rows as pixels (K = M, C = Nd), in {@code splits} slices of {@code chunk} rows (slice z at out + z*M*Nd);
     * {@code accumulate} (one slice only) adds onto out instead of storing.
     */
    private static void wgrad(TensorCoreConv.Launcher l, int m, int kd, int nd, long xh, long dyh, long out,
                              int splits, int chunk, boolean accumulate) {
        if (chunk % TensorCoreConv.WGRAD_CHUNK != 0) {
            throw new IllegalArgumentException("split-K chunk " + chunk + " of conv_tc_wgrad_bf16 must be a multiple of "
                    + TensorCoreConv.WGRAD_CHUNK);
        }
        l.launch("conv_tc_wgrad_bf16", TensorCoreConv.tiles(nd), TensorCoreConv.tiles(m), splits, KernelArgs.of()
                .ptr(xh).ptr(dyh).ptr(out).i32(kd).i32(1).i32(1).i32(nd).i32(m).i32(1).i32(1).i32(0).i32(chunk)
                .i32(accumulate ? 1 : 0));
    }

    /** Output tiles of the BACKWARD_FILTER GEMM (M x Nd), for the split-K plan. */
    static int weightGradientTiles(int m, int nd) {
        return TensorCoreConv.tiles(m) * TensorCoreConv.tiles(nd);
    }

    /** c = alpha * (sum of the slices) [+ beta * c], gemm.cu's epilogue. */
    private static void epilogue(TensorCoreConv.Launcher l, long partial, int splits, long mn, long c, double alpha,
                                 double beta) {
        l.elementwise("elementwise", "splitk_gemm_epilogue", mn, KernelArgs.of().ptr(partial).i32(splits).i64(mn)
                .ptr(c).f32((float) alpha).f32((float) beta));
    }
}
