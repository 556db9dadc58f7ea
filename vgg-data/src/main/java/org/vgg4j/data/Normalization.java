package org.vgg4j.data;

import java.util.Arrays;

/**
 * Per-channel affine map applied to pixel values on the 0..255 scale: {@code (v - mean[c]) / std[c]}.
 * {@link #IMAGENET_MEAN_RGB} is the paper's preprocessing (mean subtraction only); {@link #TORCHVISION} matches
 * the normalisation torchvision's pretrained VGG weights expect.
 */
public record Normalization(float[] mean, float[] std) {
    /**
     * The paper's "subtracting the mean RGB value, computed on the training set" with ImageNet's mean as published
     * with the authors' Caffe models (VGG_ILSVRC_16_layers: BGR 103.939, 116.779, 123.68).
     */
    public static final Normalization IMAGENET_MEAN_RGB = new Normalization(
            new float[] {123.68f, 116.779f, 103.939f}, new float[] {1f, 1f, 1f});

    /** torchvision's ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), here on 0..255. */
    public static final Normalization TORCHVISION = new Normalization(
            new float[] {0.485f * 255f, 0.456f * 255f, 0.406f * 255f}, new float[] {0.229f * 255f, 0.224f * 255f, 0.225f * 255f});

    /** Raw 0..255 values. */
    public static final Normalization NONE = new Normalization(new float[3], new float[] {1f, 1f, 1f});

    public Normalization {
        if (mean.length != 3 || std.length != 3) {
            throw new IllegalArgumentException("mean " + Arrays.toString(mean) + " and std " + Arrays.toString(std)
                    + " must have 3 entries (R, G, B)");
        }
        for (float s : std) {
            if (!(s > 0)) {
                throw new IllegalArgumentException("std " + Arrays.toString(std) + " must be > 0");
            }
        }
        mean = mean.clone();
        std = std.clone();
    }

    /** Mean subtraction only, with the given mean RGB (0..255). */
    public static Normalization meanRgb(double r, double g, double b) {
        return new Normalization(new float[] {(float) r, (float) g, (float) b}, new float[] {1f, 1f, 1f});
    }
}
