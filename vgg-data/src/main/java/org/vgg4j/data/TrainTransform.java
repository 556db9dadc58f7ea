package org.vgg4j.data;

import java.util.SplittableRandom;

/**
 * The paper's training augmentation (§3.1): rescale isotropically so the shorter side is S (S fixed, or drawn
 * per image uniformly from the integers [sMin, sMax]: scale jittering), take a random crop x crop window, flip it
 * horizontally with probability 1/2, add AlexNet's PCA colour shift, subtract the mean RGB. Output: float CHW
 * (3, crop, crop) written into a caller's buffer.
 *
 * <p>Random draws, in this order, from the generator given: S (only when jittering), crop top-left x then y,
 * flip, then three N(0,1) colour alphas (only when sigma > 0). Immutable and thread-safe; the scratch state lives
 * in the {@link Resampler} passed in.
 *
 * @param sMin     smallest shorter side (256 in the paper's single-scale runs)
 * @param sMax     largest shorter side (= sMin for fixed S; 512 for the paper's multi-scale training)
 * @param crop     output side (224)
 * @param flip     whether to flip at random
 * @param pcaSigma standard deviation of the colour alphas (0.1; 0 disables the colour shift)
 * @param pca      eigenpairs for the colour shift
 * @param norm     mean RGB subtraction (and optional std)
 */
public record TrainTransform(int sMin, int sMax, int crop, boolean flip, double pcaSigma, ColourPca pca,
                             Normalization norm) {
    public TrainTransform {
        if (crop < 1 || sMin < crop || sMax < sMin) {
            throw new IllegalArgumentException("scale range [" + sMin + ", " + sMax + "] and crop " + crop
                    + ": need 1 <= crop <= sMin <= sMax");
        }
        if (!(pcaSigma >= 0)) {
            throw new IllegalArgumentException("pcaSigma " + pcaSigma + " must be >= 0");
        }
    }

    /** Fixed S, 224 crops, flips, colour shift sigma 0.1 with ImageNet's PCA, ImageNet's mean RGB. */
    public static TrainTransform paper(int s) {
        return new TrainTransform(s, s, 224, true, 0.1, ColourPca.IMAGENET, Normalization.IMAGENET_MEAN_RGB);
    }

    /** Scale jittering S ~ U[sMin, sMax], otherwise as {@link #paper(int)}. */
    public static TrainTransform paperJittered(int sMin, int sMax) {
        return new TrainTransform(sMin, sMax, 224, true, 0.1, ColourPca.IMAGENET, Normalization.IMAGENET_MEAN_RGB);
    }

    public TrainTransform withNormalization(Normalization n) {
        return new TrainTransform(sMin, sMax, crop, flip, pcaSigma, pca, n);
    }

    public TrainTransform withPcaSigma(double sigma) {
        return new TrainTransform(sMin, sMax, crop, flip, sigma, pca, norm);
    }

    /** Floats per output sample: 3 * crop * crop. */
    public int outputSize() {
        return 3 * crop * crop;
    }

    /**
     * The source window that {@link #apply} will read of a width x height image given the same generator state
     * (it makes the same draws, on the generator handed in): the decoder may decode just that. An image the
     * transform cannot handle answers the whole image, so that {@link #apply} reports it as before.
     */
    public ImageDecoder.Region regionNeeded(int width, int height, SplittableRandom rng) {
        try {
            int s = sMin == sMax ? sMin : sMin + rng.nextInt(sMax - sMin + 1);
            int[] size = Resampler.shorterSideTo(width, height, s);
            int x0 = rng.nextInt(size[0] - crop + 1);
            int y0 = rng.nextInt(size[1] - crop + 1);
            int[] cols = Resampler.sourceRange(width, size[0], x0, crop); // a flip mirrors the output, not these
            int[] rows = Resampler.sourceRange(height, size[1], y0, crop);
            return new ImageDecoder.Region(cols[0], rows[0], cols[1] - cols[0], rows[1] - rows[0]);
        } catch (IllegalArgumentException e) {
            return ImageDecoder.Region.whole(width, height);
        }
    }

    /** Augments {@code src} with draws from {@code rng} into {@code dst[off .. off + outputSize())}. */
    public void apply(RgbImage src, SplittableRandom rng, Resampler resampler, float[] dst, int off) {
        int s = sMin == sMax ? sMin : sMin + rng.nextInt(sMax - sMin + 1);
        int[] size = Resampler.shorterSideTo(src.width(), src.height(), s);
        int x0 = rng.nextInt(size[0] - crop + 1);
        int y0 = rng.nextInt(size[1] - crop + 1);
        boolean mirror = flip && rng.nextBoolean();
        float[] shift = pcaSigma > 0 ? pca.draw(rng, pcaSigma) : null;
        resampler.resizeWindow(src, size[0], size[1], x0, y0, crop, crop, mirror, shift, norm, dst, off);
    }
}
