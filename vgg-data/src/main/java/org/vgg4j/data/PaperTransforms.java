package org.vgg4j.data;

/**
 * The paper's ImageNet transforms for a training run on image folders, wired in one place (the command line's
 * {@code --data DIR} and library callers both take them from here):
 * <ul>
 *   <li>{@link #training}: the §3.1 augmentation ({@link TrainTransform}): shorter side rescaled to S, fixed or
 *       drawn from [sMin, sMax], a random crop x crop window, a random mirror, AlexNet's PCA colour shift with
 *       sigma 0.1, ImageNet's mean RGB subtracted;</li>
 *   <li>{@link #validation}: the centred crop x crop window at the single test scale the paper pairs with that
 *       training (§4.1): Q = S for fixed S, Q = (sMin + sMax) / 2 for scale jittering.</li>
 * </ul>
 * Both output (3, crop, crop) CHW floats.
 */
public final class PaperTransforms {
    private PaperTransforms() {
    }

    /** The training augmentation at S in [sMin, sMax] (sMin = sMax: fixed S) with crop x crop windows. */
    public static SampleTransform training(int sMin, int sMax, int crop) {
        return SampleTransform.train(new TrainTransform(sMin, sMax, crop, true, 0.1, ColourPca.IMAGENET,
                Normalization.IMAGENET_MEAN_RGB));
    }

    /** The validation view for a model trained at S in [sMin, sMax]: centred crop at Q = (sMin + sMax) / 2. */
    public static SampleTransform validation(int sMin, int sMax, int crop) {
        return SampleTransform.centreCrop(testScale(sMin, sMax), crop, Normalization.IMAGENET_MEAN_RGB);
    }

    /** Q = (sMin + sMax) / 2, rounded down. */
    public static int testScale(int sMin, int sMax) {
        return (sMin + sMax) / 2;
    }
}
