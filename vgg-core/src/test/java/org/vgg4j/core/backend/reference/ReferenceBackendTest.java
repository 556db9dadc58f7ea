package org.vgg4j.core.backend.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.core.testing.Approx.assertClose;
import static org.vgg4j.core.testing.Approx.assertExact;
import static org.vgg4j.core.testing.TestTensors.of;
import static org.vgg4j.core.testing.TestTensors.toArray;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendTensors;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.backend.DropoutRng;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * Unit tests of the reference backend on small inputs whose results are derived by hand in the comments (not by
 * running the code under test). Layer gradients are checked separately, by central differences, in
 * {@code org.vgg4j.core.layers.GradientCheckTest}.
 *
 * <p>Legend: N batch, C in-channels, K out-channels, H/W input, P/Q output, R/S kernel.
 */
final class ReferenceBackendTest {
    private final Backend be = new ReferenceBackend();

    // 1 2 3
    // 4 5 6      x (1,1,3,3)
    // 7 8 9
    private static final double[] X123 = {1, 2, 3, 4, 5, 6, 7, 8, 9};

    @Test
    void providerIsFoundByNameAndSupportsBothTypes() {
        Backend b = Backends.create("reference");
        assertEquals("reference", b.name());
        assertTrue(b.supports(DType.FLOAT32));
        assertTrue(b.supports(DType.FLOAT64));
        assertTrue(Backends.names().contains("reference"));
    }

    // ---------------------------------------------------------------- convolution

    @ParameterizedTest
    @EnumSource(DType.class)
    void conv3x3Pad1PlusKernelWithBias(DType dt) {
        // plus-shaped kernel: each output is its input pixel plus its in-grid 4-neighbours, + bias 10
        Tensor x = of(be, dt, Shape.of(1, 1, 3, 3), X123);
        Tensor w = of(be, dt, Shape.of(1, 1, 3, 3), 0, 1, 0, 1, 1, 1, 0, 1, 0);
        Tensor b = of(be, dt, Shape.of(1), 10);
        Tensor y = be.allocate(dt, Shape.of(1, 1, 3, 3));
        be.conv2dForward(x, w, b, y, 1);
        // (0,0): 1+2+4=7   (0,1): 2+1+3+5=11  (0,2): 3+2+6=11
        // (1,0): 4+1+7+5=17 (1,1): 5+2+8+4+6=25 (1,2): 6+3+9+5=23
        // (2,0): 7+4+8=19  (2,1): 8+5+7+9=29  (2,2): 9+6+8=23
        assertExact(new double[] {17, 21, 21, 27, 35, 33, 29, 39, 33}, toArray(y), "plus kernel + 10");
    }

    @Test
    void convIsCrossCorrelationNotFlipped() {
        // w has a single 1 at (r,s) = (0,0): with pad 1, y[p,q] = x[p-1, q-1] (a shift down-right), which a
        // flipped (true) convolution would turn into a shift up-left.
        Tensor x = of(be, DType.FLOAT64, Shape.of(1, 1, 3, 3), X123);
        Tensor w = of(be, DType.FLOAT64, Shape.of(1, 1, 3, 3), 1, 0, 0, 0, 0, 0, 0, 0, 0);
        Tensor y = be.allocate(DType.FLOAT64, Shape.of(1, 1, 3, 3));
        be.conv2dForward(x, w, null, y, 1);
        assertExact(new double[] {0, 0, 0, 0, 1, 2, 0, 4, 5}, toArray(y), "shift");

        // 'valid' 3x3 with w = [1 2 0; 0 0 0; 0 0 3]: one output, 1*1 + 2*2 + 3*9 = 32
        Tensor w2 = of(be, DType.FLOAT64, Shape.of(1, 1, 3, 3), 1, 2, 0, 0, 0, 0, 0, 0, 3);
        Tensor y2 = be.allocate(DType.FLOAT64, Shape.of(1, 1, 1, 1));
        be.conv2dForward(x, w2, null, y2, 0);
        assertExact(new double[] {32}, toArray(y2), "valid");
    }

