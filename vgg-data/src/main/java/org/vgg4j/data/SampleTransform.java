package org.vgg4j.data;

import java.util.SplittableRandom;

/**
 * Turns one decoded image into one float CHW example of a fixed shape, drawing any randomness from the generator
 * it is handed (keyed per sample by the pipeline). Implementations must be stateless apart from the
 * {@link Resampler} scratch passed in, so they can run on several threads.
 */
public interface SampleTransform {
    int channels();

    int height();

    int width();

    void apply(RgbImage src, SplittableRandom rng, Resampler resampler, float[] dst, int off);

    /** The paper's training augmentation. */
    static SampleTransform train(TrainTransform t) {
        return new SampleTransform() {
            @Override
            public int channels() {
                return 3;
            }

            @Override
            public int height() {
                return t.crop();
            }

            @Override
            public int width() {
                return t.crop();
            }

            @Override
            public void apply(RgbImage src, SplittableRandom rng, Resampler r, float[] dst, int off) {
                t.apply(src, rng, r, dst, off);
            }

            @Override
            public String toString() {
                return t.toString();
            }
        };
    }

    /** Validation view: shorter side to {@code q}, centred {@code crop}, no randomness. */
    static SampleTransform centreCrop(int q, int crop, Normalization norm) {
        if (q < crop) {
            throw new IllegalArgumentException("test scale Q " + q + " is smaller than the crop " + crop);
        }
        return new SampleTransform() {
            @Override
            public int channels() {
                return 3;
            }

            @Override
            public int height() {
                return crop;
            }

            @Override
            public int width() {
                return crop;
            }

            @Override
            public void apply(RgbImage src, SplittableRandom rng, Resampler r, float[] dst, int off) {
                TestTransforms.centreCrop(src, q, crop, false, norm, r, dst, off);
            }
        };
    }
}
