package org.vgg4j.core.layers;

import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/** (N,C,H,W) to (N,C*H*W) in NCHW order, as torch.flatten(x, 1): a view, no copy. */
public final class Flatten implements Layer {
    private Shape inputShape;

    @Override
    public String describe() {
        return "flatten";
    }

    @Override
    public Shape outputShape(Shape in) {
        long f = in.size() / in.dim(0);
        return Shape.of(in.dim(0), Math.toIntExact(f));
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        inputShape = x.shape();
        return x.reshape(outputShape(x.shape()).dims());
    }

    @Override
    public Tensor backward(Tensor dy) {
        return dy.reshape(inputShape.dims());
    }
}
