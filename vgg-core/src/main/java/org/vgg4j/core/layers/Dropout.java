package org.vgg4j.core.layers;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.DropoutRng;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Inverted dropout (paper §3.1: p = 0.5 on the first two FC layers): in training each element is kept with
 * probability 1-p and scaled by 1/(1-p); in evaluation it is the identity.
 *
 * <p>The mask is a pure function of (layer seed, training step, position of the example in the step's GLOBAL
 * batch, feature): feature f of the example at position e is kept when
 * {@code DropoutRng.keep(mix64(seed ^ step * 0xD1B54A32D192ED03L), e * F + f, p)}, F the features per example.
 * Hence every backend draws the same mask, a resumed run needs only the step to draw the masks it would have drawn, and an example's
 * mask does not depend on how the global batch is split over replicas, processes or micro-batches. The training
 * loop says where a forward's examples lie with {@link #setMaskKey} before each training forward (the trainer's
 * {@code Replicas} does, through {@link org.vgg4j.core.model.Network#setTrainingPosition}). A loop of one's own that
 * never sets the key is not left with one mask: a training forward whose key was not set since the previous one
 * counts as the next step (step 0, 1, 2, ... with its examples at positions 0, 1, ...), so such a loop draws a fresh
 * mask every forward, the masks a counter of forward calls would give.
 */
public final class Dropout extends BufferedLayer {
    private final double p;
    private final long seed;
    private long step;               // the training step this forward belongs to
    private long firstExample;       // position in the step's global batch of this forward's example 0
    private long exampleStride = 1;  // positions from one of this forward's examples to the next
    private boolean keyUsed;         // a training forward drew its mask since the key was last set
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

    /**
     * Where the next training forwards' examples lie: example i of the forward's batch is at position
     * {@code firstExample + i * exampleStride} of training step {@code step}'s global batch (stride 1 in one
     * process; W when W processes interleave their examples, as the data pipeline's sharding does).
     */
    public void setMaskKey(long step, long firstExample, long exampleStride) {
        if (step < 0 || firstExample < 0 || exampleStride < 1) {
            throw new IllegalArgumentException("dropout mask key: step " + step + " and first example " + firstExample
                    + " must be >= 0, example stride " + exampleStride + " >= 1");
        }
        this.step = step;
        this.firstExample = firstExample;
        this.exampleStride = exampleStride;
        this.keyUsed = false;
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
        if (keyUsed) { // nobody moved the key since the last training forward: this one is the next step
            setMaskKey(step + 1, 0, 1);
        }
        keyUsed = true;
        Tensor y = output.beside(x, x.shape());
        Tensor m = mask.get(x.dtype(), x.shape());
        long stepSeed = DropoutRng.mix64(seed ^ step * 0xD1B54A32D192ED03L);
        int n = x.shape().dim(0);
        long features = n == 0 ? 0 : x.size() / n; // F
        if (exampleStride == 1) { // consecutive positions: one draw of the whole (N,F) block
            backend.dropoutForward(x, y, m, p, DropoutRng.atIndex(stepSeed, firstExample * features));
            return y;
        }
        Shape row = Shape.of(Math.toIntExact(features)); // interleaved with other processes' examples: row by row
        for (int i = 0; i < n; i++) {
            long at = i * features;
            backend.dropoutForward(x.view(at, row), y.view(at, row), m.view(at, row), p,
                    DropoutRng.atIndex(stepSeed, (firstExample + i * exampleStride) * features));
        }
        return y;
    }

    @Override
    public Tensor backward(Tensor dy) {
        if (!lastWasTraining) {
            return dy;
        }
        Tensor dx = inputGrad.beside(dy, dy.shape());
        backend.multiply(dy, mask.get(dy.dtype(), dy.shape()), dx);
        return dx;
    }
}
