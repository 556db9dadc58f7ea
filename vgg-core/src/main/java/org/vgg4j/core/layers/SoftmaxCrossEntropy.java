package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Tensor;

/** The training loss: mean softmax cross-entropy of logits (N,F) against integer labels. */
public final class SoftmaxCrossEntropy {
    private final Backend backend;
    private final Slot logitsGrad; // (N,F)
    private Tensor lastGradient;

    public SoftmaxCrossEntropy(Backend backend) {
        this.backend = backend;
        this.logitsGrad = new Slot(backend);
    }

    /** Computes the loss and dL/dlogits; returns the loss. The gradient is read with {@link #gradient()}. */
    public double forwardBackward(Tensor logits, int[] labels) {
        if (logits.rank() != 2 || labels.length != logits.dim(0)) {
            throw new IllegalArgumentException("loss expects logits (N,F) and N labels, got logits " + logits.shape()
                    + " and " + labels.length + " labels");
        }
        int classes = logits.dim(1);
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes) {
                throw new IllegalArgumentException("label " + labels[i] + " at batch position " + i
                        + " is outside [0, " + classes + ")");
            }
        }
        lastGradient = logitsGrad.get(logits.dtype(), logits.shape());
        return backend.softmaxCrossEntropy(logits, labels, lastGradient);
    }

    /** dL/dlogits (N,F) of the last {@link #forwardBackward}. */
    public Tensor gradient() {
        if (lastGradient == null) {
            throw new IllegalStateException("no loss computed yet");
        }
        return lastGradient;
    }

    public void release() {
        logitsGrad.release();
        lastGradient = null;
    }
}
