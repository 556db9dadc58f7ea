package org.vgg4j.core.backend;

import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Argument checks that every backend makes at the entry of an op, with one wording for all: each message names the
 * op, the argument's role and the shapes involved ("conv2dForward: y has shape 1x4x5x5, expected 1x4x6x6 (...)").
 * For backend implementations; layers check their own shapes before they call a backend.
 */
public final class OpChecks {
    private OpChecks() {
    }

    public static void rank(String op, String role, Tensor t, int rank) {
        notNull(op, role, t);
        if (t.rank() != rank) {
            throw new IllegalArgumentException(op + ": " + role + " must have rank " + rank + ", got " + t.shape());
        }
    }

    /** {@code t} must have exactly the shape {@code expected}; {@code ctx} says where the expectation comes from. */
    public static void shape(String op, String role, Tensor t, String ctx, int... expected) {
        notNull(op, role, t);
        Shape want = Shape.of(expected);
        if (!t.shape().equals(want)) {
            throw new IllegalArgumentException(op + ": " + role + " has shape " + t.shape() + ", expected " + want
                    + " (" + ctx + ")");
        }
    }

    public static void sameShape(String op, String aRole, Tensor a, String bRole, Tensor b) {
        notNull(op, aRole, a);
        notNull(op, bRole, b);
        if (!a.shape().equals(b.shape())) {
            throw new IllegalArgumentException(op + ": " + aRole + " " + a.shape() + " and " + bRole + " " + b.shape()
                    + " must have the same shape");
        }
    }

    public static void sameSize(String op, String aRole, Tensor a, String bRole, Tensor b) {
        notNull(op, aRole, a);
        notNull(op, bRole, b);
        if (a.size() != b.size()) {
            throw new IllegalArgumentException(op + ": " + aRole + " " + a.shape() + " and " + bRole + " " + b.shape()
                    + " must have the same number of elements");
        }
    }

    /** The GEMM dimensions (M, Kd, Nd) of c = op(a) op(b), after checking ranks, inner dimensions and c's shape. */
    public record GemmDims(int m, int kd, int nd) {
    }

    public static GemmDims gemmDims(String op, boolean transA, boolean transB, Tensor a, Tensor b, Tensor c) {
        rank(op, "a", a, 2);
        rank(op, "b", b, 2);
        rank(op, "c", c, 2);
        int m = transA ? a.dim(1) : a.dim(0);
        int kd = transA ? a.dim(0) : a.dim(1);
        int kdB = transB ? b.dim(1) : b.dim(0);
        int nd = transB ? b.dim(0) : b.dim(1);
        String ctx = "a " + a.shape() + (transA ? " transposed" : "") + ", b " + b.shape()
                + (transB ? " transposed" : "") + ", c " + c.shape();
        if (kd != kdB) {
            throw new IllegalArgumentException(op + ": inner dimensions differ, " + kd + " vs " + kdB + " (" + ctx + ")");
        }
        shape(op, "c", c, ctx, m, nd);
        return new GemmDims(m, kd, nd);
    }

    /** A host array of {@code hostLength} must hold {@code n} values from {@code hostOffset}. */
    public static void hostRange(String op, int hostLength, int hostOffset, int n) {
        if (hostOffset < 0 || (long) hostOffset + n > hostLength) {
            throw new IllegalArgumentException(op + ": host array of " + hostLength + " elements cannot hold " + n
                    + " values from offset " + hostOffset);
        }
    }

    /** Channels K of a bias-shaped activation (N,K) or (N,K,H,W). */
    public static int biasChannels(String op, String role, Tensor t) {
        notNull(op, role, t);
        if (t.rank() != 2 && t.rank() != 4) {
            throw new IllegalArgumentException(op + ": " + role + " must be (N,K) or (N,K,H,W), got " + t.shape());
        }
        return t.dim(1);
    }

    public static void lrnSize(String op, int size) {
        if (size < 1) {
            throw new IllegalArgumentException(op + ": window size " + size + " must be >= 1");
        }
    }

    private static void notNull(String op, String role, Tensor t) {
        if (t == null) {
            throw new IllegalArgumentException(op + ": " + role + " is null");
        }
    }
}
