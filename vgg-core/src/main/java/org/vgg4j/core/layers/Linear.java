package org.vgg4j.core.layers;

import java.util.List;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/** Fully connected layer y = x W^T + b. x (N,in), W (out,in) as torchvision, b (out), y (N,out). */
public final class Linear extends WeightedLayer {
    private final int inFeatures;
    private final int outFeatures;
    // weight (out,in), bias (out), output (N,out), inputGrad (N,in)
    private Tensor savedInput;  // (N,in)
    private LowRankGradient lowRank; // the weight gradient as factors, or null: dense in weightGrad

    public Linear(Backend backend, int inFeatures, int outFeatures) {
        super(backend);
        if (inFeatures < 1 || outFeatures < 1) {
            throw new IllegalArgumentException("linear " + inFeatures + "->" + outFeatures + ": sizes must be >= 1");
        }
        this.inFeatures = inFeatures;
        this.outFeatures = outFeatures;
    }

    public int inFeatures() {
        return inFeatures;
    }

    public int outFeatures() {
        return outFeatures;
    }

    @Override
    public String describe() {
        return "fc-" + outFeatures;
    }

    @Override
    public Shape outputShape(Shape in) {
        if (in.rank() != 2 || in.dim(1) != inFeatures) {
            throw new IllegalArgumentException(describe() + " expects input (N," + inFeatures + "), got " + in);
        }
        return Shape.of(in.dim(0), outFeatures);
    }

    @Override
    public List<ParamSpec> params() {
        return weightAndBias(Shape.of(outFeatures, inFeatures), inFeatures, outFeatures);
    }

    @Override
    public long macs(Shape in) {
        return (long) inFeatures * outFeatures;
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        Tensor y = output.beside(x, outputShape(x.shape()));
        backend.gemm(false, true, 1.0, x, weight, 0.0, y);
        backend.addBias(y, bias);
        savedInput = x;
        return y;
    }

    /**
     * From now on the weight gradient accumulates as factors in {@code g} (which stands for this layer's weight
     * gradient) instead of in the dense gradient; null goes back to dense.
     */
    public void deferWeightGradient(LowRankGradient g) {
        if (g != null && g.dense() != weightGrad) {
            throw new IllegalArgumentException(describe() + ": the low-rank gradient must stand for this layer's weight gradient");
        }
        lowRank = g;
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (lowRank != null) {
            lowRank.add(dy, savedInput); // dW (out,in) += dy^T x, kept as the factors
        } else {
            backend.gemm(true, false, 1.0, dy, savedInput, 1.0, weightGrad); // dW (out,in) += dy^T x
        }
        backend.biasBackward(dy, biasGrad);
        if (!needsInputGradient()) {
            return null;
        }
        Tensor dx = inputGrad.beside(dy, savedInput.shape());
        backend.gemm(false, false, 1.0, dy, weight, 0.0, dx); // dx (N,in) = dy W
        return dx;
    }

    @Override
    public void release() {
        super.release();
        savedInput = null;
    }
}
