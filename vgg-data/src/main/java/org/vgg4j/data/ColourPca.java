package org.vgg4j.data;

import java.util.Arrays;
import java.util.random.RandomGenerator;

/**
 * AlexNet's colour augmentation ("PCA on the set of RGB pixel values", Krizhevsky et al. 2012, §4.1), used by
 * VGG (§3.1): each image gets {@code sum_i alpha_i * lambda_i * p_i} added to every RGB pixel, with
 * {@code alpha_i ~ N(0, sigma)}, sigma 0.1, (lambda_i, p_i) the eigenpairs of the RGB covariance.
 *
 * @param eigenvalues  (3) on the [0,1] pixel scale
 * @param eigenvectors (3,3) row-major, column i is the eigenvector p_i, rows are R, G, B
 */
public record ColourPca(double[] eigenvalues, double[] eigenvectors) {
    /**
     * ImageNet's eigenpairs as published with Facebook's fb.resnet.torch training code (datasets/imagenet.lua,
     * "pca" table, computed on ImageNet's training set, pixel scale [0,1]); the same figures torchvision-based
     * reference scripts use.
     */
    public static final ColourPca IMAGENET = new ColourPca(
            new double[] {0.2175, 0.0188, 0.0045},
            new double[] {-0.5675, 0.7192, 0.4009,
                          -0.5808, -0.0045, -0.8140,
                          -0.5836, -0.6948, 0.4203});

    public ColourPca {
        if (eigenvalues.length != 3 || eigenvectors.length != 9) {
            throw new IllegalArgumentException("need 3 eigenvalues and a 3x3 eigenvector matrix, got "
                    + eigenvalues.length + " and " + eigenvectors.length + " entries");
        }
        eigenvalues = eigenvalues.clone();
        eigenvectors = eigenvectors.clone();
    }

    /** The RGB shift (0..255 scale) for the given alphas: {@code 255 * V (alpha .* lambda)}. */
    public float[] shift(double a0, double a1, double a2) {
        double[] a = {a0 * eigenvalues[0], a1 * eigenvalues[1], a2 * eigenvalues[2]};
        float[] s = new float[3];
        for (int c = 0; c < 3; c++) {
            s[c] = (float) (255.0 * (eigenvectors[3 * c] * a[0] + eigenvectors[3 * c + 1] * a[1] + eigenvectors[3 * c + 2] * a[2]));
        }
        return s;
    }

    /** Draws three alphas ~ N(0, sigma) from {@code rng} (in order 0, 1, 2) and returns the shift. */
    public float[] draw(RandomGenerator rng, double sigma) {
        double a0 = rng.nextGaussian() * sigma;
        double a1 = rng.nextGaussian() * sigma;
        double a2 = rng.nextGaussian() * sigma;
        return shift(a0, a1, a2);
    }

    @Override
    public String toString() {
        return "ColourPca{eigenvalues=" + Arrays.toString(eigenvalues) + ", eigenvectors=" + Arrays.toString(eigenvectors) + "}";
    }
}
