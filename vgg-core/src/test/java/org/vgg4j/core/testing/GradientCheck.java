package org.vgg4j.core.testing;

import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;

import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Test helper: central-difference derivatives of a scalar loss with respect to elements of a tensor.
 *
 * <p>dL/dt[i] ~ (L(t[i] + eps) - L(t[i] - eps)) / (2 eps), truncation error O(eps^2), rounding error about
 * ulp(L)/eps. In float64 with eps ~1e-6 both are ~1e-10 relative for well-scaled losses, so an analytic gradient
 * must agree to ~1e-6 relative; use FLOAT64 tensors (in float32 the rounding term alone is ~1e-2).
 *
 * <p>The loss is evaluated by the caller's {@link DoubleSupplier}, which must recompute everything from the
 * CURRENT contents of the tensor (re-copy inputs that an in-place layer overwrote, reset dropout counters, ...).
 * The perturbed element is restored to its exact original value afterwards.
 */
public final class GradientCheck {
    private GradientCheck() {
    }

    /** Numerical dL/dt at the given element indices of t. */
    public static double[] numeric(Tensor t, int[] indices, double eps, DoubleSupplier loss) {
        double[] g = new double[indices.length];
        double[] one = new double[1];
        for (int j = 0; j < indices.length; j++) {
            Tensor element = t.view(indices[j], Shape.of(1));
            t.backend().copyOut(element, one, 0);
            double original = one[0];
            one[0] = original + eps;
            t.backend().copyIn(one, 0, element);
            double plus = loss.getAsDouble();
            one[0] = original - eps;
            t.backend().copyIn(one, 0, element);
            double minus = loss.getAsDouble();
            one[0] = original;
            t.backend().copyIn(one, 0, element);
            g[j] = (plus - minus) / (2 * eps);
        }
        return g;
    }

    /** Every index of a tensor of {@code size} elements. */
    public static int[] all(long size) {
        int[] idx = new int[Math.toIntExact(size)];
        for (int i = 0; i < idx.length; i++) {
            idx[i] = i;
        }
        return idx;
    }

    /**
     * Up to {@code count} distinct indices in [0, size), reproducible from seed; always includes the first and the
     * last element (where off-by-one errors in views and borders show).
     */
    public static int[] sample(long size, int count, long seed) {
        int n = Math.toIntExact(size);
        if (count <= 0) {
            return new int[0];
        }
        if (count >= n) {
            return all(n);
        }
        int[] pool = all(n);
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] idx = new int[count];
        idx[0] = 0;
        idx[1 % count] = n - 1;
        // partial Fisher-Yates over the middle elements for the rest
        int lo = 1;
        int hi = n - 1; // exclusive: [1, n-1) holds the interior indices
        for (int j = 2; j < count; j++) {
            int pick = lo + rnd.nextInt(hi - lo);
            idx[j] = pool[pick];
            pool[pick] = pool[lo];
            lo++;
        }
        return idx;
    }

    /**
     * Indices of the {@code count} elements of largest magnitude in {@code g}: add them to a random sample so a
     * check of a sparse gradient (dead ReLUs, dropped units) is sure to include elements that carry signal.
     */
    public static int[] largest(double[] g, int count) {
        return java.util.stream.IntStream.range(0, g.length).boxed()
                .sorted((a, b) -> Double.compare(Math.abs(g[b]), Math.abs(g[a])))
                .limit(count).mapToInt(Integer::intValue).toArray();
    }

    /** The indices of a followed by those of b (a repeated index is merely checked twice). */
    public static int[] concat(int[] a, int[] b) {
        int[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** analytic[indices[j]] for each j: the analytic gradient at the sampled elements. */
    public static double[] at(double[] analytic, int[] indices) {
        double[] v = new double[indices.length];
        for (int j = 0; j < indices.length; j++) {
            v[j] = analytic[indices[j]];
        }
        return v;
    }
}
