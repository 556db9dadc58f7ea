package org.vgg4j.core.backend.cpu;

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
import org.bytedeco.dnnl.engine;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.dnnl.matmul;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.post_ops;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.reorder;
import org.bytedeco.dnnl.stream;
import org.bytedeco.javacpp.Pointer;

/**
 * The GEMM of the {@link org.vgg4j.core.backend.CpuPrecision#BF16} cpu backend (the FC layers): row-major C (M,N)
 * f32 = alpha op(A) op(B) + beta C, with A and B rounded to bf16 (to nearest even) and f32 accumulation, through
 * oneDNN 2.5's matmul primitive (its public API has no bf16 gemm function). Legend: M rows, N columns, K the
 * summed dimension.
 *
 * <p>How: per (transA, transB, M, N, K, alpha, beta) the matmul and two reorders are created once. The reorders read
 * the user's f32 A and B in place (a transpose is only strides: op(A) (M,K) has strides (K,1), or (1,M) when A is
 * stored (K,M)) and write bf16 copies (A in the layout the matmul chose, B row-major) into work buffers that grow
 * to the largest call; the matmul writes C in place, alpha as its output scale, beta as a sum post-op (none when
 * beta is 0: C is then overwritten). The user's matrices stay f32. Not thread-safe (one instance per backend).
 */
final class DnnlMatmul implements AutoCloseable {
    private static final memory.data_type F32 = memory.data_type.f32;
    private static final memory.data_type BF16 = memory.data_type.bf16;

    private record Key(boolean transA, boolean transB, long m, long n, long k, float alpha, float beta) {
    }

    private engine eng;
    private stream strm;
    private final Map<Key, Gemm> gemms = new HashMap<>();
    private final DnnlConv.Work scratch = new DnnlConv.Work(); // the one user scratchpad
    private final DnnlConv.Work bufA = new DnnlConv.Work();    // op(A) in bf16
    private final DnnlConv.Work bufB = new DnnlConv.Work();    // op(B) in bf16
    private long scratchNeed = 1;

    /** One shape's primitives: reorders of A and B to bf16, the matmul, their memory objects. */
    private final class Gemm {
        final List<Pointer> owned = new ArrayList<>();
        final reorder toA;
        final reorder toB;
        final matmul mm;
        final memory aUser, aBf, bUser, bBf, c, pad;
        final IntMemoryMap aArgs = new IntMemoryMap();
        final IntMemoryMap bArgs = new IntMemoryMap();
        final IntMemoryMap mmArgs = new IntMemoryMap();
        final long aBytes, bBytes;

