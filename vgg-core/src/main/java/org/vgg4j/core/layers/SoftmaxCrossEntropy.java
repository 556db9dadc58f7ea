package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Tensor;

/**
 * The training loss: mean softmax cross-entropy of logits (N,F) against integer labels, optionally with label
 * smoothing (Szegedy et al. 2016; EXTENSION beyond the paper): the target of example n is (1 - e) onehot(labels[n])
 * + e / F instead of the one-hot vector, as PyTorch's {@code CrossEntropyLoss(label_smoothing=e)}.
 *
 * <p>How smoothing is computed on any backend: with z the logits, the smoothed loss of an example is its plain
 * cross-entropy plus e (z[label] - mean_k z[k]), and its gradient the plain one plus e (onehot - 1/F) / N. The
 * backend computes the plain loss and gradient ({@link Backend#softmaxCrossEntropy}); this class adds the two terms
 * from the logits copied to the host (N x F values) and a correction tensor (axpy).
 */
public final class SoftmaxCrossEntropy {
    private final Backend backend;
    private final double smoothing;
    private final Slot logitsGrad; // (N,F)
    private final Slot correction; // (N,F) e (onehot - 1/F) / N, with smoothing only
    private Tensor lastGradient;
    private double[] hostLogits = new double[0];     // (N*F) with smoothing: reused while the batch shape holds
    private double[] hostCorrection = new double[0]; // (N*F)

    public SoftmaxCrossEntropy(Backend backend) {
        this(backend, 0);
    }

    /** With label smoothing {@code smoothing} in [0, 1) (0: the plain loss). */
    public SoftmaxCrossEntropy(Backend backend, double smoothing) {
        if (!(smoothing >= 0 && smoothing < 1)) {
            throw new IllegalArgumentException("label smoothing " + smoothing + " must be in [0, 1)");
        }
        this.backend = backend;
        this.smoothing = smoothing;
        this.logitsGrad = new Slot(backend);
        this.correction = new Slot(backend);
    }

    public double smoothing() {
        return smoothing;
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
        double loss = backend.softmaxCrossEntropy(logits, labels, lastGradient);
        return smoothing == 0 ? loss : loss + smooth(logits, labels);
    }

    /**
     * Adds e (onehot - 1/F) / N to the gradient and returns e mean_n (z[n, label] - mean_k z[n, k]), the smoothed
     * loss minus the plain one. Legend: N batch, F classes.
     */
    private double smooth(Tensor logits, int[] labels) {
        int n = logits.dim(0);
        int f = logits.dim(1);
        if (hostLogits.length != n * f) {
            hostLogits = new double[n * f];
            hostCorrection = new double[n * f];
        }
        double[] z = hostLogits;
        double[] c = hostCorrection;
        backend.copyOut(logits, z, 0);
        double extra = 0;
        for (int i = 0; i < n; i++) {
            double mean = 0;
            for (int k = 0; k < f; k++) {
                mean += z[i * f + k];
                c[i * f + k] = -smoothing / ((double) f * n);
            }
            extra += z[i * f + labels[i]] - mean / f;
            c[i * f + labels[i]] += smoothing / n;
        }
        Tensor corr = correction.get(logits.dtype(), logits.shape());
        backend.copyIn(c, 0, corr);
        backend.axpy(1.0, corr, lastGradient);
        return smoothing * extra / n;
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
        correction.release();
        lastGradient = null;
    }
}
