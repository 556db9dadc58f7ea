package org.vgg4j.cuda;

import static org.vgg4j.core.backend.OpChecks.biasChannels;
import static org.vgg4j.core.backend.OpChecks.gemmDims;
import static org.vgg4j.core.backend.OpChecks.hostRange;
import static org.vgg4j.core.backend.OpChecks.lrnSize;
import static org.vgg4j.core.backend.OpChecks.rank;
import static org.vgg4j.core.backend.OpChecks.sameShape;
import static org.vgg4j.core.backend.OpChecks.sameSize;
import static org.vgg4j.core.backend.OpChecks.shape;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.StringJoiner;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendTensors;
import org.vgg4j.core.backend.OpChecks;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.api.CudaException;
import org.vgg4j.cuda.api.CudaOutOfMemoryException;

/**
 * The Backend SPI on our own CUDA kernels (src/main/cuda/*.cu), on whatever {@link Driver} it is given: a GPU through
 * {@link JCudaDriver} (backend "cuda") or the emulated device (backend "cuda-emulated").
 *
 * <p>Is: FLOAT32 only (FLOAT64 is rejected by {@link #supports} and {@link #allocate}: gradient checks belong to
 * the reference backend); every op is one or two kernel launches, no cuDNN, no cuBLAS. Tensors live in device
 * memory from a caching allocator; host data moves only through copyIn/copyOut. Each op checks its tensors (this
 * backend's FLOAT32 tensors, shapes agreeing; a mismatch names the shapes) and a failing launch becomes a
 * {@link CudaException} naming the op and the shapes. Is not: thread-safe (one backend per device per thread).
 *
 * <p>Convolutions: with {@link MathMode#BF16} each pass whose shape qualifies runs on the tensor-core kernels of
 * conv_tc.cu ({@link TensorCoreConv}: NHWC BF16 operands converted from and back to NCHW around one implicit GEMM,
 * C padded to a multiple of 8 with zeros; forward takes any shape, backward-data needs K % 8 == 0 and R == S,
 * pad &lt;= R - 1, backward-filter K % 8 == 0; {@link #conv2dBackward} converts dy once for both backward passes);
 * every other pass -- all of FP32 and TF32 -- runs the v1 kernels of conv.cu. {@link #convPath} says which path a
 * pass takes, and the first call of each pass and shape logs it at debug level (with the reason for v1).
 * {@code -Dvgg4j.cuda.tensorcores=off} (default auto) keeps every pass on v1, for comparisons. On the tensor-core path
 * {@link #newConvMemo} makes a {@link TensorCoreMemo}: the forward converts x into it and the layer's backward-filter
 * reads it there instead of converting x again; elsewhere there is no memo (null). A convolution with its ReLU
 * ({@link #conv2dForwardRelu}, and the memo-taking forward with relu) applies the ReLU in the tensor-core forward's
 * epilogue, NaN kept as {@link #reluForward} keeps it; on v1 it is conv then relu_fwd.
 *
 * <p>GEMMs: with BF16, the fully connected layer's three GEMMs (gemm(false, true), gemm(false, false),
 * gemm(true, false)) run on the same tensor-core kernels as 1x1 convolutions when their channel sizes are multiples
 * of 8 ({@link TensorCoreGemm}; the forward and backward-data GEMMs split their depth when their tiles are too few
 * for the device, {@link #tensorCoreProductSplit}); everything else runs gemm.cu. {@link #gemmPath} says which, logged
 * likewise.
 *
 * <p>Dimension legend: N batch, C in-channels, K out-channels, H/W input height/width, P/Q output height/width,
 * R/S kernel height/width, F features; GEMM: M rows of op(a), Kd shared dimension, Nd columns of op(b).
 */
public final class CudaBackend implements Backend {
    private static final Logger LOG = LoggerFactory.getLogger(CudaBackend.class);
    private static final int THREADS = 256;
    private static final int TILE = 64;
    private static final int MAX_ELEMENTWISE_BLOCKS = 8192;
    /** split-K: the least shared-dimension depth worth a slice of its own */
    private static final long MIN_SPLIT_DEPTH = 256;
    /** split-K: at most this many slices, and a workspace of at most this many bytes */
    private static final int MAX_SPLITS = 64;
    private static final long MAX_SPLIT_WORKSPACE = 256L << 20;

    private final String name;
    private final Driver driver;
    private final MathMode math;
    private final TensorCoreConv.Setting tensorCores;
    private final DeviceAllocator allocator;
    /** live bytes of tensors by their leading dimension, for the out-of-memory advice (batch-sized tensors) */
    private final Map<Integer, Long> liveBytesByLeadingDim = new HashMap<>();
    /** the split-K workspace (see splitKWorkspace); 0 bytes before the first split-K launch */
    private final Scratch workspace;
    /** the tensor-core path's NHWC / bf16 copies, shared by its convolutions and GEMMs */
    private final TensorCoreScratch tensorCoreScratch;
    private final TensorCoreConv tensorCoreConv;
    private final TensorCoreGemm tensorCoreGemm;
    /** pass and shape of every convolution whose path was logged */
    private final Set<String> loggedPaths = new HashSet<>();
    /** the convolution memos made and not yet closed, whose buffers close() and the out-of-memory retry release */
    private final Set<TensorCoreMemo> memos = new LinkedHashSet<>();

    /** The three passes of a convolution, for {@link #convPath}. */
    public enum ConvPass {
        FORWARD, BACKWARD_DATA, BACKWARD_FILTER
    }

    /**
     * A backend on {@code driver}, which it owns (closing the backend closes the driver), the tensor-core path as
     * {@code -Dvgg4j.cuda.tensorcores} says (auto or off; default auto).
     */
    public CudaBackend(String name, Driver driver, MathMode math) {
        this(name, driver, math, TensorCoreConv.Setting.fromProperty() == TensorCoreConv.Setting.AUTO);
    }

    /** As {@link #CudaBackend(String, Driver, MathMode)}; {@code tensorCores} false keeps every conv pass on v1. */
    public CudaBackend(String name, Driver driver, MathMode math, boolean tensorCores) {
        this.name = name;
        this.driver = driver;
        this.math = math;
        this.tensorCores = tensorCores ? TensorCoreConv.Setting.AUTO : TensorCoreConv.Setting.OFF;
        this.allocator = new DeviceAllocator(driver);
        this.workspace = new Scratch(allocator, driver);
        this.tensorCoreScratch = new TensorCoreScratch(allocator, driver);
        this.tensorCoreConv = new TensorCoreConv(tensorCoreScratch);
        this.tensorCoreGemm = new TensorCoreGemm(tensorCoreScratch);
        LOG.debug("backend '{}' on {} ({} math, tensor cores {})", name, driver.describe(), math, this.tensorCores);
    }

    @Override
    public String name() {
        return name;
    }

    /** "cuda-emulated on emulated CUDA device 1 of 4 (...)": which device, for error messages. */
    @Override
    public String describe() {
        return name + " on " + driver.describe();
    }

    public MathMode math() {
        return math;
    }

    public Driver driver() {
        return driver;
    }

    /** Whether BF16 convolutions may take the tensor-core path (false: {@code -Dvgg4j.cuda.tensorcores=off}). */
    public boolean tensorCores() {
        return tensorCores == TensorCoreConv.Setting.AUTO;
    }

