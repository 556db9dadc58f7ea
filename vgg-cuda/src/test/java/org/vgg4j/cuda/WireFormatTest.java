package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The 16-bit wire formats of collective.cu (f32_to_wire, wire_to_f32) on the emulated device: every binary16 and
 * bfloat16 bit pattern decodes to the value IEEE 754 defines (computed here in double from sign, exponent and
 * fraction: an independent formulation), every finite pattern survives decode-encode, and encoding a float gives
 * the nearest pattern, ties to the even one, overflow to infinity -- checked on random floats of every magnitude
 * and on constructed midpoints.
 */
@Tag(Parity.EMULATOR_TAG)
class WireFormatTest {
    private static EmulatedDriver d;

    @BeforeAll
    static void open() {
        Parity.assumeEmulator();
        d = EmulatedDriver.open(0);
    }

    @AfterAll
    static void close() {
        if (d != null) {
            d.close();
        }
    }

    /** binary16 by its definition. */
    private static double f16(int h) {
        int s = h >> 15 & 1;
        int e = h >> 10 & 31;
        int m = h & 1023;
        double v = e == 0 ? m * Math.pow(2, -24) : e == 31 ? (m == 0 ? Double.POSITIVE_INFINITY : Double.NaN)
                : (1 + m / 1024.0) * Math.pow(2, e - 15);
        return s == 1 ? -v : v;
    }

    /** bfloat16 by its definition (float32's exponent, 7 fraction bits). */
    private static double bf16(int h) {
        int s = h >> 15 & 1;
        int e = h >> 7 & 255;
        int m = h & 127;
        double v = e == 0 ? m * Math.pow(2, -133) : e == 255 ? (m == 0 ? Double.POSITIVE_INFINITY : Double.NaN)
                : (1 + m / 128.0) * Math.pow(2, e - 127);
        return s == 1 ? -v : v;
    }

    private static double decode(int fmt, int h) {
        return fmt == 0 ? bf16(h) : f16(h);
    }

    private static float[] toF32(int[] wire, int fmt) {
        int n = wire.length;
        int[] packed = new int[(n + 1) / 2];
        for (int i = 0; i < n; i++) {
            packed[i / 2] |= (wire[i] & 0xffff) << (16 * (i % 2));
        }
        long w = d.malloc(4L * packed.length);
        long x = d.malloc(4L * n);
        try {
            d.copyIn(packed, 0, w, packed.length);
            d.launch(d.function("collective", "wire_to_f32"), (n + 255) / 256, 1, 1, 256,
                    KernelArgs.of().ptr(w).ptr(x).i64(n).i32(fmt));
            float[] out = new float[n];
            d.copyOut(x, out, 0, n);
            return out;
        } finally {
            d.free(w);
            d.free(x);
        }
    }

    private static int[] toWire(float[] v, int fmt) {
        int n = v.length;
        long x = d.malloc(4L * n);
        long w = d.malloc(4L * ((n + 1) / 2));
        try {
            d.copyIn(v, 0, x, n);
            d.launch(d.function("collective", "f32_to_wire"), (n + 255) / 256, 1, 1, 256,
                    KernelArgs.of().ptr(x).ptr(w).i64(n).i32(fmt));
            float[] packed = new float[(n + 1) / 2];
            d.copyOut(w, packed, 0, packed.length);
            int[] out = new int[n];
            for (int i = 0; i < n; i++) {
                out[i] = Float.floatToRawIntBits(packed[i / 2]) >>> (16 * (i % 2)) & 0xffff;
            }
            return out;
        } finally {
            d.free(x);
            d.free(w);
        }
    }

    private static void everyPatternDecodesAndRoundTrips(int fmt) {
        int[] all = new int[65536];
        for (int h = 0; h < all.length; h++) {
            all[h] = h;
        }
        float[] v = toF32(all, fmt);
        for (int h = 0; h < all.length; h++) {
            double want = decode(fmt, h);
            if (Double.isNaN(want)) {
                assertTrue(Float.isNaN(v[h]), "pattern " + Integer.toHexString(h) + " is a NaN");
            } else {
                assertEquals(want, v[h], 0.0, "pattern " + Integer.toHexString(h));
            }
        }
        int[] back = toWire(v, fmt);
        for (int h = 0; h < all.length; h++) {
            if (!Float.isNaN(v[h])) {
                assertEquals(h, back[h], "round trip of pattern " + Integer.toHexString(h));
            } else {
                assertTrue(Double.isNaN(decode(fmt, back[h])), "NaN stays NaN: " + Integer.toHexString(back[h]));
            }
        }
    }

    @Test
    void everyBinary16PatternDecodesAndRoundTrips() {
        everyPatternDecodesAndRoundTrips(1);
    }

    @Test
    void everyBfloat16PatternDecodesAndRoundTrips() {
        everyPatternDecodesAndRoundTrips(0);
    }

    /**
     * The chosen pattern h is the nearest: no pattern of the same sign is closer, and on a tie h is even. Ties are
     * made on purpose (midpoints of adjacent patterns), the rest are random floats over the whole exponent range.
     */
    private static void encodesToTheNearest(int fmt) {
        SplittableRandom rnd = new SplittableRandom(fmt + 1);
        int n = 20000;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            if (i % 4 == 0) { // midpoint of two adjacent finite positive patterns, exact in float
                int h = 1 + rnd.nextInt(fmt == 0 ? 0x7f7f : 0x7bff);
                x[i] = (float) ((decode(fmt, h) + decode(fmt, h - 1)) / 2);
            } else {
                double mag = Math.pow(2, (fmt == 0 ? 250 : 44) * rnd.nextDouble() - (fmt == 0 ? 130 : 27));
                x[i] = (float) ((rnd.nextBoolean() ? 1 : -1) * mag * (1 + rnd.nextDouble()));
            }
        }
        int[] got = toWire(x, fmt);
        double max = fmt == 0 ? bf16(0x7f7f) : 65504;
        for (int i = 0; i < n; i++) {
            int h = got[i];
            double v = decode(fmt, h);
            double xi = x[i];
            String what = "x " + xi + " -> " + Integer.toHexString(h) + " = " + v;
            if (Math.abs(xi) > max) {
                double next = fmt == 0 ? max + Math.pow(2, 127 - 7) / 2 : 65520; // halfway to the next power
                if (Math.abs(xi) >= next) {
                    assertTrue(Double.isInfinite(v) && Math.signum(v) == Math.signum(xi), what);
                    continue;
                }
            }
            assertTrue(Math.signum(v) == Math.signum(xi) || v == 0, what);
            int mag = h & 0x7fff;
            double err = Math.abs(xi - v);
            for (int nb : new int[] {mag - 1, mag + 1}) {
                if (nb < 0 || nb > (fmt == 0 ? 0x7f7f : 0x7bff)) {
                    continue;
                }
                double other = Math.abs(xi - Math.copySign(decode(fmt, nb), xi));
                assertTrue(err < other || err == other && (mag & 1) == 0, what + " but " + Integer.toHexString(nb)
                        + " is as near or nearer");
            }
        }
    }

    @Test
    void binary16EncodingIsNearestTiesToEven() {
        encodesToTheNearest(1);
    }

    @Test
    void bfloat16EncodingIsNearestTiesToEven() {
        encodesToTheNearest(0);
    }
}
