package org.vgg4j.cuda;

import static org.vgg4j.core.testing.TestTensors.toArray;

import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.testing.Approx;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * Test helper: runs one op on the reference backend and on the emulated CUDA device from the same host inputs and
 * compares the outputs. Is: the harness of every kernel parity test. Is not: a tolerance policy (each test picks
 * its own from the arithmetic involved).
 *
 * <p>The device side is the emulated device by default; with {@code -D}{@value #DRIVER_PROPERTY}{@code =jcuda} it is
 * a real GPU (scripts/gpu-check.sh runs the same suite that way, the classes tagged {@value #DEVICE_TAG}). When the
 * chosen device cannot run here (emulator not built: no g++ at build time or not Linux) the tests using it are
 * SKIPPED with that reason outside CI and FAIL in CI; a GPU asked for and missing always fails.
 */
final class Parity implements AutoCloseable {
    /** An op under test: builds its inputs on {@code b} (same host values for both), runs, returns its outputs. */
    interface Op {
        Tensor[] run(Backend b);
    }

    static final String DRIVER_PROPERTY = "vgg4j.cuda.test.driver";
    /** Tag of the test classes that run on whichever device {@link #onGpu} selects: the suite a GPU runs. */
    static final String DEVICE_TAG = "device";
    /** Tag of the test classes that need the emulated device itself (several devices, broken kernels, ...). */
    static final String EMULATOR_TAG = "emulator";

    final Backend ref = Backends.create("reference");
    final CudaBackend dev;

    Parity(MathMode math) {
        dev = onGpu()
                ? new CudaBackend("cuda", JCudaDriver.open(Integer.getInteger("vgg4j.cuda.device", 0)), math)
                : new CudaBackend("cuda-emulated", EmulatedDriver.open(0), math);
    }

    /**
     * A device backend in {@code math} whose driver is {@code wrap} of the device's (a driver that records the
     * launches, say), the tensor-core path allowed or not ({@link CudaBackend#tensorCores}).
     */
    Parity(MathMode math, boolean tensorCores, UnaryOperator<Driver> wrap) {
        Driver d = onGpu() ? JCudaDriver.open(Integer.getInteger("vgg4j.cuda.device", 0)) : EmulatedDriver.open(0);
        dev = new CudaBackend(onGpu() ? "cuda" : "cuda-emulated", wrap.apply(d), math, tensorCores);
    }

    /** Whether the parity tests run against a real GPU instead of the emulated device. */
    static boolean onGpu() {
        return "jcuda".equals(System.getProperty(DRIVER_PROPERTY));
    }

    Parity() {
        this(MathMode.FP32);
    }

    /** Skips the calling test, with the reason, when the device the parity tests use is not available. */
    static void assumeDevice() {
        if (onGpu()) {
            // the GPU was asked for explicitly (gpu-check.sh): its absence is a failure, not a skip
            String why = new CudaBackendProvider().unavailableReason();
            if (why != null) {
                Assertions.fail("-D" + DRIVER_PROPERTY + "=jcuda but the CUDA backend cannot run: " + why);
            }
        } else {
            assumeEmulator();
        }
    }

    /**
     * Skips the calling test, with the reason, when the emulated device is not available -- outside CI. In CI
     * (environment CI=true, as .ci/run runs) a missing emulator FAILS the test: .ci/run installs g++, so a missing
     * emulator there is a broken build, not a machine without a compiler, and the parity tests must not pass
     * silently as skips.
     */
    static void assumeEmulator() {
        String why = EmulatedDriver.unavailableReason();
        if (why != null && inCi()) {
            Assertions.fail("emulated CUDA device not available in CI (CI=true): " + why);
        }
        Assumptions.assumeTrue(why == null, () -> "emulated CUDA device not available: " + why);
    }

    /** Whether this runs in CI: the environment variable CI is "true" (.ci/run's environment). */
    static boolean inCi() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    /** Presents {@code n} emulated devices from now on; returns the previous setting for {@link #restoreEmulatedDevices}. */
    static String useEmulatedDevices(int n) {
        String saved = System.getProperty(EmulatedDriver.DEVICES_PROPERTY);
        System.setProperty(EmulatedDriver.DEVICES_PROPERTY, Integer.toString(n));
        return saved;
    }

    static void restoreEmulatedDevices(String saved) {
        if (saved == null) {
            System.clearProperty(EmulatedDriver.DEVICES_PROPERTY);
        } else {
            System.setProperty(EmulatedDriver.DEVICES_PROPERTY, saved);
        }
    }

    /** outputs[backend][output][element]: backend 0 is the reference, 1 the emulated device. */
    double[][][] run(Op op) {
        Backend[] bs = {ref, dev};
        double[][][] out = new double[2][][];
        for (int i = 0; i < 2; i++) {
            Tensor[] ts = op.run(bs[i]);
            out[i] = new double[ts.length][];
            for (int j = 0; j < ts.length; j++) {
                out[i][j] = toArray(ts[j]);
            }
        }
        return out;
    }

    /** Runs op on both backends and asserts every output close (rtol, atol); returns the device's outputs. */
    double[][] assertParity(Op op, double rtol, double atol, String what) {
        double[][][] out = run(op);
        for (int j = 0; j < out[0].length; j++) {
            Approx.assertClose(out[0][j], out[1][j], rtol, atol, what + ", output " + j);
        }
        return out[1];
    }

    void assertExact(Op op, String what) {
        assertParity(op, 0.0, 0.0, what);
    }

    static Tensor t(Backend b, Shape s, double[] v) {
        return TestTensors.of(b, DType.FLOAT32, s, v);
    }

    /** n values uniform in [lo, hi) already rounded to float32, so both backends see the same inputs. */
    static double[] floats(long seed, int n, double lo, double hi) {
        double[] v = TestTensors.uniform(seed, n, lo, hi);
        for (int i = 0; i < n; i++) {
            v[i] = (float) v[i];
        }
        return v;
    }

    /** n small integers in [lo, hi]: products and sums of them are exact in float32. */
    static double[] ints(long seed, int n, int lo, int hi) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = lo + r.nextInt(hi - lo + 1);
        }
        return v;
    }

    /** n floats copied from the device buffer p. */
    static float[] download(Driver d, long p, int n) {
        float[] out = new float[n];
        d.copyOut(p, out, 0, n);
        return out;
    }

    static int size(Shape s) {
        return Math.toIntExact(s.size());
    }

    @Override
    public void close() {
        dev.close();
    }
}
