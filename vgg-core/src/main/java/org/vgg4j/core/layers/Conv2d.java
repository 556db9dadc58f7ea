package org.vgg4j.core.layers;

import java.util.List;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * 2-D convolution, stride 1: the paper's conv3 (3x3, pad 1) and conv1 (1x1, pad 0), and k x k 'valid' (pad 0)
 * for dense evaluation. Legend: N batch, C in, K out, H/W in, P/Q out, R = S = kernel.
 */
public final class Conv2d extends WeightedLayer {
    private final int inChannels;
    private final int outChannels;
    private final int kernel;
    private final int pad;
    // weight (K,C,R,S), bias (K), output (N,K,P,Q), inputGrad (N,C,H,W)
    private Tensor savedInput;  // (N,C,H,W): what backward needs
    private Backend.ConvMemo memo; // what the backend keeps from forward for backward (null: nothing, or not made yet)
    private boolean memoMade;

    public Conv2d(Backend backend, int inChannels, int outChannels, int kernel, int pad) {
        super(backend);
        if (inChannels < 1 || outChannels < 1 || kernel < 1 || pad < 0) {
            throw new IllegalArgumentException("conv " + inChannels + "->" + outChannels + " kernel " + kernel
                    + " pad " + pad + ": channels and kernel must be >= 1, pad >= 0");
        }
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        this.kernel = kernel;
        this.pad = pad;
    }

    public int inChannels() {
        return inChannels;
    }

    public int outChannels() {
        return outChannels;
    }

    public int kernel() {
        return kernel;
    }

    public int pad() {
        return pad;
    }

    @Override
    public String describe() {
        return "conv" + kernel + "-" + outChannels;
    }

    @Override
    public Shape outputShape(Shape in) {
        if (in.rank() != 4 || in.dim(1) != inChannels) {
            throw new IllegalArgumentException(describe() + " expects input (N," + inChannels + ",H,W), got " + in);
        }
        int p = in.dim(2) + 2 * pad - kernel + 1;
        int q = in.dim(3) + 2 * pad - kernel + 1;
        if (p < 1 || q < 1) {
            throw new IllegalArgumentException(describe() + " input " + in.dim(2) + "x" + in.dim(3)
                    + " is smaller than its " + kernel + "x" + kernel + " kernel (pad " + pad + ")");
        }
        return Shape.of(in.dim(0), outChannels, p, q);
    }

    @Override
    public List<ParamSpec> params() {
        int fanIn = inChannels * kernel * kernel;
        int fanOut = outChannels * kernel * kernel;
        return weightAndBias(Shape.of(outChannels, inChannels, kernel, kernel), fanIn, fanOut);
    }

    @Override
    public long macs(Shape in) {
        Shape out = outputShape(in);
        return (long) out.dim(1) * out.dim(2) * out.dim(3) * inChannels * kernel * kernel;
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        return run(x, false, training);
    }

    /**
     * This layer's forward and the ReLU right after it in one backend call ({@link Backend#conv2dForwardRelu}):
     * returns y = max(conv(x) + b, 0), which the network then hands to that ReLU's {@link ReLU#forwardFused}.
     * Backward is unchanged: the ReLU's backward masks dy with y > 0 before it reaches {@link #backward}, which
     * needs only x. The network fuses a pair only where nothing asks for this layer's pre-ReLU output.
     */
    public Tensor forwardRelu(Tensor x, boolean training) {
        return run(x, true, training);
    }

    /**
     * The memo serves training: an inference forward (validation, evaluation) keeps nothing, so that evaluation
     * holds no backend copies of x, and drops what a training forward kept, since a backward after it must not
     * take that older x (its memory may hold new values at the same address).
     */
    private Tensor run(Tensor x, boolean relu, boolean training) {
        Tensor y = output.beside(x, outputShape(x.shape()));
        if (!training) {
            closeMemo();
        }
        backend.conv2dForward(x, weight, bias, y, pad, relu, training ? memo() : null);
        savedInput = x; // unwritten until backward (later layers write their own buffers): what the memo relies on
        return y;
    }

    private Backend.ConvMemo memo() {
        if (!memoMade) {
            memo = backend.newConvMemo();
            memoMade = true;
        }
        return memo;
    }

    @Override
    public Tensor backward(Tensor dy) {
        Tensor dx = needsInputGradient() ? inputGrad.beside(dy, savedInput.shape()) : null;
        backend.conv2dBackward(savedInput, weight, dy, dx, weightGrad, biasGrad, pad, memo);
        return dx;
    }

    @Override
    public void release() {
        super.release();
        savedInput = null;
        closeMemo();
    }

    private void closeMemo() {
        if (memo != null) {
            memo.close();
        }
        memo = null;
        memoMade = false;
    }
}