        Gemm(Key key) {
            long m = key.m, n = key.n, k = key.k;
            memory.desc aF32 = own(new memory.desc(new long[] {m, k}, F32,
                    key.transA ? new long[] {1, m} : new long[] {k, 1}));
            memory.desc bF32 = own(new memory.desc(new long[] {k, n}, F32,
                    key.transB ? new long[] {1, k} : new long[] {n, 1}));
            memory.desc cF32 = own(new memory.desc(new long[] {m, n}, F32, memory.format_tag.ab));
            memory.desc aAny = own(new memory.desc(new long[] {m, k}, BF16, memory.format_tag.any));
            // B plain, not the layout oneDNN would choose: with its blocked B, oneDNN 2.5's bf16 matmul gets every
            // column from 32 on wrong when 32 < N < 64 (DnnlMatmul's parity test has N = 40); plain B is also faster
            memory.desc bAny = own(new memory.desc(new long[] {k, n}, BF16, memory.format_tag.ab));
            primitive_attr attr = own(new primitive_attr());
            attr.set_scratchpad_mode(dnnl.scratchpad_mode.user);
            if (key.alpha != 1f) {
                attr.set_output_scales(0, new float[] {key.alpha});
            }
            if (key.beta != 0f) {
                post_ops po = own(new post_ops());
                po.append_sum(key.beta, 0); // zero point 0
                attr.set_post_ops(po);
            }
            matmul.desc d = own(new matmul.desc(aAny, bAny, cF32));
            matmul.primitive_desc pd;
            try {
                pd = own(new matmul.primitive_desc(d, attr, eng));
            } catch (RuntimeException e) {
                throw new IllegalStateException("oneDNN has no bf16 matmul for " + key
                        + " (bf16 needs avx512_core_bf16): " + e.getMessage(), e);
            }
            mm = own(new matmul(pd));
            memory.desc aBfDesc = own(pd.src_desc());
            memory.desc bBfDesc = own(pd.weights_desc());
            memory.desc padDesc = own(pd.scratchpad_desc());
            scratchNeed = Math.max(scratchNeed, padDesc.get_size());
            aUser = mem(aF32);
            aBf = mem(aBfDesc);
            bUser = mem(bF32);
            bBf = mem(bBfDesc);
            c = mem(cF32);
            pad = mem(padDesc);
            toA = reorderOf(aF32, aBfDesc, aArgs, aUser, aBf);
            toB = reorderOf(bF32, bBfDesc, bArgs, bUser, bBf);
            mmArgs.put(DNNL_ARG_SRC, aBf);
            mmArgs.put(DNNL_ARG_WEIGHTS, bBf);
            mmArgs.put(DNNL_ARG_DST, c);
            mmArgs.put(DNNL_ARG_SCRATCHPAD, pad);
            owned.add(aArgs);
            owned.add(bArgs);
            owned.add(mmArgs);
            aBytes = aBfDesc.get_size();
            bBytes = bBfDesc.get_size();
        }

        private <T extends Pointer> T own(T p) {
            owned.add(p);
            return p;
        }

        private memory mem(memory.desc d) {
            return own(new memory(d, eng, (Pointer) null));
        }

        /** An f32 to bf16 reorder (a plain one needs no scratchpad; oneDNN's own, if any). */
        private reorder reorderOf(memory.desc from, memory.desc to, IntMemoryMap args, memory src, memory dst) {
            reorder.primitive_desc pd = own(new reorder.primitive_desc(eng, from, eng, to));
            args.put(DNNL_ARG_FROM, src);
            args.put(DNNL_ARG_TO, dst);
            return own(new reorder(pd));
        }

        void close() {
            for (int i = owned.size() - 1; i >= 0; i--) {
                owned.get(i).close();
            }
            owned.clear();
        }
    }

    /**
     * C (M,N) = alpha op(A) op(B) + beta C (beta 0: C overwritten), A, B and C row-major and contiguous (lda = A's
     * column count, ldb = B's, ldc = N), with bf16 operands; pointers address element 0.
     */
    void gemm(boolean transA, boolean transB, long m, long n, long k, float alpha, Pointer a, Pointer b, float beta,
              Pointer c) {
        if (eng == null) {
            eng = new engine(engine.kind.cpu, 0);
            strm = new stream(eng);
        }
        Gemm g = gemms.computeIfAbsent(new Key(transA, transB, m, n, k, alpha, beta), Gemm::new);
        Pointer pad = scratch.get(scratchNeed);
        g.pad.set_data_handle(pad);
        g.aUser.set_data_handle(a);
        g.aBf.set_data_handle(bufA.get(g.aBytes));
        g.bUser.set_data_handle(b);
        g.bBf.set_data_handle(bufB.get(g.bBytes));
        g.c.set_data_handle(c);
        g.toA.execute(strm, g.aArgs);
        g.toB.execute(strm, g.bArgs);
        g.mm.execute(strm, g.mmArgs);
        strm._wait();
    }

    /** Native bytes held by the work buffers (for tests). */
    long workBytes() {
        return scratch.bytes() + bufA.bytes() + bufB.bytes();
    }

    @Override
    public void close() {
        for (Gemm g : gemms.values()) {
            g.close();
        }
        gemms.clear();
        for (DnnlConv.Work w : new DnnlConv.Work[] {scratch, bufA, bufB}) {
            w.free();
        }
        scratchNeed = 1;
        if (strm != null) {
            strm.close();
            eng.close();
            strm = null;
            eng = null;
        }
    }
}
