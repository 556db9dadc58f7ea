package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

class PaperTransformsTest {

    @Test
    void trainingIsThePapersAugmentationAtTheGivenScalesAndCrop() {
        RgbImage src = TransformsTest.ramp(90, 60);
        SampleTransform t = PaperTransforms.training(40, 80, 32);
        TrainTransform want = new TrainTransform(40, 80, 32, true, 0.1, ColourPca.IMAGENET, Normalization.IMAGENET_MEAN_RGB);
        assertEquals(3, t.channels());
        assertEquals(32, t.height());
        assertEquals(32, t.width());
        for (int seed = 0; seed < 5; seed++) {
            float[] got = new float[want.outputSize()];
            float[] exp = new float[want.outputSize()];
            t.apply(src, new SplittableRandom(seed), new Resampler(), got, 0);
            want.apply(src, new SplittableRandom(seed), new Resampler(), exp, 0);
            assertArrayEquals(exp, got, "seed " + seed);
        }
    }

    @Test
    void validationIsTheCentreCropAtTheMiddleOfTheTrainingScales() {
        RgbImage src = TransformsTest.ramp(90, 60);
        assertEquals(60, PaperTransforms.testScale(40, 80));
        assertEquals(256, PaperTransforms.testScale(256, 256));
        float[] got = new float[3 * 32 * 32];
        float[] exp = new float[3 * 32 * 32];
        PaperTransforms.validation(40, 80, 32).apply(src, new SplittableRandom(1), new Resampler(), got, 0);
        TestTransforms.centreCrop(src, 60, 32, false, Normalization.IMAGENET_MEAN_RGB, new Resampler(), exp, 0);
        assertArrayEquals(exp, got);
    }

    @Test
    void aCropLargerThanTheScaleIsRefusedNamingBoth() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PaperTransforms.training(200, 200, 224));
        assertTrue(e.getMessage().contains("200") && e.getMessage().contains("224"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> PaperTransforms.validation(200, 200, 224));
        assertTrue(e.getMessage().contains("200") && e.getMessage().contains("224"), e.getMessage());
    }
}
