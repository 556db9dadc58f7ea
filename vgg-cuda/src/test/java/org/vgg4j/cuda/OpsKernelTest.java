package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.cuda.Parity.floats;
import static org.vgg4j.cuda.Parity.ints;
import static org.vgg4j.cuda.Parity.t;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.DropoutRng;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.Approx;
import org.vgg4j.core.testing.TestTensors;

/**
 * Every non-GEMM kernel (elementwise.cu, pool_lrn.cu, reduce.cu) on the emulated device against the reference
 * backend, with odd sizes: exact where the arithmetic allows (fill, copy, ReLU, multiply, bias, max-pool with ties,
 * dropout masks bit-identical to DropoutRng, the SGD step, integer reductions), close otherwise (LRN, softmax,
 * cross-entropy, batch norm).
 */
@Tag(Parity.DEVICE_TAG)
class OpsKernelTest {
    private Parity p;

    @BeforeAll
    static void emulator() {
        Parity.assumeDevice();
    }

    @BeforeEach
    void open() {
        p = new Parity();
    }

    @AfterEach
    void close() {
        p.close();
    }

    static final Shape X = Shape.of(3, 5, 7, 9); // N, C, H, W: odd everywhere

    @Test
    void fillCopyAndViews() {
        p.assertExact(be -> {
            Tensor all = be.allocate(DType.FLOAT32, Shape.of(50));
            be.fill(all, -2.5);
            Tensor a = all.view(3, Shape.of(2, 5));
            be.copyIn(floats(1, 10, -1, 1), 0, a);
            Tensor b = all.view(31, Shape.of(10));
            be.copy(a, b);
            be.fill(all.view(45, Shape.of(3)), 7);
            return new Tensor[] {all};
        }, "fill/copy on views");
    }

    @Test
    void reluForwardBackwardAlsoInPlace() {
        int n = Parity.size(X);
        double[] x = ints(1, n, -3, 3); // many exact zeros: the y > 0 rule at the kink
        double[] dy = floats(2, n, -1, 1);
        p.assertExact(be -> {
            Tensor xt = t(be, X, x);
            Tensor y = be.allocate(DType.FLOAT32, X);
            be.reluForward(xt, y);
            Tensor inPlace = t(be, X, x);
            be.reluForward(inPlace, inPlace);
            Tensor dyt = t(be, X, dy);
            Tensor dx = be.allocate(DType.FLOAT32, X);
            be.reluBackward(y, dyt, dx);
            be.reluBackward(y, dyt, dyt);
            return new Tensor[] {y, inPlace, dx, dyt};
        }, "relu");
    }

    @Test
    void multiplyAxpyScale() {
        int n = 1001;
        double[] a = floats(3, n, -2, 2), b = floats(4, n, -2, 2);
        p.assertExact(be -> {
            Tensor at = t(be, Shape.of(n), a), bt = t(be, Shape.of(n), b);
            Tensor y = be.allocate(DType.FLOAT32, Shape.of(n));
            be.multiply(at, bt, y);
            Tensor ax = t(be, Shape.of(n), b);
            be.axpy(-0.3, at, ax);
            Tensor s = t(be, Shape.of(n), a);
            be.scale(s, 1.7);
            return new Tensor[] {y, ax, s};
        }, "multiply/axpy/scale");
    }

    @Test
    void biasAddAndBackward() {
        double[] y4 = floats(5, Parity.size(X), -1, 1), y2 = floats(6, 3 * 17, -1, 1);
        double[] bias5 = floats(7, 5, -1, 1), bias17 = floats(8, 17, -1, 1);
        p.assertExact(be -> {
            Tensor a = t(be, X, y4);
            be.addBias(a, t(be, Shape.of(5), bias5));
            Tensor b = t(be, Shape.of(3, 17), y2);
            be.addBias(b, t(be, Shape.of(17), bias17));
            return new Tensor[] {a, b};
        }, "addBias");
        double[] dyInt = ints(9, Parity.size(X), -9, 9);
        p.assertExact(be -> {
            Tensor db = t(be, Shape.of(5), new double[] {1, 2, 3, 4, 5}); // accumulates
            be.biasBackward(t(be, X, dyInt), db);
            return new Tensor[] {db};
        }, "biasBackward on integers");
        double[] dy = floats(10, Parity.size(X), -1, 1);
        p.assertParity(be -> {
            Tensor db = be.allocate(DType.FLOAT32, Shape.of(5));
            be.biasBackward(t(be, X, dy), db);
            return new Tensor[] {db};
        }, 1e-5, 1e-5, "biasBackward");
        // few channels, many values each: the sliced path (3 channels on 4 nominal multiprocessors -> 2 slices)
        Shape big = Shape.of(4, 3, 40, 41);
        double[] dyBigInt = ints(31, Parity.size(big), -9, 9);
        p.assertExact(be -> {
            Tensor db = t(be, Shape.of(3), new double[] {1, -2, 3});
            be.biasBackward(t(be, big, dyBigInt), db);
            return new Tensor[] {db};
        }, "sliced biasBackward on integers");
        double[] dyBig = floats(32, Parity.size(big), -1, 1);
        p.assertParity(be -> {
            Tensor db = be.allocate(DType.FLOAT32, Shape.of(3));
            be.biasBackward(t(be, big, dyBig), db);
            return new Tensor[] {db};
        }, 1e-5, 1e-4, "sliced biasBackward");
    }

