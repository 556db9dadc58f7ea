package org.vgg4j.core.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Test helper: closeness with a relative AND an absolute tolerance, |expected - actual| <= atol + rtol * max(|e|,
 * |a|). The absolute part covers values that should be 0 (where a relative error is meaningless), the relative
 * part covers everything else. A failure names the element, both values and the error.
 *
 * <p>Is not: a way to make a test pass; pick rtol from the arithmetic (float64 gradient checks ~1e-6, float32
 * parity ~1e-5..1e-4) and atol from the size of the values involved.
 */
public final class Approx {
    private Approx() {
    }

    public static boolean close(double expected, double actual, double rtol, double atol) {
        if (Double.isNaN(expected) || Double.isNaN(actual)) {
            return false;
        }
        if (expected == actual) {
            return true; // also equal infinities
        }
        return Math.abs(expected - actual) <= atol + rtol * Math.max(Math.abs(expected), Math.abs(actual));
    }

    public static void assertClose(double expected, double actual, double rtol, double atol, String what) {
        if (!close(expected, actual, rtol, atol)) {
            fail(what + ": expected " + expected + ", got " + actual + " (error " + Math.abs(expected - actual)
                    + ", rtol " + rtol + ", atol " + atol + ")");
        }
    }

    public static void assertClose(double[] expected, double[] actual, double rtol, double atol, String what) {
        if (expected.length != actual.length) {
            fail(what + ": expected " + expected.length + " values, got " + actual.length);
        }
        int bad = 0;
        int first = -1;
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            if (!close(expected[i], actual[i], rtol, atol)) {
                if (first < 0) {
                    first = i;
                }
                bad++;
                worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
            }
        }
        if (bad > 0) {
            fail(what + ": " + bad + " of " + expected.length + " values differ; first at [" + first + "]: expected "
                    + expected[first] + ", got " + actual[first] + "; worst error " + worst + " (rtol " + rtol
                    + ", atol " + atol + ")");
        }
    }

    /**
     * The same raw float bits, element by element (NaN payloads and the sign of zero included): for a result that
     * must be the other's bit for bit. {@code want} null: {@code got} must be null too.
     */
    public static void assertSameBits(float[] want, float[] got, String what) {
        if (want == null) {
            assertEquals(null, got, what);
            return;
        }
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            int w = Float.floatToRawIntBits(want[i]);
            int g = Float.floatToRawIntBits(got[i]);
            if (w != g) {
                fail(what + ": element " + i + " is " + got[i] + " (bits " + Integer.toHexString(g) + "), expected "
                        + want[i] + " (bits " + Integer.toHexString(w) + ")");
            }
        }
    }

    /** Exact equality, element by element (for results that must be bit-identical). */
    public static void assertExact(double[] expected, double[] actual, String what) {
        assertClose(expected, actual, 0.0, 0.0, what);
    }
}
