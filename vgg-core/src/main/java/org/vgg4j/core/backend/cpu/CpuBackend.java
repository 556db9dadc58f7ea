package org.vgg4j.core.backend.cpu;

import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.cblas_dgemm;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendTensors;
import org.vgg4j.core.backend.DropoutRng;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * The fast CPU backend: oneDNN called directly ({@link DnnlConv}) for float32 convolution, ND4J's ops or
 * im2col + OpenBLAS ({@link GemmConv}) for the rest (the table in {@link ConvRouting}); for GEMM oneDNN's sgemm where
 * DnnlConv is present (one OpenMP pool for all float32 work: {@link DnnlConv#sgemm}), else OpenBLAS, and OpenBLAS
 * dgemm for float64; and multi-threaded Java loops over native memory for the memory-bound ops. FLOAT32 and FLOAT64.
 *
 * <p>Dimension legend: N batch, C in-channels, K out-channels, H/W input, P/Q output, R/S kernel, F features.
 *
 * <p>What it is: an implementation of the {@link Backend} SPI whose semantics are the {@code reference} backend's
 * (parity tests in src/test/.../backend/cpu). What it is not: thread-safe; one instance serves one thread.
 *
 * <p>One deferral, invisible from outside: {@link #conv2dBackwardFilter} only records its arguments; the next
 * call runs it. When that call is {@link #conv2dBackwardData} for the same dy (as in {@code Conv2d.backward}),
 * both gradients come from ONE fused call (ND4J's conv2d_bp; in {@link DnnlConv} the two primitives share the
 * reordered dy), which is faster than two separate ones (except on small images in ND4J,
 * {@link #UNFUSED_MAX_PIXELS}, where the filter gradient runs at once); any other call first
 * runs the recorded filter gradient on its own ({@link DnnlConv}'s backward-weights, or im2col + sgemm: ND4J has
 * no filter-only op). Every public method therefore starts with
 * {@link #flush()}.
 *
 * <p>Determinism: every element of every Java loop is computed by one thread in a fixed order, reductions sum
 * fixed-size chunks in index order, and OpenBLAS and oneDNN split output tiles across threads, not sums, so
 * a step with the same inputs gives the same bits run after run.
 */
public final class CpuBackend implements Backend {

    /** The recorded {@link #conv2dBackwardFilter} call, waiting to be fused or flushed. */
    private record PendingFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad) {
    }

    /**
     * Largest activation (elements) one convolution call hands to oneDNN; bigger batches go in slices of whole
     * images. oneDNN reorders NCHW to its blocked layout in temporary copies of x, y (and dy, dx): unsliced,
     * VGG-16's 224x224 layers at batch 4 need ~150 MB of them at once; every slice is one more call with its own
     * reorders and thread fork/joins. 8 M elements (W1: 64ch@224 in two calls of 2 images, everything smaller
     * whole) measured W1 at the same peak RSS as 4 M (2503-2504 vs 2505-2507 MiB) with ~10 % less CPU per
     * step; unsliced (16 M) grew the peak by ~55 MiB (docs/benchmarks.md). -Dvgg4j.cpu.convSliceElements=N.
     */
    static final long SLICE_ELEMENTS = Long.getLong("vgg4j.cpu.convSliceElements", 1L << 23);

    private final long sliceElements;

    /**
     * A convolution with fewer inputs per output than this (C*R*S; VGG's first layer has 27) goes through
     * {@link GemmConv} even where oneDNN is present: oneDNN's NCHW kernels run at a few GFLOP/s there.
     */
    static final int FEW_INPUTS = 32;

    /**
     * Output images of at most this many pixels (P*Q; 8x8 and below: VGG at 32x32 after two poolings) also go
     * through {@link GemmConv}: it groups many images into one large GEMM, where oneDNN's backward on tiny NCHW
     * images measured 2-6x slower (docs/benchmarks.md).
     */
    static final int SMALL_IMAGE = 64;

    /**
     * Output images of at most this many pixels (P*Q; 14x14 = 196: VGG's last block at 224) are NOT given the fused
     * oneDNN backward: their filter gradient goes through {@link GemmConv} at once and their data gradient through
     * ND4J's deconv2d. There oneDNN picks a Winograd backward-weights with a fresh 60-140 MiB scratchpad per call
     * (DNNL_VERBOSE: 29-124 ms against ~15 ms for the same layer's backward-data); the split measured 0.17-0.28 s
     * for W1's three 14x14 backward passes against 0.25-0.40 s fused, and ~70k fewer page faults per step
     * (docs/benchmarks.md). The whole W1 step did not measurably move (0.93x -> 0.95x of PyTorch, within the noise)
     * and the split changes the rounding of those layers, so it is opt-in: -Dvgg4j.cpu.unfusedMaxPixels=196
     * (default 0: the fused call for every layer).
     */
    static final long UNFUSED_MAX_PIXELS = Long.getLong("vgg4j.cpu.unfusedMaxPixels", 0L);

    /**
     * Which convolution engine a call takes ({@code -Dvgg4j.cpu.conv}, read by {@link CpuBackendProvider}):
     * <pre>
     *   routing  float32 convolution                                   float64 convolution
     *   AUTO     direct oneDNN ({@link DnnlConv}) if its natives load;  as ND4J below if the -onednn natives are
     *            without them, as ND4J below / GemmConv                 loaded, else GemmConv
     *   DNNL     direct oneDNN for every call                           as AUTO
     *   ND4J     ND4J's ops (oneDNN 2.3 inside libnd4jcpu), except C*R*S < {@link #FEW_INPUTS} and
     *            P*Q <= {@link #SMALL_IMAGE} -> GemmConv (both dtypes)
     *   GEMM     GemmConv (im2col + OpenBLAS) for every call (both dtypes)
     * </pre>
     * Measured (docs/benchmarks.md, "Decision 3: oneDNN called directly"): on W1's layers the direct engine took 0.68-0.80x the
     * time of the ND4J routing in total, and was faster on every layer shape of W1 and W3 but 512->512@2 in
     * isolation; in a whole W3 step, though, GemmConv there cost more than it saved (its OpenBLAS threads spin after
     * each call and take a core from the next oneDNN call: W3 step 0.58-0.60 s with every layer in oneDNN against
     * 0.64-0.74 s), so AUTO sends every float32 call to oneDNN, and float32 GEMM too ({@link DnnlConv#sgemm}).
     */
    enum ConvRouting { AUTO, DNNL, ND4J, GEMM }

    private enum Engine { DNNL, ND4J, GEMM }

    private final ConvRouting routing;
    /** True: ND4J's ops are the oneDNN ones (the -onednn natives), so ND4J may take float64 / fallback calls. */
    private final boolean nd4jConv;
    private final long unfusedMaxPixels; // see UNFUSED_MAX_PIXELS
    /** The direct oneDNN engine, or null where routing never takes it or its natives do not load. */
    private final DnnlConv dnnl;

    private PendingFilter pending;
    private final Scratch dwScratch = new Scratch(); // (K,C,R,S) gradient before it is added to dw
    private final Scratch dbScratch = new Scratch(); // (K)
    private final Scratch colScratch = new Scratch(); // (C*R*S, G*P*Q) im2col of G images (GemmConv)
    private final Scratch outScratch = new Scratch(); // (K, G*P*Q) GemmConv's grouped output / gathered dy
    private final GemmConv.Work gemmWork;

    /**
     * @param sliceElements see {@link #SLICE_ELEMENTS} (tests use a tiny one to exercise slicing)
     * @param nd4jConv      true: routing ND4J (ND4J's ops with the oneDNN natives); false: GEMM
     */
    CpuBackend(long sliceElements, boolean nd4jConv) {
        this(sliceElements, nd4jConv, GemmConv.COL_ELEMENTS);
    }

    /** @param colElements bound on GemmConv's col buffer (tests use 1: one image per GEMM) */
    CpuBackend(long sliceElements, boolean nd4jConv, long colElements) {
        this(sliceElements, nd4jConv, colElements, UNFUSED_MAX_PIXELS);
    }

    /** @param unfusedMaxPixels see {@link #UNFUSED_MAX_PIXELS} (tests set 196 to exercise the split backward) */
    CpuBackend(long sliceElements, boolean nd4jConv, long colElements, long unfusedMaxPixels) {
        this(sliceElements, nd4jConv ? ConvRouting.ND4J : ConvRouting.GEMM, nd4jConv, colElements, unfusedMaxPixels);
    }

    /**
     * @param routing  see {@link ConvRouting}
     * @param nd4jConv whether ND4J's ops are oneDNN's (the -onednn natives are loaded)
     */
    CpuBackend(long sliceElements, ConvRouting routing, boolean nd4jConv, long colElements, long unfusedMaxPixels) {
        this(sliceElements, routing, nd4jConv, colElements, unfusedMaxPixels, DnnlConv.BWD_WEIGHTS);
    }

    /** @param dnnlBwdWeights see {@link DnnlConv#BWD_WEIGHTS}: auto, direct or winograd (tests run each) */
    CpuBackend(long sliceElements, ConvRouting routing, boolean nd4jConv, long colElements, long unfusedMaxPixels,
               String dnnlBwdWeights) {
        this.unfusedMaxPixels = unfusedMaxPixels;
        this.sliceElements = sliceElements;
        this.routing = routing;
        this.nd4jConv = nd4jConv;
        this.gemmWork = new GemmConv.Work(colScratch, outScratch, colElements);
        boolean wantDnnl = routing == ConvRouting.DNNL || routing == ConvRouting.AUTO;
        if (routing == ConvRouting.DNNL && !DnnlConv.available()) {
            throw new IllegalStateException("vgg4j.cpu.conv=dnnl: oneDNN's natives (org.bytedeco:dnnl) do not load"
                    + " here; use auto, nd4j or gemm");
        }
        this.dnnl = wantDnnl && DnnlConv.available() ? new DnnlConv(dnnlBwdWeights) : null;
    }

    /** Which convolution routing this instance uses: "auto+dnnl", "auto", "dnnl", "nd4j" or "gemm". */
    public String convolutionEngine() {
        return routing.name().toLowerCase(java.util.Locale.ROOT)
                + (routing == ConvRouting.AUTO && dnnl != null ? "+dnnl" : "");
    }

    /** The direct oneDNN engine (null when absent): for tests. */
    DnnlConv dnnl() {
        return dnnl;
    }

    /** Native bytes held by the direct oneDNN engine's work buffers (0 when closed or absent): for tests. */
    long dnnlWorkBytes() {
        return dnnl == null ? 0 : dnnl.workBytes();
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public boolean supports(DType dtype) {
        return dtype == DType.FLOAT32 || dtype == DType.FLOAT64;
    }

    // ------------------------------------------------------------------------------------------ helpers

    private CpuStorage st(Tensor t) {
        if (t.backend() != this) {
            throw new IllegalArgumentException(t + " belongs to another backend instance than this 'cpu' one");
        }
        CpuStorage s = (CpuStorage) t.storage();
        s.check();
        return s;
    }

    private Buf buf(Tensor t) {
        return st(t).buf;
    }

    private static int off(Tensor t) {
        return Math.toIntExact(t.offset());
    }

    private static int n(Tensor t) {
        return Math.toIntExact(t.size());
    }

    private static void sameDtype(Tensor... ts) {
        for (Tensor t : ts) {
            if (t != null && t.dtype() != ts[0].dtype()) {
                throw new IllegalArgumentException("tensors of one call must share a dtype: " + ts[0] + " and " + t);
            }
        }
    }

    /** An ND4J view of t (same memory, t's offset and shape, row-major). */
    private INDArray nd(Tensor t) {
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

    /**
     * Runs a recorded filter gradient, if any, on its own (see the class comment) with {@link GemmConv}: ND4J has
     * no filter-only op, and this case is VGG's first layer (C = 3), where GEMM is also the faster engine.
     */
    private void flush() {
        PendingFilter p = pending;
        if (p == null) {
            return;
        }
        pending = null;
        if (engineFor(p.dw, p.dy) == Engine.DNNL) {
            dnnlBackward(p, null, null);
            return;
        }
        GemmConv.backwardFilter(p.x, st(p.x), p.dy, st(p.dy), p.dw, st(p.dw), p.pad, gemmWork);
        if (p.db != null) {
            biasBackward(p.dy, p.db);
        }
    }

    /** The engine of a convolution with weights (K,C,R,S) and output (N,K,P,Q): the table of {@link ConvRouting}. */
    private Engine engineFor(Tensor w, Tensor y) {
        long pixels = (long) y.dim(2) * y.dim(3);
        if (dnnl != null && w.dtype() == DType.FLOAT32) {
            return Engine.DNNL;
        }
        if (routing == ConvRouting.GEMM || !nd4jConv || w.size() / w.dim(0) < FEW_INPUTS || pixels <= SMALL_IMAGE) {
            return Engine.GEMM;
        }
        return Engine.ND4J;
    }

    /** The float32 address of element 0 of a tensor's storage (tensor offsets are added by the callee). */
    private org.bytedeco.javacpp.Pointer addr(Tensor t) {
        return DnnlConv.at(st(t).address(), t.offset());
    }

    /** Fused or filter-only backward through {@link DnnlConv}: dw (and db) accumulated, dx (if not null) overwritten. */
    private void dnnlBackward(PendingFilter p, Tensor w, Tensor dx) {
        Tensor x = p.x;
        Tensor dy = p.dy;
        CpuStorage dbTmp = p.db == null ? null : dbScratch.get(DType.FLOAT32, p.db.size());
        Runnable addDb = dbTmp == null ? null : () -> accumulate(dbTmp.buf, 0, buf(p.db), off(p.db), n(p.db));
        dnnl.backward(addr(x), w == null ? null : addr(w), addr(dy), dx == null ? null : addr(dx), addr(p.dw),
                dbTmp == null ? null : DnnlConv.at(dbTmp.address(), 0), addDb, x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                p.dw.dim(0), p.dw.dim(2), p.dw.dim(3), p.pad, sliceImages(x, dy));
    }

    /** Images per convolution call so that no activation of the slice exceeds {@link #sliceElements}. */
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

    /**
     * Fused backward of a recorded filter gradient, slice by slice: dx overwritten, dw and db accumulated via
     * scratch (ND4J overwrites its outputs).
     */
    private void runFusedBackward(PendingFilter p, Tensor w, Tensor dx) {
        CpuStorage dwTmp = dwScratch.get(p.dw.dtype(), p.dw.size());
        CpuStorage dbTmp = p.db == null ? null : dbScratch.get(p.db.dtype(), p.db.size());
        INDArray wv = nd(w);
        int nb = p.x.dim(0);
        int step = sliceImages(p.x, p.dy);
        for (int n0 = 0; n0 < nb; n0 += step) {
            int count = Math.min(step, nb - n0);
            Nd4jConv.backward(nd(images(p.x, n0, count)), wv, nd(images(p.dy, n0, count)), nd(images(dx, n0, count)),
                    nd(dwTmp, p.dw.shape()), dbTmp == null ? null : nd(dbTmp, p.db.shape()), p.pad);
            accumulate(dwTmp.buf, 0, buf(p.dw), off(p.dw), n(p.dw));
            if (p.db != null) {
                accumulate(dbTmp.buf, 0, buf(p.db), off(p.db), n(p.db));
            }
        }
    }

    /** dst[d0 + i] += src[s0 + i] for i in [0, count). */
    private static void accumulate(Buf src, int s0, Buf dst, int d0, int count) {
        Parallel.forRange(count, 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                dst.set(d0 + i, dst.get(d0 + i) + src.get(s0 + i));
            }
        });
    }

    // ------------------------------------------------------------------------------------------ memory

    @Override
    public Tensor allocate(DType dtype, Shape shape) {
        flush();
        if (!supports(dtype)) {
            throw new IllegalArgumentException("backend 'cpu' does not compute in " + dtype);
        }
        return BackendTensors.wrap(this, dtype, shape, new CpuStorage(dtype, shape.size()), 0);
    }

    /** Frees the whole allocation when given its base (or a full-size reshape of it); views are a no-op. */
    @Override
    public void free(Tensor t) {
        flush();
        CpuStorage s = (CpuStorage) t.storage();
        if (t.offset() == 0 && t.size() == s.buf.capacity()) {
            s.free();
        }
    }

    @Override
    public void copyIn(float[] host, int hostOffset, Tensor t) {
        flush();
        Buf b = buf(t);
        int n = n(t);
        if (b instanceof Buf.F32 f) {
            f.b.duplicate().position(off(t)).put(host, hostOffset, n);
        } else {
            for (int i = 0, o = off(t); i < n; i++) {
                b.set(o + i, host[hostOffset + i]);
            }
        }
    }

    @Override
    public void copyIn(double[] host, int hostOffset, Tensor t) {
        flush();
        Buf b = buf(t);
        int n = n(t);
        if (b instanceof Buf.F64 f) {
            f.b.duplicate().position(off(t)).put(host, hostOffset, n);
        } else {
            for (int i = 0, o = off(t); i < n; i++) {
                b.set(o + i, host[hostOffset + i]);
            }
        }
    }

    @Override
    public void copyOut(Tensor t, float[] host, int hostOffset) {
        flush();
        Buf b = buf(t);
        int n = n(t);
        if (b instanceof Buf.F32 f) {
            f.b.duplicate().position(off(t)).get(host, hostOffset, n);
        } else {
            for (int i = 0, o = off(t); i < n; i++) {
                host[hostOffset + i] = (float) b.get(o + i);
            }
        }
    }

    @Override
    public void copyOut(Tensor t, double[] host, int hostOffset) {
        flush();
        Buf b = buf(t);
        int n = n(t);
        if (b instanceof Buf.F64 f) {
            f.b.duplicate().position(off(t)).get(host, hostOffset, n);
        } else {
            for (int i = 0, o = off(t); i < n; i++) {
                host[hostOffset + i] = b.get(o + i);
            }
        }
    }

    @Override
    public void fill(Tensor t, double value) {
        flush();
        Buf b = buf(t);
        int o = off(t);
        Parallel.forRange(n(t), 1 << 16, (from, to) -> {
            for (int i = from; i < to; i++) {
                b.set(o + i, value);
            }
        });
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        flush();
        if (src.size() != dst.size()) {
            throw new IllegalArgumentException("copy of " + src + " into " + dst + ": sizes differ");
        }
        Buf s = buf(src);
        Buf d = buf(dst);
        int so = off(src);
        int dOff = off(dst);
        int n = n(src);
        if (s instanceof Buf.F32 fs && d instanceof Buf.F32 fd) {
            FloatBuffer from = fs.b.duplicate();
            from.position(so).limit(so + n);
            fd.b.duplicate().position(dOff).put(from);
        } else if (s instanceof Buf.F64 fs && d instanceof Buf.F64 fd) {
            DoubleBuffer from = fs.b.duplicate();
            from.position(so).limit(so + n);
            fd.b.duplicate().position(dOff).put(from);
        } else {
            for (int i = 0; i < n; i++) {
                d.set(dOff + i, s.get(so + i));
            }
        }
    }

    // ------------------------------------------------------------------------------------------ convolution

    @Override
    public void conv2dForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad) {
        flush();
        sameDtype(x, w, b, y);
        Engine e = engineFor(w, y);
        if (e == Engine.DNNL) {
            st(y);
            dnnl.forward(addr(x), addr(w), b == null ? null : addr(b), addr(y), x.dim(0), x.dim(1), x.dim(2), x.dim(3),
                    w.dim(0), w.dim(2), w.dim(3), pad, sliceImages(x, y));
            return;
        }
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

    @Override
    public void conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int pad) {
        PendingFilter p = pending;
        sameDtype(dy, w, dx);
        if (p != null && p.dy.sameMemory(dy) && p.dy.shape().equals(dy.shape()) && p.pad == pad
                && p.x.shape().equals(dx.shape()) && p.dw.shape().equals(w.shape()) && p.dy.dtype() == dy.dtype()) {
            pending = null;
            if (engineFor(p.dw, p.dy) == Engine.DNNL) {
                dnnlBackward(p, w, dx);
            } else {
                runFusedBackward(p, w, dx);
            }
            return;
        }
        flush();
        Engine e = engineFor(w, dy);
        if (e == Engine.DNNL) {
            dnnl.backward(null, addr(w), addr(dy), addr(dx), null, null, null, dx.dim(0), dx.dim(1), dx.dim(2),
                    dx.dim(3), w.dim(0), w.dim(2), w.dim(3), pad, sliceImages(dx, dy));
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

    @Override
    public void conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad) {
        flush();
        sameDtype(x, dy, dw, db);
        st(x);
        st(dy);
        st(dw);
        if (db != null) {
            st(db);
        }
        pending = new PendingFilter(x, dy, dw, db, pad);
        Engine e = engineFor(dw, dy);
        if (e == Engine.GEMM || (e == Engine.ND4J && (long) dy.dim(2) * dy.dim(3) <= unfusedMaxPixels)) {
            flush(); // nothing to fuse with: GemmConv computes the two gradients separately
        }
    }

    // ------------------------------------------------------------------------------------------ pooling, activations

    @Override
    public void maxPool2x2Forward(Tensor x, Tensor y) {
        flush();
        Buf xb = buf(x);
        Buf yb = buf(y);
        int h = x.dim(2);
        int w = x.dim(3);
        int p = y.dim(2);
        int q = y.dim(3);
        int xo = off(x);
        int yo = off(y);
        if (xb instanceof Buf.F32 fx && yb instanceof Buf.F32 fy) {
            F32Loops.maxPool(fx.b, xo, fy.b, yo, x.dim(0) * x.dim(1), h, w);
            return;
        }
        Parallel.forRange(x.dim(0) * x.dim(1), 4, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int xp = xo + plane * h * w;
                int yp = yo + plane * p * q;
                for (int i = 0; i < p; i++) {
                    int r0 = xp + 2 * i * w;
                    int r1 = r0 + w;
                    for (int j = 0; j < q; j++) {
                        double m = Math.max(Math.max(xb.get(r0 + 2 * j), xb.get(r0 + 2 * j + 1)),
                                Math.max(xb.get(r1 + 2 * j), xb.get(r1 + 2 * j + 1)));
                        yb.set(yp + i * q + j, m);
                    }
                }
            }
        });
    }

    @Override
    public void maxPool2x2Backward(Tensor x, Tensor y, Tensor dy, Tensor dx) {
        flush();
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf gb = buf(dy);
        Buf db = buf(dx);
        int h = x.dim(2);
        int w = x.dim(3);
        int p = y.dim(2);
        int q = y.dim(3);
        int xo = off(x);
        int yo = off(y);
        int go = off(dy);
        int dOff = off(dx);
        if (xb instanceof Buf.F32 fx && yb instanceof Buf.F32 fy && gb instanceof Buf.F32 fg && db instanceof Buf.F32 fd) {
            F32Loops.maxPoolBackward(fx.b, xo, fy.b, yo, fg.b, go, fd.b, dOff, x.dim(0) * x.dim(1), h, w);
            return;
        }
        Parallel.forRange(x.dim(0) * x.dim(1), 4, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int xp = xo + plane * h * w;
                int dp = dOff + plane * h * w;
                for (int i = 0; i < h * w; i++) {
                    db.set(dp + i, 0.0);
                }
                int yp = yo + plane * p * q;
                int gp = go + plane * p * q;
                for (int i = 0; i < p; i++) {
                    for (int j = 0; j < q; j++) {
                        double m = yb.get(yp + i * q + j);
                        int at = 2 * i * w + 2 * j;
                        // the FIRST element (row-major in the window) equal to the max takes the gradient
                        if (xb.get(xp + at) != m) {
                            at += 1;
                            if (xb.get(xp + at) != m) {
                                at += w - 1;
                                if (xb.get(xp + at) != m) {
                                    at += 1;
                                }
                            }
                        }
                        db.set(dp + at, gb.get(gp + i * q + j));
                    }
                }
            }
        });
    }

    @Override
    public void reluForward(Tensor x, Tensor y) {
        flush();
        Buf xb = buf(x);
        Buf yb = buf(y);
        int xo = off(x);
        int yo = off(y);
        if (xb instanceof Buf.F32 fx && yb instanceof Buf.F32 fy) {
            F32Loops.relu(fx.b, xo, fy.b, yo, n(x));
            return;
        }
        Parallel.forRange(n(x), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                yb.set(yo + i, Math.max(xb.get(xo + i), 0.0)); // NaN stays visible, -0 becomes +0 (reference)
            }
        });
    }

    @Override
    public void reluBackward(Tensor y, Tensor dy, Tensor dx) {
        flush();
        Buf yb = buf(y);
        Buf gb = buf(dy);
        Buf db = buf(dx);
        int yo = off(y);
        int go = off(dy);
        int dOff = off(dx);
        if (yb instanceof Buf.F32 fy && gb instanceof Buf.F32 fg && db instanceof Buf.F32 fd) {
            F32Loops.reluBackward(fy.b, yo, fg.b, go, fd.b, dOff, n(y));
            return;
        }
        Parallel.forRange(n(y), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                db.set(dOff + i, yb.get(yo + i) > 0 ? gb.get(go + i) : 0.0);
            }
        });
    }

    @Override
    public void lrnForward(Tensor x, Tensor y, Tensor scale, int size, double alpha, double beta, double k) {
        flush();
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf sb = buf(scale);
        int xo = off(x);
        int yo = off(y);
        int so = off(scale);
        int c = x.dim(1);
        int hw = n(x) / (x.dim(0) * c);
        int lo = size / 2;
        int hi = (size - 1) / 2;
        Parallel.forRange(x.dim(0) * hw, 256, (from, to) -> {
            for (int pix = from; pix < to; pix++) {
                int base = (pix / hw) * c * hw + pix % hw; // element (n, 0, h, w)
                for (int ch = 0; ch < c; ch++) {
                    double sum = 0;
                    for (int cc = Math.max(0, ch - lo); cc <= Math.min(c - 1, ch + hi); cc++) {
                        double v = xb.get(xo + base + cc * hw);
                        sum += v * v;
                    }
                    double s = k + alpha / size * sum;
                    sb.set(so + base + ch * hw, s);
                    yb.set(yo + base + ch * hw, xb.get(xo + base + ch * hw) * Math.pow(s, -beta));
                }
            }
        });
    }

    @Override
    public void lrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, double alpha,
                            double beta, double k) {
        flush();
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf sb = buf(scale);
        Buf gb = buf(dy);
        Buf db = buf(dx);
        int xo = off(x);
        int yo = off(y);
        int so = off(scale);
        int go = off(dy);
        int dOff = off(dx);
        int c = x.dim(1);
        int hw = n(x) / (x.dim(0) * c);
        int lo = size / 2;
        int hi = (size - 1) / 2;
        double factor = 2 * alpha * beta / size;
        Parallel.forRange(x.dim(0) * hw, 256, (from, to) -> {
            for (int pix = from; pix < to; pix++) {
                int base = (pix / hw) * c * hw + pix % hw;
                for (int ch = 0; ch < c; ch++) {
                    // channel ch lies in the window of every c' in [ch - hi, ch + lo]
                    double sum = 0;
                    for (int cc = Math.max(0, ch - hi); cc <= Math.min(c - 1, ch + lo); cc++) {
                        int e = base + cc * hw;
                        sum += gb.get(go + e) * yb.get(yo + e) / sb.get(so + e);
                    }
                    int e = base + ch * hw;
                    double v = gb.get(go + e) * Math.pow(sb.get(so + e), -beta) - factor * xb.get(xo + e) * sum;
                    db.set(dOff + e, v);
                }
            }
        });
    }

    @Override
    public void dropoutForward(Tensor x, Tensor y, Tensor mask, double p, long seed) {
        flush();
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf mb = buf(mask);
        int xo = off(x);
        int yo = off(y);
        int mo = off(mask);
        double keepScale = 1.0 / (1.0 - p);
        Parallel.forRange(n(x), 1 << 14, (from, to) -> {
            for (int i = from; i < to; i++) {
                mb.set(mo + i, DropoutRng.keep(seed, i, p) ? keepScale : 0.0);
                yb.set(yo + i, xb.get(xo + i) * mb.get(mo + i));
            }
        });
    }

    @Override
    public void multiply(Tensor a, Tensor b, Tensor y) {
        flush();
        Buf ab = buf(a);
        Buf bb = buf(b);
        Buf yb = buf(y);
        int ao = off(a);
        int bo = off(b);
        int yo = off(y);
        Parallel.forRange(n(a), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                yb.set(yo + i, ab.get(ao + i) * bb.get(bo + i));
            }
        });
    }

    // ------------------------------------------------------------------------------------------ batch norm

    @Override
    public void batchNormForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                         Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum,
                                         double eps) {
        flush();
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf gb = buf(gamma);
        Buf bb = buf(beta);
        Buf rm = buf(runningMean);
        Buf rv = buf(runningVar);
        Buf sm = buf(saveMean);
        Buf si = buf(saveInvStd);
        int xo = off(x);
        int yo = off(y);
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        long m = (long) nb * hw;
        Parallel.forRange(c, 1, (from, to) -> {
            for (int ch = from; ch < to; ch++) {
                double sum = 0;
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        sum += xb.get(xo + base + j);
                    }
                }
                double mean = sum / m;
                double sq = 0;
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        double d = xb.get(xo + base + j) - mean;
                        sq += d * d;
                    }
                }
                double var = sq / m;
                double inv = 1.0 / Math.sqrt(var + eps);
                double g = gb.get(off(gamma) + ch);
                double bt = bb.get(off(beta) + ch);
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        yb.set(yo + base + j, g * (xb.get(xo + base + j) - mean) * inv + bt);
                    }
                }
                double unbiased = m > 1 ? sq / (m - 1) : var;
                rm.set(off(runningMean) + ch, (1 - momentum) * rm.get(off(runningMean) + ch) + momentum * mean);
                rv.set(off(runningVar) + ch, (1 - momentum) * rv.get(off(runningVar) + ch) + momentum * unbiased);
                sm.set(off(saveMean) + ch, mean);
                si.set(off(saveInvStd) + ch, inv);
            }
        });
    }

    @Override
    public void batchNormForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                          Tensor runningVar, double eps) {
        flush();
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf gb = buf(gamma);
        Buf bb = buf(beta);
        Buf rm = buf(runningMean);
        Buf rv = buf(runningVar);
        int xo = off(x);
        int yo = off(y);
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        Parallel.forRange(nb * c, 1, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int ch = plane % c;
                double mean = rm.get(off(runningMean) + ch);
                double inv = 1.0 / Math.sqrt(rv.get(off(runningVar) + ch) + eps);
                double g = gb.get(off(gamma) + ch);
                double bt = bb.get(off(beta) + ch);
                int base = plane * hw;
                for (int j = 0; j < hw; j++) {
                    yb.set(yo + base + j, g * (xb.get(xo + base + j) - mean) * inv + bt);
                }
            }
        });
    }

    @Override
    public void batchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
                                  Tensor dgamma, Tensor dbeta) {
        flush();
        Buf xb = buf(x);
        Buf gyb = buf(dy);
        Buf gb = buf(gamma);
        Buf sm = buf(saveMean);
        Buf si = buf(saveInvStd);
        Buf dxb = buf(dx);
        Buf dgb = buf(dgamma);
        Buf dbb = buf(dbeta);
        int xo = off(x);
        int go = off(dy);
        int dOff = off(dx);
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        long m = (long) nb * hw;
        Parallel.forRange(c, 1, (from, to) -> {
            for (int ch = from; ch < to; ch++) {
                double mean = sm.get(off(saveMean) + ch);
                double inv = si.get(off(saveInvStd) + ch);
                double sumDy = 0;
                double sumDyXhat = 0;
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        double g = gyb.get(go + base + j);
                        sumDy += g;
                        sumDyXhat += g * (xb.get(xo + base + j) - mean) * inv;
                    }
                }
                double k = gb.get(off(gamma) + ch) * inv / m;
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        double xhat = (xb.get(xo + base + j) - mean) * inv;
                        dxb.set(dOff + base + j, k * (m * gyb.get(go + base + j) - sumDy - xhat * sumDyXhat));
                    }
                }
                dgb.set(off(dgamma) + ch, dgb.get(off(dgamma) + ch) + sumDyXhat);
                dbb.set(off(dbeta) + ch, dbb.get(off(dbeta) + ch) + sumDy);
            }
        });
    }

    // ------------------------------------------------------------------------------------------ dense algebra

    @Override
    public void gemm(boolean transA, boolean transB, double alpha, Tensor a, Tensor b, double beta, Tensor c) {
        flush();
        sameDtype(a, b, c);
        if (a.rank() != 2 || b.rank() != 2 || c.rank() != 2) {
            throw new IllegalArgumentException("gemm needs 2-D tensors, got " + a.shape() + ", " + b.shape() + ", " + c.shape());
        }
        int m = transA ? a.dim(1) : a.dim(0);
        int kd = transA ? a.dim(0) : a.dim(1);
        int kb = transB ? b.dim(1) : b.dim(0);
        int nn = transB ? b.dim(0) : b.dim(1);
        if (kd != kb || c.dim(0) != m || c.dim(1) != nn) {
            throw new IllegalArgumentException("gemm shapes do not agree: op(a) " + m + "x" + kd + ", op(b) " + kb
                    + "x" + nn + ", c " + c.shape());
        }
        int ta = transA ? CblasTrans : CblasNoTrans;
        int tb = transB ? CblasTrans : CblasNoTrans;
        CpuStorage sa = st(a);
        CpuStorage sb = st(b);
        CpuStorage sc = st(c);
        if (beta == 0) {
            // BLAS may multiply old contents by 0 (NaN * 0 = NaN); the SPI says they are ignored.
            fill(c, 0.0);
        }
        if (a.dtype() == DType.FLOAT32 && dnnl != null) { // one thread pool for all float32 compute: see DnnlConv.sgemm
            DnnlConv.sgemm(transA, transB, m, nn, kd, (float) alpha, sa.floatAt(a.offset()), a.dim(1),
                    sb.floatAt(b.offset()), b.dim(1), (float) beta, sc.floatAt(c.offset()), nn);
        } else if (a.dtype() == DType.FLOAT32) {
            cblas_sgemm(CblasRowMajor, ta, tb, m, nn, kd, (float) alpha, sa.floatAt(a.offset()), a.dim(1),
                    sb.floatAt(b.offset()), b.dim(1), (float) beta, sc.floatAt(c.offset()), nn);
        } else {
            cblas_dgemm(CblasRowMajor, ta, tb, m, nn, kd, alpha, sa.doubleAt(a.offset()), a.dim(1),
                    sb.doubleAt(b.offset()), b.dim(1), beta, sc.doubleAt(c.offset()), nn);
        }
    }

    @Override
    public void addBias(Tensor y, Tensor bias) {
        flush();
        Buf yb = buf(y);
        Buf bb = buf(bias);
        int yo = off(y);
        int bo = off(bias);
        int k = y.dim(1);
        int inner = n(y) / (y.dim(0) * k);
        Parallel.forRange(y.dim(0) * k, Math.max(1, 8192 / inner), (from, to) -> {
            for (int row = from; row < to; row++) {
                double v = bb.get(bo + row % k);
                int base = yo + row * inner;
                for (int j = 0; j < inner; j++) {
                    yb.set(base + j, yb.get(base + j) + v);
                }
            }
        });
    }

    @Override
    public void biasBackward(Tensor dy, Tensor db) {
        flush();
        Buf gb = buf(dy);
        Buf bb = buf(db);
        int go = off(dy);
        int bo = off(db);
        int nb = dy.dim(0);
        int k = dy.dim(1);
        int inner = n(dy) / (nb * k);
        Parallel.forRange(k, Math.max(1, 8192 / (inner * nb)), (from, to) -> {
            for (int ch = from; ch < to; ch++) {
                double s = 0;
                for (int i = 0; i < nb; i++) {
                    int base = go + (i * k + ch) * inner;
                    for (int j = 0; j < inner; j++) {
                        s += gb.get(base + j);
                    }
                }
                bb.set(bo + ch, bb.get(bo + ch) + s);
            }
        });
    }

    @Override
    public void axpy(double alpha, Tensor x, Tensor y) {
        flush();
        Buf xb = buf(x);
        Buf yb = buf(y);
        int xo = off(x);
        int yo = off(y);
        Parallel.forRange(n(x), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                yb.set(yo + i, alpha * xb.get(xo + i) + yb.get(yo + i));
            }
        });
    }

    @Override
    public void scale(Tensor x, double alpha) {
        flush();
        Buf xb = buf(x);
        int xo = off(x);
        Parallel.forRange(n(x), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                xb.set(xo + i, alpha * xb.get(xo + i));
            }
        });
    }

    // ------------------------------------------------------------------------------------------ loss and optimiser

    @Override
    public void softmax(Tensor logits, Tensor probs) {
        flush();
        Buf lb = buf(logits);
        Buf pb = buf(probs);
        int lo = off(logits);
        int po = off(probs);
        int rows = logits.dim(0);
        int f = logits.dim(1);
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < f; j++) {
                max = Math.max(max, lb.get(lo + r * f + j));
            }
            double sum = 0;
            for (int j = 0; j < f; j++) {
                sum += Math.exp(lb.get(lo + r * f + j) - max);
            }
            for (int j = 0; j < f; j++) {
                pb.set(po + r * f + j, Math.exp(lb.get(lo + r * f + j) - max) / sum);
            }
        }
    }

    @Override
    public double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor dlogits) {
        flush();
        Buf lb = buf(logits);
        Buf gb = buf(dlogits);
        int lo = off(logits);
        int go = off(dlogits);
        int rows = logits.dim(0);
        int f = logits.dim(1);
        double loss = 0;
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < f; j++) {
                max = Math.max(max, lb.get(lo + r * f + j));
            }
            double sum = 0;
            for (int j = 0; j < f; j++) {
                sum += Math.exp(lb.get(lo + r * f + j) - max);
            }
            double logSum = Math.log(sum);
            loss += logSum - (lb.get(lo + r * f + labels[r]) - max);
            for (int j = 0; j < f; j++) {
                double prob = Math.exp(lb.get(lo + r * f + j) - max) / sum;
                gb.set(go + r * f + j, (prob - (j == labels[r] ? 1.0 : 0.0)) / rows);
            }
        }
        return loss / rows;
    }

    @Override
    public void sgdStep(Tensor param, Tensor grad, Tensor velocity, double lr, double momentum, double weightDecay,
                        long decayedCount) {
        flush();
        Buf pb = buf(param);
        Buf gb = buf(grad);
        Buf vb = buf(velocity);
        int po = off(param);
        int go = off(grad);
        int vo = off(velocity);
        int decayed = (int) Math.min(decayedCount, param.size());
        if (pb instanceof Buf.F32 fp && gb instanceof Buf.F32 fg && vb instanceof Buf.F32 fv) {
            F32Loops.sgd(fp.b, po, fg.b, go, fv.b, vo, n(param), (float) lr, (float) momentum, (float) weightDecay, decayed);
            return;
        }
        Parallel.forRange(n(param), 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                double d = gb.get(go + i) + (i < decayed ? weightDecay * pb.get(po + i) : 0.0);
                double v = momentum * vb.get(vo + i) + lr * d;
                vb.set(vo + i, v);
                pb.set(po + i, pb.get(po + i) - vb.get(vo + i));
                gb.set(go + i, 0.0);
            }
        });
    }

    @Override
    public double sumOfSquares(Tensor x) {
        flush();
        Buf xb = buf(x);
        int xo = off(x);
        return Parallel.sum(n(x), (from, to) -> {
            double s = 0;
            for (int i = from; i < to; i++) {
                double v = xb.get(xo + i);
                s += v * v;
            }
            return s;
        });
    }

    @Override
    public void synchronize() {
        flush();
    }

    @Override
    public void close() {
        flush();
        dwScratch.release();
        dbScratch.release();
        colScratch.release();
        outScratch.release();
        if (dnnl != null) {
            dnnl.close(); // primitives, scratchpad and work buffers: freed now, re-created if used again
        }
    }
}