    @Test
    void conv1x1MixesChannelsLikeAMatrix() {
        // x (N=2, C=2, 1, 2), w (K=3, C=2, 1, 1): y[n,k,0,j] = sum_c w[k,c] x[n,c,0,j] + b[k]
        Tensor x = of(be, DType.FLOAT32, Shape.of(2, 2, 1, 2), 1, 2, 3, 4, /* n=1 */ 5, 6, 7, 8);
        Tensor w = of(be, DType.FLOAT32, Shape.of(3, 2, 1, 1), 1, 0, 0, 1, 2, -1);
        Tensor b = of(be, DType.FLOAT32, Shape.of(3), 0, 100, -1);
        Tensor y = be.allocate(DType.FLOAT32, Shape.of(2, 3, 1, 2));
        be.conv2dForward(x, w, b, y, 0);
        // n=0: k0 = c0 = (1,2); k1 = c1 + 100 = (103,104); k2 = 2*c0 - c1 - 1 = (2-3-1, 4-4-1) = (-2,-1)
        // n=1: k0 = (5,6); k1 = (107,108); k2 = (10-7-1, 12-8-1) = (2,3)
        assertExact(new double[] {1, 2, 103, 104, -2, -1, 5, 6, 107, 108, 2, 3}, toArray(y), "1x1 conv");
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void convBackwardOfPlusKernelWithUnitGradient(DType dt) {
        Tensor x = of(be, dt, Shape.of(1, 1, 3, 3), X123);
        Tensor w = of(be, dt, Shape.of(1, 1, 3, 3), 0, 1, 0, 1, 1, 1, 0, 1, 0);
        Tensor dy = of(be, dt, Shape.of(1, 1, 3, 3), 1, 1, 1, 1, 1, 1, 1, 1, 1);
        Tensor dx = of(be, dt, Shape.of(1, 1, 3, 3), 7, 7, 7, 7, 7, 7, 7, 7, 7); // stale values must be overwritten
        be.conv2dBackwardData(dy, w, dx, 1);
        // each x feeds as many outputs as it has plus-neighbours in the grid (itself included)
        assertExact(new double[] {3, 4, 3, 4, 5, 4, 3, 4, 3}, toArray(dx), "dx");

        // dw[r,s] = sum over p,q of x[p+r-1, q+s-1]: the sum of the 2x2, 2x3, 3x3... sub-grid that stays inside
        Tensor dw = of(be, dt, Shape.of(1, 1, 3, 3), 1, 1, 1, 1, 1, 1, 1, 1, 1); // accumulates onto 1
        Tensor db = of(be, dt, Shape.of(1), 0.5);
        be.conv2dBackwardFilter(x, dy, dw, db, 1);
        // (0,0): rows 0-1, cols 0-1 = 1+2+4+5 = 12; (0,1): rows 0-1, all cols = 21; (0,2): 2+3+5+6 = 16
        // (1,0): all rows, cols 0-1 = 27; (1,1): 45; (1,2): 33
        // (2,0): rows 1-2, cols 0-1 = 24; (2,1): 39; (2,2): 28
        assertExact(new double[] {13, 22, 17, 28, 46, 34, 25, 40, 29}, toArray(dw), "dw (+1 accumulated)");
        assertExact(new double[] {9.5}, toArray(db), "db = 0.5 + nine ones");
    }

    @Test
    void convRejectsWrongOutputShapeNamingTheShapes() {
        Tensor x = be.allocate(DType.FLOAT64, Shape.of(2, 3, 8, 8));
        Tensor w = be.allocate(DType.FLOAT64, Shape.of(4, 3, 3, 3));
        Tensor y = be.allocate(DType.FLOAT64, Shape.of(2, 4, 6, 6));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.conv2dForward(x, w, null, y, 1));
        assertTrue(e.getMessage().contains("2x4x6x6") && e.getMessage().contains("2x4x8x8")
                && e.getMessage().contains("2x3x8x8"), e.getMessage());
        Tensor wBad = be.allocate(DType.FLOAT64, Shape.of(4, 2, 3, 3));
        assertThrows(IllegalArgumentException.class, () -> be.conv2dForward(x, wBad, null, y, 0));
        Tensor y32 = be.allocate(DType.FLOAT32, Shape.of(2, 4, 8, 8));
        e = assertThrows(IllegalArgumentException.class, () -> be.conv2dForward(x, w, null, y32, 1));
        assertTrue(e.getMessage().contains("FLOAT32"), e.getMessage());
    }

    // ---------------------------------------------------------------- pooling

