package org.vgg4j.core.backend.cpu;

import org.vgg4j.core.backend.Buf;
import org.vgg4j.core.tensor.Tensor;

/**
 * The normalisation ops of the {@code cpu} backend: local response normalisation and batch normalisation, written
 * once against {@link Buf} (float32 and float64, computed in double), batch normalisation's float32 element loops
 * and sums in {@link F32BatchNorm}. Semantics are the {@link org.vgg4j.core.backend.Backend} SPI's; {@link
 * CpuBackend} checks that the tensors are its own before it calls in. Each output element, and each partial sum, is
 * computed by one thread ({@link Parallel}) in a fixed order, and partial sums are combined in a fixed order.
 */
final class NormLoops {
    private NormLoops() {
    }

    static void lrnForward(Tensor x, Tensor y, Tensor scale, int size, double alpha, double beta, double k) {
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf sb = buf(scale);
        int xo = off(x);
        int yo = off(y);
        int so = off(scale);
        int c = x.dim(1);
        int hw = n(x) / (x.dim(0) * c);
        int lo = size / 2;
        int hi = (size - 1) / 2;
        Parallel.forRange(x.dim(0) * hw, 256, (from, to) -> {
            for (int pix = from; pix < to; pix++) {
                int base = (pix / hw) * c * hw + pix % hw; // element (n, 0, h, w)
                for (int ch = 0; ch < c; ch++) {
                    double sum = 0;
                    for (int cc = Math.max(0, ch - lo); cc <= Math.min(c - 1, ch + hi); cc++) {
                        double v = xb.get(xo + base + cc * hw);
                        sum += v * v;
                    }
                    double s = k + alpha / size * sum;
                    sb.set(so + base + ch * hw, s);
                    yb.set(yo + base + ch * hw, xb.get(xo + base + ch * hw) * Math.pow(s, -beta));
                }
            }
        });
    }

