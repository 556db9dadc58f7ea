package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * The YCbCr-to-RGB conversions agree on every input, bit for bit: the table one behind {@link RgbImage#pixels()}
 * (bytes, checked against the JDK's RGB decode in ImageDecoderTest), its float twin (the definition the Resampler
 * used to call), and the vectorisable planar one the Resampler calls now.
 * Also anchors the tables to the JFIF formula at a few points computed by hand.
 */
class YCbCrTest {
    @Test
    void floatAndByteConversionsAgreeOnAllInputs() {
        byte[] ycc = new byte[3 * 256 * 256]; // one Y value at a time: (Cb, Cr) all pairs
        float[] f = new float[ycc.length];
        for (int y = 0; y < 256; y++) {
            for (int i = 0; i < 256 * 256; i++) {
                ycc[3 * i] = (byte) y;
                ycc[3 * i + 1] = (byte) (i >> 8);
                ycc[3 * i + 2] = (byte) i;
            }
            byte[] rgb = YCbCr.toRgb(ycc);
            YCbCr.toRgbFloats(ycc, 0, 256 * 256, f, 0);
            for (int k = 0; k < rgb.length; k++) {
                if (f[k] != (rgb[k] & 0xFF)) {
                    assertEquals(rgb[k] & 0xFF, f[k], "Y " + y + " Cb " + ((k / 3) >> 8) + " Cr " + ((k / 3) & 0xFF)
                            + " channel " + k % 3);
                }
            }
        }
    }

    @Test
    void vectorisablePlanarConversionEqualsTheTablesOnAllInputs() {
        int n = 256 * 256;
        byte[] ycc = new byte[3 * n + 3]; // one Y value at a time: (Cb, Cr) all pairs, after one pixel of offset
        float[] ref = new float[3 * n];
        float[][] planes = {new float[n], new float[n], new float[n]};
        float[][] scratch = {new float[n], new float[n], new float[n]};
        for (int y = 0; y < 256; y++) {
            for (int i = 0; i < n; i++) {
                ycc[3 + 3 * i] = (byte) y;
                ycc[3 + 3 * i + 1] = (byte) (i >> 8);
                ycc[3 + 3 * i + 2] = (byte) i;
            }
            YCbCr.toRgbFloats(ycc, 1, n, ref, 0);
            YCbCr.toRgbPlanes(ycc, 1, n, planes[0], planes[1], planes[2], scratch[0], scratch[1], scratch[2]);
            for (int i = 0; i < n; i++) {
                for (int c = 0; c < 3; c++) {
                    float p = planes[c][i];
                    if (Float.floatToRawIntBits(p) != Float.floatToRawIntBits(ref[3 * i + c])) {
                        assertEquals(ref[3 * i + c], p, "Y " + y + " Cb " + (i >> 8) + " Cr " + (i & 0xFF) + " channel " + c);
                        assertEquals(Float.floatToRawIntBits(ref[3 * i + c]), Float.floatToRawIntBits(p), "sign of zero");
                    }
                }
            }
        }
        // a short odd run from the middle of the source fills only the first 7 of each plane
        float[][] out = {new float[9], new float[9], new float[9]};
        for (float[] o : out) {
            java.util.Arrays.fill(o, -1f);
        }
        YCbCr.toRgbPlanes(ycc, 100, 7, out[0], out[1], out[2], scratch[0], scratch[1], scratch[2]);
        YCbCr.toRgbFloats(ycc, 100, 7, ref, 0);
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < 7; i++) {
                assertEquals(ref[3 * i + c], out[c][i]);
            }
            assertEquals(-1f, out[c][7]);
        }
    }

    @Test
    void tablesFollowTheJfifFormula() {
        // (Y, Cb, Cr) = (100, 3, 253): R = 100 + 1.402*125 = 275.25 -> 255; G = 100 - 0.344136*(-125) - 0.714136*125
        // = 53.73 -> 54; B = 100 + 1.772*(-125) = -121.5 -> 0. And (128, 200, 60): R = 128 - 95.34 = 32.66 -> 33,
        // G = 128 - 24.78 + 48.56 = 151.78 -> 152, B = 128 + 127.58 = 255.58 -> 255.
        byte[] rgb = YCbCr.toRgb(new byte[] {100, 3, (byte) 253, (byte) 128, (byte) 200, 60});
        int[] want = {255, 54, 0, 33, 152, 255};
        for (int k = 0; k < 6; k++) {
            assertEquals(want[k], rgb[k] & 0xFF, "sample " + k);
        }
    }
}
