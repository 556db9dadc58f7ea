package org.vgg4j.core.backend.cpu;

import org.vgg4j.core.backend.Buf;
import org.vgg4j.core.tensor.Tensor;

/**
 * The normalisation ops of the {@code cpu} backend: local response normalisation and batch normalisation, written
 * once against {@link Buf} (float32 and float64, computed in double). Semantics are the {@link
 * org.vgg4j.core.backend.Backend} SPI's; {@link CpuBackend} checks that the tensors are its own before it calls in.
 * Each output element, and each channel's sums, are computed by one thread ({@link Parallel}) in a fixed order.
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

    static void batchNormForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                         Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum,
                                         double eps) {
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf gb = buf(gamma);
        Buf bb = buf(beta);
        Buf rm = buf(runningMean);
        Buf rv = buf(runningVar);
        Buf sm = buf(saveMean);
        Buf si = buf(saveInvStd);
        int xo = off(x);
        int yo = off(y);
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        long m = (long) nb * hw;
        Parallel.forRange(c, 1, (from, to) -> {
            for (int ch = from; ch < to; ch++) {
                double sum = 0;
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        sum += xb.get(xo + base + j);
                    }
                }
                double mean = sum / m;
                double sq = 0;
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        double d = xb.get(xo + base + j) - mean;
                        sq += d * d;
                    }
                }
                double var = sq / m;
                double inv = 1.0 / Math.sqrt(var + eps);
                double g = gb.get(off(gamma) + ch);
                double bt = bb.get(off(beta) + ch);
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        yb.set(yo + base + j, g * (xb.get(xo + base + j) - mean) * inv + bt);
                    }
                }
                double unbiased = m > 1 ? sq / (m - 1) : var;
                rm.set(off(runningMean) + ch, (1 - momentum) * rm.get(off(runningMean) + ch) + momentum * mean);
                rv.set(off(runningVar) + ch, (1 - momentum) * rv.get(off(runningVar) + ch) + momentum * unbiased);
                sm.set(off(saveMean) + ch, mean);
                si.set(off(saveInvStd) + ch, inv);
            }
        });
    }

    static void batchNormForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                          Tensor runningVar, double eps) {
        Buf xb = buf(x);
        Buf yb = buf(y);
        Buf gb = buf(gamma);
        Buf bb = buf(beta);
        Buf rm = buf(runningMean);
        Buf rv = buf(runningVar);
        int xo = off(x);
        int yo = off(y);
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        Parallel.forRange(nb * c, 1, (from, to) -> {
            for (int plane = from; plane < to; plane++) {
                int ch = plane % c;
                double mean = rm.get(off(runningMean) + ch);
                double inv = 1.0 / Math.sqrt(rv.get(off(runningVar) + ch) + eps);
                double g = gb.get(off(gamma) + ch);
                double bt = bb.get(off(beta) + ch);
                int base = plane * hw;
                for (int j = 0; j < hw; j++) {
                    yb.set(yo + base + j, g * (xb.get(xo + base + j) - mean) * inv + bt);
                }
            }
        });
    }

    static void batchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
                                  Tensor dgamma, Tensor dbeta) {
        Buf xb = buf(x);
        Buf gyb = buf(dy);
        Buf gb = buf(gamma);
        Buf sm = buf(saveMean);
        Buf si = buf(saveInvStd);
        Buf dxb = buf(dx);
        Buf dgb = buf(dgamma);
        Buf dbb = buf(dbeta);
        int xo = off(x);
        int go = off(dy);
        int dOff = off(dx);
        int nb = x.dim(0);
        int c = x.dim(1);
        int hw = n(x) / (nb * c);
        long m = (long) nb * hw;
        Parallel.forRange(c, 1, (from, to) -> {
            for (int ch = from; ch < to; ch++) {
                double mean = sm.get(off(saveMean) + ch);
                double inv = si.get(off(saveInvStd) + ch);
                double sumDy = 0;
                double sumDyXhat = 0;
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        double g = gyb.get(go + base + j);
                        sumDy += g;
                        sumDyXhat += g * (xb.get(xo + base + j) - mean) * inv;
                    }
                }
                double k = gb.get(off(gamma) + ch) * inv / m;
                for (int i = 0; i < nb; i++) {
                    int base = (i * c + ch) * hw;
                    for (int j = 0; j < hw; j++) {
                        double xhat = (xb.get(xo + base + j) - mean) * inv;
                        dxb.set(dOff + base + j, k * (m * gyb.get(go + base + j) - sumDy - xhat * sumDyXhat));
                    }
                }
                dgb.set(off(dgamma) + ch, dgb.get(off(dgamma) + ch) + sumDyXhat);
                dbb.set(off(dbeta) + ch, dbb.get(off(dbeta) + ch) + sumDy);
            }
        });
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
