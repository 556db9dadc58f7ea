package org.vgg4j.core.backend.cpu;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.vgg4j.core.backend.CpuPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * The convolutions of the {@code cpu} backend: which engine takes a call ({@link Routing}), slicing a batch into
 * groups of whole images, the three engines ({@link DnnlConv}, {@link Nd4jConv}, {@link GemmConv}) and their scratch
 * buffers. Legend: N batch, C in, K out, H/W in, P/Q out, R/S kernel.
 *
 * <p>What it is: stride-1 convolution with the SPI's semantics (y and dx overwritten, dw and db accumulated), the
 * fused backward included ({@link #backward}: both gradients of one dy in one engine call where the engine has
 * one). What it is not: a check of its arguments ({@link CpuBackend} checks that the tensors are its own and share
 * a dtype before it calls in) or thread-safe (one instance per backend instance).
 *
 * <p>Two kinds of call take a GEMM whatever the routing: an inference convolution whose weight outweighs its data
 * ({@link #weightOutweighsData}: dense evaluation's classifier) and, where the direct engine runs, the filter
 * gradient of maps smaller than the kernel ({@link #filterAsGemm}).
 *
 * <p>Where ND4J's ops still run: only where {@link DnnlConv} does not take the call and ND4J's natives are the
 * -onednn ones. (1) float32 where oneDNN's own natives do not load: there ND4J's oneDNN ops beat {@link GemmConv}
 * on every VGG layer but those with few inputs or tiny images (docs/benchmarks.md, "Decision 2"); where the direct
 * engine loads it beats ND4J's ops on every float32 layer ("Decision 3"), so AUTO then never sends float32 to
 * ND4J. (2) float64 (oneDNN has no float64 convolution), which keeps the engine it had before the direct one; no
 * float64 figure exists, and changing it would change float64 results. The forced ND4J routing is (1) on demand,
 * for comparisons and for the tests of that fallback.
 */
final class ConvEngine implements AutoCloseable {

    /**
     * Which engine a convolution takes ({@code -Dvgg4j.cpu.conv}, see {@link CpuBackend.Options}):
     * <pre>
     *   routing  float32 convolution                                   float64 convolution
     *   AUTO     direct oneDNN ({@link DnnlConv}) if its natives load;  as ND4J below if the -onednn natives are
     *            without them, as ND4J below / GemmConv                 loaded, else GemmConv
     *   DNNL     direct oneDNN for every call                           as AUTO
     *   ND4J     ND4J's ops (oneDNN 2.3 inside libnd4jcpu), except C*R*S < {@link #FEW_INPUTS} and
     *            P*Q <= {@link #SMALL_IMAGE} -> GemmConv (both dtypes): AUTO's fallback, forced
     *   GEMM     GemmConv (im2col + OpenBLAS) for every call (both dtypes): the plain natives' engine, forced
     * </pre>
     * AUTO sends every float32 call to oneDNN, even where GemmConv alone is faster (W3's 2x2 layers): OpenBLAS's
     * spinning threads slow the next oneDNN call more than GemmConv saves (docs/benchmarks.md, "One thread pool").
     */
    enum Routing { AUTO, DNNL, ND4J, GEMM }

    private enum Engine { DNNL, ND4J, GEMM }

    /**
     * A convolution with fewer inputs per output than this (C*R*S; VGG's first layer has 27) goes through
     * {@link GemmConv} in ND4J's routing: oneDNN's NCHW kernels crawl there (docs/benchmarks.md, "Decision 2").
     */
    static final int FEW_INPUTS = 32;

    /**
     * Output images of at most this many pixels (P*Q; 8x8 and below) also go through {@link GemmConv} in ND4J's
     * routing: it groups many images into one large GEMM, where oneDNN's backward on tiny NCHW images is slower
     * (docs/benchmarks.md, "Decision 2").
     */
    static final int SMALL_IMAGE = 64;

    private final Routing routing;
    /** True: ND4J's ops are the oneDNN ones (the -onednn natives), so ND4J may take float64 / fallback calls. */
    private final boolean nd4jOps;
    private final long sliceElements;
    private final long unfusedMaxPixels;
    /** The direct oneDNN engine, or null where routing never takes it or its natives do not load. */
    private final DnnlConv dnnl;

    private final Scratch dwScratch = new Scratch(); // (K,C,R,S) gradient before it is added to dw
    private final Scratch dbScratch = new Scratch(); // (K)
    private final Scratch colScratch = new Scratch(); // (C*R*S, G*P*Q) im2col of G images (GemmConv)
    private final Scratch outScratch = new Scratch(); // (K, G*P*Q) GemmConv's grouped output / gathered dy
    private final GemmConv.Work gemmWork;
    /**
     * {@link GemmConv} work through oneDNN's sgemm, on the convolutions' threads, or in BF16 through the bf16 matmul
     * under the FC layers' rule ({@link CpuBackend#BF16_GEMM_MIN_DIM}): the filter gradient of small maps
     * ({@link #filterAsGemm}) and the inference convolutions whose weight outweighs their data
     * ({@link #weightOutweighsData}).
     */
    private final GemmConv.Work dnnlGemmWork;
    private final boolean smallMapFilter;
    private final boolean bf16;

    /** @param nd4jOps whether ND4J's ops are oneDNN's (the -onednn natives are loaded, or ND4J routing is forced) */
    ConvEngine(CpuBackend.Options options, boolean nd4jOps, DnnlMatmul bf16Gemm) {
        this.routing = options.routing();
        this.nd4jOps = nd4jOps;
        this.sliceElements = options.sliceElements();
        this.unfusedMaxPixels = options.unfusedMaxPixels();
        this.gemmWork = new GemmConv.Work(colScratch, outScratch, options.colElements());
        if (routing == Routing.DNNL && !DnnlConv.available()) {
            throw new IllegalStateException("vgg4j.cpu.conv=dnnl: oneDNN's natives (org.bytedeco:dnnl) do not load"
                    + " here; use auto, nd4j or gemm");
        }
        boolean wantDnnl = routing == Routing.DNNL || routing == Routing.AUTO;
        if (options.precision() == CpuPrecision.BF16 && !(wantDnnl && DnnlConv.available())) {
            throw new IllegalStateException("vgg4j.cpu.precision=bf16 needs the direct oneDNN engine; routing "
                    + describe() + " does not have it"); // CpuBackend.resolve says why before this is reached
        }
        this.dnnl = wantDnnl && DnnlConv.available()
                ? new DnnlConv(options.dnnlBwdWeights(), options.dnnlWinograd().equals("auto"),
                        options.precision() == CpuPrecision.BF16) : null;
        GemmConv.F32Gemm f32 = (ta, tb, m, n, k, a, ao, lda, b, bo, ldb, beta, c, co, ldc) -> {
            if (bf16Gemm == null || !CpuBackend.bf16GemmSize(m, n, k)) {
                DnnlConv.sgemm(ta, tb, m, n, k, 1f, a.floatAt(ao), lda, b.floatAt(bo), ldb, beta, c.floatAt(co), ldc);
                return;
            }
            if (lda != (ta ? m : k) || ldb != (tb ? k : n) || ldc != n) { // the matmul takes dense matrices
                throw new IllegalArgumentException("bf16 GEMM on strided matrices: lda " + lda + ", ldb " + ldb
                        + ", ldc " + ldc + " for " + m + "x" + n + "x" + k);
            }
            bf16Gemm.gemm(ta, tb, m, n, k, 1f, DnnlConv.at(a.address(), ao), DnnlConv.at(b.address(), bo), beta,
                    DnnlConv.at(c.address(), co));
        };
        this.dnnlGemmWork = new GemmConv.Work(colScratch, outScratch, options.colElements(), f32);
        this.smallMapFilter = options.dnnlBwdWeights().equals("auto");
        this.bf16 = bf16Gemm != null;
    }

    /**
     * Whether an inference convolution (no memo) runs as im2col + one GEMM over its weight as it lies: no padding,
     * and more weight elements than the batch's input and output together. Dense evaluation's classifier as
     * convolutions (FC6 7x7 onto 1x1 or 6x6 maps, FC7 and FC8 as 1x1): a convolution primitive would first reorder
     * the whole weight into its blocked layout on every call, for FC6 a second 392 MiB copy, and at 224 more time
     * than the product (docs/benchmarks.md). VGG's 3x3 layers (padding 1) never qualify.
     */
    private static boolean weightOutweighsData(Tensor x, Tensor w, Tensor y, int pad) {
        return pad == 0 && w.size() > x.size() + y.size();
    }

    /**
     * Whether the filter gradient of a direct-engine convolution runs as {@link GemmConv#backwardFilterSmall}: on
     * maps of fewer pixels than the kernel has taps, where backward-weights is left to the backend ({@code auto}).
     */
    private boolean filterAsGemm(Tensor x, Tensor dw) {
        return smallMapFilter && GemmConv.smallMap(x.dim(2), x.dim(3), dw.dim(2), dw.dim(3));
    }

    private void gemmFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad) {
        GemmConv.backwardFilterSmall(x, st(x), dy, st(dy), dw, st(dw), pad, dnnlGemmWork);
        if (db != null) { // in BF16 from dy's bf16 values, as the primitives' bias gradient
            BufLoops.biasBackward(st(dy).buf, off(dy), dy.dim(0), dy.dim(1), n(dy) / (dy.dim(0) * dy.dim(1)),
                    st(db).buf, off(db), bf16);
        }
    }

    /** Which routing this instance uses: "auto+dnnl", "auto", "dnnl", "nd4j" or "gemm". */
    String describe() {
        return routing.name().toLowerCase(java.util.Locale.ROOT)
                + (routing == Routing.AUTO && dnnl != null ? "+dnnl" : "");
    }

    /** The direct oneDNN engine (null when absent). */
    DnnlConv dnnl() {
        return dnnl;
    }

    // ------------------------------------------------------------------------------------------ the four calls

    /** y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C,R,S)) + b (K) or no bias (null). */
    void forward(Tensor x, Tensor w, Tensor b, Tensor y, int pad) {
        forward(x, w, b, y, pad, false, null);
    }

    /**
     * y = max(conv(x, w) + b, 0): in the same oneDNN primitive (an eltwise post-op, see {@link DnnlConv#forward})
     * where {@link DnnlConv} takes the call, else the convolution then ReLU in place over y.
     */
    void forwardRelu(Tensor x, Tensor w, Tensor b, Tensor y, int pad) {
        forward(x, w, b, y, pad, true, null);
    }

    /** A memo for one convolution layer: the direct engine's {@link DnnlConv.Kept}, or null without that engine. */
    DnnlConv.Kept newMemo() {
        return dnnl == null ? null : dnnl.newKept();
    }

    /**
     * {@link #forwardRelu} when relu, else {@link #forward}; where {@link DnnlConv} takes the call, its blocked x
     * goes into {@code memo} (null: none) for {@link #backward}'s backward-weights.
     */
    void forward(Tensor x, Tensor w, Tensor b, Tensor y, int pad, boolean relu, DnnlConv.Kept memo) {
        Engine e = engineFor(w, y);
        if (memo == null && weightOutweighsData(x, w, y, pad)) {
            GemmConv.forward(x, st(x), w, st(w), b, b == null ? null : st(b), y, st(y), pad,
                    e == Engine.DNNL ? dnnlGemmWork : gemmWork);
            if (relu) {
                BufLoops.reluForward(y, y);
            }
            return;
        }
        if (e == Engine.DNNL) {
            CpuStorage.of(y);
            dnnl.forward(addr(x), addr(w), b == null ? null : addr(b), addr(y), x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                    w.dim(0), w.dim(2), w.dim(3), pad, sliceImages(x, y), relu, memo);
            return;
        }
        unfusedForward(x, w, b, y, pad, e);
        if (relu) {
            BufLoops.reluForward(y, y);
        }
    }

    private void unfusedForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad, Engine e) {
        if (e == Engine.GEMM) {
            GemmConv.forward(x, st(x), w, st(w), b, b == null ? null : st(b), y, st(y), pad, gemmWork);
            return;
        }
        INDArray wv = nd(w);
        INDArray bv = b == null ? null : nd(b);
        int nb = x.dim(0);
        int step = sliceImages(x, y);
        for (int n0 = 0; n0 < nb; n0 += step) {
            int count = Math.min(step, nb - n0);
            Nd4jConv.forward(nd(images(x, n0, count)), wv, bv, nd(images(y, n0, count)), pad);
        }
    }

    /** dx (N,C,H,W) = conv_transpose(dy (N,K,P,Q), w (K,C,R,S)), overwritten. */
    void backwardData(Tensor dy, Tensor w, Tensor dx, int pad) {
        Engine e = engineFor(w, dy);
        if (e == Engine.DNNL) {
            dnnl.backward(null, addr(w), addr(dy), addr(dx), null, null, null, dx.dim(0), dx.dim(1), dx.dim(2),
                    dx.dim(3), w.dim(0), w.dim(2), w.dim(3), pad, sliceImages(dx, dy), null);
            return;
        }
        if (e == Engine.GEMM) {
            GemmConv.backwardData(dy, st(dy), w, st(w), dx, st(dx), pad, gemmWork);
            return;
        }
        INDArray wv = nd(w);
        int nb = dy.dim(0);
        int step = sliceImages(dx, dy);
        for (int n0 = 0; n0 < nb; n0 += step) {
            int count = Math.min(step, nb - n0);
            Nd4jConv.backwardData(nd(images(dy, n0, count)), wv, nd(images(dx, n0, count)), pad);
        }
    }

    /**
     * dw (K,C,R,S) += corr(x (N,C,H,W), dy (N,K,P,Q)), db (K) += sum of dy (null: none), on its own:
     * {@link DnnlConv}'s backward-weights, else im2col + GEMM ({@link GemmConv}): ND4J has no filter-only op.
     */
    void backwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad) {
        backwardFilter(x, dy, dw, db, pad, null);
    }

    private void backwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad, DnnlConv.Kept memo) {
        if (engineFor(dw, dy) == Engine.DNNL && filterAsGemm(x, dw)) {
            gemmFilter(x, dy, dw, db, pad);
            return;
        }
        if (engineFor(dw, dy) == Engine.DNNL) {
            dnnlBackward(x, null, dy, null, dw, db, pad, memo);
            return;
        }
        GemmConv.backwardFilter(x, st(x), dy, st(dy), dw, st(dw), pad, gemmWork);
        if (db != null) {
            BufLoops.biasBackward(st(dy).buf, off(dy), dy.dim(0), dy.dim(1), n(dy) / (dy.dim(0) * dy.dim(1)),
                    st(db).buf, off(db));
        }
    }

    /**
     * Both gradients of one dy: dw += filter gradient, db += bias gradient (null: none), then dx = data gradient
     * (overwritten; null: filter gradient only). In ONE engine call where the engine has one: {@link DnnlConv}
     * (the two primitives share the reordered dy) and ND4J's {@code conv2d_bp}, except output images of at most
     * {@code unfusedMaxPixels} in ND4J (see {@link CpuBackend.Options}); GemmConv computes the two separately.
     */
    void backward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad) {
        backward(x, w, dy, dx, dw, db, pad, null);
    }

    /** {@link #backward} taking x's blocked copy from the memo of its forward where it holds it (null: none). */
    void backward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad, DnnlConv.Kept memo) {
        Engine e = engineFor(dw, dy);
        if (dx == null) {
            backwardFilter(x, dy, dw, db, pad, memo);
        } else if (e == Engine.DNNL && filterAsGemm(x, dw)) {
            gemmFilter(x, dy, dw, db, pad);
            backwardData(dy, w, dx, pad);
        } else if (e == Engine.DNNL) {
            dnnlBackward(x, w, dy, dx, dw, db, pad, memo);
        } else if (e == Engine.ND4J && (long) dy.dim(2) * dy.dim(3) > unfusedMaxPixels) {
            nd4jBackward(x, w, dy, dx, dw, db, pad);
        } else {
            backwardFilter(x, dy, dw, db, pad);
            backwardData(dy, w, dx, pad);
        }
    }

    // ------------------------------------------------------------------------------------------ routing, slicing

    /** The engine of a convolution with weights (K,C,R,S) and output (N,K,P,Q): the table of {@link Routing}. */
    private Engine engineFor(Tensor w, Tensor y) {
        long pixels = (long) y.dim(2) * y.dim(3);
        if (dnnl != null && w.dtype() == DType.FLOAT32) {
            return Engine.DNNL;
        }
        if (routing == Routing.GEMM || !nd4jOps || w.size() / w.dim(0) < FEW_INPUTS || pixels <= SMALL_IMAGE) {
            return Engine.GEMM;
        }
        return Engine.ND4J;
    }

    /**
     * Images per convolution call so that no activation of the slice exceeds {@code sliceElements} (oneDNN's
     * blocked copies of a whole batch would raise the peak memory; see {@link CpuBackend.Options}).
     */
    private int sliceImages(Tensor x, Tensor y) {
        long perImage = Math.max(x.size() / x.dim(0), y.size() / y.dim(0));
        return (int) Math.max(1, Math.min(x.dim(0), sliceElements / perImage));
    }

    /** Images [n0, n0 + count) of an (N, ...) tensor, as a view. */
    private static Tensor images(Tensor t, int n0, int count) {
        int[] dims = t.shape().dims();
        long perImage = t.size() / dims[0];
        dims[0] = count;
        return t.view(n0 * perImage, Shape.of(dims));
    }

    // ------------------------------------------------------------------------------------------ engines

    /**
     * Filter-only (w and dx null) or fused backward through {@link DnnlConv}: dw (and db) accumulated, dx (if not
     * null) overwritten.
     */
    private void dnnlBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad,
                              DnnlConv.Kept memo) {
        CpuStorage dbTmp = db == null ? null : dbScratch.get(DType.FLOAT32, db.size());
        Runnable addDb = dbTmp == null ? null : () -> BufLoops.accumulate(dbTmp.buf, 0, st(db).buf, off(db), n(db));
        dnnl.backward(addr(x), w == null ? null : addr(w), addr(dy), dx == null ? null : addr(dx), addr(dw),
                dbTmp == null ? null : DnnlConv.at(dbTmp.address(), 0), addDb, x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                dw.dim(0), dw.dim(2), dw.dim(3), pad, sliceImages(x, dy), memo);
    }

    /**
     * Fused backward through ND4J's {@code conv2d_bp}, slice by slice: dx overwritten, dw and db accumulated via
     * scratch (ND4J overwrites its outputs).
     */
    private void nd4jBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad) {
        CpuStorage dwTmp = dwScratch.get(dw.dtype(), dw.size());
        CpuStorage dbTmp = db == null ? null : dbScratch.get(db.dtype(), db.size());
        INDArray wv = nd(w);
        int nb = x.dim(0);
        int step = sliceImages(x, dy);
        for (int n0 = 0; n0 < nb; n0 += step) {
            int count = Math.min(step, nb - n0);
            Nd4jConv.backward(nd(images(x, n0, count)), wv, nd(images(dy, n0, count)), nd(images(dx, n0, count)),
                    nd(dwTmp, dw.shape()), dbTmp == null ? null : nd(dbTmp, db.shape()), pad);
            BufLoops.accumulate(dwTmp.buf, 0, st(dw).buf, off(dw), n(dw));
            if (db != null) {
                BufLoops.accumulate(dbTmp.buf, 0, st(db).buf, off(db), n(db));
            }
        }
    }

    // ------------------------------------------------------------------------------------------ views

    private static CpuStorage st(Tensor t) {
        return CpuStorage.of(t);
    }

    private static int off(Tensor t) {
        return Math.toIntExact(t.offset());
    }

    private static int n(Tensor t) {
        return Math.toIntExact(t.size());
    }

    /** The float32 address of element 0 of a tensor's storage (tensor offsets are added by the callee). */
    private static org.bytedeco.javacpp.Pointer addr(Tensor t) {
        return DnnlConv.at(st(t).address(), t.offset());
    }

    /** An ND4J view of t (same memory, t's offset and shape, row-major). */
    private static INDArray nd(Tensor t) {
        CpuStorage s = st(t);
        long[] shape = new long[t.rank()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = t.dim(i);
        }
        return Nd4j.create(s.base.data(), shape, Nd4j.getStrides(shape, 'c'), t.offset(), 'c', s.ndType);
    }

    /** An ND4J view of the first prod(shape) elements of a scratch storage. */
    private static INDArray nd(CpuStorage s, Shape shape) {
        long[] dims = new long[shape.rank()];
        for (int i = 0; i < dims.length; i++) {
            dims[i] = shape.dim(i);
        }
        return Nd4j.create(s.base.data(), dims, Nd4j.getStrides(dims, 'c'), 0, 'c', s.ndType);
    }

    /** Frees every scratch buffer and the oneDNN engine's primitives and buffers now; they are re-created if used. */
    @Override
    public void close() {
        dwScratch.release();
        dbScratch.release();
        colScratch.release();
        outScratch.release();
        if (dnnl != null) {
            dnnl.close();
        }
    }
}
