package org.vgg4j.core.layers;

import java.util.List;
import java.util.Map;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * EXTENSION BEYOND THE PAPER (BatchNorm postdates VGG): batch normalisation per channel for torchvision's
 * {@code vgg*_bn} variants. Training mode normalises with batch statistics and updates the running ones
 * (momentum 0.1, unbiased variance, as PyTorch); evaluation mode uses the running statistics.
 * x, y (N,C,H,W); gamma ("weight"), beta ("bias"), running_mean, running_var (C).
 */
public final class BatchNorm2d extends WeightedLayer {
    public static final double MOMENTUM = 0.1;
    public static final double EPS = 1e-5;

    private final int channels;
    // weight = gamma, bias = beta (C)
    private Tensor runningMean;
    private Tensor runningVar;
    private final Slot saveMean;    // (C)
    private final Slot saveInvStd;  // (C)
    private Tensor savedInput;

    public BatchNorm2d(Backend backend, int channels) {
        super(backend);
        if (channels < 1) {
            throw new IllegalArgumentException("batchnorm channels " + channels + " must be >= 1");
        }
        this.channels = channels;
        this.saveMean = slot();
        this.saveInvStd = slot();
    }

    @Override
    public String describe() {
        return "bn";
    }

    @Override
    public Shape outputShape(Shape in) {
        if (in.rank() != 4 || in.dim(1) != channels) {
            throw new IllegalArgumentException("batchnorm expects input (N," + channels + ",H,W), got " + in);
        }
        return in;
    }

    @Override
    public List<ParamSpec> params() {
        Shape c = Shape.of(channels);
        return List.of(
                new ParamSpec("weight", c, ParamSpec.Role.NO_DECAY, 1, 1),
                new ParamSpec("bias", c, ParamSpec.Role.NO_DECAY, 1, 1),
                new ParamSpec("running_mean", c, ParamSpec.Role.STATE, 1, 1),
                new ParamSpec("running_var", c, ParamSpec.Role.STATE, 1, 1));
    }

    @Override
    public void bind(Map<String, Tensor> values, Map<String, Tensor> grads) {
        super.bind(values, grads);
        runningMean = values.get("running_mean");
        runningVar = values.get("running_var");
    }

    @Override
    public long macs(Shape in) {
        return 2 * (in.size() / in.dim(0));
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        return run(x, false, training);
    }

    /**
     * This layer's forward and the ReLU right after it in one backend call
     * ({@link Backend#batchNormForwardTrainingRelu}, {@link Backend#batchNormForwardInferenceRelu}): returns
     * y = max(BN(x), 0), which the network then hands to that ReLU's {@link ReLU#forwardFused}. Backward is
     * unchanged: the ReLU's backward masks dy with y > 0, and {@link #backward} needs only x and the saved
     * statistics, never its own pre-ReLU output. The network fuses a pair only where nothing asks for that output.
     */
    public Tensor forwardRelu(Tensor x, boolean training) {
        return run(x, true, training);
    }

    private Tensor run(Tensor x, boolean relu, boolean training) {
        Tensor y = output.beside(x, outputShape(x.shape()));
        if (training) {
            if (x.size() / channels < 2) {
                throw new IllegalArgumentException("batchnorm in training needs more than one value per channel, got input " + x.shape());
            }
            Shape c = Shape.of(channels);
            Tensor mean = saveMean.get(x.dtype(), c);
            Tensor invStd = saveInvStd.get(x.dtype(), c);
            if (relu) {
                backend.batchNormForwardTrainingRelu(x, weight, bias, y, runningMean, runningVar, mean, invStd,
                        MOMENTUM, EPS);
            } else {
                backend.batchNormForwardTraining(x, weight, bias, y, runningMean, runningVar, mean, invStd, MOMENTUM,
                        EPS);
            }
            savedInput = x;
        } else {
            if (relu) {
                backend.batchNormForwardInferenceRelu(x, weight, bias, y, runningMean, runningVar, EPS);
            } else {
                backend.batchNormForwardInference(x, weight, bias, y, runningMean, runningVar, EPS);
            }
            savedInput = null;
        }
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (savedInput == null) {
            throw new IllegalStateException("batchnorm backward needs a forward in training mode first");
        }
        Shape c = Shape.of(channels);
        Tensor dx = inputGrad.beside(dy, savedInput.shape());
        backend.batchNormBackward(savedInput, dy, weight, saveMean.get(dy.dtype(), c), saveInvStd.get(dy.dtype(), c),
                dx, weightGrad, biasGrad);
        return dx;
    }

    @Override
    public void release() {
        super.release();
        savedInput = null;
    }
}