    @ParameterizedTest
    @EnumSource(DType.class)
    void maxPoolOddSizeTiesGoToTheFirstElement(DType dt) {
        // x (1,1,3,5): windows cover rows 0-1 and columns 0-1, 2-3; row 2 and column 4 are ignored
        double[] xv = {
            1, 3, 5, 5, 99,
            3, 2, 5, 5, 99,
            99, 99, 99, 99, 99};
        Tensor x = of(be, dt, Shape.of(1, 1, 3, 5), xv);
        Tensor y = be.allocate(dt, Shape.of(1, 1, 1, 2));
        be.maxPool2x2Forward(x, y);
        assertExact(new double[] {3, 5}, toArray(y), "y");
        Tensor dy = of(be, dt, Shape.of(1, 1, 1, 2), 10, 20);
        Tensor dx = of(be, dt, Shape.of(1, 1, 3, 5), TestTensors.uniform(1, 15, 1, 2)); // stale values
        be.maxPool2x2Backward(x, y, dy, dx);
        // window 0 = [1 3; 3 2]: max 3 first at (0,1); window 1 = [5 5; 5 5]: all tie, first is (0,2)
        assertExact(new double[] {
            0, 10, 20, 0, 0,
            0, 0, 0, 0, 0,
            0, 0, 0, 0, 0}, toArray(dx), "dx");
    }

    @Test
    void maxPoolNegativeValuesAndSeveralPlanes() {
        // x (1,2,2,2): plane 0 all negative (max -1 at the last position), plane 1 max 4 at (1,0)
        Tensor x = of(be, DType.FLOAT64, Shape.of(1, 2, 2, 2), -4, -3, -2, -1, 0, 1, 4, 2);
        Tensor y = be.allocate(DType.FLOAT64, Shape.of(1, 2, 1, 1));
        be.maxPool2x2Forward(x, y);
        assertExact(new double[] {-1, 4}, toArray(y), "y");
        Tensor dx = be.allocate(DType.FLOAT64, Shape.of(1, 2, 2, 2));
        be.maxPool2x2Backward(x, y, of(be, DType.FLOAT64, Shape.of(1, 2, 1, 1), 1, 2), dx);
        assertExact(new double[] {0, 0, 0, 1, 0, 0, 2, 0}, toArray(dx), "dx");
    }

    // ---------------------------------------------------------------- activations and normalisation

    @Test
    void reluInPlaceAndBackward() {
        Tensor x = of(be, DType.FLOAT32, Shape.of(1, 5), -2, -0.0, 0, 0.5, 3);
        be.reluForward(x, x);
        assertExact(new double[] {0, 0, 0, 0.5, 3}, toArray(x), "relu in place");
        Tensor dy = of(be, DType.FLOAT32, Shape.of(1, 5), 1, 2, 3, 4, 5);
        be.reluBackward(x, dy, dy);
        assertExact(new double[] {0, 0, 0, 4, 5}, toArray(dy), "gradient passes only where y > 0");
    }

    @Test
    void lrnOddAndEvenWindows() {
        // size 3, alpha 3 (alpha/size = 1), beta 0.5, k 2; x (1,3,1,1) = (1,2,3); window of c is [c-1, c+1]
        Tensor x = of(be, DType.FLOAT64, Shape.of(1, 3, 1, 1), 1, 2, 3);
        Tensor y = be.allocate(DType.FLOAT64, x.shape());
        Tensor s = be.allocate(DType.FLOAT64, x.shape());
        be.lrnForward(x, y, s, 3, 3.0, 0.5, 2.0);
        // scale = (2+1+4, 2+1+4+9, 2+4+9) = (7, 16, 15); y = x / sqrt(scale)
        assertClose(new double[] {7, 16, 15}, toArray(s), 1e-15, 0, "scale");
        assertClose(new double[] {1 / Math.sqrt(7), 0.5, 3 / Math.sqrt(15)}, toArray(y), 1e-15, 0, "y");

        // size 4 (even): window of c is [c-2, c+1]; x = 1 everywhere, alpha 4 (alpha/size = 1), beta 1, k 0
        Tensor x4 = of(be, DType.FLOAT64, Shape.of(1, 4, 1, 1), 1, 1, 1, 1);
        Tensor y4 = be.allocate(DType.FLOAT64, x4.shape());
        Tensor s4 = be.allocate(DType.FLOAT64, x4.shape());
        be.lrnForward(x4, y4, s4, 4, 4.0, 1.0, 0.0);
        // c=0: {0,1} -> 2; c=1: {0,1,2} -> 3; c=2: {0,1,2,3} -> 4; c=3: {1,2,3} -> 3
        assertExact(new double[] {2, 3, 4, 3}, toArray(s4), "even-size scale");
        assertClose(new double[] {0.5, 1 / 3.0, 0.25, 1 / 3.0}, toArray(y4), 1e-15, 0, "even-size y");
    }

