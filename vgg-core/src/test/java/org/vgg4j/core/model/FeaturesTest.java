package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/** Network.featuresAt: the activations the layers' prefix computes, by torchvision name, copied out. */
class FeaturesTest {
    private static final VggOptions NARROW = VggOptions.torchvision().backend("reference").inputSize(32).width(0.0625)
            .hidden(16).classes(10).dtype(DType.FLOAT64);
    // relu1_2, relu2_2, relu3_3, relu4_3 of VGG-16 (and the BN variant's, shifted by its BatchNorms)
    private static final List<String> PERCEPTUAL = List.of("features.3", "features.8", "features.15", "features.22");
    private static final List<String> PERCEPTUAL_BN = List.of("features.5", "features.12", "features.22", "features.32");

    @Test
    void featuresEqualTheForwardOfTheLayersPrefix() {
        for (boolean bn : new boolean[] {false, true}) {
            try (Network net = Vgg.of(VggConfig.D, NARROW.batchNorm(bn).seed(5))) {
                if (bn) { // non-trivial running statistics, so evaluation mode is visible
                    net.params().entries().stream().filter(e -> e.key().endsWith("running_var"))
                            .forEach(e -> net.backend().fill(e.value(), 2.5));
                }
                Tensor x = input(net, 2, 11);
                List<String> names = bn ? PERCEPTUAL_BN : PERCEPTUAL;
                try (Features f = net.featuresAt(x, names.toArray(String[]::new))) {
                    assertEquals(names, f.names());
                    int[] channels = {4, 8, 16, 32};
                    int[] side = {32, 16, 8, 4};
                    for (int k = 0; k < names.size(); k++) {
                        String name = names.get(k);
                        assertEquals(Shape.of(2, channels[k], side[k], side[k]), f.get(name).shape(), name);
                        double[] prefix = prefix(net, x, name);
                        assertArrayEquals(prefix, doubles(net, f.get(name)), name);
                        assertTrue(java.util.Arrays.stream(prefix).allMatch(v -> v >= 0), name + " is after a ReLU");
                        assertTrue(java.util.Arrays.stream(prefix).anyMatch(v -> v > 0), name);
                    }
                    assertTrue(net.layers().get(bn ? 1 : 0).layer() instanceof BatchNorm2d == bn);
                }
            }
        }
    }

    @Test
    void theLastLayersFeatureIsTheForwardsOutputAndCopiesOutliveLaterForwards() {
        try (Network net = Vgg.of(VggConfig.A, NARROW)) {
            Tensor x = input(net, 3, 1);
            Tensor y = input(net, 3, 2);
            try (Features f = net.featuresAt(x, "classifier.6", "features.0", "features.1", "classifier.6")) {
                assertEquals(List.of("classifier.6", "features.0", "features.1"), f.names());
                double[] logits = doubles(net, net.forward(x, false));
                double[] conv = doubles(net, f.get("features.0"));
                double[] relu = doubles(net, f.get("features.1"));
                net.forward(y, false); // overwrites every layer's output: the copies stay
                assertArrayEquals(logits, doubles(net, f.get("classifier.6")));
                // the conv's output was copied before the in-place ReLU overwrote it
                assertTrue(java.util.Arrays.stream(conv).anyMatch(v -> v < 0));
                for (int i = 0; i < conv.length; i++) {
                    assertEquals(Math.max(0, conv[i]), relu[i], "element " + i);
                }
                assertArrayEquals(relu, doubles(net, f.get("features.1")));
                float[] host = f.toFloats("features.1");
                assertEquals(relu.length, host.length);
                assertEquals((float) relu[7], host[7]);
            }
        }
    }

    @Test
    void unknownNamesAreNamedWithTheValidOnes() {
        try (Network net = Vgg.of(VggConfig.A, NARROW)) {
            Tensor x = input(net, 1, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> net.featuresAt(x, "features.3", "relu1_2"));
            assertTrue(e.getMessage().contains("'relu1_2'"), e.getMessage());
            assertTrue(e.getMessage().contains("features.0, features.1, features.2"), e.getMessage());
            assertTrue(e.getMessage().contains("classifier.6"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> net.featuresAt(x));
            Features f = net.featuresAt(x, "features.20");
            assertThrows(IllegalArgumentException.class, () -> f.get("features.19"));
            f.close();
            assertThrows(IllegalStateException.class, () -> f.get("features.20"));
            assertFalse(f.names().isEmpty());
        }
    }

    /** The output of layer {@code name} from running the layers up to it, one by one, in evaluation mode. */
    private static double[] prefix(Network net, Tensor x, String name) {
        Tensor h = x;
        for (NamedLayer nl : net.layers()) {
            h = nl.layer().forward(h, false);
            if (nl.name().equals(name)) {
                return doubles(net, h);
            }
        }
        throw new AssertionError("no layer " + name);
    }

    private static Tensor input(Network net, int batch, long seed) {
        Tensor x = net.backend().allocate(net.dtype(), Network.batchShape(batch, net.inputShape()));
        double[] v = new SplittableRandom(seed).doubles(x.size(), -1, 1).toArray();
        net.backend().copyIn(v, 0, x);
        return x;
    }

    private static double[] doubles(Network net, Tensor t) {
        double[] v = new double[Math.toIntExact(t.size())];
        net.backend().copyOut(t, v, 0);
        return v;
    }
}
