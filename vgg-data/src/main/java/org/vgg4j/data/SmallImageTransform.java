package org.vgg4j.data;

import java.util.SplittableRandom;

/**
 * Augmentation for small images such as Fashion-MNIST (28x28), the CIFAR-style recipe: the image is placed in the
 * middle of a side x side canvas (28 in 32 leaves a 2-pixel border), shifted by a random offset in
 * [-pad, pad] on each axis (pixels leaving the canvas are dropped, uncovered pixels are black: "pad and random
 * crop"), mirrored with probability 1/2, and normalised as (v/255 - mean) / std. No resampling. With pad 0 and no
 * flip it is the deterministic test view. Draws, in this order: dx, dy, flip.
 * Not the paper's ImageNet augmentation (that is {@link TrainTransform}).
 *
 * <p>Output (3, side, side) CHW; grey images give three equal channels. Legend: H, W source height/width.
 */
public record SmallImageTransform(int side, int pad, boolean flip, float[] mean, float[] std) implements SampleTransform {

    public SmallImageTransform {
        if (side < 1 || pad < 0) {
            throw new IllegalArgumentException("canvas side " + side + " must be >= 1 and shift " + pad + " >= 0");
        }
        if (mean.length != 3 || std.length != 3) {
            throw new IllegalArgumentException("mean and std need 3 channels, got " + mean.length + " and " + std.length);
        }
    }

    /** Same mean and std for the three channels (grey images). */
    public static SmallImageTransform grey(int side, int pad, boolean flip, double mean, double std) {
        float m = (float) mean;
        float s = (float) std;
        return new SmallImageTransform(side, pad, flip, new float[] {m, m, m}, new float[] {s, s, s});
    }

    /** The deterministic test view of this transform: centred, no shift, no mirror. */
    public SmallImageTransform testView() {
        return new SmallImageTransform(side, 0, false, mean, std);
    }

    @Override
    public int channels() {
        return 3;
    }

    @Override
    public int height() {
        return side;
    }

    @Override
    public int width() {
        return side;
    }

    @Override
    public void apply(RgbImage src, SplittableRandom rng, Resampler resampler, float[] dst, int off) {
        int dx = pad > 0 ? rng.nextInt(2 * pad + 1) - pad : 0;
        int dy = pad > 0 ? rng.nextInt(2 * pad + 1) - pad : 0;
        boolean mirror = flip && rng.nextBoolean();
        int w = src.width();
        int h = src.height();
        int x0 = (side - w) / 2 + dx; // canvas column of source column 0
        int y0 = (side - h) / 2 + dy;
        byte[] px = src.pixels(); // (H,W,3)
        for (int c = 0; c < 3; c++) {
            float black = -mean[c] / std[c];
            float scale = 1f / (255f * std[c]);
            int plane = off + c * side * side;
            for (int y = 0; y < side; y++) {
                int sy = y - y0;
                for (int x = 0; x < side; x++) {
                    int sx = x - x0;
                    if (mirror) {
                        sx = w - 1 - sx;
                    }
                    float v = black;
                    if (sy >= 0 && sy < h && sx >= 0 && sx < w) {
                        v = (px[(sy * w + sx) * 3 + c] & 0xFF) * scale - mean[c] / std[c];
                    }
                    dst[plane + y * side + x] = v;
                }
            }
        }
    }
}
