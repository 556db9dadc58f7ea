package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.Safetensors;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;

/** Initialisation from a file ({@code --init-from}) takes a torchvision {@code .pth} as well as safetensors. */
class InitializationTest {
    /** Written by real torch.save (scripts/make_pth_fixtures.py), with torch's own values beside it. */
    private static final Path PTH = Path.of("..", "vgg-core", "src", "test", "resources", "pth");
    private static final VggSpec VGG11_BN_NARROW = new VggSpec(VggConfig.A, true, 10, 32, 1.0 / 32, 16, 0.0, 0);

    @Test
    void fromCheckpointLoadsATorchvisionPthInEitherFormat() throws Exception {
        for (String file : new String[] {"vgg11_bn_narrow.pth", "vgg11_bn_narrow_legacy.pth"}) {
            assertTrue(Files.isRegularFile(PTH.resolve(file)), "fixture " + PTH.resolve(file).toAbsolutePath());
            Recipe recipe = Recipe.builder().name("t").batchSize(8).baseLr(0.01).schedule(new Schedule.Constant())
                    .maxEpochs(1).init(Recipe.Init.FROM_CHECKPOINT).initFrom(PTH.resolve(file)).build();
            try (Backend b = Backends.create("reference");
                 Network net = Vgg.build(b, DType.FLOAT32, VGG11_BN_NARROW);
                 Safetensors.Reader torch = Safetensors.open(PTH.resolve("expected.safetensors"))) {
                recipe.initialization(VGG11_BN_NARROW).apply(net);
                for (String key : new String[] {"features.0.weight", "features.1.running_var", "classifier.6.bias"}) {
                    float[] ours = new float[Math.toIntExact(net.params().get(key).value().size())];
                    b.copyOut(net.params().get(key).value(), ours, 0);
                    double[] want = torch.readDoubles("vgg11_bn_narrow.pth/" + key);
                    double[] got = new double[ours.length];
                    for (int i = 0; i < ours.length; i++) {
                        got[i] = ours[i];
                    }
                    assertArrayEquals(want, got, file + " " + key);
                }
            }
        }
    }
}
