package org.vgg4j.core.layers;

import java.util.List;
import java.util.Map;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/** Fully connected layer y = x W^T + b. x (N,in), W (out,in) as torchvision, b (out), y (N,out). */
public final class Linear implements Layer {
    private final Backend backend;
    private final int inFeatures;
    private final int outFeatures;
    private Tensor weight;      // (out,in)
    private Tensor bias;        // (out)
    private Tensor weightGrad;  // (out,in)
    private Tensor biasGrad;    // (out)
    private Tensor savedInput;  // (N,in)
    private final Slot output;
    private final Slot inputGrad;
    private boolean needsInputGradient = true;

    public Linear(Backend backend, int inFeatures, int outFeatures) {
        if (inFeatures < 1 || outFeatures < 1) {
            throw new IllegalArgumentException("linear " + inFeatures + "->" + outFeatures + ": sizes must be >= 1");
        }
        this.backend = backend;
        this.inFeatures = inFeatures;
        this.outFeatures = outFeatures;
        this.output = new Slot(backend);
        this.inputGrad = new Slot(backend);
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
        return List.of(
                new ParamSpec("weight", Shape.of(outFeatures, inFeatures), ParamSpec.Role.WEIGHT, inFeatures, outFeatures),
                new ParamSpec("bias", Shape.of(outFeatures), ParamSpec.Role.NO_DECAY, inFeatures, outFeatures));
    }

    @Override
    public void bind(Map<String, Tensor> values, Map<String, Tensor> grads) {
        weight = values.get("weight");
        bias = values.get("bias");
        weightGrad = grads.get("weight");
        biasGrad = grads.get("bias");
    }

    @Override
    public long macs(Shape in) {
        return (long) inFeatures * outFeatures;
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        Tensor y = output.get(x.dtype(), outputShape(x.shape()));
        backend.gemm(false, true, 1.0, x, weight, 0.0, y);
        backend.addBias(y, bias);
        savedInput = x;
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        backend.gemm(true, false, 1.0, dy, savedInput, 1.0, weightGrad); // dW (out,in) += dy^T x
        backend.biasBackward(dy, biasGrad);
        if (!needsInputGradient) {
            return null;
        }
        Tensor dx = inputGrad.gradient(dy, savedInput.shape());
        backend.gemm(false, false, 1.0, dy, weight, 0.0, dx); // dx (N,in) = dy W
        return dx;
    }

    @Override
    public void setNeedsInputGradient(boolean needed) {
        needsInputGradient = needed;
    }

    @Override
    public void shareGradientBuffers(GradientArena arena) {
        inputGrad.shareWith(arena);
    }

    @Override
    public void release() {
        output.release();
        inputGrad.release();
        savedInput = null;
    }
}