    /**
     * Which kernels {@code pass} of a convolution of x (N,C,H,W) with w (K,C,R,S) and padding {@code pad} runs on
     * in this backend: "tensor cores" (conv_tc.cu) or "v1" (conv.cu). See the class comment for the rule.
     */
    public String convPath(ConvPass pass, Shape x, Shape w, int pad) {
        if (x.rank() != 4 || w.rank() != 4) {
            throw new IllegalArgumentException("convPath: x " + x + " and w " + w + " must both have rank 4");
        }
        return path(pass, x.dim(1), w.dim(0), w.dim(2), w.dim(3), pad).label;
    }

    private TensorCoreConv.Path path(ConvPass pass, int c, int k, int r, int s, int pad) {
        return TensorCoreConv.whyNot(math, tensorCores, pass, c, k, r, s, pad) == null
                ? TensorCoreConv.Path.TENSOR_CORES : TensorCoreConv.Path.V1;
    }

    /** The path of {@code pass} on {@code g}, logged (debug) the first time this pass and shape come by. */
    private boolean onTensorCores(ConvPass pass, Conv g) {
        String why = TensorCoreConv.whyNot(math, tensorCores, pass, g.c, g.k, g.r, g.s, g.pad);
        if (LOG.isDebugEnabled() && loggedPaths.add(pass + " " + g.ctx)) {
            LOG.debug("{} {} ({}): {}", name, pass, g.ctx, why == null ? "tensor cores (conv_tc.cu)" : "v1 (conv.cu): "
                    + why);
        }
        return why == null;
    }

    /**
     * Which kernels gemm(transA, transB, 1, a, b, beta, c) runs on in this backend: "tensor cores" (the Linear
     * layer's three GEMMs on conv_tc.cu, {@link TensorCoreGemm}) or "v1" (gemm.cu). See the class comment.
     */
    public String gemmPath(boolean transA, boolean transB, Shape a, Shape b) {
        if (a.rank() != 2 || b.rank() != 2) {
            throw new IllegalArgumentException("gemmPath: a " + a + " and b " + b + " must both have rank 2");
        }
        int m = transA ? a.dim(1) : a.dim(0);
        int kd = transA ? a.dim(0) : a.dim(1);
        int nd = transB ? b.dim(0) : b.dim(1);
        return (TensorCoreGemm.whyNot(math, tensorCores, transA, transB, m, kd, nd) == null
                ? TensorCoreConv.Path.TENSOR_CORES : TensorCoreConv.Path.V1).label;
    }

    /** Bytes held by live tensors and scratch (the allocator's rounded sizes). */
    public long deviceBytesInUse() {
        return allocator.inUseBytes();
    }

    /** The most bytes {@link #deviceBytesInUse} has been since this backend was made. */
    public long peakDeviceBytes() {
        return allocator.peakBytes();
    }

    @Override
    public boolean supports(DType dtype) {
        return dtype == DType.FLOAT32;
    }

    // ================================================================ memory

    @Override
    public Tensor allocate(DType dtype, Shape shape) {
        if (!supports(dtype)) {
            throw new IllegalArgumentException(name + " backend computes in FLOAT32 only; cannot allocate " + dtype
                    + " " + shape + " (use the reference backend for FLOAT64)");
        }
        long bytes = Math.max(shape.size(), 1) * 4;
        long p;
        try {
            p = allocator.allocate(bytes);
        } catch (CudaOutOfMemoryException oom) {
            // the scratch buffers are the blocks the allocator cannot drop by itself: wait for their users, retry
            boolean released = workspace.release();
            released |= tensorCoreScratch.release();
            released |= releaseMemos();
            if (!released) {
                throw outOfMemory(shape, bytes, oom);
            }
            try {
                p = allocator.allocate(bytes);
            } catch (CudaOutOfMemoryException again) {
                throw outOfMemory(shape, bytes, again);
            }
        }
        DeviceBuffer buf = new DeviceBuffer(this, p, bytes);
        if (shape.rank() > 0) {
            liveBytesByLeadingDim.merge(shape.dim(0), bytes, Long::sum);
        }
        Tensor t = BackendTensors.wrap(this, DType.FLOAT32, shape, buf, 0);
        if (shape.size() > 0) {
            fill(t, 0.0);
        }
        return t;
    }

    /**
     * Names the tensor, the batch size (its leading dimension) and an estimate of a batch size that would fit: the
     * memory held by tensors with that leading dimension is taken to scale with it, everything else to stay.
     */
    private CudaOutOfMemoryException outOfMemory(Shape shape, long bytes, CudaOutOfMemoryException cause) {
        String msg = name + ": out of device memory allocating " + shape + " FLOAT32 (" + mib(bytes) + ") on "
                + driver.describe() + "; " + mib(allocator.inUseBytes()) + " in use of " + mib(driver.totalMemory());
        if (shape.rank() >= 2) {
            int batch = shape.dim(0);
            long scaling = liveBytesByLeadingDim.getOrDefault(batch, 0L) + bytes;
            long fixed = Math.max(0, allocator.inUseBytes() - liveBytesByLeadingDim.getOrDefault(batch, 0L));
            long room = driver.totalMemory() - fixed;
            long fit = room <= 0 ? 0 : (long) Math.floor((double) batch * room / scaling);
            fit = Math.min(fit, batch - 1L);
            msg += ". Batch size " + batch + " does not fit; "
                    + (fit >= 1 ? "batch size " + fit + " or less would (estimate from the memory held by tensors of"
                    + " batch " + batch + ")" : "even batch size 1 would not: the model itself is too large");
        }
        return new CudaOutOfMemoryException(msg + " [" + cause.getMessage() + "]", bytes);
    }

    private static String mib(long bytes) {
        return String.format("%.1f MiB", bytes / 1048576.0);
    }

    /** Releases a tensor's buffer when {@code t} is the whole buffer; views are released with their base. */
    @Override
    public void free(Tensor t) {
        DeviceBuffer b = buffer("free", "t", t);
        if (t.offset() != 0 || t.size() * 4 != b.bytes && !(t.size() == 0 && b.bytes == 4)) {
            return; // a view
        }
        b.freed = true;
        allocator.release(b.devPtr);
        if (t.rank() > 0) {
            liveBytesByLeadingDim.merge(t.dim(0), -b.bytes, Long::sum);
        }
    }

    @Override
    public void copyIn(float[] host, int hostOffset, Tensor t) {
        long p = ptr("copyIn", "t", t);
        int n = n32(t);
        hostRange("copyIn", host.length, hostOffset, n);
        driver.copyIn(host, hostOffset, p, n);
    }

