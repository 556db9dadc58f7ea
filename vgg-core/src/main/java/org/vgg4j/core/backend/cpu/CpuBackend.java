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
import org.vgg4j.core.backend.BackendTensors;
import org.vgg4j.core.backend.CpuPrecision;
import org.vgg4j.core.backend.Buf;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * The fast CPU backend: convolutions through its {@link ConvEngine} (oneDNN called directly for float32, ND4J's ops
 * or im2col + OpenBLAS for the rest: the table in {@link ConvEngine.Routing}); GEMM through oneDNN's sgemm where
 * the direct oneDNN engine is present (one OpenMP pool for all float32 work: {@link DnnlConv#sgemm}), else
 * OpenBLAS, and OpenBLAS dgemm for float64; multi-threaded Java loops over native memory for the memory-bound ops.
 * FLOAT32 and FLOAT64. In {@link CpuPrecision#BF16} ({@link #precision()}) the float32 convolutions and GEMMs take
 * bf16 operands with float32 accumulation and results ({@link DnnlConv}, {@link DnnlMatmul}); the rest is unchanged.
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
     *                        AVX-512 for VGG's layers), except on maps below 4x4, which run direct (Winograd's tiles
     *                        are mostly padding there), and on maps of fewer pixels than the kernel has taps (2x2
     *                        under 3x3), whose filter gradient is one GEMM (GemmConv.backwardFilterSmall, bf16
     *                        operands in BF16) and no oneDNN primitive; the faster one per step at a larger scratchpad
     *                        (docs/benchmarks.md, "Decision 3"); Winograd rounds differently from a direct sum, so
     *                        it is not exact on small integers, direct is; winograd forces it (tests)
     * @param dnnlWinograd    {@code -Dvgg4j.cpu.dnnlWinograd=auto|off} (default auto): whether {@link DnnlConv}
     *                        runs forward and backward-data in Winograd F(4x4,3x3) where that measured faster
     *                        (float32, 3x3, padding 1, and C and K at least 64 on maps of at least 14x14 or C at
     *                        least 128 and K at least 256 on maps of at least 4x4: VGG's layers at 224 but the
     *                        first, at 32 but the first and the 2x2 block; docs/benchmarks.md). Winograd rounds
     *                        differently from a direct sum (not exact on small integers); off keeps every layer
     *                        direct
     * @param precision       {@code -Dvgg4j.cpu.precision=fp32|bf16|auto} (default fp32): the operand precision of
     *                        the float32 convolutions ({@link CpuPrecision}); the backend resolves auto when it is
     *                        created ({@link CpuBackend#precision()})
     */
    record Options(ConvEngine.Routing routing, long sliceElements, long colElements, long unfusedMaxPixels,
                   String dnnlBwdWeights, String dnnlWinograd, CpuPrecision precision) {
        static final String CONV = "vgg4j.cpu.conv";
        static final String SLICE_ELEMENTS = "vgg4j.cpu.convSliceElements";
        static final String UNFUSED_MAX_PIXELS = "vgg4j.cpu.unfusedMaxPixels";
        static final String DNNL_BWD_WEIGHTS = "vgg4j.cpu.dnnlBwdWeights";
        static final String DNNL_WINOGRAD = "vgg4j.cpu.dnnlWinograd";
        static final String PRECISION = "vgg4j.cpu.precision";
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
            if (!java.util.List.of("auto", "off").contains(dnnlWinograd)) {
                throw new IllegalArgumentException(DNNL_WINOGRAD + "=" + dnnlWinograd + ": expected auto or off");
            }
            if (precision == null) {
                throw new IllegalArgumentException("precision is null; expected fp32, bf16 or auto");
            }
        }

        /** The defaults: what a user gets without any property. */
        static Options defaults() {
            return new Options(ConvEngine.Routing.AUTO, 1L << 23, GemmConv.COL_ELEMENTS, 0, "auto", "auto",
                    CpuPrecision.FP32);
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
                default -> throw new IllegalArgumentException(CONV + "=" + conv
                        + ": expected auto, dnnl, nd4j or gemm");
            };
            return new Options(routing, longProperty(SLICE_ELEMENTS, d.sliceElements), d.colElements,
                    longProperty(UNFUSED_MAX_PIXELS, d.unfusedMaxPixels),
                    System.getProperty(DNNL_BWD_WEIGHTS, d.dnnlBwdWeights),
                    System.getProperty(DNNL_WINOGRAD, d.dnnlWinograd),
                    CpuPrecision.parse(System.getProperty(PRECISION, d.precision.toString())));
        }

        Options withDnnlWinograd(String w) {
            return new Options(routing, sliceElements, colElements, unfusedMaxPixels, dnnlBwdWeights, w, precision);
        }

        Options withRouting(ConvEngine.Routing r) {
            return new Options(r, sliceElements, colElements, unfusedMaxPixels, dnnlBwdWeights, dnnlWinograd,
                    precision);
        }

        Options withSliceElements(long e) {
            return new Options(routing, e, colElements, unfusedMaxPixels, dnnlBwdWeights, dnnlWinograd, precision);
        }

        Options withColElements(long e) {
            return new Options(routing, sliceElements, e, unfusedMaxPixels, dnnlBwdWeights, dnnlWinograd, precision);
        }

        Options withUnfusedMaxPixels(long p) {
            return new Options(routing, sliceElements, colElements, p, dnnlBwdWeights, dnnlWinograd, precision);
        }

        Options withDnnlBwdWeights(String alg) {
            return new Options(routing, sliceElements, colElements, unfusedMaxPixels, alg, dnnlWinograd, precision);
        }

        Options withPrecision(CpuPrecision p) {
            return new Options(routing, sliceElements, colElements, unfusedMaxPixels, dnnlBwdWeights, dnnlWinograd, p);
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

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(CpuBackend.class);
    private static boolean warnedAuto; // auto's fall back to fp32 is logged once per process

    private final ConvEngine conv;
    private final CpuPrecision precision;
    /**
     * The FC layers' GEMM in BF16 (oneDNN's matmul); null in FP32. Shapes with M, N or K below
     * {@link #BF16_GEMM_MIN_DIM} (GlobalAvgPool's averaging column, an FC layer at a small batch, a 10-class output)
     * stay f32 there: memory-bound, bf16 would only add a conversion and round them (1/(H*W) included).
     */
    private final DnnlMatmul bf16Gemm;

    /**
     * The smallest M, N and K a float32 GEMM runs in BF16 with. Below it the GEMM is bound by reading its operands
     * (an FC layer at a batch of a few examples reads the whole weight for a few rows), and BF16 would only add a
     * conversion of the weight before it: such GEMMs run in float32, operands unrounded.
     */
    static final int BF16_GEMM_MIN_DIM = 32;

    /** Whether a float32 GEMM of these sizes runs in BF16 (see {@link #BF16_GEMM_MIN_DIM}). */
    private boolean gemmInBf16(int m, int n, int k) {
        return bf16Gemm != null && bf16GemmSize(m, n, k);
    }

    /** Whether a GEMM of these sizes is large enough for BF16 (M, N and K at least {@link #BF16_GEMM_MIN_DIM}). */
    static boolean bf16GemmSize(int m, int n, int k) {
        return Math.min(m, Math.min(n, k)) >= BF16_GEMM_MIN_DIM;
    }

    /**
     * A backend with these settings; ND4J's natives are loaded first ({@link CpuBackendProvider#probe()}).
     *
     * @throws IllegalStateException for precision bf16 where it cannot run (the reason names the missing
     *                               instruction set, or the routing that bypasses oneDNN)
     */
    CpuBackend(Options options) {
        boolean nd4jOps = options.routing() == ConvEngine.Routing.ND4J || CpuBackendProvider.nd4jOpsAreOneDnn();
        this.precision = resolve(options.precision(), options.routing(),
                options.precision() == CpuPrecision.FP32 ? null : Bf16Support.unavailableReason());
        this.bf16Gemm = precision == CpuPrecision.BF16 ? new DnnlMatmul() : null;
        this.conv = new ConvEngine(options.withPrecision(precision), nd4jOps, bf16Gemm);
    }

    /**
     * The precision a backend runs in: {@code asked}, with auto resolved. {@code missing} is why BF16 cannot run
     * on this machine (null: it can). BF16 needs the direct oneDNN engine, which routings nd4j and gemm bypass.
     */
    static CpuPrecision resolve(CpuPrecision asked, ConvEngine.Routing routing, String missing) {
        if (asked == CpuPrecision.FP32) {
            return asked;
        }
        String why = missing != null ? missing
                : routing == ConvEngine.Routing.ND4J || routing == ConvEngine.Routing.GEMM
                ? Options.CONV + "=" + routing.name().toLowerCase(Locale.ROOT)
                    + " bypasses the direct oneDNN engine that runs bf16 (use auto or dnnl)"
                : null;
        if (why == null) {
            return CpuPrecision.BF16;
        }
        if (asked == CpuPrecision.BF16) {
            throw new IllegalStateException(Options.PRECISION + "=bf16 cannot run here: " + why
                    + "; use fp32, or auto to fall back to fp32");
        }
        synchronized (CpuBackend.class) {
            if (!warnedAuto) {
                warnedAuto = true;
                LOG.warn("{}=auto: {}; the cpu backend's convolutions run in fp32", Options.PRECISION, why);
            }
        }
        return CpuPrecision.FP32;
    }

    /** The operand precision of this backend's float32 convolutions, fp32 or bf16 (auto resolved). */
    public CpuPrecision precision() {
        return precision;
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

    /** Checks that every non-null tensor is this instance's and not freed. */
    private void mine(Tensor... ts) {
        for (Tensor t : ts) {
            if (t != null) {
                st(t);
            }
        }
    }

    /** {@link #mine} and one dtype for all (the convolutions). */
    private void own(Tensor... ts) {
        mine(ts);
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
        checkSupported(dtype);
        return BackendTensors.wrap(this, dtype, shape, new CpuStorage(dtype, shape.size()), 0);
    }

    private void checkSupported(DType dtype) {
        if (!supports(dtype)) {
            throw new IllegalArgumentException("backend 'cpu' does not compute in " + dtype);
        }
    }

    /**
     * Zero-filled by calloc, not by ND4J's allocator, which writes every page: the system maps zero pages only when
     * they are first written (an evaluation network's gradient buffer never is).
     */
    @Override
    public Tensor allocateReleased(DType dtype, Shape shape) {
        checkSupported(dtype);
        return BackendTensors.wrap(this, dtype, shape, CpuStorage.untouched(dtype, shape.size()), 0);
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

    /** The direct oneDNN engine's memo (x kept in its blocked layout for backward-weights); null without it. */
    @Override
    public ConvMemo newConvMemo() {
        return conv.newMemo();
    }

    @Override
    public void conv2dForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad, boolean relu, ConvMemo memo) {
        own(x, w, b, y);
        conv.forward(x, w, b, y, pad, relu, kept(memo));
    }

    @Override
    public void conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad,
                               ConvMemo memo) {
        own(x, w, dy, dx, dw, db);
        conv.backward(x, w, dy, dx, dw, db, pad, kept(memo));
    }

    /** memo as this backend's own kind, or an error naming where it came from. */
    private DnnlConv.Kept kept(ConvMemo memo) {
        if (memo == null) {
            return null;
        }
        if (memo instanceof DnnlConv.Kept k && k.owner() == conv.dnnl()) {
            return k;
        }
        throw new IllegalArgumentException("convolution memo " + memo + " was not made by this cpu backend's"
                + " newConvMemo()");
    }

    /** One oneDNN primitive with a ReLU post-op where the direct engine takes the call (see ConvEngine). */
    @Override
    public void conv2dForwardRelu(Tensor x, Tensor w, Tensor b, Tensor y, int pad) {
        own(x, w, b, y);
        conv.forwardRelu(x, w, b, y, pad);
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
        mine(x, y);
        BufLoops.maxPool2x2Forward(x, y);
    }

    @Override
    public void maxPool2x2Backward(Tensor x, Tensor y, Tensor dy, Tensor dx) {
        mine(x, y, dy, dx);
        BufLoops.maxPool2x2Backward(x, y, dy, dx);
    }

    /** The pool's one pass, masking each window's dy with its maximum's sign: no separate ReLU pass over dx. */
    @Override
    public void maxPool2x2BackwardRelu(Tensor x, Tensor y, Tensor dy, Tensor dx) {
        mine(x, y, dy, dx);
        BufLoops.maxPool2x2Backward(x, y, dy, dx, Parallel.THREADS, true);
    }

    @Override
    public void reluForward(Tensor x, Tensor y) {
        mine(x, y);
        BufLoops.reluForward(x, y);
    }

    @Override
    public void reluBackward(Tensor y, Tensor dy, Tensor dx) {
        mine(y, dy, dx);
        BufLoops.reluBackward(y, dy, dx);
    }

    @Override
    public void lrnForward(Tensor x, Tensor y, Tensor scale, int size, double alpha, double beta, double k) {
        mine(x, y, scale);
        NormLoops.lrnForward(x, y, scale, size, alpha, beta, k);
    }

    @Override
    public void lrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, double alpha,
                            double beta, double k) {
        mine(x, y, scale, dy, dx);
        NormLoops.lrnBackward(x, y, scale, dy, dx, size, alpha, beta, k);
    }

    @Override
    public void dropoutForward(Tensor x, Tensor y, Tensor mask, double p, long seed) {
        mine(x, y, mask);
        BufLoops.dropoutForward(x, y, mask, p, seed);
    }

    @Override
    public void multiply(Tensor a, Tensor b, Tensor y) {
        mine(a, b, y);
        BufLoops.multiply(a, b, y);
    }

    // ------------------------------------------------------------------------------------------ batch norm

    @Override
    public void batchNormForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                         Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum,
                                         double eps) {
        mine(x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd);
        NormLoops.batchNormForwardTraining(x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd, momentum,
                eps, Parallel.THREADS);
    }

    @Override
    public void batchNormForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                          Tensor runningVar, double eps) {
        mine(x, gamma, beta, y, runningMean, runningVar);
        NormLoops.batchNormForwardInference(x, gamma, beta, y, runningMean, runningVar, eps, Parallel.THREADS);
    }

    /** The ReLU in the loop that writes y ({@link F32BatchNorm#normalise}): one pass over y instead of two. */
    @Override
    public void batchNormForwardTrainingRelu(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                             Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum,
                                             double eps) {
        mine(x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd);
        NormLoops.batchNormForwardTraining(x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd, momentum,
                eps, true, Parallel.THREADS);
    }

    @Override
    public void batchNormForwardInferenceRelu(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                              Tensor runningVar, double eps) {
        mine(x, gamma, beta, y, runningMean, runningVar);
        NormLoops.batchNormForwardInference(x, gamma, beta, y, runningMean, runningVar, eps, true, Parallel.THREADS);
    }

    @Override
    public void batchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
                                  Tensor dgamma, Tensor dbeta) {
        mine(x, dy, gamma, saveMean, saveInvStd, dx, dgamma, dbeta);
        NormLoops.batchNormBackward(x, dy, gamma, saveMean, saveInvStd, dx, dgamma, dbeta, Parallel.THREADS);
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
        if (a.dtype() == DType.FLOAT32 && gemmInBf16(m, nn, kd)) {
            bf16Gemm.gemm(transA, transB, m, nn, kd, (float) alpha, DnnlConv.at(sa.address(), a.offset()),
                    DnnlConv.at(sb.address(), b.offset()), (float) beta, DnnlConv.at(sc.address(), c.offset()));
        } else if (a.dtype() == DType.FLOAT32 && conv.dnnl() != null) { // one thread pool for all float32 compute: see DnnlConv.sgemm
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
        mine(y, bias);
        BufLoops.addBias(y, bias);
    }

    @Override
    public void biasBackward(Tensor dy, Tensor db) {
        int nb = dy.dim(0);
        int k = dy.dim(1);
        BufLoops.biasBackward(buf(dy), off(dy), nb, k, n(dy) / (nb * k), buf(db), off(db));
    }

    @Override
    public void axpy(double alpha, Tensor x, Tensor y) {
        mine(x, y);
        BufLoops.axpy(alpha, x, y);
    }

    @Override
    public void scale(Tensor x, double alpha) {
        mine(x);
        BufLoops.scale(x, alpha);
    }

    // ------------------------------------------------------------------------------------------ loss and optimiser

    @Override
    public void softmax(Tensor logits, Tensor probs) {
        mine(logits, probs);
        BufLoops.softmax(logits, probs);
    }

    @Override
    public double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor dlogits) {
        mine(logits, dlogits);
        return BufLoops.softmaxCrossEntropy(logits, labels, dlogits);
    }

    @Override
    public void sgdStep(Tensor param, Tensor grad, Tensor velocity, double lr, double momentum, double weightDecay,
                        long decayedCount) {
        mine(param, grad, velocity);
        BufLoops.sgdStep(param, grad, velocity, lr, momentum, weightDecay, decayedCount);
    }

    /**
     * The weight is updated in pieces of whole rows (~{@value #LOW_RANK_PIECE} elements): each piece's gradient
     * rows dy[:, rows]^T x go into a small scratch by oneDNN's sgemm and are applied by the same loop as
     * {@link #sgdStep}, so the (M,K) gradient is never written, read or cleared in memory. Where {@link #gemm}
     * would run the dense gradient's GEMM in BF16 (R of at least {@value #BF16_GEMM_MIN_DIM}), the factors are first
     * rounded to bf16, the operands it would have used (their products are exact in float32, accumulated in
     * float32 as there).
     */
    @Override
    public void sgdStepLowRank(Tensor param, Tensor velocity, Tensor dy, Tensor x, double lr, double momentum,
                               double weightDecay, boolean decayed) {
        mine(param, velocity, dy, x);
        sameDtype(param, velocity, dy, x);
        if (param.rank() != 2 || !velocity.shape().equals(param.shape()) || dy.rank() != 2 || x.rank() != 2
                || dy.dim(1) != param.dim(0) || x.dim(0) != dy.dim(0) || x.dim(1) != param.dim(1)) {
            throw new IllegalArgumentException("sgdStepLowRank: param and velocity (M,K), dy (R,M), x (R,K) expected, "
                    + "got " + param.shape() + ", " + velocity.shape() + ", " + dy.shape() + ", " + x.shape());
        }
        int m = param.dim(0);
        int k = param.dim(1);
        int r = dy.dim(0);
        if (param.dtype() != DType.FLOAT32 || conv.dnnl() == null) {
            Backend.super.sgdStepLowRank(param, velocity, dy, x, lr, momentum, weightDecay, decayed);
            return;
        }
        int rows = Math.max(1, Math.min(m, LOW_RANK_PIECE / k));
        long pieceSize = (long) rows * k;
        boolean bf16 = gemmInBf16(m, k, r); // the dense gradient's GEMM: (M,K) = dy^T (M,R) x (R,K)
        Tensor scratch = lowRankScratch(pieceSize + (bf16 ? dy.size() + x.size() : 0));
        Tensor piece = scratch.view(0, Shape.of(rows, k));
        Tensor a = dy;
        Tensor b = x;
        if (bf16) { // the operands the BF16 GEMM would have used
            a = scratch.view(pieceSize, dy.shape());
            b = scratch.view(pieceSize + dy.size(), x.shape());
            copy(dy, a);
            copy(x, b);
            F32Loops.roundToBf16(((Buf.F32) st(a).buf).b(), off(a), n(a));
            F32Loops.roundToBf16(((Buf.F32) st(b).buf).b(), off(b), n(b));
        }
        for (int r0 = 0; r0 < m; r0 += rows) {
            int h = Math.min(rows, m - r0);
            long at = (long) r0 * k;
            Shape s = Shape.of(h, k);
            // piece (h,K) = dy[:, r0:r0+h]^T x: A is dy's columns r0.. with leading dimension M
            DnnlConv.sgemm(true, false, h, k, r, 1f, st(a).floatAt(a.offset() + r0), m, st(b).floatAt(b.offset()), k,
                    0f, st(piece).floatAt(piece.offset()), k);
            BufLoops.sgdStep(param.view(at, s), piece.view(0, s), velocity.view(at, s), lr, momentum, weightDecay,
                    decayed ? (long) h * k : 0);
        }
    }

    @Override
    public boolean lowRankGradientsPay() {
        return true;
    }

    /** Elements of one piece of {@link #sgdStepLowRank}: 4 MiB of float32, within a Zen core complex's L3 share. */
    private static final int LOW_RANK_PIECE = 1 << 20;

    private Tensor lowRankScratch; // (at least the last size asked) kept: a fresh one each step would page-fault

    private Tensor lowRankScratch(long size) {
        if (lowRankScratch == null || lowRankScratch.size() < size) {
            if (lowRankScratch != null) {
                free(lowRankScratch);
            }
            lowRankScratch = allocate(DType.FLOAT32, Shape.of(Math.toIntExact(size)));
        }
        return lowRankScratch;
    }

    /**
     * The page-aligned interior of t is handed back with {@code madvise(MADV_DONTNEED)}: the cpu backend's
     * buffers are private anonymous memory (malloc), whose released pages read as zero and are backed again on
     * the next write. The ends, and everything where madvise is not available, are filled with zeros.
     */
    @Override
    public void zeroAndRelease(Tensor t) {
        mine(t);
        long bytes = t.size() * t.dtype().bytes;
        long start = st(t).address().address() + t.offset() * t.dtype().bytes;
        long from = (start + PAGE - 1) / PAGE * PAGE;
        long to = (start + bytes) / PAGE * PAGE;
        if (to - from < 16 * PAGE || !LibC.madviseDontNeed(from, to - from)) {
            fill(t, 0.0);
            return;
        }
        int headElements = Math.toIntExact((from - start) / t.dtype().bytes);
        int tailElements = Math.toIntExact((start + bytes - to) / t.dtype().bytes);
        if (headElements > 0) {
            fill(t.view(0, Shape.of(headElements)), 0.0);
        }
        if (tailElements > 0) {
            fill(t.view(t.size() - tailElements, Shape.of(tailElements)), 0.0);
        }
    }

    private static final long PAGE = 4096;

    @Override
    public double sumOfSquares(Tensor x) {
        mine(x);
        return BufLoops.sumOfSquares(x);
    }

    /** Frees the convolution engine's scratch and oneDNN primitives now; they are re-created if used again. */
    @Override
    public void close() {
        if (lowRankScratch != null) {
            free(lowRankScratch);
            lowRankScratch = null;
        }
        conv.close();
        if (bf16Gemm != null) {
            bf16Gemm.close();
        }
    }
}
