package org.vgg4j.core.backend.cpu;

import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.cblas_dgemm;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;

import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.Locale;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Buf;
import org.vgg4j.core.backend.DropoutRng;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * The fast CPU backend: convolutions through its {@link ConvEngine} (oneDNN called directly for float32, ND4J's ops
 * or im2col + OpenBLAS for the rest: the table in {@link ConvEngine.Routing}); GEMM through oneDNN's sgemm where
 * the direct oneDNN engine is present (one OpenMP pool for all float32 work: {@link DnnlConv#sgemm}), else
 * OpenBLAS, and OpenBLAS dgemm for float64; multi-threaded Java loops over native memory for the memory-bound ops.
 * FLOAT32 and FLOAT64.
 *
 * <p>Dimension legend: N batch, C in-channels, K out-channels, H/W input, P/Q output, R/S kernel, F features.
 *
 * <p>What it is: an implementation of the {@link Backend} SPI whose semantics are the {@code reference} backend's
 * (parity tests in src/test/.../backend/cpu); every op runs when called (no deferred work), the two gradients of
 * a convolution in one call through {@link #conv2dBackward}. What it is not: thread-safe; one instance serves one
 * thread.
 *
 * <p>Determinism: every element of every Java loop is computed by one thread in a fixed order, reductions sum
 * fixed-size chunks in index order, and OpenBLAS and oneDNN split output tiles across threads, not sums, so
 * a step with the same inputs gives the same bits run after run.
 */
public final class CpuBackend implements Backend {

    /**
     * The settings of one backend instance. {@link #fromSystemProperties()} is the ONE place that reads the
     * {@code -Dvgg4j.cpu.*} properties (the two process-wide ones, read before any backend exists, included:
     * {@link #threads()} and {@link #mallocTuning()}); tests build instances with the withers.
     *
     * @param routing         {@code -Dvgg4j.cpu.conv=auto|dnnl|nd4j|gemm} (default auto): which engine a
     *                        convolution takes, the table in {@link ConvEngine.Routing}
     * @param sliceElements   {@code -Dvgg4j.cpu.convSliceElements} (default 8 M): the largest activation (elements)
     *                        one convolution call is given; bigger batches go in slices of whole images. oneDNN
     *                        and ND4J reorder NCHW into blocked copies of x, y, dy, dx: unsliced, VGG-16's 224x224
     *                        layers raise the peak memory; every slice is one more call with its own reorders. 8 M
     *                        cost no memory against 4 M, with less CPU (docs/benchmarks.md, "Slicing by image")
     * @param colElements     bound on {@link GemmConv}'s im2col buffer (default 4 M elements), which bounds how many
     *                        small images one GEMM takes (tests use 1: one image per GEMM)
     * @param unfusedMaxPixels {@code -Dvgg4j.cpu.unfusedMaxPixels} (default 0: none): output images of at most this
     *                        many pixels get their backward in ND4J's routing unfused (filter gradient through
     *                        GemmConv, data gradient through ND4J's deconv2d) instead of one conv2d_bp. Opt-in: it
     *                        changes the rounding of those layers and the whole step did not measurably move
     *                        (docs/benchmarks.md, "The 14x14 layers' backward, unfused")
     * @param dnnlBwdWeights  {@code -Dvgg4j.cpu.dnnlBwdWeights=auto|direct|winograd} (default auto): the
     *                        backward-weights algorithm of {@link DnnlConv}. auto lets oneDNN choose (Winograd on
     *                        AVX-512 for VGG's layers), the faster one per step at a larger scratchpad
     *                        (docs/benchmarks.md, "Decision 3"); Winograd rounds differently from a direct sum, so
     *                        it is not exact on small integers, direct is; winograd forces it (tests)
     */
    record Options(ConvEngine.Routing routing, long sliceElements, long colElements, long unfusedMaxPixels,
                   String dnnlBwdWeights) {
        static final String CONV = "vgg4j.cpu.conv";
        static final String SLICE_ELEMENTS = "vgg4j.cpu.convSliceElements";
        static final String UNFUSED_MAX_PIXELS = "vgg4j.cpu.unfusedMaxPixels";
        static final String DNNL_BWD_WEIGHTS = "vgg4j.cpu.dnnlBwdWeights";
        static final String THREADS = "vgg4j.cpu.threads";
        static final String MALLOC_TUNING = "vgg4j.cpu.mallocTuning";

        Options {
            if (routing == null) {
                throw new IllegalArgumentException("routing is null; expected auto, dnnl, nd4j or gemm");
            }
            if (sliceElements < 1 || colElements < 1 || unfusedMaxPixels < 0) {
                throw new IllegalArgumentException("sliceElements " + sliceElements + ", colElements " + colElements
                        + ", unfusedMaxPixels " + unfusedMaxPixels + ": expected >= 1, >= 1 and >= 0");
            }
            if (!java.util.List.of("auto", "direct", "winograd").contains(dnnlBwdWeights)) {
                throw new IllegalArgumentException(DNNL_BWD_WEIGHTS + "=" + dnnlBwdWeights
                        + ": expected auto, direct or winograd");
            }
        }

        /** The defaults: what a user gets without any property. */
        static Options defaults() {
            return new Options(ConvEngine.Routing.AUTO, 1L << 23, GemmConv.COL_ELEMENTS, 0, "auto");
        }

        /** The defaults, overridden by the {@code -Dvgg4j.cpu.*} properties that are set; errors name the value. */
        static Options fromSystemProperties() {
            Options d = defaults();
            String conv = System.getProperty(CONV, d.routing.name().toLowerCase(Locale.ROOT));
            ConvEngine.Routing routing = switch (conv) {
                case "auto" -> ConvEngine.Routing.AUTO;
                case "dnnl" -> ConvEngine.Routing.DNNL;
                case "nd4j" -> ConvEngine.Routing.ND4J;
                case "gemm" -> ConvEngine.Routing.GEMM;
                default -> throw new IllegalArgumentException(CONV + "=" + conv + ": expected auto, dnnl, nd4j or gemm");
            };
            return new Options(routing, longProperty(SLICE_ELEMENTS, d.sliceElements), d.colElements,
                    longProperty(UNFUSED_MAX_PIXELS, d.unfusedMaxPixels),
                    System.getProperty(DNNL_BWD_WEIGHTS, d.dnnlBwdWeights));
        }

        Options withRouting(ConvEngine.Routing r) {
            return new Options(r, sliceElements, colElements, unfusedMaxPixels, dnnlBwdWeights);
        }

        Options withSliceElements(long e) {
            return new Options(routing, e, colElements, unfusedMaxPixels, dnnlBwdWeights);
        }

        Options withColElements(long e) {
            return new Options(routing, sliceElements, e, unfusedMaxPixels, dnnlBwdWeights);
        }

        Options withUnfusedMaxPixels(long p) {
            return new Options(routing, sliceElements, colElements, p, dnnlBwdWeights);
        }

        Options withDnnlBwdWeights(String alg) {
            return new Options(routing, sliceElements, colElements, unfusedMaxPixels, alg);
        }

        /**
         * Process-wide: the Java loops' thread count ({@link Parallel}): {@code -Dvgg4j.cpu.threads=T}, else
         * OMP_NUM_THREADS, else the available processors.
         */
        static int threads() {
            return Parallel.threads(System.getProperty(THREADS), System.getenv("OMP_NUM_THREADS"),
                    Runtime.getRuntime().availableProcessors());
        }

        /** Process-wide: whether {@link GlibcMalloc} tunes malloc ({@code -Dvgg4j.cpu.mallocTuning}, default true). */
        static boolean mallocTuning() {
            return Boolean.parseBoolean(System.getProperty(MALLOC_TUNING, "true"));
        }

        private static long longProperty(String name, long dflt) {
            String v = System.getProperty(name);
            if (v == null) {
                return dflt;
            }
            try {
                return Long.parseLong(v.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("-D" + name + "=" + v + " is invalid; expected an integer");
            }
        }
    }

    private final ConvEngine conv;

    /** A backend with these settings; ND4J's natives are loaded first ({@link CpuBackendProvider#probe()}). */
    CpuBackend(Options options) {
        boolean nd4jOps = options.routing() == ConvEngine.Routing.ND4J || CpuBackendProvider.nd4jOpsAreOneDnn();
        this.conv = new ConvEngine(options, nd4jOps);
    }

    /** Which convolution routing this instance uses: "auto+dnnl", "auto", "dnnl", "nd4j" or "gemm". */
    public String convolutionEngine() {
        return conv.describe();
    }

    /** The direct oneDNN engine (null when absent): for tests. */
    DnnlConv dnnl() {
        return conv.dnnl();
    }

    /** Native bytes held by the direct oneDNN engine's work buffers (0 when closed or absent): for tests. */
    long dnnlWorkBytes() {
        return conv.dnnl() == null ? 0 : conv.dnnl().workBytes();
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
        return CpuStorage.of(t);
    }

    private Buf buf(Tensor t) {
        return st(t).buf;
    }

    /** Checks that every non-null tensor is this instance's and not freed, and that all share one dtype. */
    private void own(Tensor... ts) {
        for (Tensor t : ts) {
            if (t != null) {
                st(t);
            }
        }
        sameDtype(ts);
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
    // ------------------------------------------------------------------------------------------ memory

    @Override
    public Tensor allocate(DType dtype, Shape shape) {
        if (!supports(dtype)) {
            throw new IllegalArgumentException("backend 'cpu' does not compute in " + dtype);
        }
        return new Tensor(this, dtype, shape, new CpuStorage(dtype, shape.size()), 0);
    }

    /** Frees the whole allocation when given its base (or a full-size reshape of it); views are a no-op. */
    @Override
    public void free(Tensor t) {
        CpuStorage s = (CpuStorage) t.storage();
        if (t.offset() == 0 && t.size() == s.buf.capacity()) {
            s.free();
        }
    }

    @Override
    public void copyIn(float[] host, int hostOffset, Tensor t) {
        Buf b = buf(t);
        int n = n(t);
        if (b instanceof Buf.F32 f) {
            f.b().duplicate().position(off(t)).put(host, hostOffset, n);
        } else {
            for (int i = 0, o = off(t); i < n; i++) {
                b.set(o + i, host[hostOffset + i]);
            }
        }
    }

    @Override
    public void copyIn(double[] host, int hostOffset, Tensor t) {
        Buf b = buf(t);
        int n = n(t);
        if (b instanceof Buf.F64 f) {
            f.b().duplicate().position(off(t)).put(host, hostOffset, n);
        } else {
            for (int i = 0, o = off(t); i < n; i++) {
                b.set(o + i, host[hostOffset + i]);
            }
        }
    }

    @Override
    public void copyOut(Tensor t, float[] host, int hostOffset) {
        Buf b = buf(t);
        int n = n(t);
        if (b instanceof Buf.F32 f) {
            f.b().duplicate().position(off(t)).get(host, hostOffset, n);
        } else {
            for (int i = 0, o = off(t); i < n; i++) {
                host[hostOffset + i] = (float) b.get(o + i);
            }
        }
    }

    @Override
    public void copyOut(Tensor t, double[] host, int hostOffset) {
        Buf b = buf(t);
        int n = n(t);
        if (b instanceof Buf.F64 f) {
            f.b().duplicate().position(off(t)).get(host, hostOffset, n);
        } else {
            for (int i = 0, o = off(t); i < n; i++) {
                host[hostOffset + i] = b.get(o + i);
            }
        }
    }

    @Override
    public void fill(Tensor t, double value) {
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
        if (src.size() != dst.size()) {
            throw new IllegalArgumentException("copy of " + src + " into " + dst + ": sizes differ");
        }
        Buf s = buf(src);
        Buf d = buf(dst);
        int so = off(src);
        int dOff = off(dst);
        int n = n(src);
        if (s instanceof Buf.F32 fs && d instanceof Buf.F32 fd) {
            FloatBuffer from = fs.b().duplicate();
            from.position(so).limit(so + n);
            fd.b().duplicate().position(dOff).put(from);
        } else if (s instanceof Buf.F64 fs && d instanceof Buf.F64 fd) {
            DoubleBuffer from = fs.b().duplicate();
            from.position(so).limit(so + n);
            fd.b().duplicate().position(dOff).put(from);
        } else {
            for (int i = 0; i < n; i++) {
                d.set(dOff + i, s.get(so + i));
            }
        }
    }

    // ------------------------------------------------------------------------------------------ convolution

    @Override
    public void conv2dForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad) {
        own(x, w, b, y);
        conv.forward(x, w, b, y, pad);
    }

    @Override
    public void conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int pad) {
        own(dy, w, dx);
        conv.backwardData(dy, w, dx, pad);
    }

    @Override
    public void conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad) {
        own(x, dy, dw, db);
        conv.backwardFilter(x, dy, dw, db, pad);
    }

    /** Both gradients in one engine call where the engine has one: {@link ConvEngine#backward}. */
    @Override
    public void conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad) {
        own(x, w, dy, dx, dw, db);
        conv.backward(x, w, dy, dx, dw, db, pad);
    }

    // ------------------------------------------------------------------------------------------ pooling, activations

    @Override
    public void maxPool2x2Forward(Tensor x, Tensor y) {
        Buf xb = buf(x);
        Buf yb = buf(y);
        int h = x.dim(2);
        int w = x.dim(3);
        int p = y.dim(2);
        int q = y.dim(3);
        int xo = off(x);
        int yo = off(y);
        if (xb instanceof Buf.F32 fx && yb instanceof Buf.F32 fy) {
            F32Loops.maxPool(fx.b(), xo, fy.b(), yo, x.dim(0) * x.dim(1), h, w);
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
            F32Loops.maxPoolBackward(fx.b(), xo, fy.b(), yo, fg.b(), go, fd.b(), dOff, x.dim(0) * x.dim(1), h, w);
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
        Buf xb = buf(x);
        Buf yb = buf(y);
        int xo = off(x);
        int yo = off(y);
        if (xb instanceof Buf.F32 fx && yb instanceof Buf.F32 fy) {
            F32Loops.relu(fx.b(), xo, fy.b(), yo, n(x));
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
        Buf yb = buf(y);
        Buf gb = buf(dy);
        Buf db = buf(dx);
        int yo = off(y);
        int go = off(dy);
        int dOff = off(dx);
        if (yb instanceof Buf.F32 fy && gb instanceof Buf.F32 fg && db instanceof Buf.F32 fd) {
            F32Loops.reluBackward(fy.b(), yo, fg.b(), go, fd.b(), dOff, n(y));
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
        if (a.dtype() == DType.FLOAT32 && conv.dnnl() != null) { // one thread pool for all float32 compute: see DnnlConv.sgemm
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
        int nb = dy.dim(0);
        int k = dy.dim(1);
        BufLoops.biasBackward(buf(dy), off(dy), nb, k, n(dy) / (nb * k), buf(db), off(db));
    }

    @Override
    public void axpy(double alpha, Tensor x, Tensor y) {
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
        Buf pb = buf(param);
        Buf gb = buf(grad);
        Buf vb = buf(velocity);
        int po = off(param);
        int go = off(grad);
        int vo = off(velocity);
        int decayed = (int) Math.min(decayedCount, param.size());
        if (pb instanceof Buf.F32 fp && gb instanceof Buf.F32 fg && vb instanceof Buf.F32 fv) {
            F32Loops.sgd(fp.b(), po, fg.b(), go, fv.b(), vo, n(param), (float) lr, (float) momentum, (float) weightDecay, decayed);
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

    /** Frees the convolution engine's scratch and oneDNN primitives now; they are re-created if used again. */
    @Override
    public void close() {
        conv.close();
    }
}