    @Override
    public void copyIn(double[] host, int hostOffset, Tensor t) {
        int n = n32(t);
        hostRange("copyIn", host.length, hostOffset, n);
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) host[hostOffset + i];
        }
        copyIn(f, 0, t);
    }

    @Override
    public void copyOut(Tensor t, float[] host, int hostOffset) {
        long p = ptr("copyOut", "t", t);
        int n = n32(t);
        hostRange("copyOut", host.length, hostOffset, n);
        driver.copyOut(p, host, hostOffset, n);
    }

    @Override
    public void copyOut(Tensor t, double[] host, int hostOffset) {
        int n = n32(t);
        hostRange("copyOut", host.length, hostOffset, n);
        float[] f = new float[n];
        copyOut(t, f, 0);
        for (int i = 0; i < n; i++) {
            host[hostOffset + i] = f[i];
        }
    }

    @Override
    public void fill(Tensor t, double value) {
        long p = ptr("fill", "t", t);
        elementwise("fill", "elementwise", "fill_f32", t.size(), KernelArgs.of().ptr(p).i64(t.size()).f32((float) value), t);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        long s = ptr("copy", "src", src);
        long d = ptr("copy", "dst", dst);
        if (src.size() != dst.size()) {
            throw new IllegalArgumentException("copy: src " + src.shape() + " and dst " + dst.shape()
                    + " must have the same number of elements");
        }
        if (src.size() > 0) {
            driver.copyDeviceToDevice(d, s, src.size() * 4);
        }
    }

    // ================================================================ convolution

    /** Sizes of one convolution from x (N,C,H,W) and w (K,C,R,S), checked against each other. */
    record Conv(int n, int c, int h, int w, int k, int r, int s, int p, int q, int pad, String ctx) {
        static Conv of(String op, Tensor x, Tensor w, int pad) {
            rank(op, "x (N,C,H,W)", x, 4);
            rank(op, "w (K,C,R,S)", w, 4);
            String ctx = "x " + x.shape() + ", w " + w.shape() + ", pad " + pad;
            if (pad < 0) {
                throw new IllegalArgumentException(op + ": pad " + pad + " must be >= 0");
            }
            if (w.dim(1) != x.dim(1)) {
                throw new IllegalArgumentException(op + ": w has " + w.dim(1) + " input channels but x has "
                        + x.dim(1) + " (" + ctx + ")");
            }
            int p = x.dim(2) + 2 * pad - w.dim(2) + 1;
            int q = x.dim(3) + 2 * pad - w.dim(3) + 1;
            if (p < 1 || q < 1) {
                throw new IllegalArgumentException(op + ": kernel larger than the padded input (" + ctx + ")");
            }
            return new Conv(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3), p, q, pad, ctx);
        }

        KernelArgs geometry(KernelArgs a) {
            return a.i32(n).i32(c).i32(h).i32(w).i32(k).i32(r).i32(s).i32(pad);
        }
    }

    @Override
    public void conv2dForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad) {
        forward(x, w, b, y, pad, false, null);
    }

    /**
     * The convolution and its ReLU: on the tensor-core path in conv_tc_fwd_bf16's epilogue (one launch and one pass
     * over y fewer than conv then {@link #reluForward}), on v1 the SPI's default, conv then relu_fwd over y. Both
     * give the bits of conv then {@link #reluForward}, NaN included (the epilogue keeps NaN as relu_fwd does): the
     * SPI lets a fused ReLU turn NaN into 0, this one does not.
     */
    @Override
    public void conv2dForwardRelu(Tensor x, Tensor w, Tensor b, Tensor y, int pad) {
        forward(x, w, b, y, pad, true, null);
    }

    /**
     * A {@link TensorCoreMemo} where the tensor-core path runs (math BF16, tensor cores not switched off), else null:
     * nothing to keep, the v1 kernels read x as it is.
     */
    @Override
    public ConvMemo newConvMemo() {
        if (math != MathMode.BF16 || tensorCores != TensorCoreConv.Setting.AUTO) {
            return null;
        }
        TensorCoreMemo m = new TensorCoreMemo(this, new Scratch(allocator, driver));
        memos.add(m);
        return m;
    }

    /**
     * The forward, x kept in {@code memo} for the backward where its backward-filter runs on the tensor cores; the
     * ReLU fused as in {@link #conv2dForwardRelu}.
     */
    @Override
    public void conv2dForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad, boolean relu, ConvMemo memo) {
        forward(x, w, b, y, pad, relu, memo(memo));
    }

    /** The backward, x taken from {@code memo} where it holds this x's conversion (see {@link TensorCoreMemo}). */
    @Override
    public void conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad,
                               ConvMemo memo) {
        backward(x, w, dy, dx, dw, db, pad, memo(memo));
    }

    /** memo as this backend's own kind (null for null), or an error naming where it came from. */
    private TensorCoreMemo memo(ConvMemo memo) {
        if (memo == null) {
            return null;
        }
        if (!(memo instanceof TensorCoreMemo m) || m.owner() != this) {
            throw new IllegalArgumentException("convolution memo " + memo + " was not made by this " + name
                    + " backend's newConvMemo()");
        }
        if (m.closed()) {
            throw new IllegalArgumentException("convolution memo " + memo + " is used after its close()");
        }
        return m;
    }

    /** A memo's close: the backend stops tracking it. */
    void closed(TensorCoreMemo m) {
        memos.remove(m);
    }

    /** Releases every memo's buffer (after the compute stream drained); true when one was held. */
    private boolean releaseMemos() {
        boolean any = false;
        for (TensorCoreMemo m : new ArrayList<>(memos)) {
            any |= m.release();
        }
        return any;
    }

    /** Bytes held by the convolution memos not yet closed (0 when none kept an x). */
    long convMemoBytes() {
        long sum = 0;
        for (TensorCoreMemo m : memos) {
            sum += m.bytes();
        }
        return sum;
    }

    /** y = conv(x, w) + b, then ReLU over y when {@code relu}: in the tensor-core kernel, else by relu_fwd. */
    private void forward(Tensor x, Tensor w, Tensor b, Tensor y, int pad, boolean relu, TensorCoreMemo memo) {
        String op = relu ? "conv2dForwardRelu" : "conv2dForward";
        Conv g = Conv.of(op, x, w, pad);
        shape(op, "y", y, g.ctx, g.n, g.k, g.p, g.q);
        long bp = 0;
        if (b != null) {
            shape(op, "b", b, g.ctx, g.k);
            bp = ptr(op, "b", b);
        }
        if (memo != null) {
            memo.forget();
        }
        if (onTensorCores(ConvPass.FORWARD, g)) {
            // the memo keeps x where backward-filter will read it: on the tensor cores too
            boolean keep = memo != null && path(ConvPass.BACKWARD_FILTER, g.c, g.k, g.r, g.s, g.pad)
                    == TensorCoreConv.Path.TENSOR_CORES;
            long xp = ptr(op, "x", x);
            tensorCoreConv.forward(launcher(op, x, w, b, y), g, xp, keep ? memo.forForward() : tensorCoreScratch.first,
                    ptr(op, "w", w), bp, ptr(op, "y", y), relu);
            if (keep) {
                memo.keep(memoKey(g, xp));
            }
            return;
        }
        KernelArgs a = KernelArgs.of().ptr(ptr(op, "x", x)).ptr(ptr(op, "w", w)).ptr(bp).ptr(ptr(op, "y", y));
        launch(op, "conv", "conv_fwd_" + math.suffix, blocks((long) g.n * g.p * g.q), blocks(g.k), g.geometry(a),
                x, w, b, y);
        if (relu) {
            // conv.cu's v1 kernels have no ReLU epilogue
            reluForward(y, y);
        }
    }

    @Override
    public void conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int pad) {
        String op = "conv2dBackwardData";
        Conv g = Conv.of(op, dx, w, pad);
        shape(op, "dy", dy, g.ctx, g.n, g.k, g.p, g.q);
        if (onTensorCores(ConvPass.BACKWARD_DATA, g)) {
            tensorCoreConv.backwardData(launcher(op, dy, w, dx), g, ptr(op, "dy", dy), ptr(op, "w", w),
                    ptr(op, "dx", dx));
            return;
        }
        KernelArgs a = KernelArgs.of().ptr(ptr(op, "dy", dy)).ptr(ptr(op, "w", w)).ptr(ptr(op, "dx", dx));
        launch(op, "conv", "conv_bwd_data_" + math.suffix, blocks((long) g.n * g.h * g.w), blocks(g.c),
                g.geometry(a), dy, w, dx);
    }

    @Override
    public void conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad) {
        String op = "conv2dBackwardFilter";
        Conv g = Conv.of(op, x, dw, pad);
        shape(op, "dy", dy, g.ctx, g.n, g.k, g.p, g.q);
        long dwp = ptr(op, "dw", dw);
        if (db != null) {
            shape(op, "db", db, g.ctx, g.k);
        }
        if (onTensorCores(ConvPass.BACKWARD_FILTER, g)) {
            SplitK sk = tensorCoreWgradSplit(g);
            long ws = splitKWorkspace(4L * TensorCoreConv.wgradWorkspaceFloats(g, sk.splits));
            tensorCoreConv.backwardFilter(launcher(op, x, dy, dw), g, ptr(op, "x", x), ptr(op, "dy", dy), dwp, ws,
                    sk.splits, sk.chunk);
        } else {
            backwardFilterV1(op, g, x, dy, dw, dwp);
        }
        if (db != null) {
            biasGradient(op, dy, db, g.n, g.k, g.p * g.q);
        }
    }

    /**
     * Both gradients. Where backward-filter runs on the tensor cores, so does one {@link TensorCoreConv#backward}
     * call: dy converted to NHWC bf16 once and read by both GEMMs when backward-data (dx wanted) is on the tensor
     * cores too, else backward-data then runs on its own path; the same kernels on the same operands as the
     * separate calls, so the same values bit for bit. Otherwise the two calls, each on its own path.
     */
    @Override
    public void conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad) {
        backward(x, w, dy, dx, dw, db, pad, null);
    }

    /**
     * As {@link #conv2dBackward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int)}; x from {@code memo} (null:
     * none) where it holds this x.
     */
    private void backward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad,
                          TensorCoreMemo memo) {
        String op = "conv2dBackward";
        Conv g = Conv.of(op, x, w, pad);
        if (!onTensorCores(ConvPass.BACKWARD_FILTER, g)) {
            Backend.super.conv2dBackward(x, w, dy, dx, dw, db, pad);
            return;
        }
        shape(op, "dy", dy, g.ctx, g.n, g.k, g.p, g.q);
        shape(op, "dw", dw, g.ctx, g.k, g.c, g.r, g.s);
        if (dx != null) {
            shape(op, "dx", dx, g.ctx, g.n, g.c, g.h, g.w);
        }
        if (db != null) {
            shape(op, "db", db, g.ctx, g.k);
        }
        boolean fusedDx = dx != null && onTensorCores(ConvPass.BACKWARD_DATA, g);
        long xp = ptr(op, "x", x);
        long xh = memo == null ? 0 : memo.converted(memoKey(g, xp));
        SplitK sk = tensorCoreWgradSplit(g);
        long ws = splitKWorkspace(4L * TensorCoreConv.wgradWorkspaceFloats(g, sk.splits));
        tensorCoreConv.backward(launcher(op, x, w, dy, dx, dw), g, xp, xh, ptr(op, "w", w), ptr(op, "dy", dy),
                fusedDx ? ptr(op, "dx", dx) : 0, ptr(op, "dw", dw), ws, sk.splits, sk.chunk);
        if (db != null) {
            biasGradient(op, dy, db, g.n, g.k, g.p * g.q);
        }
        if (dx != null && !fusedDx) {
            conv2dBackwardData(dy, w, dx, pad);
        }
    }

    /** What a {@link TensorCoreMemo} holds x of a convolution by: its address and shape. */
    private static TensorCoreMemo.Key memoKey(Conv g, long x) {
        return new TensorCoreMemo.Key(x, g.n, g.c, g.h, g.w);
    }

    private void backwardFilterV1(String op, Conv g, Tensor x, Tensor dy, Tensor dw, long dwp) {
        KernelArgs a = g.geometry(KernelArgs.of().ptr(ptr(op, "x", x)).ptr(ptr(op, "dy", dy)).ptr(dwp));
        int gx = blocks((long) g.c * g.r * g.s);
        int gy = blocks(g.k);
        long mn = (long) g.k * g.c * g.r * g.s;
        SplitK sk = splitK(gx * gy, (long) g.n * g.p * g.q, mn);
        if (sk.splits == 1) {
            launch(op, "conv", "conv_bwd_filter_" + math.suffix, gx, gy, 1, a.ptr(0).i32(0), x, dy, dw);
        } else {
            // each z-slice sums a chunk of N*P*Q into workspace[z]; splitk_accumulate adds them to dw in order
            long ws = splitKWorkspace(4L * sk.splits * mn);
            launch(op, "conv", "conv_bwd_filter_" + math.suffix, gx, gy, sk.splits, a.ptr(ws).i32(sk.chunk),
                    x, dy, dw);
            elementwise(op, "elementwise", "splitk_accumulate", mn, KernelArgs.of().ptr(ws).i32(sk.splits)
                    .i64(mn).ptr(dwp), x, dy, dw);
        }
    }

    // ================================================================ pooling, activations, normalisation

    @Override
    public void maxPool2x2Forward(Tensor x, Tensor y) {
        String op = "maxPool2x2Forward";
        rank(op, "x (N,C,H,W)", x, 4);
        int p = x.dim(2) / 2;
        int q = x.dim(3) / 2;
        if (p < 1 || q < 1) {
            throw new IllegalArgumentException(op + ": x " + x.shape() + " is smaller than one 2x2 window");
        }
        shape(op, "y", y, "x " + x.shape(), x.dim(0), x.dim(1), p, q);
        elementwise(op, "pool_lrn", "maxpool_fwd", y.size(), KernelArgs.of().ptr(ptr(op, "x", x)).ptr(ptr(op, "y", y))
                .i32(x.dim(0) * x.dim(1)).i32(x.dim(2)).i32(x.dim(3)), x, y);
    }

    @Override
    public void maxPool2x2Backward(Tensor x, Tensor y, Tensor dy, Tensor dx) {
        String op = "maxPool2x2Backward";
        rank(op, "x (N,C,H,W)", x, 4);
        String ctx = "x " + x.shape();
        int p = x.dim(2) / 2;
        int q = x.dim(3) / 2;
        shape(op, "y", y, ctx, x.dim(0), x.dim(1), p, q);
        shape(op, "dy", dy, ctx, x.dim(0), x.dim(1), p, q);
        shape(op, "dx", dx, ctx, x.shape().dims());
        elementwise(op, "pool_lrn", "maxpool_bwd", dx.size(), KernelArgs.of().ptr(ptr(op, "x", x))
                .ptr(ptr(op, "dy", dy)).ptr(ptr(op, "dx", dx)).i32(x.dim(0) * x.dim(1)).i32(x.dim(2)).i32(x.dim(3)),
                x, dy, dx);
    }

    @Override
    public void reluForward(Tensor x, Tensor y) {
        String op = "reluForward";
        sameShape(op, "x", x, "y", y);
        elementwise(op, "elementwise", "relu_fwd", x.size(), KernelArgs.of().ptr(ptr(op, "x", x)).ptr(ptr(op, "y", y))
                .i64(x.size()), x, y);
    }

    @Override
    public void reluBackward(Tensor y, Tensor dy, Tensor dx) {
        String op = "reluBackward";
        sameShape(op, "y", y, "dy", dy);
        sameShape(op, "y", y, "dx", dx);
        elementwise(op, "elementwise", "relu_bwd", y.size(), KernelArgs.of().ptr(ptr(op, "y", y))
                .ptr(ptr(op, "dy", dy)).ptr(ptr(op, "dx", dx)).i64(y.size()), y, dy, dx);
    }

    @Override
    public void lrnForward(Tensor x, Tensor y, Tensor scale, int size, double alpha, double beta, double k) {
        String op = "lrnForward";
        rank(op, "x (N,C,H,W)", x, 4);
        lrnSize(op, size);
        sameShape(op, "x", x, "y", y);
        sameShape(op, "x", x, "scale", scale);
        elementwise(op, "pool_lrn", "lrn_fwd", x.size(), KernelArgs.of().ptr(ptr(op, "x", x)).ptr(ptr(op, "y", y))
                .ptr(ptr(op, "scale", scale)).i32(x.dim(0)).i32(x.dim(1)).i32(x.dim(2) * x.dim(3)).i32(size)
                .f32((float) alpha).f32((float) beta).f32((float) k), x, y, scale);
    }

    @Override
    public void lrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, double alpha,
                            double beta, double k) {
        String op = "lrnBackward";
        rank(op, "x (N,C,H,W)", x, 4);
        lrnSize(op, size);
        sameShape(op, "x", x, "y", y);
        sameShape(op, "x", x, "scale", scale);
        sameShape(op, "x", x, "dy", dy);
        sameShape(op, "x", x, "dx", dx);
        elementwise(op, "pool_lrn", "lrn_bwd", x.size(), KernelArgs.of().ptr(ptr(op, "x", x)).ptr(ptr(op, "y", y))
                .ptr(ptr(op, "scale", scale)).ptr(ptr(op, "dy", dy)).ptr(ptr(op, "dx", dx)).i32(x.dim(0))
                .i32(x.dim(1)).i32(x.dim(2) * x.dim(3)).i32(size).f32((float) alpha).f32((float) beta),
                x, y, scale, dy, dx);
    }

    @Override
    public void dropoutForward(Tensor x, Tensor y, Tensor mask, double p, long seed) {
        String op = "dropoutForward";
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException(op + ": probability " + p + " must be in [0, 1)");
        }
        sameShape(op, "x", x, "y", y);
        sameShape(op, "x", x, "mask", mask);
        float kept = (float) (1.0 / (1.0 - p)); // the value the reference stores in its FLOAT32 mask
        elementwise(op, "elementwise", "dropout_fwd", x.size(), KernelArgs.of().ptr(ptr(op, "x", x))
                .ptr(ptr(op, "y", y)).ptr(ptr(op, "mask", mask)).i64(x.size()).f64(p).i64(seed).f32(kept), x, y, mask);
    }

    @Override
    public void multiply(Tensor a, Tensor b, Tensor y) {
        String op = "multiply";
        sameShape(op, "a", a, "b", b);
        sameShape(op, "a", a, "y", y);
        elementwise(op, "elementwise", "multiply_f32", a.size(), KernelArgs.of().ptr(ptr(op, "a", a))
                .ptr(ptr(op, "b", b)).ptr(ptr(op, "y", y)).i64(a.size()), a, b, y);
    }

    @Override
    public void batchNormForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                         Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum,
                                         double eps) {
        String op = "batchNormForwardTraining";
        rank(op, "x (N,C,H,W)", x, 4);
        int c = x.dim(1);
        if ((long) x.dim(0) * x.dim(2) * x.dim(3) < 2) {
            throw new IllegalArgumentException(op + ": x " + x.shape()
                    + " has one value per channel; the unbiased variance needs at least 2");
        }
        sameShape(op, "x", x, "y", y);
        String ctx = "x " + x.shape();
        for (Object[] ch : new Object[][] {{"gamma", gamma}, {"beta", beta}, {"runningMean", runningMean},
                {"runningVar", runningVar}, {"saveMean", saveMean}, {"saveInvStd", saveInvStd}}) {
            shape(op, (String) ch[0], (Tensor) ch[1], ctx, c);
        }
        int inner = x.dim(2) * x.dim(3);
        long slices = slices(c, (long) x.dim(0) * inner);
        if (slices > 1) {
            // few channels, many values each: ordered slices per channel (reduce.cu, "batch norm in slices")
            long sums = allocator.allocate(4L * c * slices);
            long sqs = allocator.allocate(4L * c * slices);
            try {
                long xp = ptr(op, "x", x);
                launch(op, "reduce", "bias_backward_partial", c, (int) slices, KernelArgs.of().ptr(xp).ptr(sums)
                        .i32(x.dim(0)).i32(c).i32(inner).i32((int) slices), x, y);
                launch(op, "reduce", "bn_partial_sq", c, (int) slices, KernelArgs.of().ptr(xp).ptr(sums).ptr(sqs)
                        .i32(x.dim(0)).i32(c).i32(inner).i32((int) slices), x, y);
                elementwise(op, "reduce", "bn_finish_stats", c, KernelArgs.of().ptr(sums).ptr(sqs).i32((int) slices)
                        .i32(x.dim(0)).i32(c).i32(inner).ptr(ptr(op, "runningMean", runningMean))
                        .ptr(ptr(op, "runningVar", runningVar)).ptr(ptr(op, "saveMean", saveMean))
                        .ptr(ptr(op, "saveInvStd", saveInvStd)).f32((float) momentum).f32((float) eps), x, y);
                elementwise(op, "reduce", "bn_normalize", x.size(), KernelArgs.of().ptr(xp)
                        .ptr(ptr(op, "gamma", gamma)).ptr(ptr(op, "beta", beta)).ptr(ptr(op, "y", y))
                        .ptr(ptr(op, "saveMean", saveMean)).ptr(ptr(op, "saveInvStd", saveInvStd)).i64(x.size())
                        .i32(c).i32(inner), x, y);
            } finally {
                allocator.release(sums);
                allocator.release(sqs);
            }
            return;
        }
        launch(op, "reduce", "bn_fwd_train", c, 1, KernelArgs.of().ptr(ptr(op, "x", x)).ptr(ptr(op, "gamma", gamma))
                .ptr(ptr(op, "beta", beta)).ptr(ptr(op, "y", y)).ptr(ptr(op, "runningMean", runningMean))
                .ptr(ptr(op, "runningVar", runningVar)).ptr(ptr(op, "saveMean", saveMean))
                .ptr(ptr(op, "saveInvStd", saveInvStd)).i32(x.dim(0)).i32(c).i32(x.dim(2) * x.dim(3))
                .f32((float) momentum).f32((float) eps), x, y);
    }

    @Override
    public void batchNormForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                          Tensor runningVar, double eps) {
        String op = "batchNormForwardInference";
        rank(op, "x (N,C,H,W)", x, 4);
        int c = x.dim(1);
        sameShape(op, "x", x, "y", y);
        String ctx = "x " + x.shape();
        for (Object[] ch : new Object[][] {{"gamma", gamma}, {"beta", beta}, {"runningMean", runningMean},
                {"runningVar", runningVar}}) {
            shape(op, (String) ch[0], (Tensor) ch[1], ctx, c);
        }
        elementwise(op, "elementwise", "bn_fwd_infer", x.size(), KernelArgs.of().ptr(ptr(op, "x", x))
                .ptr(ptr(op, "gamma", gamma)).ptr(ptr(op, "beta", beta)).ptr(ptr(op, "y", y))
                .ptr(ptr(op, "runningMean", runningMean)).ptr(ptr(op, "runningVar", runningVar)).i64(x.size()).i32(c)
                .i32(x.dim(2) * x.dim(3)).f32((float) eps), x, y);
    }

    @Override
    public void batchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
                                  Tensor dgamma, Tensor dbeta) {
        String op = "batchNormBackward";
        rank(op, "x (N,C,H,W)", x, 4);
        int c = x.dim(1);
        sameShape(op, "x", x, "dy", dy);
        sameShape(op, "x", x, "dx", dx);
        String ctx = "x " + x.shape();
        for (Object[] ch : new Object[][] {{"gamma", gamma}, {"saveMean", saveMean}, {"saveInvStd", saveInvStd},
                {"dgamma", dgamma}, {"dbeta", dbeta}}) {
            shape(op, (String) ch[0], (Tensor) ch[1], ctx, c);
        }
        int inner = x.dim(2) * x.dim(3);
        long m = (long) x.dim(0) * inner;
        long slices = slices(c, m);
        if (slices > 1) {
            long partial = allocator.allocate(8L * c * slices);
            long totals = allocator.allocate(8L * c);
            try {
                launch(op, "reduce", "bn_bwd_partial", c, (int) slices, KernelArgs.of().ptr(ptr(op, "x", x))
                        .ptr(ptr(op, "dy", dy)).ptr(ptr(op, "saveMean", saveMean)).ptr(ptr(op, "saveInvStd", saveInvStd))
                        .ptr(partial).i32(x.dim(0)).i32(c).i32(inner).i32((int) slices), x, dy, dx);
                elementwise(op, "reduce", "bn_bwd_finish", c, KernelArgs.of().ptr(partial).i32((int) slices).i32(c)
                        .ptr(totals).ptr(ptr(op, "dgamma", dgamma)).ptr(ptr(op, "dbeta", dbeta)), x, dy, dx);
                elementwise(op, "reduce", "bn_bwd_dx", x.size(), KernelArgs.of().ptr(ptr(op, "x", x))
                        .ptr(ptr(op, "dy", dy)).ptr(ptr(op, "gamma", gamma)).ptr(ptr(op, "saveMean", saveMean))
                        .ptr(ptr(op, "saveInvStd", saveInvStd)).ptr(totals).ptr(ptr(op, "dx", dx)).i64(x.size())
                        .i32(c).i32(inner).i64(m), x, dy, dx);
            } finally {
                allocator.release(partial);
                allocator.release(totals);
            }
            return;
        }
        launch(op, "reduce", "bn_bwd", c, 1, KernelArgs.of().ptr(ptr(op, "x", x)).ptr(ptr(op, "dy", dy))
                .ptr(ptr(op, "gamma", gamma)).ptr(ptr(op, "saveMean", saveMean))
                .ptr(ptr(op, "saveInvStd", saveInvStd)).ptr(ptr(op, "dx", dx)).ptr(ptr(op, "dgamma", dgamma))
                .ptr(ptr(op, "dbeta", dbeta)).i32(x.dim(0)).i32(c).i32(x.dim(2) * x.dim(3)), x, dy, dx);
    }

    // ================================================================ dense algebra

    @Override
    public void gemm(boolean transA, boolean transB, double alpha, Tensor a, Tensor b, double beta, Tensor c) {
        String op = "gemm";
        OpChecks.GemmDims dims = gemmDims(op, transA, transB, a, b, c);
        int m = dims.m();
        int kd = dims.kd();
        int nd = dims.nd();
        long cp = ptr(op, "c", c);
        if (gemmOnTensorCores(transA, transB, dims, a, b)) {
            TensorCoreConv.Launcher l = launcher(op, a, b, c);
            TensorCoreGemm.Pattern pattern = TensorCoreGemm.Pattern.of(transA, transB);
            if (pattern == TensorCoreGemm.Pattern.BACKWARD_FILTER) {
                SplitK sk = splitK(TensorCoreGemm.weightGradientTiles(m, nd), kd, (long) m * nd,
                        TensorCoreConv.WGRAD_CHUNK);
                long ws = TensorCoreGemm.needsWorkspace(sk.splits, alpha, beta)
                        ? splitKWorkspace(4L * sk.splits * m * nd) : 0;
                tensorCoreGemm.weightGradient(l, m, kd, nd, ptr(op, "a", a), ptr(op, "b", b), alpha, beta, cp, ws,
                        sk.splits, sk.chunk);
            } else {
                SplitK sk = tensorCoreProductSplit(m, kd, nd);
                long ws = sk.splits > 1 ? splitKWorkspace(4L * sk.splits * m * nd) : 0;
                tensorCoreGemm.product(l, pattern, m, kd, nd, ptr(op, "a", a), ptr(op, "b", b), alpha, beta, cp, ws,
                        sk.splits, sk.chunk);
            }
            return;
        }
        KernelArgs args = KernelArgs.of().ptr(ptr(op, "a", a)).ptr(ptr(op, "b", b)).ptr(cp).i32(m).i32(nd).i32(kd)
                .i32(transA ? 1 : 0).i32(transB ? 1 : 0).i32(a.dim(1)).i32(b.dim(1)).f32((float) alpha)
                .f32((float) beta);
        long mn = (long) m * nd;
        SplitK sk = splitK(blocks(nd) * blocks(m), kd, mn);
        if (sk.splits == 1) {
            launch(op, "gemm", "gemm_" + math.suffix, blocks(nd), blocks(m), 1, args.ptr(0).i32(0), a, b, c);
            return;
        }
        long ws = splitKWorkspace(4L * sk.splits * mn);
        launch(op, "gemm", "gemm_" + math.suffix, blocks(nd), blocks(m), sk.splits, args.ptr(ws).i32(sk.chunk),
                a, b, c);
        elementwise(op, "elementwise", "splitk_gemm_epilogue", mn, KernelArgs.of().ptr(ws).i32(sk.splits).i64(mn)
                .ptr(cp).f32((float) alpha).f32((float) beta), a, b, c);
    }

    /** Whether this gemm call runs on the tensor cores, logged (debug) the first time its pattern and shapes come by. */
    private boolean gemmOnTensorCores(boolean transA, boolean transB, OpChecks.GemmDims d, Tensor a, Tensor b) {
        String why = TensorCoreGemm.whyNot(math, tensorCores, transA, transB, d.m(), d.kd(), d.nd());
        String ctx = "gemm(" + transA + ", " + transB + ") a " + a.shape() + ", b " + b.shape();
        if (LOG.isDebugEnabled() && loggedPaths.add(ctx)) {
            LOG.debug("{} {}: {}", name, ctx, why == null ? "tensor cores (conv_tc.cu)" : "v1 (gemm.cu): " + why);
        }
        return why == null;
    }

    /**
     * The split-K workspace, at least {@code bytes}: one buffer the backend keeps (at most MAX_SPLIT_WORKSPACE),
     * used only by kernels on the compute stream, so consecutive split-K launches are ordered by the stream itself.
     * It is never handed back to the allocator while launches that use it may still be queued: growing it waits for
     * the compute stream before the old buffer is released, and {@link #close} releases it last. (Releasing it to the
     * allocator right after queuing the launches, as before, let an allocation for another stream -- a collective's
     * -- reuse the block while the split-K kernels still ran.)
     */
    private long splitKWorkspace(long bytes) {
        return workspace.atLeast(bytes);
    }

    /** Bytes held by the split-K workspace (0 before the first split-K launch). */
    long splitKWorkspaceBytes() {
        return workspace.bytes();
    }

    /** The split-K workspace's device address (meaningful while {@link #splitKWorkspaceBytes} &gt; 0). */
    long splitKWorkspacePointer() {
        return workspace.pointer();
    }

    /** Bytes held by the tensor-core path's NHWC scratch buffers (0 before its first use). */
    long tensorCoreScratchBytes() {
        return tensorCoreScratch.bytes();
    }

    /** How a GEMM-shaped launch splits its shared dimension: {@code splits} z-slices of {@code chunk} each. */
    public record SplitK(int splits, int chunk) {
        /**
         * The split-K plan of a GEMM-shaped launch of {@code tiles} output tiles summing over {@code depth} on a
         * device of {@code multiprocessors}: enough slices to give the device about two blocks per multiprocessor,
         * none shallower than MIN_SPLIT_DEPTH, at most MAX_SPLITS, the workspace (splits x mn floats) at most
         * MAX_SPLIT_WORKSPACE bytes; chunks a multiple of the tile depth 16, the last one ragged. Unsplit: one chunk
         * of the whole depth. A pure function of its arguments (the SM count is one: see
         * {@link Driver#multiprocessorCount}).
         */
        static SplitK plan(int multiprocessors, int tiles, long depth, long mn) {
            long target = 2L * multiprocessors;
            long splits = Math.min((target + tiles - 1) / tiles, depth / MIN_SPLIT_DEPTH);
            splits = Math.min(Math.min(splits, MAX_SPLITS), MAX_SPLIT_WORKSPACE / Math.max(1, 4 * mn));
            if (tiles >= target || splits <= 1) {
                return new SplitK(1, (int) Math.min(depth, Integer.MAX_VALUE));
            }
            long chunk = ((depth + splits - 1) / splits + 15) / 16 * 16;
            return new SplitK((int) ((depth + chunk - 1) / chunk), (int) chunk);
        }

        /**
         * As {@link #plan(int, int, long, long)} for a kernel whose chunks must be multiples of {@code align} (a
         * multiple of 16), the single chunk of an unsplit plan included (rounded up past {@code depth}).
         */
        static SplitK plan(int multiprocessors, int tiles, long depth, long mn, int align) {
            SplitK sk = plan(multiprocessors, tiles, depth, mn);
            long chunk = (sk.chunk + (long) align - 1) / align * align;
            return new SplitK((int) ((depth + chunk - 1) / chunk), Math.toIntExact(chunk));
        }
    }

    /**
     * The split-K plan of the tensor-core backward-filter (conv_tc_wgrad_bf16) for x (N,C,H,W), w (K,C,R,S) and
     * {@code pad}: how many chunks of N*P*Q pixels it sums separately before conv_tc_wgrad_reduce adds them in
     * order. For the benchmark of the raw kernels (GpuBenchmark tc-layers), which must launch them as this backend
     * does.
     */
    public SplitK tensorCoreWgradSplit(Shape x, Shape w, int pad) {
        String op = "tensorCoreWgradSplit";
        if (x.rank() != 4 || w.rank() != 4 || x.dim(1) != w.dim(1)) {
            throw new IllegalArgumentException(op + ": x " + x + " and w " + w + " must be (N,C,H,W) and (K,C,R,S)");
        }
        int p = x.dim(2) + 2 * pad - w.dim(2) + 1;
        int q = x.dim(3) + 2 * pad - w.dim(3) + 1;
        return tensorCoreWgradSplit(new Conv(x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3), p,
                q, pad, "x " + x + ", w " + w + ", pad " + pad));
    }

    private SplitK tensorCoreWgradSplit(Conv g) {
        return splitK(TensorCoreConv.wgradTiles(g), (long) g.n * g.p * g.q, (long) g.k * g.c * g.r * g.s,
                TensorCoreConv.WGRAD_CHUNK);
    }

    /**
     * The split-K plan of the tensor-core FORWARD or BACKWARD_DATA GEMM c (M,Nd) = op(a) (M,Kd) op(b) (Kd,Nd) on
     * this device ({@link TensorCoreGemm#productSplit}): one slice runs conv_tc_fwd_bf16, more run
     * conv_tc_wgrad_bf16 in Kd chunks and splitk_gemm_epilogue. For GpuBenchmark tc-layers, which must launch the
     * kernels as this backend does.
     */
    public SplitK tensorCoreProductSplit(int m, int kd, int nd) {
        return TensorCoreGemm.productSplit(driver.multiprocessorCount(), m, kd, nd);
    }

    /** {@link SplitK#plan(int, int, long, long)} on this device. */
    SplitK splitK(int tiles, long depth, long mn) {
        return SplitK.plan(driver.multiprocessorCount(), tiles, depth, mn);
    }

    /** {@link SplitK#plan(int, int, long, long, int)} on this device. */
    SplitK splitK(int tiles, long depth, long mn, int align) {
        return SplitK.plan(driver.multiprocessorCount(), tiles, depth, mn, align);
    }

    @Override
    public void addBias(Tensor y, Tensor bias) {
        String op = "addBias";
        int k = biasChannels(op, "y", y);
        shape(op, "bias", bias, "y " + y.shape(), k);
        int inner = (int) (y.size() / ((long) y.dim(0) * k));
        elementwise(op, "elementwise", "add_bias", y.size(), KernelArgs.of().ptr(ptr(op, "y", y))
                .ptr(ptr(op, "bias", bias)).i64(y.size()).i32(k).i32(inner), y, bias);
    }

    @Override
    public void biasBackward(Tensor dy, Tensor db) {
        String op = "biasBackward";
        int k = biasChannels(op, "dy", dy);
        shape(op, "db", db, "dy " + dy.shape(), k);
        int inner = (int) (dy.size() / ((long) dy.dim(0) * k));
        biasGradient(op, dy, db, dy.dim(0), k, inner);
    }

    /**
     * Pieces per channel for a per-channel reduction over {@code perChannel} values: enough for about two blocks per
     * multiprocessor, none smaller than 4096 values, at most 1024; 1 means one block per channel.
     */
    private long slices(int channels, long perChannel) {
        long s = Math.min((2L * driver.multiprocessorCount() + channels - 1) / channels, (perChannel + 4095) / 4096);
        return Math.max(1, Math.min(s, 1024));
    }

    /**
     * db (K) += sum of dy (N,K,inner) over N and inner: one block per channel, or, when channels are too few to fill
     * the device, several slices per channel whose partial sums are added in order (deterministic).
     */
    private void biasGradient(String op, Tensor dy, Tensor db, int n, int k, int inner) {
        long slices = slices(k, (long) n * inner);
        if (slices <= 1) {
            launch(op, "reduce", "bias_backward", k, 1, KernelArgs.of().ptr(ptr(op, "dy", dy)).ptr(ptr(op, "db", db))
                    .i32(n).i32(k).i32(inner), dy, db);
            return;
        }
        long partial = allocator.allocate(4L * k * slices);
        try {
            launch(op, "reduce", "bias_backward_partial", k, (int) slices, KernelArgs.of().ptr(ptr(op, "dy", dy))
                    .ptr(partial).i32(n).i32(k).i32(inner).i32((int) slices), dy, db);
            elementwise(op, "reduce", "bias_backward_finish", k, KernelArgs.of().ptr(partial).ptr(ptr(op, "db", db))
                    .i32(k).i32((int) slices), dy, db);
        } finally {
            allocator.release(partial);
        }
    }

    @Override
    public void axpy(double alpha, Tensor x, Tensor y) {
        String op = "axpy";
        sameSize(op, "x", x, "y", y);
        elementwise(op, "elementwise", "axpy_f32", x.size(), KernelArgs.of().f64(alpha).ptr(ptr(op, "x", x))
                .ptr(ptr(op, "y", y)).i64(x.size()), x, y);
    }

    @Override
    public void scale(Tensor x, double alpha) {
        String op = "scale";
        elementwise(op, "elementwise", "scale_f32", x.size(), KernelArgs.of().ptr(ptr(op, "x", x)).f64(alpha)
                .i64(x.size()), x);
    }

    // ================================================================ loss and optimiser

    @Override
    public void softmax(Tensor logits, Tensor probs) {
        String op = "softmax";
        rank(op, "logits (N,F)", logits, 2);
        sameShape(op, "logits", logits, "probs", probs);
        launch(op, "reduce", "softmax_rows", logits.dim(0), 1, KernelArgs.of().ptr(ptr(op, "logits", logits))
                .ptr(ptr(op, "probs", probs)).i32(logits.dim(1)), logits, probs);
    }

    @Override
    public double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor dlogits) {
        String op = "softmaxCrossEntropy";
        rank(op, "logits (N,F)", logits, 2);
        sameShape(op, "logits", logits, "dlogits", dlogits);
        int batch = logits.dim(0);
        int f = logits.dim(1);
        if (labels.length != batch) {
            throw new IllegalArgumentException(op + ": " + labels.length + " labels for logits " + logits.shape()
                    + "; expected " + batch);
        }
        for (int n = 0; n < batch; n++) {
            if (labels[n] < 0 || labels[n] >= f) {
                throw new IllegalArgumentException(op + ": label " + labels[n] + " at batch position " + n
                        + " is outside [0, " + f + ")");
            }
        }
        long devLabels = allocator.allocate(4L * batch);
        long devLoss = allocator.allocate(4L * batch);
        try {
            driver.copyIn(labels, 0, devLabels, batch);
            launch(op, "reduce", "softmax_xent", batch, 1, KernelArgs.of().ptr(ptr(op, "logits", logits))
                    .ptr(devLabels).ptr(ptr(op, "dlogits", dlogits)).ptr(devLoss).i32(batch).i32(f), logits, dlogits);
            float[] rows = new float[batch];
            driver.copyOut(devLoss, rows, 0, batch);
            double loss = 0;
            for (float r : rows) {
                loss += r;
            }
            return loss / batch;
        } finally {
            allocator.release(devLabels);
            allocator.release(devLoss);
        }
    }

    @Override
    public void sgdStep(Tensor param, Tensor grad, Tensor velocity, double lr, double momentum, double weightDecay,
                        long decayedCount) {
        String op = "sgdStep";
        sameShape(op, "param", param, "grad", grad);
        sameShape(op, "param", param, "velocity", velocity);
        if (decayedCount < 0 || decayedCount > param.size()) {
            throw new IllegalArgumentException(op + ": decayedCount " + decayedCount + " must be in [0, "
                    + param.size() + "] for param " + param.shape());
        }
        elementwise(op, "elementwise", "sgd_step", param.size(), KernelArgs.of().ptr(ptr(op, "param", param))
                .ptr(ptr(op, "grad", grad)).ptr(ptr(op, "velocity", velocity)).i64(param.size()).f64(lr)
                .f64(momentum).f64(weightDecay).i64(decayedCount), param, grad, velocity);
    }

    @Override
    public double sumOfSquares(Tensor x) {
        String op = "sumOfSquares";
        long p = ptr(op, "x", x);
        if (x.size() == 0) {
            return 0.0;
        }
        int grid = (int) Math.min(blocks(x.size(), THREADS), 1024);
        long partial = allocator.allocate(4L * grid);
        try {
            launch(op, "reduce", "sum_squares_partial", grid, 1, KernelArgs.of().ptr(p).i64(x.size()).ptr(partial), x);
            float[] host = new float[grid];
            driver.copyOut(partial, host, 0, grid);
            double acc = 0;
            for (float v : host) {
                acc += v;
            }
            return acc;
        } finally {
            allocator.release(partial);
        }
    }

    @Override
    public void synchronize() {
        driver.synchronize();
    }

    /** Gives cached device memory back and closes the driver. */
    @Override
    public void close() {
        try {
            workspace.release();
            tensorCoreScratch.release();
            releaseMemos();
            allocator.releaseCached();
        } finally {
            driver.close(); // also after a failed release: a lost GPU context is reset there
        }
    }

    // ================================================================ launching

    private static int blocks(long n) {
        return blocks(n, TILE);
    }

    private static int blocks(long n, int per) {
        return (int) Math.max(1, (n + per - 1) / per);
    }

    /** The tensor-core path's launches for {@code op}: module conv_tc (GEMMs), failures naming op and tensors. */
    private TensorCoreConv.Launcher launcher(String op, Tensor... tensors) {
        return new TensorCoreConv.Launcher() {
            @Override
            public void launch(String kernel, int gx, int gy, int gz, KernelArgs args) {
                CudaBackend.this.launch(op, TensorCoreConv.MODULE, kernel, gx, gy, gz, args, tensors);
            }

            @Override
            public void elementwise(String module, String kernel, long n, KernelArgs args) {
                CudaBackend.this.elementwise(op, module, kernel, n, args, tensors);
            }
        };
    }

    /** A grid-stride kernel over n elements. */
    private void elementwise(String op, String module, String kernel, long n, KernelArgs args, Tensor... tensors) {
        if (n == 0) {
            return;
        }
        launch(op, module, kernel, (int) Math.min(blocks(n, THREADS), MAX_ELEMENTWISE_BLOCKS), 1, args, tensors);
    }

    private void launch(String op, String module, String kernel, int gx, int gy, KernelArgs args, Tensor... tensors) {
        launch(op, module, kernel, gx, gy, 1, args, tensors);
    }

    private void launch(String op, String module, String kernel, int gx, int gy, int gz, KernelArgs args,
                        Tensor... tensors) {
        try {
            driver.launch(driver.function(module, kernel), gx, gy, gz, THREADS, args);
        } catch (CudaException e) {
            StringJoiner shapes = new StringJoiner(", ");
            for (Tensor t : tensors) {
                if (t != null) {
                    shapes.add(t.shape().toString());
                }
            }
            throw new CudaException(name + " " + op + " (tensors " + shapes + ", " + math + "): " + e.getMessage(), e);
        }
    }

    // ================================================================ validation

    private DeviceBuffer buffer(String op, String role, Tensor t) {
        if (t == null) {
            throw new IllegalArgumentException(op + ": " + role + " is null");
        }
        if (!(t.storage() instanceof DeviceBuffer b) || b.owner != this) {
            throw new IllegalArgumentException(op + ": " + role + " " + t + " is not a tensor of this " + name
                    + " backend");
        }
        if (t.dtype() != DType.FLOAT32) {
            throw new IllegalArgumentException(op + ": " + role + " is " + t.dtype() + "; " + name
                    + " computes in FLOAT32 only");
        }
        if (b.freed) {
            throw new IllegalArgumentException(op + ": " + role + " " + t.shape() + " was freed");
        }
        if (t.offset() < 0 || (t.offset() + t.size()) * 4 > b.bytes) {
            throw new IllegalArgumentException(op + ": " + role + " " + t.shape() + " at offset " + t.offset()
                    + " runs past its buffer of " + b.bytes / 4 + " elements");
        }
        return b;
    }

    /**
     * Device address of {@code t}'s first element (checked: a live FLOAT32 tensor of this backend), for collectives
     * that work on raw device memory (NCCL). Work queued on the driver's stream before is ordered before anything
     * queued there after; the caller must not free the tensor while such work is in flight.
     */
    public long devicePointer(Tensor t) {
        return ptr("devicePointer", "t", t);
    }

    /** Device address of t's first element. */
    private long ptr(String op, String role, Tensor t) {
        return buffer(op, role, t).devPtr + 4 * t.offset();
    }

    private static int n32(Tensor t) {
        return Math.toIntExact(t.size());
    }

}
