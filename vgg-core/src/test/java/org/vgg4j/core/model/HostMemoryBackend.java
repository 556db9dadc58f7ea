package org.vgg4j.core.model;

import java.util.Arrays;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendTensors;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * TEST ONLY: a backend with memory operations and no compute (every op throws), so tests of initialisers, warm
 * start and checkpoints exercise the memory paths without depending on any real backend. Storage is a float[]
 * (FLOAT32) or double[] (FLOAT64). It is not a reference for any op.
 */
public final class HostMemoryBackend implements Backend {

    @Override
    public String name() {
        return "host-memory-test";
    }

    @Override
    public boolean supports(DType dtype) {
        return true;
    }

    @Override
    public Tensor allocate(DType dtype, Shape shape) {
        int n = Math.toIntExact(shape.size());
        return BackendTensors.wrap(this, dtype, shape, dtype == DType.FLOAT32 ? new float[n] : new double[n], 0);
    }

    @Override
    public void free(Tensor t) {
    }

    @Override
    public void copyIn(float[] host, int hostOffset, Tensor t) {
        int o = (int) t.offset();
        for (int i = 0; i < t.size(); i++) {
            set(t, o + i, host[hostOffset + i]);
        }
    }

    @Override
    public void copyIn(double[] host, int hostOffset, Tensor t) {
        int o = (int) t.offset();
        for (int i = 0; i < t.size(); i++) {
            set(t, o + i, host[hostOffset + i]);
        }
    }

    @Override
    public void copyOut(Tensor t, float[] host, int hostOffset) {
        int o = (int) t.offset();
        for (int i = 0; i < t.size(); i++) {
            host[hostOffset + i] = (float) get(t, o + i);
        }
    }

    @Override
    public void copyOut(Tensor t, double[] host, int hostOffset) {
        int o = (int) t.offset();
        for (int i = 0; i < t.size(); i++) {
            host[hostOffset + i] = get(t, o + i);
        }
    }

    @Override
    public void fill(Tensor t, double value) {
        int o = (int) t.offset();
        if (t.storage() instanceof float[] f) {
            Arrays.fill(f, o, o + (int) t.size(), (float) value);
        } else {
            Arrays.fill((double[]) t.storage(), o, o + (int) t.size(), value);
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        for (int i = 0; i < src.size(); i++) {
            set(dst, (int) dst.offset() + i, get(src, (int) src.offset() + i));
        }
    }

    private static double get(Tensor t, int i) {
        return t.storage() instanceof float[] f ? f[i] : ((double[]) t.storage())[i];
    }

    private static void set(Tensor t, int i, double v) {
        if (t.storage() instanceof float[] f) {
            f[i] = (float) v;
        } else {
            ((double[]) t.storage())[i] = v;
        }
    }

    private static UnsupportedOperationException noCompute() {
        return new UnsupportedOperationException("the test memory backend computes nothing");
    }

    @Override public void conv2dForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad) { throw noCompute(); }
    @Override public void conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int pad) { throw noCompute(); }
    @Override public void conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad) { throw noCompute(); }
    @Override public void maxPool2x2Forward(Tensor x, Tensor y) { throw noCompute(); }
    @Override public void maxPool2x2Backward(Tensor x, Tensor y, Tensor dy, Tensor dx) { throw noCompute(); }
    @Override public void reluForward(Tensor x, Tensor y) { throw noCompute(); }
    @Override public void reluBackward(Tensor y, Tensor dy, Tensor dx) { throw noCompute(); }
    @Override public void lrnForward(Tensor x, Tensor y, Tensor scale, int size, double alpha, double beta, double k) { throw noCompute(); }
    @Override public void lrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, double alpha, double beta, double k) { throw noCompute(); }
    @Override public void dropoutForward(Tensor x, Tensor y, Tensor mask, double p, long seed) { throw noCompute(); }
    @Override public void multiply(Tensor a, Tensor b, Tensor y) { throw noCompute(); }
    @Override public void batchNormForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean, Tensor runningVar,
                                                   Tensor saveMean, Tensor saveInvStd, double momentum, double eps) { throw noCompute(); }
    @Override public void batchNormForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean, Tensor runningVar,
                                                    double eps) { throw noCompute(); }
    @Override public void batchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
                                            Tensor dgamma, Tensor dbeta) { throw noCompute(); }
    @Override public void gemm(boolean transA, boolean transB, double alpha, Tensor a, Tensor b, double beta, Tensor c) { throw noCompute(); }
    @Override public void addBias(Tensor y, Tensor bias) { throw noCompute(); }
    @Override public void biasBackward(Tensor dy, Tensor db) { throw noCompute(); }
    @Override public void axpy(double alpha, Tensor x, Tensor y) { throw noCompute(); }
    @Override public void scale(Tensor x, double alpha) { throw noCompute(); }
    @Override public void softmax(Tensor logits, Tensor probs) { throw noCompute(); }
    @Override public double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor dlogits) { throw noCompute(); }
    @Override public void sgdStep(Tensor param, Tensor grad, Tensor velocity, double lr, double momentum, double weightDecay,
                                  long decayedCount) { throw noCompute(); }
    @Override public double sumOfSquares(Tensor x) { throw noCompute(); }

    /** All values of a tensor as doubles (test convenience). */
    public static double[] values(Tensor t) {
        double[] d = new double[Math.toIntExact(t.size())];
        t.backend().copyOut(t, d, 0);
        return d;
    }
}
