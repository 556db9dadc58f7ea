package org.vgg4j.data;

/**
 * Accumulates the mean RGB and the RGB covariance of a set of images (pixel scale [0,1]) and gives the mean for
 * {@link Normalization} and the eigenpairs for {@link ColourPca}: what the paper computes "on the training set".
 * Sums in double; one instance per thread, then {@link #merge}.
 */
public final class ColourStats {
    private long n;
    private final double[] sum = new double[3];      // (C)
    private final double[] cross = new double[9];    // (C,C) sums of products

    public void add(RgbImage im) {
        byte[] px = im.pixels();
        double s0 = 0, s1 = 0, s2 = 0, p00 = 0, p01 = 0, p02 = 0, p11 = 0, p12 = 0, p22 = 0;
        for (int i = 0; i < px.length; i += 3) {
            double r = (px[i] & 0xFF) / 255.0;
            double g = (px[i + 1] & 0xFF) / 255.0;
            double b = (px[i + 2] & 0xFF) / 255.0;
            s0 += r;
            s1 += g;
            s2 += b;
            p00 += r * r;
            p01 += r * g;
            p02 += r * b;
            p11 += g * g;
            p12 += g * b;
            p22 += b * b;
        }
        n += px.length / 3;
        sum[0] += s0;
        sum[1] += s1;
        sum[2] += s2;
        double[] p = {p00, p01, p02, p01, p11, p12, p02, p12, p22};
        for (int k = 0; k < 9; k++) {
            cross[k] += p[k];
        }
    }

    public void merge(ColourStats o) {
        n += o.n;
        for (int c = 0; c < 3; c++) {
            sum[c] += o.sum[c];
        }
        for (int k = 0; k < 9; k++) {
            cross[k] += o.cross[k];
        }
    }

    public long pixels() {
        return n;
    }

    /** Mean R, G, B on [0,1]. */
    public double[] mean() {
        requirePixels();
        return new double[] {sum[0] / n, sum[1] / n, sum[2] / n};
    }

    /** The (C,C) covariance, row-major, on [0,1]. */
    public double[] covariance() {
        double[] m = mean();
        double[] cov = new double[9];
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) {
                cov[3 * i + j] = cross[3 * i + j] / n - m[i] * m[j];
            }
        }
        return cov;
    }

    /** Eigenpairs of the covariance, eigenvalues descending, eigenvectors as columns. */
    public ColourPca pca() {
        return eigen(covariance());
    }

    /** Cyclic Jacobi eigen-decomposition of a symmetric 3x3 matrix (row-major). */
    static ColourPca eigen(double[] sym) {
        double[] a = sym.clone();
        double[] v = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        for (int sweep = 0; sweep < 50; sweep++) {
            double off = a[1] * a[1] + a[2] * a[2] + a[5] * a[5];
            if (off < 1e-30) {
                break;
            }
            for (int p = 0; p < 2; p++) {
                for (int q = p + 1; q < 3; q++) {
                    double apq = a[3 * p + q];
                    if (Math.abs(apq) < 1e-300) {
                        continue;
                    }
                    double theta = (a[3 * q + q] - a[3 * p + p]) / (2 * apq);
                    double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
                    if (theta == 0) {
                        t = 1;
                    }
                    double c = 1 / Math.sqrt(t * t + 1);
                    double s = t * c;
                    for (int k = 0; k < 3; k++) { // A <- A J (columns p, q)
                        double akp = a[3 * k + p];
                        double akq = a[3 * k + q];
                        a[3 * k + p] = c * akp - s * akq;
                        a[3 * k + q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < 3; k++) { // A <- J^T A (rows p, q)
                        double apk = a[3 * p + k];
                        double aqk = a[3 * q + k];
                        a[3 * p + k] = c * apk - s * aqk;
                        a[3 * q + k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < 3; k++) { // V <- V J
                        double vkp = v[3 * k + p];
                        double vkq = v[3 * k + q];
                        v[3 * k + p] = c * vkp - s * vkq;
                        v[3 * k + q] = s * vkp + c * vkq;
                    }
                }
            }
        }
        Integer[] order = {0, 1, 2};
        java.util.Arrays.sort(order, (x, y) -> Double.compare(a[4 * y], a[4 * x]));
        double[] vals = new double[3];
        double[] vecs = new double[9];
        for (int i = 0; i < 3; i++) {
            vals[i] = a[4 * order[i]];
            for (int r = 0; r < 3; r++) {
                vecs[3 * r + i] = v[3 * r + order[i]];
            }
        }
        return new ColourPca(vals, vecs);
    }

    private void requirePixels() {
        if (n == 0) {
            throw new IllegalStateException("no pixels accumulated");
        }
    }
}