    @Test
    void dropoutMaskIsAPureFunctionOfSeedAndIndex() {
        int n = 100_000;
        double p = 0.3;
        Tensor x = of(be, DType.FLOAT64, Shape.of(n), TestTensors.uniform(3, n, 1, 2));
        Tensor y1 = be.allocate(DType.FLOAT64, x.shape());
        Tensor m1 = be.allocate(DType.FLOAT64, x.shape());
        Tensor y2 = be.allocate(DType.FLOAT64, x.shape());
        Tensor m2 = be.allocate(DType.FLOAT64, x.shape());
        be.dropoutForward(x, y1, m1, p, 42);
        be.dropoutForward(x, y2, m2, p, 42);
        assertExact(toArray(m1), toArray(m2), "same seed, same mask");
        assertExact(toArray(y1), toArray(y2), "same seed, same output");

        double[] xv = toArray(x);
        double[] yv = toArray(y1);
        double[] mv = toArray(m1);
        int kept = 0;
        for (int i = 0; i < n; i++) {
            boolean keep = DropoutRng.keep(42, i, p);
            assertEquals(keep ? 1 / (1 - p) : 0.0, mv[i], 0.0, "mask[" + i + "]");
            assertEquals(keep ? xv[i] / (1 - p) : 0.0, yv[i], 1e-15 * Math.abs(yv[i]), "y[" + i + "]");
            kept += keep ? 1 : 0;
        }
        // binomial(n, 0.7): standard deviation sqrt(n p (1-p)) ~ 145; allow 5 of them
        assertEquals(0.7 * n, kept, 5 * Math.sqrt(n * p * (1 - p)), "kept count");

        Tensor m3 = be.allocate(DType.FLOAT64, x.shape());
        be.dropoutForward(x, y2, m3, p, 43);
        assertNotEquals(java.util.Arrays.toString(toArray(m1)), java.util.Arrays.toString(toArray(m3)), "another seed");

        // backward is dy * mask
        Tensor dy = of(be, DType.FLOAT64, x.shape(), TestTensors.uniform(4, n, -1, 1));
        Tensor dx = be.allocate(DType.FLOAT64, x.shape());
        be.multiply(dy, m1, dx);
        double[] dyv = toArray(dy);
        double[] dxv = toArray(dx);
        for (int i = 0; i < n; i += 997) {
            assertEquals(dyv[i] * mv[i], dxv[i], 0.0, "dx[" + i + "]");
        }
    }

    @Test
    void dropoutFloat32KeepsExactlyTwiceAtHalf() {
        Tensor x = of(be, DType.FLOAT32, Shape.of(2, 8), TestTensors.uniform(5, 16, -1, 1));
        Tensor y = be.allocate(DType.FLOAT32, x.shape());
        Tensor m = be.allocate(DType.FLOAT32, x.shape());
        be.dropoutForward(x, y, m, 0.5, 7);
        double[] xv = toArray(x);
        double[] yv = toArray(y);
        for (int i = 0; i < 16; i++) {
            assertEquals(DropoutRng.keep(7, i, 0.5) ? 2 * xv[i] : 0.0, yv[i], 0.0, "y[" + i + "]");
        }
    }

