package org.vgg4j.data;

/**
 * JFIF YCbCr to RGB (ITU-R BT.601 full range: R = Y + 1.402 (Cr-128), G = Y - 0.344136 (Cb-128) - 0.714136 (Cr-128),
 * B = Y + 1.772 (Cb-128)), in 16-bit fixed point with rounding and clamping, the way JPEG decoders do it.
 * Why here: the JDK's reader returns JPEG pixels far faster as raw YCbCr (readRaster) than as an RGB
 * BufferedImage, and converting only the pixels a crop needs is cheaper still (see Resampler).
 */
final class YCbCr {
    private static final int[] CR_R = new int[256]; // Cr -> R offset (integer)
    private static final int[] CB_B = new int[256]; // Cb -> B offset (integer)
    private static final int[] CR_G = new int[256]; // Cr -> G offset, fixed point 16
    private static final int[] CB_G = new int[256]; // Cb -> G offset, fixed point 16, with the rounding half

    /** clamp(v) as a float for v in [-256, 511], indexed v + 256: a load instead of a branchy int-to-float. */
    static final float[] CLAMPED = new float[768];

    static {
        for (int v = -256; v < 512; v++) {
            CLAMPED[v + 256] = Math.max(0, Math.min(255, v));
        }
        for (int i = 0; i < 256; i++) {
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