    @Test
    void maxPoolWithTiesAndOddSizes() {
        int n = Parity.size(X);
        double[] x = ints(11, n, -2, 2); // many ties: the first max in row-major window order wins
        Shape yShape = Shape.of(3, 5, 3, 4);
        double[] dy = floats(12, Parity.size(yShape), -1, 1);
        p.assertExact(be -> {
            Tensor xt = t(be, X, x);
            Tensor y = be.allocate(DType.FLOAT32, yShape);
            be.maxPool2x2Forward(xt, y);
            Tensor dx = be.allocate(DType.FLOAT32, X);
            be.fill(dx, 99); // overwritten, including the ignored last row and column
            be.maxPool2x2Backward(xt, y, t(be, yShape, dy), dx);
            return new Tensor[] {y, dx};
        }, "max-pool");
    }

    @Test
    void lrnForwardBackward() {
        int n = Parity.size(X);
        double[] x = floats(13, n, -2, 2), dy = floats(14, n, -1, 1);
        for (int size : new int[] {5, 2, 1}) {
            p.assertParity(be -> {
                Tensor xt = t(be, X, x);
                Tensor y = be.allocate(DType.FLOAT32, X);
                Tensor sc = be.allocate(DType.FLOAT32, X);
                be.lrnForward(xt, y, sc, size, 1e-4 * 50, 0.75, 2.0);
                Tensor dx = be.allocate(DType.FLOAT32, X);
                be.lrnBackward(xt, y, sc, t(be, X, dy), dx, size, 1e-4 * 50, 0.75, 2.0);
                return new Tensor[] {y, sc, dx};
            }, 2e-6, 1e-7, "lrn size " + size);
        }
    }

    @Test
    void dropoutMasksAreBitIdenticalToDropoutRng() {
        int n = 4099;
        double[] x = floats(15, n, -1, 1);
        for (double prob : new double[] {0.5, 0.1, 0.0}) {
            double[][] dev = p.assertParity(be -> {
                Tensor y = be.allocate(DType.FLOAT32, Shape.of(n));
                Tensor mask = be.allocate(DType.FLOAT32, Shape.of(n));
                be.dropoutForward(t(be, Shape.of(n), x), y, mask, prob, 0x5eedL);
                return new Tensor[] {y, mask};
            }, 0, 0, "dropout p=" + prob);
            float kept = (float) (1 / (1 - prob));
            for (int i = 0; i < n; i++) {
                assertEquals(DropoutRng.keep(0x5eedL, i, prob) ? kept : 0f, dev[1][i], 0.0, "mask[" + i + "]");
            }
        }
    }

    @Test
    void sgdStepIsBitIdenticalToTheReference() {
        int n = 777;
        double[] param = floats(16, n, -1, 1), grad = floats(17, n, -0.1, 0.1), vel = floats(18, n, -0.01, 0.01);
        p.assertExact(be -> {
            Tensor pt = t(be, Shape.of(n), param), gt = t(be, Shape.of(n), grad), vt = t(be, Shape.of(n), vel);
            be.sgdStep(pt, gt, vt, 0.01, 0.9, 5e-4, 500);
            return new Tensor[] {pt, gt, vt};
        }, "sgd");
    }