    static void lrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, double alpha, double beta,
                            double k) {
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf sb = buf(scale);
        Buf gb = buf(dy);
        Buf db = buf(dx);
        int xo = off(x);
        int yo = off(y);
        int so = off(scale);
        int go = off(dy);
        int dOff = off(dx);
        int c = x.dim(1);
        int hw = n(x) / (x.dim(0) * c);
        int lo = size / 2;
        int hi = (size - 1) / 2;
        double factor = 2 * alpha * beta / size;
        Parallel.forRange(x.dim(0) * hw, 256, (from, to) -> {
            for (int pix = from; pix < to; pix++) {
                int base = (pix / hw) * c * hw + pix % hw;
                for (int ch = 0; ch < c; ch++) {
                    // channel ch lies in the window of every c' in [ch - hi, ch + lo]
                    double sum = 0;
                    for (int cc = Math.max(0, ch - hi); cc <= Math.min(c - 1, ch + lo); cc++) {
                        int e = base + cc * hw;
                        sum += gb.get(go + e) * yb.get(yo + e) / sb.get(so + e);
                    }
                    int e = base + ch * hw;
                    double v = gb.get(go + e) * Math.pow(sb.get(so + e), -beta) - factor * xb.get(xo + e) * sum;
                    db.set(dOff + e, v);
                }
            }
        });
    }

    /**
     * Training forward over {@code threads} threads at most (the backend passes {@link Parallel#THREADS}; tests vary
     * it). Float32 tensors take {@link F32BatchNorm}'s loops, float64 the generic ones below.
     */
    static void batchNormForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                         Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum,
                                         double eps, int threads) {
        batchNormForwardTraining(x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd, momentum, eps,
                false, threads);
    }

    /**
     * The training forward, with {@code relu}: y = max(BN(x), 0) in the same pass that writes y, the bits of
     * BN then {@link BufLoops#reluForward} (NaN kept, -0 to +0); the statistics are those of x either way.
     */
    static void batchNormForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                         Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum,
                                         double eps, boolean relu, int threads) {
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        long m = (long) nb * hw;
        double[] mean = new double[c];
        double[] sq = new double[c]; // sum of squared deviations from the mean
        if (buf(x) instanceof Buf.F32 fx) {
            F32BatchNorm.moments(fx.b(), off(x), nb, c, hw, mean, sq, threads);
        } else {
            moments(buf(x), off(x), nb, c, hw, mean, sq, threads);
        }
        double[] inv = new double[c];
        Buf rm = buf(runningMean);
        Buf rv = buf(runningVar);
        for (int ch = 0; ch < c; ch++) {
            double var = sq[ch] / m;
            inv[ch] = 1.0 / Math.sqrt(var + eps);
            double unbiased = m > 1 ? sq[ch] / (m - 1) : var;
            rm.set(off(runningMean) + ch, (1 - momentum) * rm.get(off(runningMean) + ch) + momentum * mean[ch]);
            rv.set(off(runningVar) + ch, (1 - momentum) * rv.get(off(runningVar) + ch) + momentum * unbiased);
            buf(saveMean).set(off(saveMean) + ch, mean[ch]);
            buf(saveInvStd).set(off(saveInvStd) + ch, inv[ch]);
        }
        normalise(x, y, mean, inv, channels(gamma, c), channels(beta, c), relu, threads);
    }

    static void batchNormForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                          Tensor runningVar, double eps, int threads) {
        batchNormForwardInference(x, gamma, beta, y, runningMean, runningVar, eps, false, threads);
    }

    /** The inference forward, with {@code relu} as in the training forward. */
    static void batchNormForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                          Tensor runningVar, double eps, boolean relu, int threads) {
        int c = x.dim(1);
        double[] mean = channels(runningMean, c);
        double[] inv = channels(runningVar, c);
        for (int ch = 0; ch < c; ch++) {
            inv[ch] = 1.0 / Math.sqrt(inv[ch] + eps);
        }
        normalise(x, y, mean, inv, channels(gamma, c), channels(beta, c), relu, threads);
    }

    static void batchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
                                  Tensor dgamma, Tensor dbeta, int threads) {
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        double[] mean = channels(saveMean, c);
        double[] inv = channels(saveInvStd, c);
        double[] g = channels(gamma, c);
        double[] sumDy = new double[c];
        double[] sumDyXhat = new double[c];
        if (buf(x) instanceof Buf.F32 fx && buf(dy) instanceof Buf.F32 fg && buf(dx) instanceof Buf.F32 fd) {
            F32BatchNorm.gradientSums(fx.b(), off(x), fg.b(), off(dy), nb, c, hw, mean, inv, sumDy, sumDyXhat, threads);
            F32BatchNorm.inputGradient(fx.b(), off(x), fg.b(), off(dy), fd.b(), off(dx), nb, c, hw, mean, inv, g, sumDy,
                    sumDyXhat, threads);
        } else {
            backward(x, dy, dx, mean, inv, g, sumDy, sumDyXhat, threads);
        }
        for (int ch = 0; ch < c; ch++) {
            buf(dgamma).add(off(dgamma) + ch, sumDyXhat[ch]);
            buf(dbeta).add(off(dbeta) + ch, sumDy[ch]);
        }
    }

    /** Per channel of x (N, C, H*W) at xo: the mean and the sum of squared deviations from it (two passes). */
    private static void moments(Buf xb, int xo, int nb, int c, int hw, double[] mean, double[] sq, int threads) {
        long m = (long) nb * hw;
        Parallel.forRange(c, 1, threads, (from, to) -> {
            for (int ch = from; ch < to; ch++) {
                double sum = 0;
                for (int i = 0; i < nb; i++) {
                    int base = xo + (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        sum += xb.get(base + j);
                    }
                }
                double mu = sum / m;
                double q = 0;
                for (int i = 0; i < nb; i++) {
                    int base = xo + (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        double d = xb.get(base + j) - mu;
                        q += d * d;
                    }
                }
                mean[ch] = mu;
                sq[ch] = q;
            }
        });
    }

    /**
     * y = gamma * (x - mean) * inv + beta per channel, then max(y, 0) when {@code relu}, one (n, c) plane per work
     * item.
     */
    private static void normalise(Tensor x, Tensor y, double[] mean, double[] inv, double[] gamma, double[] beta,
                                  boolean relu, int threads) {
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        if (buf(x) instanceof Buf.F32 fx && buf(y) instanceof Buf.F32 fy) {
            F32BatchNorm.normalise(fx.b(), off(x), fy.b(), off(y), nb, c, hw, mean, inv, gamma, beta, relu, threads);
            return;
        }
        Buf xb = buf(x);
        Buf yb = buf(y);
        int xo = off(x);
        int yo = off(y);
        Parallel.forRange(nb * c, 1, threads, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int ch = plane % c;
                int base = plane * hw;
                for (int j = 0; j < hw; j++) {
                    double v = gamma[ch] * (xb.get(xo + base + j) - mean[ch]) * inv[ch] + beta[ch];
                    yb.set(yo + base + j, relu ? Math.max(v, 0.0) : v); // BufLoops.reluForward's max
                }
            }
        });
    }

    /**
     * The generic backward: per channel the sums of dy and of dy * xhat, xhat = (x - mean) * inv, then
     * dx = gamma * inv / m * (m * dy - sumDy - xhat * sumDyXhat), one (n, c) plane per work item.
     */
    private static void backward(Tensor x, Tensor dy, Tensor dx, double[] mean, double[] inv, double[] gamma,
                                 double[] sumDy, double[] sumDyXhat, int threads) {
        Buf xb = buf(x);
        Buf gyb = buf(dy);
        Buf dxb = buf(dx);
        int xo = off(x);
        int go = off(dy);
        int dOff = off(dx);
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        long m = (long) nb * hw;
        Parallel.forRange(c, 1, threads, (from, to) -> {
            for (int ch = from; ch < to; ch++) {
                double sd = 0;
                double sdx = 0;
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        double g = gyb.get(go + base + j);
                        sd += g;
                        sdx += g * (xb.get(xo + base + j) - mean[ch]) * inv[ch];
                    }
                }
                sumDy[ch] = sd;
                sumDyXhat[ch] = sdx;
            }
        });
        Parallel.forRange(nb * c, 1, threads, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int ch = plane % c;
                double k = gamma[ch] * inv[ch] / m;
                int base = plane * hw;
                for (int j = 0; j < hw; j++) {
                    double xhat = (xb.get(xo + base + j) - mean[ch]) * inv[ch];
                    dxb.set(dOff + base + j, k * (m * gyb.get(go + base + j) - sumDy[ch] - xhat * sumDyXhat[ch]));
                }
            }
        });
    }

    /** The c values of a per-channel tensor (C), as doubles. */
    private static double[] channels(Tensor t, int c) {
        double[] v = new double[c];
        Buf b = buf(t);
        for (int ch = 0; ch < c; ch++) {
            v[ch] = b.get(off(t) + ch);
        }
        return v;
    }

    /** The Buf of a tensor the backend has checked to be its own. */
    private static Buf buf(Tensor t) {
        return CpuStorage.of(t).buf;
    }

    private static int off(Tensor t) {
        return Math.toIntExact(t.offset());
    }

    private static int n(Tensor t) {
        return Math.toIntExact(t.size());
    }
}
