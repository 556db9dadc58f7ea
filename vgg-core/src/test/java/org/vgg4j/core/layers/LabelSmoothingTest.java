package org.vgg4j.core.layers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.backend.CpuPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.Approx;
import org.vgg4j.core.testing.TestTensors;

/**
 * {@link SoftmaxCrossEntropy} with label smoothing: golden values from PyTorch, a float64 gradient check against
 * central differences of the loss, the cpu backend in float32 against the reference in float64, and 0 as the
 * plain loss. Legend: N batch, F classes.
 */
final class LabelSmoothingTest {
    private static final Backend REF = Backends.create("reference");
    private static final Backend CPU = Backends.cpu(CpuPrecision.FP32);
    private static final double[] LOGITS = {1.5, -0.25, 0.75, 2.0, -1.0, 0.5, 0.0, 0.25, 3.0, -2.0, 1.0, 0.5}; // (3,4)
    private static final int[] LABELS = {3, 1, 0};

    @AfterAll
    static void close() {
        CPU.close();
        REF.close();
    }

    private static Tensor logits(Backend b, DType dtype, double[] v) {
        return TestTensors.of(b, dtype, Shape.of(3, 4), v);
    }

    @Test
    void matchesPyTorchsCrossEntropyWithLabelSmoothing() {
        // torch 1.13: F.cross_entropy(z, y, label_smoothing=0.1) on these float64 logits, and z.grad after backward()
        double wantLoss = 0.7490427619203102;
        double[] wantGrad = {
            0.09283428974658847, 0.009246963478772944, 0.03945486802993165, -0.14153612125529305,
            0.020180300896843306, -0.18054409044833342, 0.06917476045788362, 0.09118902909360656,
            -0.03603737887664467, -0.006498617624138774, 0.028517916787246418, 0.014018079713537168};
        SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(REF, 0.1);
        double got = loss.forwardBackward(logits(REF, DType.FLOAT64, LOGITS), LABELS);
        assertEquals(wantLoss, got, 1e-13);
        Approx.assertClose(wantGrad, TestTensors.toArray(loss.gradient()), 1e-12, 1e-14, "dL/dz against PyTorch");
    }

    @Test
    void theGradientIsTheLossDerivativeInFloat64() {
        double eps = 1e-6;
        SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(REF, 0.2);
        loss.forwardBackward(logits(REF, DType.FLOAT64, LOGITS), LABELS);
        double[] analytic = TestTensors.toArray(loss.gradient());
        for (int i = 0; i < LOGITS.length; i++) {
            double[] up = LOGITS.clone();
            double[] down = LOGITS.clone();
            up[i] += eps;
            down[i] -= eps;
            double numeric = (loss.forwardBackward(logits(REF, DType.FLOAT64, up), LABELS)
                    - loss.forwardBackward(logits(REF, DType.FLOAT64, down), LABELS)) / (2 * eps);
            assertEquals(numeric, analytic[i], 1e-8, "dL/dz[" + i + "]");
        }
    }

    @Test
    void theCpuBackendInFloat32AgreesWithTheReference() {
        double[] z = TestTensors.uniform(7, 64 * 10, -4, 4);
        int[] labels = new int[64];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = (i * 7) % 10;
        }
        SoftmaxCrossEntropy ref = new SoftmaxCrossEntropy(REF, 0.1);
        SoftmaxCrossEntropy cpu = new SoftmaxCrossEntropy(CPU, 0.1);
        double want = ref.forwardBackward(TestTensors.of(REF, DType.FLOAT64, Shape.of(64, 10), z), labels);
        double got = cpu.forwardBackward(TestTensors.of(CPU, DType.FLOAT32, Shape.of(64, 10), z), labels);
        assertEquals(want, got, 1e-5);
        Approx.assertClose(TestTensors.toArray(ref.gradient()), TestTensors.toArray(cpu.gradient()), 1e-5, 1e-7,
                "dL/dz, cpu float32 against the reference in float64");
    }

    @Test
    void zeroIsThePlainLossAndOutOfRangeValuesAreRefused() {
        SoftmaxCrossEntropy plain = new SoftmaxCrossEntropy(REF);
        SoftmaxCrossEntropy zero = new SoftmaxCrossEntropy(REF, 0);
        double a = plain.forwardBackward(logits(REF, DType.FLOAT64, LOGITS), LABELS);
        double b = zero.forwardBackward(logits(REF, DType.FLOAT64, LOGITS), LABELS);
        assertEquals(a, b, 0);
        Approx.assertExact(TestTensors.toArray(plain.gradient()), TestTensors.toArray(zero.gradient()), "dL/dz");
        for (double bad : new double[] {-0.1, 1.0, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new SoftmaxCrossEntropy(REF, bad));
            assertTrue(e.getMessage().contains("label smoothing " + bad + " must be in [0, 1)"), e.getMessage());
        }
    }
}
