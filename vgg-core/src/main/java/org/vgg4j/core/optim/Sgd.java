package org.vgg4j.core.optim;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.layers.LowRankGradient;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Momentum SGD with L2 weight decay, Caffe's solver semantics (the paper trained with Caffe):
 * <pre>
 *   d = grad + weightDecay * w          (weights only: biases and BatchNorm's gamma/beta are not decayed,
 *                                        Caffe's decay_mult 0 for biases)
 *   v = momentum * v + lr * d           (the learning rate is applied INSIDE the momentum buffer)
 *   w = w - v
 *   grad = 0                            (gradients accumulate between steps; the step clears them)
 * </pre>
 * PyTorch's SGD instead keeps v = momentum*v + d and applies w -= lr*v; the two agree while lr is constant
 * and differ just after a learning-rate change (Caffe's velocity carries the old rate). One backend call covers
 * the whole parameter buffer.
 *
 * <p>Per-tensor learning-rate multipliers (Caffe's {@code lr_mult}, set on the {@link ParamStore}): a tensor with
 * multiplier m is updated with rate {@code m * lr} (its weight decay scaled with it, as Caffe's local rate), and
 * m = 0 freezes it: no update, no decay, its velocity untouched, its gradient cleared. Then the step is one backend
 * call per {@link ParamStore.Group} (a few: weights and biases of each run of equal multipliers); with every
 * multiplier 1 it stays the one call over the whole buffer.
 *
 * <p>A gradient held as factors ({@link LowRankGradient}, a fully connected layer's weight after
 * {@code Network.deferLinearWeightGradients}) takes {@link Backend#sgdStepLowRank} instead: the same update with
 * grad = dy^T x, built a few rows at a time.
 */
public final class Sgd implements AutoCloseable {

    /** The paper's values: momentum 0.9, weight decay 5e-4. */
    public record Settings(double momentum, double weightDecay) {
        public static final Settings PAPER = new Settings(0.9, 5e-4);

        public Settings {
            if (!(momentum >= 0 && momentum < 1)) {
                throw new IllegalArgumentException("momentum " + momentum + " must be in [0, 1)");
            }
            if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
                throw new IllegalArgumentException("weight decay " + weightDecay + " must be finite and >= 0");
            }
        }
    }

    private final ParamStore params;
    private final Settings settings;
    private final Tensor velocity; // (T) same layout as the parameter buffer

    public Sgd(ParamStore params, Settings settings) {
        this.params = params;
        this.settings = settings;
        this.velocity = params.backend().allocate(params.dtype(), params.values().shape());
    }

    public Settings settings() {
        return settings;
    }

    /** The momentum buffer (T): part of a checkpoint. */
    public Tensor velocity() {
        return velocity;
    }

    /** One update of every parameter with learning rate {@code lr}; clears the gradients. */
    public void step(double lr) {
        if (!(lr >= 0) || Double.isInfinite(lr)) {
            throw new IllegalArgumentException("learning rate " + lr + " must be finite and >= 0");
        }
        Backend b = params.backend();
        if (params.uniformLr() && params.lowRank().isEmpty()) {
            b.sgdStep(params.values(), params.grads(), velocity, lr, settings.momentum(), settings.weightDecay(),
                    params.decayedCount());
            return;
        }
        long base = params.grads().offset();
        for (ParamStore.Group g : params.groups()) {
            long at = g.offset();
            for (LowRankGradient f : params.lowRank()) {
                long from = f.dense().offset() - base;
                if (from < g.offset() || from >= g.offset() + g.count() || f.isDense() || f.rows() == 0) {
                    continue; // another group's, or dense now (a step without examples uses the zero dense view)
                }
                dense(g, at, from, lr);
                if (g.lrMult() != 0) {
                    Shape s = f.dense().shape();
                    b.sgdStepLowRank(params.values().view(from, s), velocity.view(from, s), f.dy(), f.x(),
                            lr * g.lrMult(), settings.momentum(), settings.weightDecay(), g.decayed());
                }
                f.stepDone();
                at = from + f.dense().size();
            }
            dense(g, at, g.offset() + g.count(), lr);
        }
    }

    /** The step of elements [from, to) of group g, with their gradient in the dense buffer. */
    private void dense(ParamStore.Group g, long from, long to, double lr) {
        if (to <= from) {
            return;
        }
        Backend b = params.backend();
        Shape s = Shape.of(Math.toIntExact(to - from));
        Tensor grad = params.grads().view(from, s);
        if (g.lrMult() == 0) {
            b.fill(grad, 0.0); // frozen: the step clears the gradient as it does every other
            return;
        }
        b.sgdStep(params.values().view(from, s), grad, velocity.view(from, s), lr * g.lrMult(), settings.momentum(),
                settings.weightDecay(), g.decayed() ? to - from : 0);
    }

    @Override
    public void close() {
        params.backend().free(velocity);
    }
}
