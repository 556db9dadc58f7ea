package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link F32BatchNorm}'s four passes against sums in double written out here, at non-zero offsets of direct
 * buffers, on every way {@link F32BatchNorm.Layout} cuts a shape: planes larger than {@link F32Loops#BLOCK} and
 * than {@link F32BatchNorm#TILE} (segments, the last shorter), a plane of exactly TILE, several planes to a tile
 * with the last tile shorter (and groups of ten images, the last of one), small planes gathered over groups of
 * images with the last group shorter, 1x1 planes; odd sizes throughout, and channels at mean 1000 with a spread of
 * 0.1.
 */
class F32BatchNormTest {
    private static final int XO = 3;
    private static final int GO = 5;
    private static final int YO = 7;

    static Stream<Arguments> shapes() {
        int[][] shapes = {{2, 2, 67, 71}, {3, 3, 33, 35}, {2, 3, 32, 32}, {21, 13, 9, 11}, {37, 6, 2, 2},
            {9, 5, 3, 5}, {70, 3, 1, 1}, {1, 1, 1, 3}};
        return Stream.of(shapes).flatMap(s -> Stream.of(Arguments.of(s[0], s[1], s[2], s[3], false),
                Arguments.of(s[0], s[1], s[2], s[3], true)));
    }

    @ParameterizedTest(name = "{0}x{1}x{2}x{3} large mean {4}")
    @MethodSource("shapes")
    void passesMatchDoubleSums(int nb, int c, int h, int w, boolean largeMean) {
        int hw = h * w;
        int n = nb * c * hw;
        Random rnd = new Random(n + c);
        float[] xv = new float[n];
        float[] gv = new float[n];
        for (int i = 0; i < n; i++) {
            int ch = (i / hw) % c;
            xv[i] = (float) (largeMean ? 1000 + 0.1 * rnd.nextGaussian() : ch - 2 + rnd.nextGaussian());
            gv[i] = (float) rnd.nextGaussian();
        }
        FloatBuffer x = direct(xv, XO);
        FloatBuffer dy = direct(gv, GO);
        double[] gamma = new double[c];
        double[] beta = new double[c];
        for (int ch = 0; ch < c; ch++) {
            gamma[ch] = 0.5 + rnd.nextDouble();
            beta[ch] = rnd.nextDouble() - 0.5;
        }
        String what = nb + "x" + c + "x" + h + "x" + w + (largeMean ? " at mean 1000" : "");

        // moments: mean and sum of squared deviations, two passes in double
        double[] mean = new double[c];
        double[] sq = new double[c];
        F32BatchNorm.moments(x, XO, nb, c, hw, mean, sq, 2);
        double[] refMean = new double[c];
        double[] refSq = new double[c];
        long m = (long) nb * hw;
        for (int i = 0; i < n; i++) {
            refMean[(i / hw) % c] += xv[i];
        }
        for (int ch = 0; ch < c; ch++) {
            refMean[ch] /= m;
        }
        for (int i = 0; i < n; i++) {
            double d = xv[i] - refMean[(i / hw) % c];
            refSq[(i / hw) % c] += d * d;
        }
        double[] inv = new double[c];
        for (int ch = 0; ch < c; ch++) {
            assertEquals(refMean[ch], mean[ch], 1e-12 * Math.abs(refMean[ch]) + 1e-12, what + " mean " + ch);
            assertEquals(refSq[ch], sq[ch], 1e-6 * refSq[ch] + 1e-12, what + " squared deviations " + ch);
            inv[ch] = 1 / Math.sqrt(refSq[ch] / m + 1e-5);
        }

        // normalise, with and without the ReLU, written at an offset; the floats around it untouched
        for (boolean relu : new boolean[] {false, true}) {
            FloatBuffer y = direct(new float[n], YO);
            y.put(YO - 1, 42f).put(YO + n, 42f);
            F32BatchNorm.normalise(x, XO, y, YO, nb, c, hw, refMean, inv, gamma, beta, relu, 2);
            for (int i = 0; i < n; i++) {
                int ch = (i / hw) % c;
                double ref = gamma[ch] * (xv[i] - refMean[ch]) * inv[ch] + beta[ch];
                ref = relu ? Math.max(ref, 0) : ref;
                assertEquals(ref, y.get(YO + i), 1e-4 * (1 + Math.abs(ref)), what + " y " + i + " relu " + relu);
            }
            assertEquals(42f, y.get(YO - 1), what + " before y");
            assertEquals(42f, y.get(YO + n), what + " after y");
        }

        // gradient sums and input gradient
        double[] sumDy = new double[c];
        double[] sumDyXhat = new double[c];
        F32BatchNorm.gradientSums(x, XO, dy, GO, nb, c, hw, refMean, inv, sumDy, sumDyXhat, 2);
        double[] refDy = new double[c];
        double[] refDyXhat = new double[c];
        double[] scaleDyXhat = new double[c]; // sum of |dy * xhat|: the scale of the sum's rounding
        for (int i = 0; i < n; i++) {
            int ch = (i / hw) % c;
            double t = gv[i] * (xv[i] - refMean[ch]) * inv[ch];
            refDy[ch] += gv[i];
            refDyXhat[ch] += t;
            scaleDyXhat[ch] += Math.abs(t);
        }
        for (int ch = 0; ch < c; ch++) {
            assertEquals(refDy[ch], sumDy[ch], 1e-9 * m, what + " sum dy " + ch);
            assertEquals(refDyXhat[ch], sumDyXhat[ch], 1e-5 * scaleDyXhat[ch] + 1e-9, what + " sum dy xhat " + ch);
        }
        FloatBuffer dx = direct(new float[n], YO);
        F32BatchNorm.inputGradient(x, XO, dy, GO, dx, YO, nb, c, hw, refMean, inv, gamma, refDy, refDyXhat, 2);
        for (int i = 0; i < n; i++) {
            int ch = (i / hw) % c;
            double xhat = (xv[i] - refMean[ch]) * inv[ch];
            double ref = gamma[ch] * inv[ch] * (gv[i] - refDy[ch] / m - xhat * refDyXhat[ch] / m);
            double tol = 1e-4 * gamma[ch] * inv[ch] * (1 + Math.abs(gv[i]) + Math.abs(xhat));
            assertEquals(ref, dx.get(YO + i), tol, what + " dx " + i);
        }
    }

    /**
     * The same bits on 1, 2 and 3 threads where the blocks make two parts or more: small planes gathered over
     * groups (8x8 in groups of 16, 2x2 in groups of 32) and planes of two segments, one image a group.
     */
    @ParameterizedTest(name = "{0}x{1}x{2}x{3}")
    @MethodSource("threadShapes")
    void sameBitsOnOneTwoAndThreeThreads(int nb, int c, int h, int w) {
        int hw = h * w;
        int n = nb * c * hw;
        Random rnd = new Random(n);
        float[] xv = new float[n];
        float[] gv = new float[n];
        for (int i = 0; i < n; i++) {
            xv[i] = (float) (3 + rnd.nextGaussian());
            gv[i] = (float) rnd.nextGaussian();
        }
        F32BatchNorm.Layout layout = F32BatchNorm.Layout.of(nb, c, hw);
        assertTrue(layout.blocks() / Math.max(1, (1 << 16) / (layout.group() * layout.length(0))) >= 2,
                "the shape must make two parts or more: " + layout);
        double[][] one = outputs(xv, gv, nb, c, hw, 1);
        for (int threads = 2; threads <= 3; threads++) {
            double[][] more = outputs(xv, gv, nb, c, hw, threads);
            for (int k = 0; k < one.length; k++) {
                assertArrayEquals(one[k], more[k], "output " + k + " on " + threads + " threads");
            }
        }
    }

    /** How the Fashion-MNIST network's planes are cut: the tiles, groups and pieces the class javadoc names. */
    @Test
    void layoutsOfTheFashionNetworksPlanes() {
        // 32x32: one plane a tile, one image a group: blocks in memory order
        assertEquals(new F32BatchNorm.Layout(128, 16, 1024, 1, 1, 16, 1, 128), F32BatchNorm.Layout.of(128, 16, 1024));
        // 16x16: four planes a tile, four images a group
        assertEquals(new F32BatchNorm.Layout(128, 32, 256, 1, 4, 8, 4, 32), F32BatchNorm.Layout.of(128, 32, 256));
        // 8x8: sixteen planes a tile, sixteen images a group
        assertEquals(new F32BatchNorm.Layout(128, 64, 64, 1, 16, 4, 16, 8), F32BatchNorm.Layout.of(128, 64, 64));
        // 2x2: a whole image a tile, 32 images a group: 128 values a piece
        F32BatchNorm.Layout small = F32BatchNorm.Layout.of(128, 128, 4);
        assertEquals(new F32BatchNorm.Layout(128, 128, 4, 1, 128, 1, 32, 4), small);
        assertEquals(512, small.length(0));
        assertEquals(128, small.count(3, 0));
        // 67x71: five segments a plane, the last of 4757 - 4 * 1024 = 661 positions
        F32BatchNorm.Layout big = F32BatchNorm.Layout.of(3, 2, 67 * 71);
        assertEquals(5, big.segs());
        assertEquals(661, big.length(4));
        assertEquals(67 * 71 + 4 * 1024, big.start(9));
        assertEquals((2 * 2 + 1) * 5 + 4, big.slot(2, 9, 0));
    }

    static Stream<Arguments> threadShapes() {
        return Stream.of(Arguments.of(64, 64, 8, 8), Arguments.of(512, 64, 2, 2), Arguments.of(9, 16, 33, 35));
    }

    /** mean, sq, y, sumDy, sumDyXhat, dx of F32BatchNorm on threads, as doubles. */
    private static double[][] outputs(float[] xv, float[] gv, int nb, int c, int hw, int threads) {
        int n = xv.length;
        FloatBuffer x = direct(xv, XO);
        FloatBuffer dy = direct(gv, GO);
        double[] mean = new double[c];
        double[] sq = new double[c];
        F32BatchNorm.moments(x, XO, nb, c, hw, mean, sq, threads);
        double[] inv = new double[c];
        double[] gamma = new double[c];
        double[] beta = new double[c];
        for (int ch = 0; ch < c; ch++) {
            inv[ch] = 1 / Math.sqrt(sq[ch] / ((long) nb * hw) + 1e-5);
            gamma[ch] = 1 + 0.01 * ch;
            beta[ch] = 0.1 * ch;
        }
        FloatBuffer y = direct(new float[n], YO);
        F32BatchNorm.normalise(x, XO, y, YO, nb, c, hw, mean, inv, gamma, beta, true, threads);
        double[] sumDy = new double[c];
        double[] sumDyXhat = new double[c];
        F32BatchNorm.gradientSums(x, XO, dy, GO, nb, c, hw, mean, inv, sumDy, sumDyXhat, threads);
        FloatBuffer dx = direct(new float[n], YO);
        F32BatchNorm.inputGradient(x, XO, dy, GO, dx, YO, nb, c, hw, mean, inv, gamma, sumDy, sumDyXhat, threads);
        return new double[][] {mean, sq, values(y, n), sumDy, sumDyXhat, values(dx, n)};
    }

    /** A direct buffer holding v from offset on, with one float on either side. */
    private static FloatBuffer direct(float[] v, int offset) {
        FloatBuffer b = ByteBuffer.allocateDirect((v.length + offset + 1) * Float.BYTES).order(ByteOrder.nativeOrder())
                .asFloatBuffer();
        b.put(offset, v);
        return b;
    }

    private static double[] values(FloatBuffer b, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = b.get(YO + i);
        }
        return v;
    }
}
