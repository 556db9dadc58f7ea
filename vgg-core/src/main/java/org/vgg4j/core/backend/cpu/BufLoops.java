package org.vgg4j.core.backend.cpu;

import org.vgg4j.core.backend.Buf;

/**
 * Loops of the {@code cpu} backend written once against {@link Buf} (float32 and float64, computed in double and
 * rounded once per stored element), for the ops that {@link F32Loops} has no float32 fast path for. Indices are
 * the Buf's (a tensor's offset included by the caller); the work is split by {@link Parallel} so that every element
 * is computed by one thread in a fixed order.
 */
final class BufLoops {
    private BufLoops() {
    }

    /** dst[d0 + i] += src[s0 + i] for i in [0, count). */
    static void accumulate(Buf src, int s0, Buf dst, int d0, int count) {
        Parallel.forRange(count, 1 << 15, (from, to) -> {
            for (int i = from; i < to; i++) {
                dst.set(d0 + i, dst.get(d0 + i) + src.get(s0 + i));
            }
        });
    }

    /** db[bo + k] += sum of dy (nb, k, inner) at go over n and inner, channel by channel. */
    static void biasBackward(Buf gb, int go, int nb, int k, int inner, Buf bb, int bo) {
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
}
