package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * The weight gradient of a fully connected layer held as its factors, G = DY^T X, instead of as a dense (out,in)
 * tensor: DY (r,out) holds the output gradients and X (r,in) the inputs of the r examples since the last step. For
 * VGG-16's fc6 at batch 4 that is 4 x (4,096 + 25,088) values where the dense gradient has 4,096 x 25,088 (392 MiB).
 * Nothing writes, reads or clears the dense gradient; the SGD step builds it a few rows at a time
 * ({@link Backend#sgdStepLowRank}) and the network's memory need not hold it at all
 * ({@link Backend#zeroAndRelease}).
 *
 * <p>Invariant: while factors are pending, the dense view {@link #dense()} is zero. When the examples of one step
 * would exceed {@link #maxRows()} (the factors would stop being small: more than a quarter of the dense gradient),
 * the pending factors are added into the dense view, and from then on this gradient accumulates there, as without
 * this class ({@link #isDense()}: batches that large stay large, and handing the memory back every step would cost
 * a page fault per page); the SGD step then takes the dense view like any other gradient.
 *
 * <p>Who uses it: {@code Network.deferLinearWeightGradients()} gives one to each {@link Linear} layer where it
 * pays; {@code ParamStore} keeps the list for the SGD step, the finiteness check and {@code zeroGrads}.
 */
public final class LowRankGradient {
    private final Backend backend;
    private final Tensor dense;   // (out,in) the view of the gradient buffer this stands for
    private final int out;
    private final int in;
    private final int maxRows;
    private Tensor dy;            // (capacity,out), rows [0, rows) pending
    private Tensor x;             // (capacity,in)
    private int capacity;
    private int rows;
    private boolean denseForGood;         // dense for good: the examples of a step overflowed maxRows

    /** Factors for the gradient {@code dense} (out,in), a view of the network's gradient buffer. */
    public LowRankGradient(Backend backend, Tensor dense) {
        if (dense.rank() != 2) {
            throw new IllegalArgumentException("a low-rank gradient needs a 2-D (out,in) weight gradient, got " + dense.shape());
        }
        this.backend = backend;
        this.dense = dense;
        this.out = dense.dim(0);
        this.in = dense.dim(1);
        this.maxRows = maxRows(out, in);
        if (maxRows < 1) {
            throw new IllegalArgumentException("a " + out + "x" + in + " weight gains nothing from a low-rank gradient: "
                    + "one example's factors (" + (out + in) + " values) exceed a quarter of its " + (long) out * in);
        }
    }

    /** The most examples one step holds as factors for an (out,in) weight: factors within a quarter of its size. */
    public static int maxRows(int out, int in) {
        return (int) Math.min(Integer.MAX_VALUE, (long) out * in / (4L * (out + in)));
    }

    public int maxRows() {
        return maxRows;
    }

    /** The gradient view (out,in) this stands for. */
    public Tensor dense() {
        return dense;
    }

    /** Examples pending as factors (0 when none, or when the gradient is dense). */
    public int rows() {
        return rows;
    }

    /** Whether the gradient is in {@link #dense()} (a step's examples overflowed {@link #maxRows()}). */
    public boolean isDense() {
        return denseForGood;
    }

    /** DY (rows,out) of the pending examples; valid until the next {@link #add}. */
    public Tensor dy() {
        return dy.view(0, Shape.of(rows, out));
    }

    /** X (rows,in) of the pending examples; valid until the next {@link #add}. */
    public Tensor x() {
        return x.view(0, Shape.of(rows, in));
    }

    /** G += dyBatch^T xBatch: dyBatch (n,out), xBatch (n,in), copied (the caller's buffers are reused). */
    public void add(Tensor dyBatch, Tensor xBatch) {
        int n = dyBatch.dim(0);
        if (dyBatch.rank() != 2 || dyBatch.dim(1) != out || xBatch.rank() != 2 || xBatch.dim(0) != n || xBatch.dim(1) != in) {
            throw new IllegalArgumentException("low-rank gradient of a " + out + "x" + in + " weight: dy (n," + out
                    + ") and x (n," + in + ") expected, got " + dyBatch.shape() + " and " + xBatch.shape());
        }
        if (denseForGood || (long) rows + n > maxRows) {
            toDense();
            backend.gemm(true, false, 1.0, dyBatch, xBatch, 1.0, dense);
            return;
        }
        reserve(rows + n);
        backend.copy(dyBatch, dy.view((long) rows * out, Shape.of(n, out)));
        backend.copy(xBatch, x.view((long) rows * in, Shape.of(n, in)));
        rows += n;
    }

    /** Adds the pending factors into {@link #dense()}; from here on this gradient is dense. */
    public void toDense() {
        if (rows > 0) {
            backend.gemm(true, false, 1.0, dy(), x(), 1.0, dense);
        }
        free();
        denseForGood = true;
    }

    /**
     * True when every element of G = DY^T X is surely finite: the factors are finite and the bound
     * |G[i,j]| &lt;= ||DY||_F ||X||_F (Cauchy-Schwarz) stays far below float32's largest value. False does not
     * prove a non-finite element; {@link #toDense()} then gives the exact gradient to check.
     */
    public boolean surelyFinite() {
        if (rows == 0) {
            return true;
        }
        double bound = Math.sqrt(backend.sumOfSquares(dy())) * Math.sqrt(backend.sumOfSquares(x()));
        return bound <= 1e37; // float32 tops out at 3.4e38; the margin covers rounding in the products
    }

    /** After the SGD step, which used the factors (or the dense view, and cleared it): no pending examples. */
    public void stepDone() {
        rows = 0;
    }

    /** Discards the gradient (zeroGrads after a rollback): no pending examples, the dense view zero. */
    public void clear() {
        rows = 0;
        if (denseForGood) {
            backend.fill(dense, 0.0);
        } else {
            backend.zeroAndRelease(dense);
        }
    }

    /** Frees the factor buffers. */
    public void free() {
        if (dy != null) {
            backend.free(dy);
            backend.free(x);
            dy = null;
            x = null;
            capacity = 0;
        }
        rows = 0;
    }

    private void reserve(int need) {
        if (need <= capacity) {
            return;
        }
        int cap = (int) Math.min(maxRows, Math.max(need, 2L * capacity));
        Tensor ndy = backend.allocate(dense.dtype(), Shape.of(cap, out));
        Tensor nx = backend.allocate(dense.dtype(), Shape.of(cap, in));
        if (rows > 0) {
            backend.copy(dy(), ndy.view(0, Shape.of(rows, out)));
            backend.copy(x(), nx.view(0, Shape.of(rows, in)));
        }
        int kept = rows;
        free();
        dy = ndy;
        x = nx;
        capacity = cap;
        rows = kept;
    }
}
