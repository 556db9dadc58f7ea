package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/** Max-pooling over 2x2 windows with stride 2 (the paper's maxpool). Input (N,C,H,W), output
 * (N,C,floor(H/2),floor(W/2)) as in PyTorch: an odd last row or column is dropped. */
public final class MaxPool2d extends BufferedLayer {
    private Tensor savedInput;
    private Tensor savedOutput;

    public MaxPool2d(Backend backend) {
        super(backend);
    }

    @Override
    public String describe() {
        return "maxpool";
    }

    @Override
    public Shape outputShape(Shape in) {
        if (in.rank() != 4 || in.dim(2) < 2 || in.dim(3) < 2) {
            throw new IllegalArgumentException("maxpool 2x2/2 needs input (N,C,H,W) with H, W >= 2, got " + in);
        }
        return Shape.of(in.dim(0), in.dim(1), in.dim(2) / 2, in.dim(3) / 2);
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        Tensor y = output.beside(x, outputShape(x.shape()));
        backend.maxPool2x2Forward(x, y);
        savedInput = x;
        savedOutput = y;
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        Tensor dx = inputGrad.beside(dy, savedInput.shape());
        backend.maxPool2x2Backward(savedInput, savedOutput, dy, dx);
        return dx;
    }

    /**
     * The backward of this pool and of the ReLU before it in one call ({@link Backend#maxPool2x2BackwardRelu}): for
     * a pool whose input is that ReLU's output, which {@code Network} checks; the ReLU's own backward is then skipped.
     */
    public Tensor backwardWithRelu(Tensor dy) {
        Tensor dx = inputGrad.beside(dy, savedInput.shape());
        backend.maxPool2x2BackwardRelu(savedInput, savedOutput, dy, dx);
        return dx;
    }

    @Override
    public void release() {
        super.release();
        savedInput = null;
        savedOutput = null;
    }
}
