package org.vgg4j.core.model;

import java.util.SplittableRandom;
import java.util.function.Predicate;

import org.vgg4j.core.layers.ParamSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Seeded, bitwise-reproducible initialisation of a {@link Network}'s parameters and state.
 *
 * <p>Reproducibility: one {@link SplittableRandom} of the seed is split once per named tensor, in network
 * (torchvision state-dict) order, whether or not that tensor draws anything; so the draws of a tensor depend only
 * on the seed and its position, and appending layers does not shift earlier layers' values. Values are drawn in
 * float64 and rounded to the network's dtype, so the same seed gives the same bits on every backend.
 *
 * <p>Conv and linear weights draw from the chosen {@link Scheme}; their biases are 0. BatchNorm (an extension
 * beyond the paper) starts as torchvision's: gamma 1, beta 0, running_mean 0, running_var 1.
 */
public final class Initializers {

    public enum Scheme {
        /**
         * Glorot &amp; Bengio (2010) uniform, U(-a, a) with a = sqrt(6 / (fanIn + fanOut)): the default. The paper
         * (§3.1, footnote) notes that after submission it found this works without its warm start.
         */
        GLOROT_UNIFORM,
        /** The paper's §3.1 draw: normal with zero mean and variance 10^-2 (standard deviation 0.1). */
        PAPER_NORMAL
    }

    /** The paper's weight variance 10^-2, so the standard deviation is 0.1. */
    public static final double PAPER_STD = 0.1;

    private Initializers() {
    }

    /** Initialises every parameter and state tensor of {@code net}. */
    public static void initialize(Network net, Scheme scheme, long seed) {
        initialize(net, scheme, seed, key -> true);
    }

    /**
     * Initialises only the tensors whose torchvision key {@code which} accepts; the others are left untouched but
     * still consume their split, so the chosen ones get exactly the values a full initialisation gives them.
     */
    public static void initialize(Network net, Scheme scheme, long seed, Predicate<String> which) {
        if (scheme == null) {
            throw new IllegalArgumentException("initialisation scheme must be one of " + java.util.Arrays.toString(Scheme.values()));
        }
        SplittableRandom root = new SplittableRandom(seed);
        for (ParamStore.Entry e : net.params().entries()) {
            SplittableRandom r = root.split();
            if (!which.test(e.key())) {
                continue;
            }
            ParamSpec s = e.spec();
            switch (s.name()) {
                case "weight" -> {
                    if (s.role() == ParamSpec.Role.WEIGHT) {
                        draw(e.value(), scheme, s, r);
                    } else {
                        net.backend().fill(e.value(), 1.0); // BatchNorm gamma
                    }
                }
                case "running_var" -> net.backend().fill(e.value(), 1.0);
                default -> net.backend().fill(e.value(), 0.0); // biases, BN beta, running_mean
            }
        }
    }

    /** Glorot's bound a = sqrt(6 / (fanIn + fanOut)). */
    public static double glorotBound(int fanIn, int fanOut) {
        return Math.sqrt(6.0 / ((double) fanIn + fanOut));
    }

    private static void draw(Tensor t, Scheme scheme, ParamSpec s, SplittableRandom r) {
        double a = glorotBound(s.fanIn(), s.fanOut());
        Tensor flat = TensorCopy.flat(t);
        long n = t.size();
        int chunk = (int) Math.min(n, TensorCopy.CHUNK);
        float[] hf = t.dtype() == DType.FLOAT32 ? new float[chunk] : null;
        double[] hd = t.dtype() == DType.FLOAT32 ? null : new double[chunk];
        for (long off = 0; off < n; off += chunk) {
            int len = (int) Math.min(chunk, n - off);
            for (int i = 0; i < len; i++) {
                double v = scheme == Scheme.GLOROT_UNIFORM
                        ? (2.0 * r.nextDouble() - 1.0) * a
                        : r.nextGaussian() * PAPER_STD;
                if (hf != null) {
                    hf[i] = (float) v;
                } else {
                    hd[i] = v;
                }
            }
            Tensor view = flat.view(off, Shape.of(len));
            if (hf != null) {
                t.backend().copyIn(hf, 0, view);
            } else {
                t.backend().copyIn(hd, 0, view);
            }
        }
    }
}