    @Test
    void batchNormTrainingNormalisesAndUpdatesRunningStatsWithUnbiasedVariance() {
        int n = 4;
        int c = 3;
        int hw = 6;
        int m = n * hw;
        double[] xv = TestTensors.uniform(11, n * c * hw, -3, 5);
        Tensor x = of(be, DType.FLOAT64, Shape.of(n, c, 2, 3), xv);
        Tensor gamma = of(be, DType.FLOAT64, Shape.of(c), 1, 2, 0.5);
        Tensor beta = of(be, DType.FLOAT64, Shape.of(c), 0, -1, 3);
        Tensor rm = of(be, DType.FLOAT64, Shape.of(c), 0, 1, 2);
        Tensor rv = of(be, DType.FLOAT64, Shape.of(c), 1, 1, 4);
        Tensor sm = be.allocate(DType.FLOAT64, Shape.of(c));
        Tensor si = be.allocate(DType.FLOAT64, Shape.of(c));
        Tensor y = be.allocate(DType.FLOAT64, x.shape());
        double eps = 1e-5;
        be.batchNormForwardTraining(x, gamma, beta, y, rm, rv, sm, si, 0.1, eps);

        double[] yv = toArray(y);
        double[] g = {1, 2, 0.5};
        double[] bt = {0, -1, 3};
        double[] rm0 = {0, 1, 2};
        double[] rv0 = {1, 1, 4};
        for (int ch = 0; ch < c; ch++) {
            // statistics of the channel computed here independently, then of the normalised output
            double sum = 0;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    sum += xv[(b * c + ch) * hw + i];
                }
            }
            double mean = sum / m;
            double ss = 0;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    ss += Math.pow(xv[(b * c + ch) * hw + i] - mean, 2);
                }
            }
            double var = ss / m;
            double zMean = 0;
            double zVar = 0;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    double z = (yv[(b * c + ch) * hw + i] - bt[ch]) / g[ch]; // undo the affine part
                    zMean += z / m;
                }
            }
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < hw; i++) {
                    double z = (yv[(b * c + ch) * hw + i] - bt[ch]) / g[ch];
                    zVar += (z - zMean) * (z - zMean) / m;
                }
            }
            assertEquals(0.0, zMean, 1e-12, "normalised mean of channel " + ch);
            assertEquals(var / (var + eps), zVar, 1e-12, "normalised variance of channel " + ch);
            assertClose(0.9 * rm0[ch] + 0.1 * mean, toArray(rm)[ch], 1e-14, 1e-15, "running mean " + ch);
            assertClose(0.9 * rv0[ch] + 0.1 * ss / (m - 1), toArray(rv)[ch], 1e-14, 0, "running var (unbiased) " + ch);
            assertClose(mean, toArray(sm)[ch], 1e-14, 1e-15, "saved mean " + ch);
            assertClose(1 / Math.sqrt(var + eps), toArray(si)[ch], 1e-14, 0, "saved 1/std " + ch);
        }
    }

    @Test
    void batchNormInferenceUsesRunningStatistics() {
        // x (1,2,1,2); channel 0: mean 1, var 3 (so sqrt(var+eps) = 2 with eps 1); channel 1: mean -1, var 8 -> 3
        Tensor x = of(be, DType.FLOAT64, Shape.of(1, 2, 1, 2), 5, -1, 2, 8);
        Tensor gamma = of(be, DType.FLOAT64, Shape.of(2), 2, 1);
        Tensor beta = of(be, DType.FLOAT64, Shape.of(2), 0, 10);
        Tensor rm = of(be, DType.FLOAT64, Shape.of(2), 1, -1);
        Tensor rv = of(be, DType.FLOAT64, Shape.of(2), 3, 8);
        Tensor y = be.allocate(DType.FLOAT64, x.shape());
        be.batchNormForwardInference(x, gamma, beta, y, rm, rv, 1.0);
        // c0: 2*(5-1)/2 = 4, 2*(-1-1)/2 = -2; c1: (2+1)/3 + 10 = 11, (8+1)/3 + 10 = 13
        assertExact(new double[] {4, -2, 11, 13}, toArray(y), "inference");
    }

    // ---------------------------------------------------------------- dense algebra

    @ParameterizedTest
    @EnumSource(DType.class)
    void gemmAllTranspositions(DType dt) {
        // A (2,3) = [1 2 3; 4 5 6], B (3,2) = [1 0; 0 1; 1 -1]; A B = [4 -1; 10 -1]
        double[] a = {1, 2, 3, 4, 5, 6};
        double[] aT = {1, 4, 2, 5, 3, 6};      // A^T stored (3,2)
        double[] b = {1, 0, 0, 1, 1, -1};
        double[] bT = {1, 0, 1, 0, 1, -1};     // B^T stored (2,3)
        double[] ab = {4, -1, 10, -1};
        for (int t = 0; t < 4; t++) {
            boolean ta = (t & 1) != 0;
            boolean tb = (t & 2) != 0;
            Tensor at = of(be, dt, ta ? Shape.of(3, 2) : Shape.of(2, 3), ta ? aT : a);
            Tensor bt = of(be, dt, tb ? Shape.of(2, 3) : Shape.of(3, 2), tb ? bT : b);
            Tensor c = of(be, dt, Shape.of(2, 2), Double.NaN, Double.NaN, Double.NaN, Double.NaN);
            be.gemm(ta, tb, 1.0, at, bt, 0.0, c);
            assertExact(ab, toArray(c), "transA " + ta + " transB " + tb + " (beta 0 ignores NaN)");
            be.gemm(ta, tb, 0.5, at, bt, 2.0, c);
            // 0.5 * AB + 2 * AB = 2.5 AB
            assertExact(new double[] {10, -2.5, 25, -2.5}, toArray(c), "alpha 0.5, beta 2");
        }
    }

    @Test
    void float32SumsAccumulateInDoubleAndRoundOnce() {
        // 1e8 + 1 - 1e8: a float32 running sum loses the 1 (ulp of 1e8 is 8); a double sum keeps it
        Tensor a = of(be, DType.FLOAT32, Shape.of(1, 3), 1e8, 1, -1e8);
        Tensor b = of(be, DType.FLOAT32, Shape.of(3, 1), 1, 1, 1);
        Tensor c = be.allocate(DType.FLOAT32, Shape.of(1, 1));
        be.gemm(false, false, 1.0, a, b, 0.0, c);
        assertExact(new double[] {1}, toArray(c), "gemm");
        Tensor dy = of(be, DType.FLOAT32, Shape.of(3, 1), 1e8, 1, -1e8);
        Tensor db = be.allocate(DType.FLOAT32, Shape.of(1));
        be.biasBackward(dy, db);
        assertExact(new double[] {1}, toArray(db), "biasBackward");
    }

    @Test
    void biasAxpyScaleAndSums() {
        Tensor y = of(be, DType.FLOAT64, Shape.of(2, 2, 1, 2), 0, 1, 2, 3, 4, 5, 6, 7);
        be.addBias(y, of(be, DType.FLOAT64, Shape.of(2), 10, 20));
        assertExact(new double[] {10, 11, 22, 23, 14, 15, 26, 27}, toArray(y), "addBias (N,K,H,W)");
        Tensor db = of(be, DType.FLOAT64, Shape.of(2), 1, 1);
        be.biasBackward(y, db);
        // k0: 10+11+14+15 = 50; k1: 22+23+26+27 = 98; plus the 1 already there
        assertExact(new double[] {51, 99}, toArray(db), "biasBackward accumulates");
        Tensor y2 = of(be, DType.FLOAT64, Shape.of(2, 3), 0, 0, 0, 1, 1, 1);
        be.addBias(y2, of(be, DType.FLOAT64, Shape.of(3), 1, 2, 3));
        assertExact(new double[] {1, 2, 3, 2, 3, 4}, toArray(y2), "addBias (N,K)");

        Tensor u = of(be, DType.FLOAT64, Shape.of(3), 1, 2, 3);
        Tensor v = of(be, DType.FLOAT64, Shape.of(3), 10, 20, 30);
        be.axpy(-2, u, v);
        assertExact(new double[] {8, 16, 24}, toArray(v), "axpy");
        be.scale(v, 0.5);
        assertExact(new double[] {4, 8, 12}, toArray(v), "scale");
        assertEquals(16 + 64 + 144, be.sumOfSquares(v), 0.0, "sumOfSquares");
        be.fill(v, -1.5);
        assertExact(new double[] {-1.5, -1.5, -1.5}, toArray(v), "fill");
        Tensor w = be.allocate(DType.FLOAT64, Shape.of(1, 3));
        be.copy(u, w);
        assertExact(new double[] {1, 2, 3}, toArray(w), "copy to another shape of equal size");
    }

    // ---------------------------------------------------------------- loss and optimiser

    @Test
    void softmaxCrossEntropyOfKnownLogits() {
        // row 0: logits (0, 0), label 0 -> p = (1/2, 1/2), loss ln 2
        // row 1: logits (ln 3, 0), label 1 -> p = (3/4, 1/4), loss ln 4
        Tensor logits = of(be, DType.FLOAT64, Shape.of(2, 2), 0, 0, Math.log(3), 0);
        Tensor dl = be.allocate(DType.FLOAT64, logits.shape());
        double loss = be.softmaxCrossEntropy(logits, new int[] {0, 1}, dl);
        assertEquals(1.5 * Math.log(2), loss, 1e-15, "mean of ln 2 and ln 4");
        // (p - onehot) / N
        assertClose(new double[] {-0.25, 0.25, 0.375, -0.375}, toArray(dl), 1e-15, 1e-16, "dlogits");
        Tensor probs = be.allocate(DType.FLOAT64, logits.shape());
        be.softmax(logits, probs);
        assertClose(new double[] {0.5, 0.5, 0.75, 0.25}, toArray(probs), 1e-15, 0, "softmax");
    }

    @Test
    void softmaxCrossEntropyIsStableForHugeLogits() {
        Tensor logits = of(be, DType.FLOAT32, Shape.of(1, 3), 1000, 0, -1000);
        Tensor dl = be.allocate(DType.FLOAT32, logits.shape());
        assertEquals(0.0, be.softmaxCrossEntropy(logits, new int[] {0}, dl), 1e-300);
        assertEquals(1000.0, be.softmaxCrossEntropy(logits, new int[] {1}, dl), 1e-9);
        assertExact(new double[] {1, -1, 0}, toArray(dl), "p = onehot(0): dlogits = e0 - e1");
        assertThrows(IllegalArgumentException.class, () -> be.softmaxCrossEntropy(logits, new int[] {3}, dl));
    }

    @Test
    void sgdStepFollowsCaffeFormulaWithDecayedPrefix() {
        double lr = 0.1;
        double mu = 0.9;
        double wd = 0.01;
        Tensor p = of(be, DType.FLOAT64, Shape.of(3), 1, 2, 3);
        Tensor g = of(be, DType.FLOAT64, Shape.of(3), 0.5, -1, 2);
        Tensor v = of(be, DType.FLOAT64, Shape.of(3), 0.1, 0, -0.2);
        be.sgdStep(p, g, v, lr, mu, wd, 2); // elements 0 and 1 are decayed, element 2 (a bias) is not
        // step 1: d = (0.5 + 0.01*1, -1 + 0.01*2, 2) = (0.51, -0.98, 2)
        //         v = 0.9*(0.1, 0, -0.2) + 0.1*d = (0.09 + 0.051, -0.098, -0.18 + 0.2) = (0.141, -0.098, 0.02)
        //         p = (1 - 0.141, 2 + 0.098, 3 - 0.02) = (0.859, 2.098, 2.98); grad cleared
        assertClose(new double[] {0.141, -0.098, 0.02}, toArray(v), 1e-14, 1e-16, "velocity 1");
        assertClose(new double[] {0.859, 2.098, 2.98}, toArray(p), 1e-14, 0, "param 1");
        assertExact(new double[] {0, 0, 0}, toArray(g), "grad cleared");
        be.sgdStep(p, g, v, lr, mu, wd, 2);
        // step 2 (grad 0): d = (0.01*0.859, 0.01*2.098, 0) = (0.00859, 0.02098, 0)
        //         v = 0.9*(0.141, -0.098, 0.02) + 0.1*d = (0.1269 + 0.000859, -0.0882 + 0.002098, 0.018)
        //           = (0.127759, -0.086102, 0.018)
        //         p = (0.859 - 0.127759, 2.098 + 0.086102, 2.98 - 0.018) = (0.731241, 2.184102, 2.962)
        assertClose(new double[] {0.127759, -0.086102, 0.018}, toArray(v), 1e-13, 1e-16, "velocity 2");
        assertClose(new double[] {0.731241, 2.184102, 2.962}, toArray(p), 1e-13, 0, "param 2");
        assertThrows(IllegalArgumentException.class, () -> be.sgdStep(p, g, v, lr, mu, wd, 4));
    }

    @Test
    void float32AndFloat64PathsAgreeOnATinyVgg() {
        // same parameters and input in both types: the float32 path may differ only by float32 rounding
        VggSpec spec = VggSpec.small(VggConfig.A, 32, 5).withWidth(1.0 / 16).withHidden(16).withBatchNorm(true);
        double[][] logits = new double[2][];
        double[][] grads = new double[2][];
        double[] x = TestTensors.uniform(9, 2 * 3 * 32 * 32, -1, 1);
        DType[] types = {DType.FLOAT64, DType.FLOAT32};
        for (int t = 0; t < 2; t++) {
            try (Network net = Vgg.build(be, types[t], spec)) {
                be.copyIn(TestTensors.uniform(8, (int) net.params().trainedCount(), -0.3, 0.3), 0, net.params().values());
                SoftmaxCrossEntropy ce = new SoftmaxCrossEntropy(be);
                Tensor out = net.forward(of(be, types[t], Shape.of(2, 3, 32, 32), x), true);
                logits[t] = toArray(out);
                ce.forwardBackward(out, new int[] {1, 4});
                net.backward(ce.gradient());
                grads[t] = toArray(net.params().grads());
            }
        }
        assertClose(logits[0], logits[1], 1e-4, 1e-5, "logits float32 vs float64");
        assertClose(grads[0], grads[1], 1e-3, 1e-5, "gradients float32 vs float64");
        assertTrue(be.sumOfSquares(of(be, DType.FLOAT64, Shape.of(grads[0].length), grads[0])) > 1e-6, "non-trivial gradients");
    }

    // ---------------------------------------------------------------- views, memory and validation

    @Test
    void viewsWithNonZeroOffsetsGiveTheSameResults() {
        // one buffer holds a pad, x (1,1,3,3) at 5, w (1,1,3,3) at 14, b (1) at 23, y (1,1,3,3) at 24, then a tail
        Tensor all = be.allocate(DType.FLOAT32, Shape.of(40));
        be.fill(all, 1234);
        Tensor x = all.view(5, Shape.of(1, 1, 3, 3));
        Tensor w = all.view(14, Shape.of(1, 1, 3, 3));
        Tensor b = all.view(23, Shape.of(1));
        Tensor y = all.view(24, Shape.of(1, 1, 3, 3));
        be.copyIn(X123, 0, x);
        be.copyIn(new double[] {0, 1, 0, 1, 1, 1, 0, 1, 0}, 0, w);
        be.copyIn(new float[] {99, 10, 99}, 1, b); // host offset 1
        be.conv2dForward(x, w, b, y, 1);
        assertExact(new double[] {17, 21, 21, 27, 35, 33, 29, 39, 33}, toArray(y), "conv on views");
        double[] raw = toArray(all);
        for (int i : new int[] {0, 4, 33, 39}) {
            assertEquals(1234, raw[i], 0.0, "element " + i + " outside every view is untouched");
        }
        float[] host = new float[12];
        be.copyOut(y, host, 3);
        assertEquals(0f, host[2]);
        assertEquals(17f, host[3]);
        assertEquals(33f, host[11]);

        // gemm with a (1,3) row view and a (3,1) column view of the same buffer: (1,2,3).(4,5,6) = 32
        Tensor g = be.allocate(DType.FLOAT64, Shape.of(10));
        be.copyIn(new double[] {1, 2, 3, 4, 5, 6}, 0, g.view(2, Shape.of(6)));
        Tensor c = g.view(9, Shape.of(1, 1));
        be.gemm(false, false, 1.0, g.view(2, Shape.of(1, 3)), g.view(5, Shape.of(3, 1)), 0.0, c);
        assertExact(new double[] {32}, toArray(c), "gemm on views");
    }

    @Test
    void overlappingOutputsAreRejectedUnlessInPlaceIsAllowed() {
        Tensor all = be.allocate(DType.FLOAT64, Shape.of(12));
        Tensor a = all.view(0, Shape.of(2, 3));
        Tensor shifted = all.view(1, Shape.of(2, 3));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.reluForward(a, shifted));
        assertTrue(e.getMessage().contains("overlap"), e.getMessage());
        be.reluForward(a, a); // exactly in place: allowed
        Tensor sq = all.view(0, Shape.of(3, 3));
        assertThrows(IllegalArgumentException.class, () -> be.gemm(false, false, 1, sq, all.view(3, Shape.of(3, 3)), 0, all.view(0, Shape.of(3, 3))));
        assertThrows(IllegalArgumentException.class, () -> be.copyIn(new double[5], 0, a));
    }

    @Test
    void rejectsTensorsOfAnotherDtypeOrBackend() {
        Tensor a = be.allocate(DType.FLOAT64, Shape.of(2));
        Tensor b = be.allocate(DType.FLOAT32, Shape.of(2));
        assertThrows(IllegalArgumentException.class, () -> be.axpy(1, a, b));
        Tensor foreign = BackendTensors.wrap(be, DType.FLOAT64, Shape.of(2), new float[2], 0); // wrong storage type
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.fill(foreign, 0));
        assertTrue(e.getMessage().contains("not a reference-backend"), e.getMessage());
        assertFalse(be.supports(null));
    }
}
