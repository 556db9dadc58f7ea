package org.vgg4j.core.model;

import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Copies the elements of one tensor into another of the same size, possibly on another backend or in another
 * dtype (through host memory, in chunks, so a 102 M-element FC6 weight never needs one huge host array). It is
 * not a general tensor library: same element count, row-major order, nothing else.
 */
public final class TensorCopy {
    /** Elements per host chunk: 1 Mi elements = 8 MiB of doubles. */
    static final int CHUNK = 1 << 20;

    private TensorCopy() {
    }

    /** dst = src element by element; the shapes may differ, the sizes must not. */
    public static void copy(Tensor src, Tensor dst) {
        if (src.size() != dst.size()) {
            throw new IllegalArgumentException("cannot copy " + src + " (" + src.size() + " elements) into " + dst
                    + " (" + dst.size() + " elements)");
        }
        if (src.backend() == dst.backend() && src.dtype() == dst.dtype()) {
            src.backend().copy(src, dst);
            return;
        }
        Tensor s = flat(src);
        Tensor d = flat(dst);
        long n = src.size();
        boolean bothFloat = src.dtype() == DType.FLOAT32 && dst.dtype() == DType.FLOAT32;
        float[] hf = bothFloat ? new float[(int) Math.min(n, CHUNK)] : null;
        double[] hd = bothFloat ? null : new double[(int) Math.min(n, CHUNK)];
        for (long off = 0; off < n; off += CHUNK) {
            int len = (int) Math.min(CHUNK, n - off);
            Tensor sv = s.view(off, Shape.of(len));
            Tensor dv = d.view(off, Shape.of(len));
            if (bothFloat) {
                src.backend().copyOut(sv, hf, 0);
                dst.backend().copyIn(hf, 0, dv);
            } else {
                src.backend().copyOut(sv, hd, 0);
                dst.backend().copyIn(hd, 0, dv);
            }
        }
    }

    /** The same elements as a rank-1 tensor (so chunks can be viewed). */
    static Tensor flat(Tensor t) {
        return t.reshape(Math.toIntExact(t.size()));
    }
}
