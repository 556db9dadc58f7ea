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

    /**
     * The source window {@link #apply} reads of a width x height image when handed a generator in the state of
     * {@code rng} (which this call may advance: pass a twin of apply's generator). A decoder may decode just
     * that; the default is the whole image.
     */
    default ImageDecoder.Region regionNeeded(int width, int height, SplittableRandom rng) {
        return ImageDecoder.Region.whole(width, height);
    }

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
            public ImageDecoder.Region regionNeeded(int w, int h, SplittableRandom rng) {
                return t.regionNeeded(w, h, rng);
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
