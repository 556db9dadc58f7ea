package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Local response normalisation across channels, used only by configuration A-LRN (paper Table 1), with
 * AlexNet's settings by default: size 5, alpha 1e-4, beta 0.75, k 2. Same formula as PyTorch's
 * {@code LocalResponseNorm} (alpha divided by size).
 */
public final class LocalResponseNorm extends BufferedLayer {
    public static final int SIZE = 5;
    public static final double ALPHA = 1e-4;
    public static final double BETA = 0.75;
    public static final double K = 2.0;

    private final int size;
    private final double alpha;
    private final double beta;
    private final double k;
    private final Slot scale;     // (N,C,H,W): k + alpha/size * window sum of squares
    private Tensor savedInput;

    public LocalResponseNorm(Backend backend) {
        this(backend, SIZE, ALPHA, BETA, K);
    }

    public LocalResponseNorm(Backend backend, int size, double alpha, double beta, double k) {
        super(backend);
        if (size < 1) {
            throw new IllegalArgumentException("LRN size " + size + " must be >= 1");
        }
        this.size = size;
        this.alpha = alpha;
        this.beta = beta;
        this.k = k;
        this.scale = slot();
    }

    /** Channels in the window: channel c sums the squares of channels c - size/2 ... c + (size-1)/2. */
    public int size() {
        return size;
    }

    public double alpha() {
        return alpha;
    }

    public double beta() {
        return beta;
    }

    public double k() {
        return k;
    }

    @Override
    public String describe() {
        return "lrn";
    }

    @Override
    public Shape outputShape(Shape in) {
        if (in.rank() != 4) {
            throw new IllegalArgumentException("LRN expects input (N,C,H,W), got " + in);
        }
        return in;
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        Tensor y = output.beside(x, outputShape(x.shape()));
        backend.lrnForward(x, y, scale.get(x.dtype(), x.shape()), size, alpha, beta, k);
        savedInput = x;
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        Tensor dx = inputGrad.beside(dy, savedInput.shape());
        backend.lrnBackward(savedInput, output.get(dy.dtype(), savedInput.shape()), scale.get(dy.dtype(), savedInput.shape()),
                dy, dx, size, alpha, beta, k);
        return dx;
    }

    @Override
    public void release() {
        super.release();
        savedInput = null;
    }
}