    @Test
    void softmaxAndCrossEntropy() {
        Shape s = Shape.of(5, 1003); // F larger than a block, not a multiple of 256
        double[] logits = floats(19, Parity.size(s), -8, 8);
        logits[7] = 300; // a huge logit must not overflow
        int[] labels = {0, 1002, 17, 500, 3};
        double[][][] out = p.run(be -> {
            Tensor l = t(be, s, logits);
            Tensor probs = be.allocate(DType.FLOAT32, s);
            be.softmax(l, probs);
            Tensor dl = be.allocate(DType.FLOAT32, s);
            double loss = be.softmaxCrossEntropy(l, labels, dl);
            Tensor lossT = t(be, Shape.of(1), new double[] {loss});
            return new Tensor[] {probs, dl, lossT};
        });
        Approx.assertClose(out[0][0], out[1][0], 1e-5, 1e-9, "softmax");
        Approx.assertClose(out[0][1], out[1][1], 1e-5, 1e-9, "dlogits");
        Approx.assertClose(out[0][2], out[1][2], 1e-6, 0, "loss");
        assertThrows(IllegalArgumentException.class, () -> p.dev.softmaxCrossEntropy(
                t(p.dev, s, logits), new int[] {0, 1, 2, 3, 1003}, p.dev.allocate(DType.FLOAT32, s)));
    }

    @Test
    void sumOfSquares() {
        int n = 300_001; // several partial blocks
        double[] v = ints(20, n, -3, 3);
        double want = 0;
        for (double x : v) {
            want += x * x;
        }
        assertEquals(want, p.dev.sumOfSquares(t(p.dev, Shape.of(n), v)), 0.0, "integers: exact");
        double[] f = floats(21, n, -1, 1);
        Approx.assertClose(p.ref.sumOfSquares(t(p.ref, Shape.of(n), f)), p.dev.sumOfSquares(t(p.dev, Shape.of(n), f)),
                1e-6, 0, "floats");
    }

    @Test
    void batchNormTrainingInferenceBackward() {
        batchNorm(Shape.of(3, 5, 7, 9));  // one block per channel
        batchNorm(Shape.of(4, 5, 40, 41)); // 5 channels of 6560 values: 2 ordered slices per channel
    }

    private void batchNorm(Shape x) {
        int n = Parity.size(x);
        double[] xv = floats(22, n, -2, 3), dy = floats(23, n, -1, 1);
        double[] gamma = floats(24, 5, 0.5, 1.5), beta = floats(25, 5, -1, 1);
        double[] rm = floats(26, 5, -0.1, 0.1), rv = floats(27, 5, 0.9, 1.1);
        p.assertParity(be -> {
            Shape c = Shape.of(5);
            Tensor xt = t(be, x, xv), y = be.allocate(DType.FLOAT32, x);
            Tensor g = t(be, c, gamma), b = t(be, c, beta), runM = t(be, c, rm), runV = t(be, c, rv);
            Tensor sm = be.allocate(DType.FLOAT32, c), si = be.allocate(DType.FLOAT32, c);
            be.batchNormForwardTraining(xt, g, b, y, runM, runV, sm, si, 0.1, 1e-5);
            Tensor yi = be.allocate(DType.FLOAT32, x);
            be.batchNormForwardInference(xt, g, b, yi, runM, runV, 1e-5);
            Tensor dx = be.allocate(DType.FLOAT32, x);
            Tensor dg = t(be, c, new double[] {1, 1, 1, 1, 1}), db = be.allocate(DType.FLOAT32, c);
            be.batchNormBackward(xt, t(be, x, dy), g, sm, si, dx, dg, db);
            return new Tensor[] {y, runM, runV, sm, si, yi, dx, dg, db};
        }, 2e-5, 2e-6, "batch norm " + x);
    }

    @Test
    void float64IsRejectedClearly() {
        assertTrue(!p.dev.supports(DType.FLOAT64));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> p.dev.allocate(DType.FLOAT64, Shape.of(2)));
        assertTrue(e.getMessage().contains("FLOAT32 only"), e.getMessage());
    }

    @Test
    void aBadShapeNamesTheOpAndTheShapes() {
        Tensor x = p.dev.allocate(DType.FLOAT32, Shape.of(1, 3, 8, 8));
        Tensor w = p.dev.allocate(DType.FLOAT32, Shape.of(4, 2, 3, 3));
        Tensor y = p.dev.allocate(DType.FLOAT32, Shape.of(1, 4, 8, 8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> p.dev.conv2dForward(x, w, null, y, 1));
        assertTrue(e.getMessage().contains("conv2dForward") && e.getMessage().contains("4x2x3x3")
                && e.getMessage().contains("1x3x8x8"), e.getMessage());
        Tensor other = TestTensors.of(p.ref, DType.FLOAT32, Shape.of(1, 3, 8, 8), new double[192]);
        assertThrows(IllegalArgumentException.class, () -> p.dev.reluForward(other, other));
    }
}
