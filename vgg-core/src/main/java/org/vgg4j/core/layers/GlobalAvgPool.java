package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Spatial average of a class score map (paper §3.2, dense evaluation): (N,K,H,W) to (N,K). Computed as a GEMM
 * of the (N*K, H*W) map with a column of 1/(H*W), so every backend needs nothing new.
 */
public final class GlobalAvgPool extends BufferedLayer {
    private final Slot weights;   // (H*W, 1) filled with 1/(H*W)
    private Shape inputShape;

    public GlobalAvgPool(Backend backend) {
        super(backend);
        this.weights = slot();
    }

    @Override
    public String describe() {
        return "avgpool";
    }

    @Override
    public Shape outputShape(Shape in) {
        if (in.rank() != 4) {
            throw new IllegalArgumentException("global average pool expects (N,K,H,W), got " + in);
        }
        return Shape.of(in.dim(0), in.dim(1));
    }

    private Tensor averagingColumn(Tensor x) {
        int hw = x.dim(2) * x.dim(3);
        Tensor ones = weights.get(x.dtype(), Shape.of(hw, 1));
        backend.fill(ones, 1.0 / hw);
        return ones;
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        inputShape = x.shape();
        int rows = x.dim(0) * x.dim(1);
        int hw = x.dim(2) * x.dim(3);
        Tensor y = output.beside(x, outputShape(x.shape()));
        backend.gemm(false, false, 1.0, x.reshape(rows, hw), averagingColumn(x), 0.0, y.reshape(rows, 1));
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        int rows = inputShape.dim(0) * inputShape.dim(1);
        int hw = inputShape.dim(2) * inputShape.dim(3);
        Tensor dx = inputGrad.beside(dy, inputShape);
        Tensor col = weights.get(dy.dtype(), Shape.of(hw, 1));
        backend.gemm(false, true, 1.0, dy.reshape(rows, 1), col, 0.0, dx.reshape(rows, hw)); // dx = dy * (1/HW)
        return dx;
    }
}
