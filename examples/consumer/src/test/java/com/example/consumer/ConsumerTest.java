package com.example.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggOptions;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.SmallImageTransform;
import org.vgg4j.train.Recipes;
import org.vgg4j.train.Trainer;
import org.vgg4j.train.Training;

/**
 * What a project that only adds the dependency gets: the cpu backend with its natives for this platform, VGG-16 in
 * one line, and a narrow VGG trained for a few steps on the bundled Fashion-MNIST sample.
 */
class ConsumerTest {

    @Test
    void vgg16InOneLineOnTheCpuBackend() {
        assertTrue(Backends.names().contains("cpu"), "backends on the class path: " + Backends.names());
        try (Network vgg16 = Vgg.vgg16()) {
            assertEquals("cpu", vgg16.backend().name());
            assertEquals(138_357_544L, vgg16.params().trainedCount()); // torchvision's vgg16
            assertEquals(Shape.of(2, 1000), vgg16.outputShape(2));
        }
    }

    @Test
    void aNarrowVggTrainsAFewStepsOnTheCpu(@TempDir Path out) throws Exception {
        VggOptions narrow = VggOptions.torchvision().batchNorm(true).inputSize(32).classes(10).width(0.0625).hidden(16)
                .backend("cpu");
        IdxDataset train = new IdxDataset(FashionMnist.bundledSample(FashionMnist.Split.TRAIN), FashionMnist.CLASS_NAMES);
        SmallImageTransform shift = SmallImageTransform.grey(32, 2, true, 0.29, 0.35);
        Trainer.Result r = Training.of(VggConfig.A, narrow).data(train, shift)
                .recipe(Recipes.FASHION.toBuilder().batchSize(16).maxIterations(5).build()).out(out).run();
        assertEquals("reached 5 iterations", r.stopReason());
        assertEquals(5, r.state().step());
        assertTrue(Files.isDirectory(out.resolve("checkpoints")), "no checkpoints folder in " + out);
    }
}
