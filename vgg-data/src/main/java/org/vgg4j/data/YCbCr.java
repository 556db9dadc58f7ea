package org.vgg4j.data;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * JFIF YCbCr to RGB (ITU-R BT.601 full range: R = Y + 1.402 (Cr-128), G = Y - 0.344136 (Cb-128) - 0.714136 (Cr-128),
 * B = Y + 1.772 (Cb-128)), in 16-bit fixed point with rounding and clamping, the way JPEG decoders do it.
 * Why here: the JDK's reader returns JPEG pixels far faster as raw YCbCr (readRaster) than as an RGB
 * BufferedImage, and converting only the pixels a crop needs is cheaper still (see Resampler).
 *
 * <p>The tables below are the definition. {@link #toRgbPlanes} computes the same values (all 2^24 inputs, YCbCrTest)
 * with float arithmetic that C2 vectorises: table loads cannot be vectorised by the JDK 17 JIT, nor can byte-to-int or
 * int-to-float conversions, but float multiply, add, min and max over unit-stride arrays can.
 */
final class YCbCr {
    private static final int[] CR_R = new int[256]; // Cr -> R offset (integer)
    private static final int[] CB_B = new int[256]; // Cb -> B offset (integer)
    private static final int[] CR_G = new int[256]; // Cr -> G offset, fixed point 16
    private static final int[] CB_G = new int[256]; // Cb -> G offset, fixed point 16, with the rounding half

    private static final VarHandle INT_LE = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final float[] FLOAT = new float[256];           // b -> (float) b: a load, not a conversion
    private static final float[] FLOAT_MINUS_128 = new float[256]; // b -> (float) (b - 128)

    /** clamp(v) as a float for v in [-256, 511], indexed v + 256: a load instead of a branchy int-to-float. */
    static final float[] CLAMPED = new float[768];

    static {
        for (int v = -256; v < 512; v++) {
            CLAMPED[v + 256] = Math.max(0, Math.min(255, v));
        }
        for (int i = 0; i < 256; i++) {
            FLOAT[i] = i;
            FLOAT_MINUS_128[i] = i - 128;
            int x = i - 128;
            CR_R[i] = (int) Math.floor(1.40200 * x + 0.5);
            CB_B[i] = (int) Math.floor(1.77200 * x + 0.5);
            CR_G[i] = (int) Math.round(-0.71414 * 65536) * x;
            CB_G[i] = (int) Math.round(-0.34414 * 65536) * x + (1 << 15);
        }
    }

    private YCbCr() {
    }

    private static int clamp(int v) {
        return v < 0 ? 0 : (v > 255 ? 255 : v);
    }

    /** Pixels [from, from+n) of an interleaved YCbCr array to interleaved RGB floats at dst[dOff..]. */
    static void toRgbFloats(byte[] src, int from, int n, float[] dst, int dOff) {
        int s = from * 3;
        int d = dOff;
        for (int i = 0; i < n; i++, s += 3, d += 3) {
            int y = src[s] & 0xFF;
            int cb = src[s + 1] & 0xFF;
            int cr = src[s + 2] & 0xFF;
            dst[d] = CLAMPED[y + CR_R[cr] + 256];
            dst[d + 1] = CLAMPED[y + ((CB_G[cb] + CR_G[cr]) >> 16) + 256];
            dst[d + 2] = CLAMPED[y + CB_B[cb] + 256];
        }
    }

    // toRgbPlanes' constants. Each channel's offset is floor((K . x + c) / 2^15) for x = Cb-128 / Cr-128, matching the
    // tables for all 256 (R, B) or 65536 (G) inputs: R and B by an exhaustive search of (K, c) near 1.402 / 1.772 x 2^15
    // (picked mid-range of the c that work), G exactly (the table's G constants are even, so halving them and the
    // rounding constant gives the same floor). In float, q = K . x + c - 16383.5 is a half-integer below 2^23 (exact),
    // q / 2^15 is exact and never a tie, and (t + 1.5 . 2^23) - 1.5 . 2^23 rounds it to the nearest integer, which is
    // floor((K . x + c) / 2^15).
    private static final float KR = 45943f;        // Cr -> R, c = 16384
    private static final float CR = 0.5f;          // 16384 - 16383.5
    private static final float KB = 58064f;        // Cb -> B, c = 16536
    private static final float CB = 152.5f;        // 16536 - 16383.5
    private static final float KGB = -11277f;      // Cb -> G  (the table's -22554 / 2)
    private static final float KGR = -23401f;      // Cr -> G  (the table's -46802 / 2), c = 16384
    private static final float SCALE = 1f / 32768; // 2^-15, exact
    private static final float ROUND = 12582912f;  // 1.5 * 2^23: (t + ROUND) - ROUND rounds t (|t| < 2^22) to an integer

    /**
     * Pixels [from, from+n) of an interleaved YCbCr array as RGB float planes r[0..n), g[0..n), b[0..n), bit for bit
     * {@link #toRgbFloats}' values. {@code y}, {@code cb}, {@code cr} are scratch (n each). Two steps: a scalar pass
     * that only de-interleaves the bytes to floats, then one unit-stride loop per channel, which C2 vectorises.
     * Measured on JDK 17: it does not with three stores in one loop, nor with a store at an offset into an array the
     * loop does not read (hence separate arrays starting at 0): scalar, those are slower than the tables.
     */
    static void toRgbPlanes(byte[] src, int from, int n, float[] r, float[] g, float[] b,
                            float[] y, float[] cb, float[] cr) {
        int s = from * 3;
        int i = 0;
        // Four bytes at a time (one little-endian int load instead of three byte loads) while a fourth byte exists.
        int last = Math.min(n, (src.length - 1 - s) / 3);
        for (; i < last; i++, s += 3) {
            int v = (int) INT_LE.get(src, s);
            y[i] = FLOAT[v & 0xFF];
            cb[i] = FLOAT_MINUS_128[(v >> 8) & 0xFF];
            cr[i] = FLOAT_MINUS_128[(v >> 16) & 0xFF];
        }
        for (; i < n; i++, s += 3) {
            y[i] = src[s] & 0xFF;
            cb[i] = (src[s + 1] & 0xFF) - 128;
            cr[i] = (src[s + 2] & 0xFF) - 128;
        }
        for (int k = 0; k < n; k++) {
            r[k] = clamp(y[k] + (((KR * cr[k] + CR) * SCALE + ROUND) - ROUND));
        }
        for (int k = 0; k < n; k++) {
            g[k] = clamp(y[k] + (((KGB * cb[k] + KGR * cr[k] + CR) * SCALE + ROUND) - ROUND));
        }
        for (int k = 0; k < n; k++) {
            b[k] = clamp(y[k] + (((KB * cb[k] + CB) * SCALE + ROUND) - ROUND));
        }
    }

    /**
     * clamp(v) to [0, 255] for an integer-valued v, exactly (sums of integers and halvings of even numbers, all below
     * 2^10): max(v, 0) = (v + |v|) / 2. Measured faster than Math.min/max, whose NaN and -0 rules cost extra
     * instructions, scalar and vectorised alike; v is never NaN, and 0 comes out as +0 as from the tables.
     */
    private static float clamp(float v) {
        float lo = (v + Math.abs(v)) * 0.5f;         // max(v, 0)
        float d = 255f - lo;
        return 255f - (d + Math.abs(d)) * 0.5f;      // min(lo, 255) = 255 - max(255 - lo, 0)
    }

    /** A whole interleaved YCbCr array as interleaved RGB bytes. */
    static byte[] toRgb(byte[] src) {
        byte[] out = new byte[src.length];
        for (int s = 0; s < src.length; s += 3) {
            int y = src[s] & 0xFF;
            int cb = src[s + 1] & 0xFF;
            int cr = src[s + 2] & 0xFF;
            out[s] = (byte) clamp(y + CR_R[cr]);
            out[s + 1] = (byte) clamp(y + ((CB_G[cb] + CR_G[cr]) >> 16));
            out[s + 2] = (byte) clamp(y + CB_B[cb]);
        }
        return out;
    }
}
