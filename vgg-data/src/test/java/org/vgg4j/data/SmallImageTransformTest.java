package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

class SmallImageTransformTest {

    /** A 3x2 image (W=3, H=2) with distinct grey values 10, 20, ..., 60 row by row. */
    private static RgbImage tiny() {
        byte[] px = new byte[3 * 2 * 3];
        for (int i = 0; i < 6; i++) {
            for (int c = 0; c < 3; c++) {
                px[i * 3 + c] = (byte) (10 * (i + 1));
            }
        }
        return new RgbImage(3, 2, px);
    }

    @Test
    void testViewCentresTheImageOnABlackCanvas() {
        SmallImageTransform t = SmallImageTransform.grey(5, 0, false, 0.5, 0.25);
        float[] out = new float[3 * 25];
        t.apply(tiny(), new SplittableRandom(1), null, out, 0);
        float black = (float) (-0.5 / 0.25);
        // canvas 5x5, image 3 wide 2 high at column (5-3)/2 = 1, row (5-2)/2 = 1
        for (int c = 0; c < 3; c++) {
            assertEquals(black, out[c * 25], 1e-6);
            assertEquals((10 / 255.0 - 0.5) / 0.25, out[c * 25 + 1 * 5 + 1], 1e-6);
            assertEquals((60 / 255.0 - 0.5) / 0.25, out[c * 25 + 2 * 5 + 3], 1e-6);
            assertEquals(black, out[c * 25 + 2 * 5 + 4], 1e-6);
            assertEquals(black, out[c * 25 + 3 * 5 + 2], 1e-6);
        }
    }

    @Test
    void shiftAndMirrorFollowTheDrawsInOrder() {
        SmallImageTransform t = SmallImageTransform.grey(5, 2, true, 0, 1);
        for (long seed = 0; seed < 20; seed++) {
            SplittableRandom mine = new SplittableRandom(seed);
            int dx = mine.nextInt(5) - 2;
            int dy = mine.nextInt(5) - 2;
            boolean mirror = mine.nextBoolean();
            float[] out = new float[75];
            t.apply(tiny(), new SplittableRandom(seed), null, out, 0);
            int nonBlack = 0;
            for (int y = 0; y < 5; y++) {
                for (int x = 0; x < 5; x++) {
                    int sx = x - (1 + dx);
                    int sy = y - (1 + dy);
                    if (mirror) {
                        sx = 2 - sx;
                    }
                    double want = sx >= 0 && sx < 3 && sy >= 0 && sy < 2 ? 10 * (sy * 3 + sx + 1) / 255.0 : 0;
                    assertEquals(want, out[50 + y * 5 + x], 1e-6, "seed " + seed + " at " + x + "," + y);
                    nonBlack += want > 0 ? 1 : 0;
                }
            }
            assertTrue(nonBlack <= 6);
        }
    }
}
