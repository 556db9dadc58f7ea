package org.vgg4j.core.testing;

import java.util.SplittableRandom;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Test helper: seeded random host arrays and tensors, and reading a tensor back as doubles.
 *
 * <p>Is: the one way tests of every backend make inputs, so a parity test can feed the SAME values to two
 * backends (draw the host array once, {@link #of} it on each). Is not: an initialiser for real training.
 */
public final class TestTensors {
    private TestTensors() {
    }

    /** n values uniform in [lo, hi), reproducible from {@code seed}. */
    public static double[] uniform(long seed, int n, double lo, double hi) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = lo + (hi - lo) * rnd.nextDouble();
        }
        return v;
    }

    /**
     * n values uniform in [lo, hi) whose magnitude is at least {@code gap}: for inputs of a ReLU in a gradient
     * check, so no central difference straddles the kink at 0.
     */
    public static double[] awayFromZero(long seed, int n, double lo, double hi, double gap) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            double x;
            do {
                x = lo + (hi - lo) * rnd.nextDouble();
            } while (Math.abs(x) < gap);
            v[i] = x;
        }
        return v;
    }

    /**
     * A random permutation of n values spaced {@code step} apart, centred on 0: distinct inputs for a max-pool
     * gradient check (no ties, and no two values closer than step).
     */
    public static double[] distinct(long seed, int n, double step) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = (i - n / 2.0) * step;
        }
        for (int i = n - 1; i > 0; i--) { // Fisher-Yates
            int j = rnd.nextInt(i + 1);
            double t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
        return v;
    }

    /** A new tensor of {@code shape} holding {@code values} (converted to dtype). */
    public static Tensor of(Backend backend, DType dtype, Shape shape, double... values) {
        if (values.length != shape.size()) {
            throw new IllegalArgumentException(values.length + " values for shape " + shape + " (" + shape.size() + " elements)");
        }
        Tensor t = backend.allocate(dtype, shape);
        backend.copyIn(values, 0, t);
        return t;
    }

    /** A new tensor of uniform values in [lo, hi). */
    public static Tensor random(Backend backend, DType dtype, Shape shape, long seed, double lo, double hi) {
        return of(backend, dtype, shape, uniform(seed, Math.toIntExact(shape.size()), lo, hi));
    }

    /** The tensor's elements as floats, in row-major order. */
    public static float[] floats(Tensor t) {
        float[] v = new float[Math.toIntExact(t.size())];
        t.backend().copyOut(t, v, 0);
        return v;
    }

    /** The tensor's elements as doubles, in row-major order. */
    public static double[] toArray(Tensor t) {
        double[] v = new double[Math.toIntExact(t.size())];
        t.backend().copyOut(t, v, 0);
        return v;
    }

    /** sum of a[i] * b[i]. */
    public static double dot(double[] a, double[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("dot of lengths " + a.length + " and " + b.length);
        }
        double s = 0.0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }
}
