package org.vgg4j.core.backend.cpu;

import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_BIAS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_BIAS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DIFF_WEIGHTS;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_DST;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_FROM;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SCRATCHPAD;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_SRC;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_TO;
import static org.bytedeco.dnnl.global.dnnl.DNNL_ARG_WEIGHTS;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.convolution_backward_data;
import org.bytedeco.dnnl.convolution_backward_weights;
import org.bytedeco.dnnl.convolution_forward;
import org.bytedeco.dnnl.engine;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.post_ops;
import org.bytedeco.dnnl.primitive;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.primitive_desc_base;
import org.bytedeco.dnnl.reorder;
import org.bytedeco.dnnl.stream;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Float32 (or BF16-operand) stride-1 convolutions through oneDNN 2.5 called DIRECTLY (JavaCPP's
 * {@code org.bytedeco:dnnl} preset), not through ND4J's ops. Legend: N batch (of one slice), C in, K out, H/W in,
 * P/Q out, R/S kernel.
 *
 * <p>Why (docs/benchmarks.md, "Decision 3: oneDNN called directly"): ND4J's {@code conv2d}/{@code conv2d_bp} re-create the
 * primitive, malloc fresh reorder buffers and a large scratchpad on EVERY call. Here, per layer shape, the
 * primitives are created ONCE and reused; every primitive runs with {@code scratchpad_mode user} on ONE shared
 * scratchpad; the blocked copies of activations and weights live in a few work buffers that grow to the largest
 * layer and are then reused (a training step allocates nothing); a layer's {@link Kept} memo holds its blocked x
 * from forward to backward-weights. The activations stay plain NCHW in the backend's
 * memory; the primitives pick their preferred ("any") layouts and explicit reorders convert at the boundary.
 * Backward-data and forward use {@code convolution_direct}, or Winograd on the layers where it measured faster
 * ({@link #winogradPays}: many channels on maps of at least 14x14, or of at least 4x4 with more channels);
 * backward-weights lets oneDNN choose (Winograd on AVX-512 for most VGG layers,
 * {@link CpuBackend.Options#dnnlBwdWeights()}), its large scratchpad being the shared one.
 *
 * <p>BF16 ({@link org.vgg4j.core.backend.CpuPrecision#BF16}): the operands (x, w, dy) are bf16 in the primitives'
 * layouts, the results (y, dx, dw, db) f32. The f32 to bf16 rounding (to nearest even) happens in the reorders into
 * the blocked layouts, which the f32 path does anyway; the user's tensors, weights included, stay f32. oneDNN 2.5
 * runs these data-type combinations on avx512_core_bf16 ({@link Bf16Support}); backward-weights is then direct
 * (oneDNN's Winograd is f32 only) and a forced {@code winograd} fails.
 *
 * <p>Semantics are the {@link org.vgg4j.core.backend.Backend} SPI's: y and dx overwritten, dw ACCUMULATED (a reorder
 * with a sum post-op adds the primitive's result into dw), db returned overwritten into a caller's buffer (the
 * caller adds it). What it is not: float64 (oneDNN has no f64 convolution), strided or dilated convolution,
 * thread-safe (one instance per backend instance, used by one thread). {@link #close()} frees every native
 * resource at once; the instance re-creates them if used again.
 *
 * <p>Threading: libdnnl links libgomp by soname; ND4J has already loaded its own libgomp by the time this class
 * loads (the backend allocates through ND4J first), so both share ONE OpenMP runtime and pool
 * ({@code OMP_NUM_THREADS} governs both; checked with /proc/self/maps, docs/benchmarks.md).
 */
final class DnnlConv implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DnnlConv.class);
    private static final memory.data_type F32 = memory.data_type.f32;
    private static final long ALIGN = 4096; // oneDNN's kernels use aligned vector loads on user buffers

    private static Boolean available;

    /**
     * The largest blocked x (bytes, all slices of one call) a {@link Kept} memo holds from forward to backward. The
     * keeping costs memory and no work (forward converts x anyway, into the memo instead of a shared buffer); what
     * it saves is backward-weights' conversion of the same x. 8 MiB keeps every W3 input but conv1_2's (16 MiB) and
     * about 30 MB of W1's, whose peak resident set is over its target (docs/benchmarks.md, "Memory"). A decision
     * to measure, not a measurement.
     */
    static final long KEEP_MAX_BYTES = 8L << 20;

    private final dnnl.algorithm bwdWeightsAlg;
    /** The operands' data type: f32, or bf16 for {@link org.vgg4j.core.backend.CpuPrecision#BF16}. */
    private final memory.data_type operand;

    /** Whether forward and backward-data may run Winograd ({@link #winogradPays}). */
    private final boolean winograd;

    /**
     * @param bf16       bf16 operands (x, w, dy) with f32 accumulation and results; f32 operands when false
     * @param bwdWeights see {@link CpuBackend.Options#dnnlBwdWeights()}: "auto", "direct", or "winograd" (forced: tests use it on shapes
     *                   oneDNN's heuristic would not give Winograd; it fails where Winograd does not apply)
     * @param winograd   forward and backward-data in Winograd where {@link #winogradPays}
     *                   ({@link CpuBackend.Options#dnnlWinograd()})
     */
    DnnlConv(String bwdWeights, boolean winograd, boolean bf16) {
        this.winograd = winograd && !bf16; // oneDNN's Winograd is f32 only
        this.operand = bf16 ? memory.data_type.bf16 : F32;
        this.bwdWeightsAlg = switch (bwdWeights) {
            case "auto" -> dnnl.algorithm.convolution_auto;
            case "direct" -> dnnl.algorithm.convolution_direct;
            case "winograd" -> dnnl.algorithm.convolution_winograd;
            default -> throw new IllegalArgumentException("vgg4j.cpu.dnnlBwdWeights=" + bwdWeights
                    + ": expected auto, direct or winograd");
        };
    }

    /**
     * Whether forward and backward-data of this shape run oneDNN's Winograd F(4x4,3x3) instead of its direct
     * convolution: 3x3 with padding 1, and either C and K at least 64 on maps of at least 14x14, or C at least 128 and
     * K at least 256 on maps of at least 4x4. Measured (docs/benchmarks.md, "Winograd forward and backward-data"): on
     * such layers it cuts VGG-16's step at 224 by about a third and at 32 by about an eighth, while on few channels
     * or 2x2 maps (the Fashion-MNIST network, VGG's last block at 32) it is slower. A fixed rule,
     * not a timing at run time: the same layers round the same way on every run (resumes stay bit-exact). Where
     * oneDNN has no Winograd (it needs AVX-512), the layer stays direct: {@link #implementations} names what runs.
     */
    private boolean winogradPays(Key key) {
        if (!winograd || key.r != 3 || key.s != 3 || key.pad != 1) {
            return false;
        }
        boolean largeMaps = key.c >= 64 && key.k >= 64 && key.h >= 14 && key.w >= 14;
        boolean manyChannels = key.c >= 128 && key.k >= 256 && key.h >= 4 && key.w >= 4;
        return largeMaps || manyChannels;
    }

    /** The implementation oneDNN picks for the backward-weights of a shape (for tests and logs), e.g. "jit:avx2". */
    String backwardWeightsImpl(int n, int c, int h, int w, int k, int r, int s, int pad) {
        return layer(n, c, h, w, k, r, s, pad).bwdW(false).impl;
    }

    /**
     * The implementations oneDNN picks for the three passes of a shape (with bias), for tests and logs, e.g.
     * "forward=jit_bf16:avx512_core_bf16 backward-data=... backward-weights=...".
     */
    String implementations(int n, int c, int h, int w, int k, int r, int s, int pad) {
        Layer l = layer(n, c, h, w, k, r, s, pad);
        return "forward=" + l.fwd(true, false).impl + " backward-data=" + l.bwdD().impl + " backward-weights="
                + l.bwdW(true).impl;
    }

    /**
     * Row-major float32 C (m,n) = alpha op(A) op(B) + beta C through oneDNN's sgemm, which runs on the same OpenMP
     * threads as the convolutions. Why not OpenBLAS next to them: OpenBLAS's own worker threads spin for a while
     * after each call and take a core from the next convolution (docs/benchmarks.md, "One thread pool"). Call only
     * where {@link #available()}.
     */
    static void sgemm(boolean transA, boolean transB, long m, long n, long k, float alpha,
                      org.bytedeco.javacpp.FloatPointer a, long lda, org.bytedeco.javacpp.FloatPointer b, long ldb,
                      float beta, org.bytedeco.javacpp.FloatPointer c, long ldc) {
        int status = org.bytedeco.dnnl.global.dnnl.dnnl_sgemm((byte) (transA ? 'T' : 'N'), (byte) (transB ? 'T' : 'N'),
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        if (status != org.bytedeco.dnnl.global.dnnl.dnnl_success) {
            throw new IllegalStateException("oneDNN sgemm " + m + "x" + n + "x" + k + " failed with status " + status);
        }
    }

    /** Whether oneDNN's natives load here (once; the reason is logged when they do not). */
    static synchronized boolean available() {
        if (available == null) {
            CpuBackendProvider.probe(); // ND4J first: libdnnl then binds to ND4J's already loaded libgomp (one pool)
            try {
                org.bytedeco.javacpp.Loader.load(dnnl.class);
                org.bytedeco.dnnl.dnnl_version_t v = dnnl.dnnl_version();
                LOG.debug("oneDNN {}.{}.{} loaded directly (cpu runtime {})", v.major(), v.minor(), v.patch(),
                        v.cpu_runtime());
                available = true;
            } catch (Throwable t) {
                LOG.info("oneDNN's natives (org.bytedeco:dnnl) do not load here, convolutions use ND4J/GemmConv: {}",
                        t.toString());
                available = false;
            }
        }
        return available;
    }

    /** One layer shape: every primitive and memory object it needs, created once. */
    private record Key(int n, int c, int h, int w, int k, int r, int s, int pad) {
    }

    private engine eng;
    private stream strm;
    private final Map<Key, Layer> layers = new HashMap<>();
    // Work buffers, each grown to the largest request and then reused (bytes; aligned):
    private final Work scratch = new Work(); // the ONE user scratchpad of every primitive
    private final Work bufA = new Work();    // blocked x (forward, backward-weights), then blocked dx
    private final Work bufB = new Work();    // blocked y (forward) / blocked dy (backward)
    private final Work bufW = new Work();    // weights in the running primitive's layout
    private final Work bufDW = new Work();   // the filter gradient in the primitive's layout, before it is added to dw

    /** A native buffer that only grows; its address is aligned to {@link #ALIGN}. */
    static final class Work {
        private Pointer raw;
        private long bytes;
        private BytePointer aligned;

        BytePointer get(long need) {
            if (aligned == null || bytes < need) {
                free();
                raw = Pointer.malloc(need + ALIGN);
                if (raw == null || raw.isNull()) {
                    throw new OutOfMemoryError("oneDNN work buffer of " + need + " bytes");
                }
                bytes = need;
                aligned = new BytePointer(raw);
                aligned.position((ALIGN - aligned.address() % ALIGN) % ALIGN);
            }
            return aligned;
        }

        long bytes() {
            return bytes;
        }

        void free() {
            if (raw != null) {
                Pointer.free(raw);
                raw = null;
                aligned = null;
                bytes = 0;
            }
        }
    }

    /**
     * The address {@code floatOffset} floats past {@code base} (base's own position included), as a BytePointer:
     * oneDNN takes void*, to which JavaCPP adds the position counted in bytes.
     */
    static BytePointer at(Pointer base, long floatOffset) {
        long bytes = base.position() * base.sizeof() + floatOffset * Float.BYTES; // Pointer(Pointer) copies the
        return new BytePointer(base).position(bytes);                            // position in base's units
    }

    /** A reorder between two layouts, with its own scratchpad memory. */
    private final class Reorder {
        final reorder prim;
        final memory from;
        final memory to;
        final memory pad;
        final IntMemoryMap args = new IntMemoryMap();

        Reorder(memory.desc fromDesc, memory.desc toDesc, boolean accumulate, List<Pointer> owned) {
            primitive_attr attr = new primitive_attr();
            attr.set_scratchpad_mode(dnnl.scratchpad_mode.user);
            if (accumulate) {
                post_ops po = new post_ops();
                po.append_sum(); // scale 1: to = from + to: the SPI's += for parameter gradients
                attr.set_post_ops(po);
                owned.add(po);
            }
            reorder.primitive_desc pd = new reorder.primitive_desc(eng, fromDesc, eng, toDesc, attr, false);
            prim = new reorder(pd);
            from = new memory(fromDesc, eng, (Pointer) null);
            to = new memory(toDesc, eng, (Pointer) null);
            memory.desc padDesc = pd.scratchpad_desc();
            pad = new memory(padDesc, eng, (Pointer) null);
            args.put(DNNL_ARG_FROM, from);
            args.put(DNNL_ARG_TO, to);
            args.put(DNNL_ARG_SCRATCHPAD, pad);
            owned.add(attr);
            owned.add(pd);
            owned.add(prim);
            owned.add(from);
            owned.add(to);
            owned.add(pad);
            owned.add(args);
            owned.add(padDesc);
            scratchNeed = Math.max(scratchNeed, padDesc.get_size());
        }

        void run(Pointer src, Pointer dst) {
            reorders++;
            from.set_data_handle(src);
            to.set_data_handle(dst);
            pad.set_data_handle(scratch.get(scratchNeed));
            prim.execute(strm, args);
        }
    }

    /** A convolution primitive with its argument map and scratchpad memory. */
    private final class Prim {
        final primitive prim;
        final IntMemoryMap args = new IntMemoryMap();
        final memory pad;

        Prim(primitive prim, primitive_desc_base pd, List<Pointer> owned) {
            this.prim = prim;
            memory.desc padDesc = pd.scratchpad_desc();
            pad = new memory(padDesc, eng, (Pointer) null);
            args.put(DNNL_ARG_SCRATCHPAD, pad);
            owned.add(prim);
            owned.add(pad);
            owned.add(args);
            owned.add(padDesc);
            scratchNeed = Math.max(scratchNeed, padDesc.get_size());
        }

        memory arg(int which, memory.desc desc, List<Pointer> owned) {
            memory m = new memory(desc, eng, (Pointer) null);
            args.put(which, m);
            owned.add(m);
            return m;
        }

        void run() {
            pad.set_data_handle(scratch.get(scratchNeed));
            prim.execute(strm, args);
        }
    }

    private long scratchNeed = 1; // bytes: the largest scratchpad any primitive or reorder asked for
    private long generation;      // +1 at every close(): a memo made before then holds layouts of closed primitives
    private long reorders;        // reorders run since this instance was made (for tests)

    /** Reorders run so far (layout conversions of x, w, y, dy, dx and the dw accumulation): for tests. */
    long reorderCount() {
        return reorders;
    }

    /**
     * The {@link org.vgg4j.core.backend.Backend.ConvMemo} of this engine: x of a convolution's last forward in the
     * forward primitive's layout (each slice's), which backward-weights takes instead of converting x again where
     * its layout is the same and the call is the same (x's address, shape, slicing). Holds at most
     * {@link #KEEP_MAX_BYTES}; a forward whose blocked x is larger, or whose x needs no conversion, keeps nothing.
     */
    final class Kept implements org.vgg4j.core.backend.Backend.ConvMemo {
        private final Work buf = new Work();
        private final List<memory.desc> descs = new ArrayList<>(); // per slice: the layout it holds
        private final List<Long> offsets = new ArrayList<>();      // per slice: bytes into buf
        private boolean valid;
        private long xAddress;
        private Key key;      // the whole call's shape (n = all images)
        private int step;
        private long madeIn;  // generation

        DnnlConv owner() {
            return DnnlConv.this;
        }

        boolean holds(Pointer x, Key k, int st) {
            return valid && madeIn == generation && xAddress == address(x) && key.equals(k) && step == st;
        }

        long bytes() {
            return buf.bytes();
        }

        /** Forgets what it holds; keeps its buffer for the next forward. */
        void reset() {
            valid = false;
            descs.clear();
            offsets.clear();
        }

        @Override
        public void close() {
            reset();
            buf.free();
        }
    }

    /** A new, empty memo of this engine. */
    Kept newKept() {
        return new Kept();
    }

    private static long address(Pointer p) {
        return p.address() + p.position() * p.sizeof();
    }

    /** bytes past the start of an aligned work buffer, as a BytePointer. */
    private static BytePointer plus(BytePointer base, long bytes) {
        return new BytePointer(base).position(base.position() + bytes);
    }

    /**
     * The primitives of one shape. Forward exists with and without bias; backward-weights with and without the bias
     * gradient; each is created on first use. Layouts: the *Plain descs are the backend's (NCHW, KCRS, K).
     */
    private final class Layer {
        final Key key;
        final List<Pointer> owned = new ArrayList<>();
        final memory.desc xPlain;
        final memory.desc wPlain;
        final memory.desc bPlain;
        final memory.desc yPlain;
        final memory.desc xAny;  // f32 "any" layouts: the results (y, dx, dw)
        final memory.desc wAny;
        final memory.desc yAny;
        final memory.desc xOp;   // the operands' "any" layouts (x, w, dy): f32, or bf16 in BF16
        final memory.desc wOp;
        final memory.desc yOp;
        final long[] strides = {1, 1};
        final long[] pads;
        final primitive_attr attr = new primitive_attr();
        final convolution_forward.primitive_desc hint; // forward with bias: the backward primitives' hint
        final Fwd[] fwd = new Fwd[4];      // [bias + 2 * relu]: without/with bias, without/with the ReLU post-op
        final BwdW[] bwdW = new BwdW[2];   // [0] no bias gradient, [1] bias gradient
        BwdD bwdD;

        Layer(Key key) {
            this.key = key;
            long[] xd = {key.n, key.c, key.h, key.w};
            long[] wd = {key.k, key.c, key.r, key.s};
            long[] yd = {key.n, key.k, key.h + 2L * key.pad - key.r + 1, key.w + 2L * key.pad - key.s + 1};
            pads = new long[] {key.pad, key.pad};
            xPlain = own(new memory.desc(xd, F32, memory.format_tag.nchw));
            wPlain = own(new memory.desc(wd, F32, memory.format_tag.oihw));
            bPlain = own(new memory.desc(new long[] {key.k}, F32, memory.format_tag.x));
            yPlain = own(new memory.desc(yd, F32, memory.format_tag.nchw));
            xAny = own(new memory.desc(xd, F32, memory.format_tag.any));
            wAny = own(new memory.desc(wd, F32, memory.format_tag.any));
            yAny = own(new memory.desc(yd, F32, memory.format_tag.any));
            xOp = operand == F32 ? xAny : own(new memory.desc(xd, operand, memory.format_tag.any));
            wOp = operand == F32 ? wAny : own(new memory.desc(wd, operand, memory.format_tag.any));
            yOp = operand == F32 ? yAny : own(new memory.desc(yd, operand, memory.format_tag.any));
            attr.set_scratchpad_mode(dnnl.scratchpad_mode.user);
            owned.add(attr);
            hint = fwdPd(true, false);
        }

        private <T extends Pointer> T own(T p) {
            owned.add(p);
            return p;
        }

        /**
         * The forward primitive, with or without bias, and with or without ReLU as an eltwise post-op: oneDNN applies
         * max(acc, 0) to the f32 accumulators (bias added) before it stores y, so the fused y is the unfused
         * conv's y with ReLU applied afterwards (ConvEngineTest checks it bit for bit), except that a NaN
         * accumulator becomes 0 (the post-op is a vector max with 0 as the second operand) where ReLU keeps it.
         */
        convolution_forward.primitive_desc fwdPd(boolean bias, boolean relu) {
            primitive_attr a = attr;
            if (relu) {
                a = own(new primitive_attr());
                a.set_scratchpad_mode(dnnl.scratchpad_mode.user);
                post_ops po = own(new post_ops());
                po.append_eltwise(1f, dnnl.algorithm.eltwise_relu, 0f, 0f);
                a.set_post_ops(po);
            }
            primitive_attr fa = a;
            if (winogradPays(key)) {
                convolution_forward.primitive_desc pd = tryWinograd(() -> new convolution_forward.primitive_desc(
                        own(forwardDesc(bias, dnnl.algorithm.convolution_winograd)), fa, eng));
                if (pd != null) {
                    return own(pd);
                }
            }
            convolution_forward.desc d = own(forwardDesc(bias, dnnl.algorithm.convolution_direct));
            return own(create(() -> new convolution_forward.primitive_desc(d, fa, eng), "forward", key));
        }

        private convolution_forward.desc forwardDesc(boolean bias, dnnl.algorithm alg) {
            return bias
                    ? new convolution_forward.desc(dnnl.prop_kind.forward_training, alg, xOp, wOp, bPlain, yAny,
                        strides, pads, pads)
                    : new convolution_forward.desc(dnnl.prop_kind.forward_training, alg, xOp, wOp, yAny, strides,
                        pads, pads);
        }

        Fwd fwd(boolean bias, boolean relu) {
            int i = (bias ? 1 : 0) + (relu ? 2 : 0);
            if (fwd[i] == null) {
                fwd[i] = new Fwd(this, bias && !relu ? hint : fwdPd(bias, relu), bias);
            }
            return fwd[i];
        }

        BwdW bwdW(boolean bias) {
            int i = bias ? 1 : 0;
            if (bwdW[i] == null) {
                bwdW[i] = new BwdW(this, bias);
            }
            return bwdW[i];
        }

        BwdD bwdD() {
            if (bwdD == null) {
                bwdD = new BwdD(this);
            }
            return bwdD;
        }

        /** A reorder from one layout to another, or null when they are the same. */
        Reorder reorder(memory.desc from, memory.desc to, boolean accumulate) {
            return !accumulate && from.equals(to) ? null : new Reorder(from, to, accumulate, owned);
        }

        void close() {
            for (int i = owned.size() - 1; i >= 0; i--) {
                owned.get(i).close();
            }
            owned.clear();
        }
    }

    /** Forward: x (plain or reordered into bufA), weights reordered into bufW, y (plain or via bufB). */
    private final class Fwd {
        final Prim p;
        final memory x, w, b, y;
        final Reorder toX, toW, fromY;
        final memory.desc xDesc;
        final memory.desc wDesc;
        final long xBytes, wBytes, yBytes;
        final String impl;

        Fwd(Layer l, convolution_forward.primitive_desc pd, boolean bias) {
            p = new Prim(new convolution_forward(pd), pd, l.owned);
            impl = pd.impl_info_str().getString();
            memory.desc xd = l.own(pd.src_desc());
            memory.desc wd = l.own(pd.weights_desc());
            memory.desc yd = l.own(pd.dst_desc());
            x = p.arg(DNNL_ARG_SRC, xd, l.owned);
            w = p.arg(DNNL_ARG_WEIGHTS, wd, l.owned);
            b = bias ? p.arg(DNNL_ARG_BIAS, l.bPlain, l.owned) : null;
            y = p.arg(DNNL_ARG_DST, yd, l.owned);
            toX = l.reorder(l.xPlain, xd, false);
            toW = l.reorder(l.wPlain, wd, false);
            xDesc = xd;
            wDesc = wd;
            fromY = l.reorder(yd, l.yPlain, false);
            xBytes = xd.get_size();
            wBytes = wd.get_size();
            yBytes = yd.get_size();
        }
    }

    /** Backward-data: dy (plain or via bufB), weights via bufW, dx (plain or via bufA). */
    private final class BwdD {
        final Prim p;
        final memory dy, w, dx;
        final memory.desc dyDesc;
        final memory.desc wDesc;
        final Reorder toDy, toW, fromDx;
        final long dyBytes, wBytes, dxBytes;
        final String impl;

        BwdD(Layer l) {
            convolution_backward_data.primitive_desc pd = winogradPays(l.key) ? tryWinograd(() ->
                    new convolution_backward_data.primitive_desc(l.own(new convolution_backward_data.desc(
                            dnnl.algorithm.convolution_winograd, l.xAny, l.wOp, l.yOp, l.strides, l.pads, l.pads)),
                            l.attr, eng, l.hint)) : null;
            if (pd == null) {
                convolution_backward_data.desc d = l.own(new convolution_backward_data.desc(
                        dnnl.algorithm.convolution_direct, l.xAny, l.wOp, l.yOp, l.strides, l.pads, l.pads));
                pd = create(() -> new convolution_backward_data.primitive_desc(d, l.attr, eng, l.hint),
                        "backward-data", l.key);
            }
            pd = l.own(pd);
            p = new Prim(new convolution_backward_data(pd), pd, l.owned);
            impl = pd.impl_info_str().getString();
            dyDesc = l.own(pd.diff_dst_desc());
            memory.desc wd = l.own(pd.weights_desc());
            memory.desc dxd = l.own(pd.diff_src_desc());
            dy = p.arg(DNNL_ARG_DIFF_DST, dyDesc, l.owned);
            w = p.arg(DNNL_ARG_WEIGHTS, wd, l.owned);
            dx = p.arg(DNNL_ARG_DIFF_SRC, dxd, l.owned);
            toDy = l.reorder(l.yPlain, dyDesc, false);
            toW = l.reorder(l.wPlain, wd, false);
            wDesc = wd;
            fromDx = l.reorder(dxd, l.xPlain, false);
            dyBytes = dyDesc.get_size();
            wBytes = wd.get_size();
            dxBytes = dxd.get_size();
        }
    }

    /** Backward-weights: x (plain or via bufA), dy (plain or via bufB), dw into bufDW then ADDED to dw. */
    private final class BwdW {
        final Prim p;
        final memory x, dy, dw, db;
        final memory.desc xDesc;
        final memory.desc dyDesc;
        final Reorder toX, toDy, addDw;
        final long xBytes, dyBytes, dwBytes;
        final String impl;

        BwdW(Layer l, boolean bias) {
            // auto on maps below 4x4: direct. oneDNN's auto takes Winograd there too, where its F(4x4,3x3) tiles are
            // mostly padding (docs/benchmarks.md). The cpu backend sends 2x2 maps under 3x3 to a GEMM instead
            // (ConvEngine); this rule still holds for 3x3 maps and for direct callers
            dnnl.algorithm alg = bwdWeightsAlg == dnnl.algorithm.convolution_auto && (l.key.h < 4 || l.key.w < 4)
                    ? dnnl.algorithm.convolution_direct : bwdWeightsAlg;
            convolution_backward_weights.desc d = l.own(bias
                    ? new convolution_backward_weights.desc(alg, l.xOp, l.wAny, l.bPlain, l.yOp, l.strides, l.pads,
                        l.pads)
                    : new convolution_backward_weights.desc(alg, l.xOp, l.wAny, l.yOp, l.strides, l.pads, l.pads));
            convolution_backward_weights.primitive_desc pd = l.own(create(
                    () -> new convolution_backward_weights.primitive_desc(d, l.attr, eng, l.hint), "backward-weights",
                    l.key));
            p = new Prim(new convolution_backward_weights(pd), pd, l.owned);
            impl = pd.impl_info_str().getString();
            memory.desc xd = l.own(pd.src_desc());
            xDesc = xd;
            dyDesc = l.own(pd.diff_dst_desc());
            memory.desc dwd = l.own(pd.diff_weights_desc());
            if (bias && !pd.diff_bias_desc().equals(l.bPlain)) {
                throw new IllegalStateException("oneDNN chose a non-plain bias gradient layout for " + l.key);
            }
            x = p.arg(DNNL_ARG_SRC, xd, l.owned);
            dy = p.arg(DNNL_ARG_DIFF_DST, dyDesc, l.owned);
            dw = p.arg(DNNL_ARG_DIFF_WEIGHTS, dwd, l.owned);
            db = bias ? p.arg(DNNL_ARG_DIFF_BIAS, l.bPlain, l.owned) : null;
            toX = l.reorder(l.xPlain, xd, false);
            toDy = l.reorder(l.yPlain, dyDesc, false);
            addDw = l.reorder(dwd, l.wPlain, true);
            xBytes = xd.get_size();
            dyBytes = dyDesc.get_size();
            dwBytes = dwd.get_size();
        }
    }

    /**
     * Creates a primitive descriptor; where oneDNN has no implementation (a RuntimeException from the preset), the
     * error names the pass, the shape and the data types instead of oneDNN's bare status.
     */
    private <T> T create(java.util.function.Supplier<T> pd, String pass, Key key) {
        try {
            return pd.get();
        } catch (RuntimeException e) {
            throw new IllegalStateException("oneDNN has no " + pass + " convolution for " + key + " with "
                    + (operand == F32 ? "f32" : "bf16 operands (it needs avx512_core_bf16) and f32 results")
                    + (pass.equals("backward-weights") && bwdWeightsAlg == dnnl.algorithm.convolution_winograd
                        ? " by Winograd" : "") + ": " + e.getMessage(), e);
        }
    }

    /**
     * A Winograd primitive descriptor, or null where oneDNN has none for the shape on this CPU (its Winograd needs
     * AVX-512); the caller then creates the direct one, which {@link #implementations} reports.
     */
    private static <T> T tryWinograd(java.util.function.Supplier<T> pd) {
        try {
            return pd.get();
        } catch (RuntimeException e) {
            LOG.debug("no oneDNN Winograd for this shape here, direct instead: {}", e.getMessage());
            return null;
        }
    }

    /** The operands' data type of this instance: "f32" or "bf16" (for tests and logs). */
    String operandType() {
        return operand == F32 ? "f32" : "bf16";
    }

    private Layer layer(int n, int c, int h, int w, int k, int r, int s, int pad) {
        if (eng == null) {
            eng = new engine(engine.kind.cpu, 0);
            strm = new stream(eng);
        }
        return layers.computeIfAbsent(new Key(n, c, h, w, k, r, s, pad), Layer::new);
    }

    /** Sets a primitive-layout argument: the user's memory when no reorder is needed, else a work buffer. */
    private static Pointer place(memory m, Reorder r, Pointer user, Work work, long bytes) {
        Pointer p = r == null ? user : work.get(bytes);
        m.set_data_handle(p);
        return p;
    }

    /**
     * Points a primitive's weights argument at w itself (plain layout) or at bufW, reordering w into bufW unless
     * it already holds that layout from an earlier slice of this call; returns the layout bufW now holds.
     */
    private memory.desc weights(memory arg, memory.desc want, Reorder toW, Pointer w, long bytes, memory.desc done) {
        if (toW == null) {
            arg.set_data_handle(w);
            return done;
        }
        BytePointer blk = bufW.get(bytes);
        if (done == null || !done.equals(want)) {
            toW.run(w, blk);
        }
        arg.set_data_handle(blk);
        return want;
    }

    /**
     * y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C,R,S)) + b (K) or no bias (b null), then max(y, 0) when {@code relu}
     * (a post-op of the same primitive, see {@link Layer#fwdPd}), in slices of {@code step} images.
     * Pointers address element 0 of each tensor. With a memo ({@code kept}, null: none), x's blocked copy goes
     * into the memo for the backward (see {@link Kept}).
     */
    void forward(Pointer x, Pointer w, Pointer b, Pointer y, int n, int c, int h, int wd, int k, int r, int s,
                 int pad, int step, boolean relu, Kept kept) {
        int p = h + 2 * pad - r + 1;
        int q = wd + 2 * pad - s + 1;
        BytePointer keep = null; // where the blocked x of every slice goes, or null: bufA as before
        if (kept != null) {
            kept.reset();
            long bytes = 0;
            for (int n0 = 0; n0 < n && bytes >= 0; n0 += step) {
                Fwd f = layer(Math.min(step, n - n0), c, h, wd, k, r, s, pad).fwd(b != null, relu);
                bytes = f.toX == null ? -1 : bytes + f.xBytes;
            }
            keep = bytes > 0 && bytes <= KEEP_MAX_BYTES ? kept.buf.get(bytes) : null;
        }
        long keptBytes = 0;
        memory.desc wDone = null; // the layout the weights are in, in bufW (once per call, not per slice)
        for (int n0 = 0; n0 < n; n0 += step) {
            int cnt = Math.min(step, n - n0);
            Fwd f = layer(cnt, c, h, wd, k, r, s, pad).fwd(b != null, relu);
            wDone = weights(f.w, f.wDesc, f.toW, w, f.wBytes, wDone);
            Pointer xs = at(x, (long) n0 * c * h * wd);
            Pointer ys = at(y, (long) n0 * k * p * q);
            Pointer xb;
            if (keep != null) {
                xb = plus(keep, keptBytes);
                f.x.set_data_handle(xb);
                kept.descs.add(f.xDesc);
                kept.offsets.add(keptBytes);
                keptBytes += f.xBytes;
            } else {
                xb = place(f.x, f.toX, xs, bufA, f.xBytes);
            }
            if (f.toX != null) {
                f.toX.run(xs, xb);
            }
            if (b != null) {
                f.b.set_data_handle(b);
            }
            Pointer yb = place(f.y, f.fromY, ys, bufB, f.yBytes);
            f.p.run();
            if (f.fromY != null) {
                f.fromY.run(yb, ys);
            }
        }
        strm._wait();
        if (keep != null) {
            kept.valid = true;
            kept.xAddress = address(x);
            kept.key = new Key(n, c, h, wd, k, r, s, pad);
            kept.step = step;
            kept.madeIn = generation;
        }
    }

    /**
     * Backward of one convolution, slice by slice: when {@code dw} is not null, dw (K,C,R,S) += filter gradient and
     * db (K) = bias gradient (OVERWRITTEN; null: not computed; slices: the caller adds each, see {@code dbSlice});
     * when {@code dx} is not null, dx (N,C,H,W) = data gradient (overwritten). The filter gradient of a slice runs
     * first so the buffer holding its blocked x can then take its blocked dx.
     *
     * @param dbSlice called after each slice's bias gradient is in db (the caller accumulates it)
     * @param kept    the memo of this x's forward (null: none): backward-weights takes x from it where it holds
     *                this call's x in that primitive's layout, instead of converting x again
     */
    void backward(Pointer x, Pointer w, Pointer dy, Pointer dx, Pointer dw, Pointer db, Runnable dbSlice,
                  int n, int c, int h, int wd, int k, int r, int s, int pad, int step, Kept kept) {
        int p = h + 2 * pad - r + 1;
        int q = wd + 2 * pad - s + 1;
        boolean fromKept = kept != null && x != null && kept.holds(x, new Key(n, c, h, wd, k, r, s, pad), step);
        int slice = 0;
        memory.desc wDone = null; // the layout the weights are in, in bufW (once per call, not per slice)
        for (int n0 = 0; n0 < n; n0 += step, slice++) {
            int cnt = Math.min(step, n - n0);
            Layer l = layer(cnt, c, h, wd, k, r, s, pad);
            Pointer dys = at(dy, (long) n0 * k * p * q);
            Pointer dyBlk = null;   // dy in backward-data's layout (bufB), shared with backward-weights when equal
            memory.desc dyBlkDesc = null;
            if (dw != null) {
                BwdW f = l.bwdW(db != null);
                Pointer xs = at(x, (long) n0 * c * h * wd);
                if (fromKept && f.toX != null && kept.descs.get(slice).equals(f.xDesc)) {
                    f.x.set_data_handle(plus(kept.buf.get(kept.bytes()), kept.offsets.get(slice)));
                } else {
                    Pointer xb = place(f.x, f.toX, xs, bufA, f.xBytes);
                    if (f.toX != null) {
                        f.toX.run(xs, xb);
                    }
                }
                Pointer dyb = place(f.dy, f.toDy, dys, bufB, f.dyBytes);
                if (f.toDy != null) {
                    f.toDy.run(dys, dyb);
                    dyBlk = dyb;
                    dyBlkDesc = f.dyDesc;
                }
                Pointer dwb = bufDW.get(f.dwBytes);
                f.dw.set_data_handle(dwb);
                if (db != null) {
                    f.db.set_data_handle(db);
                }
                f.p.run();
                f.addDw.run(dwb, dw);
                if (db != null) {
                    strm._wait();
                    dbSlice.run();
                }
            }
            if (dx != null) {
                BwdD f = l.bwdD();
                wDone = weights(f.w, f.wDesc, f.toW, w, f.wBytes, wDone);
                if (dyBlk != null && f.dyDesc.equals(dyBlkDesc)) {
                    f.dy.set_data_handle(dyBlk); // already reordered for backward-weights
                } else {
                    // bufB may hold backward-weights' dy in another layout: that primitive has run, reuse is safe
                    Pointer dyb = place(f.dy, f.toDy, dys, bufB, f.dyBytes);
                    if (f.toDy != null) {
                        f.toDy.run(dys, dyb);
                    }
                }
                Pointer dxs = at(dx, (long) n0 * c * h * wd);
                Pointer dxb = place(f.dx, f.fromDx, dxs, bufA, f.dxBytes);
                f.p.run();
                if (f.fromDx != null) {
                    f.fromDx.run(dxb, dxs);
                }
            }
        }
        strm._wait();
    }

    /** Native bytes held by the work buffers (scratchpad included), for logs and tests. */
    long workBytes() {
        return scratch.bytes + bufA.bytes + bufB.bytes + bufW.bytes + bufDW.bytes;
    }

    @Override
    public void close() {
        for (Layer l : layers.values()) {
            l.close();
        }
        layers.clear();
        for (Work b : new Work[] {scratch, bufA, bufB, bufW, bufDW}) {
            b.free();
        }
        scratchNeed = 1;
        generation++;
        if (strm != null) {
            strm.close();
            eng.close();
            strm = null;
            eng = null;
        }
    }
}
