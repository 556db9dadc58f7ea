package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Inverted dropout (paper §3.1: p = 0.5 on the first two FC layers): in training each element is kept with
 * probability 1-p and scaled by 1/(1-p); in evaluation it is the identity. The mask comes from a counter-based
 * source seeded by (layer seed, call count), so runs are repeatable and every backend draws the same mask.
 */
public final class Dropout extends BufferedLayer {
    private final double p;
    private final long seed;
    private long calls;
    private final Slot mask;     // (N,F): 0 or 1/(1-p)
    private boolean lastWasTraining;

    public Dropout(Backend backend, double p, long seed) {
        super(backend);
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException("dropout probability " + p + " must be in [0, 1)");
        }
        this.p = p;
        this.seed = seed;
        this.mask = slot();
    }

    /** Forward calls in training so far; part of the state a resumed run must restore. */
    public long calls() {
        return calls;
    }

    public void setCalls(long calls) {
        this.calls = calls;
    }

    @Override
    public String describe() {
        return "dropout";
    }

    @Override
    public Shape outputShape(Shape input) {
        return input;
    }

    @Override
    public Tensor forward(Tensor x, boolean training) {
        lastWasTraining = training && p > 0;
        if (!lastWasTraining) {
            return x;
        }
        Tensor y = output.get(x.dtype(), x.shape());
        Tensor m = mask.get(x.dtype(), x.shape());
        backend.dropoutForward(x, y, m, p, org.vgg4j.core.backend.DropoutRng.mix64(seed ^ calls * 0xD1B54A32D192ED03L));
        calls++;
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (!lastWasTraining) {
            return dy;
        }
        Tensor dx = inputGrad.gradient(dy, dy.shape());
        backend.multiply(dy, mask.get(dy.dtype(), dy.shape()), dx);
        return dx;
    }
}
