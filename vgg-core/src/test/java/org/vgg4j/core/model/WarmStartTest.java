package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.tensor.DType;

/** The paper's warm start copies exactly conv1_1, conv2_1, conv3_1, conv3_2, fc6, fc7, fc8 and nothing else. */
class WarmStartTest {
    private static final HostMemoryBackend MEM = new HostMemoryBackend();
    private static final VggSpec BASE = VggSpec.small(VggConfig.A, 32, 10).withWidth(0.125).withHidden(32);

    @Test
    void caffeNamesOfConfigurationD() {
        Network a = Vgg.build(MEM, DType.FLOAT64, BASE);
        Network dd = Vgg.build(MEM, DType.FLOAT64, new VggSpec(VggConfig.D, false, 10, 32, 0.125, 32, 0.5, 0));
        Map<String, String> names = WarmStart.caffeNames(dd);
        assertEquals("features.0", names.get("conv1_1"));
        assertEquals("features.2", names.get("conv1_2"));
        assertEquals("features.5", names.get("conv2_1"));
        assertEquals("features.10", names.get("conv3_1"));
        assertEquals("features.28", names.get("conv5_3"));
        assertEquals("classifier.6", names.get("fc8"));
        assertEquals(13 + 3, names.size());
        assertEquals("features.6", WarmStart.caffeNames(a).get("conv3_1"));
    }

    @Test
    void copiesExactlyTheSevenLayersFromA() {
        for (VggConfig target : new VggConfig[] {VggConfig.B, VggConfig.C, VggConfig.D, VggConfig.E}) {
            Network a = Vgg.build(MEM, DType.FLOAT64, BASE);
            Initializers.initialize(a, Initializers.Scheme.GLOROT_UNIFORM, 99); // stands in for a trained A
            Network deep = Vgg.build(MEM, DType.FLOAT64, new VggSpec(target, false, 10, 32, 0.125, 32, 0.5, 0));
            Network fresh = Vgg.build(MEM, DType.FLOAT64, new VggSpec(target, false, 10, 32, 0.125, 32, 0.5, 0));
            Initializers.initialize(fresh, Initializers.Scheme.PAPER_NORMAL, 3);
            List<String> copied = WarmStart.fromA(a, deep, Initializers.Scheme.PAPER_NORMAL, 3);
            Map<String, String> dn = WarmStart.caffeNames(deep);
            Map<String, String> an = WarmStart.caffeNames(a);
            List<String> expected = new ArrayList<>();
            for (String layer : WarmStart.PAPER_LAYERS) {
                expected.add(dn.get(layer) + ".weight");
                expected.add(dn.get(layer) + ".bias");
            }
            assertEquals(expected, copied, target.name());
            for (ParamStore.Entry e : deep.params().entries()) {
                double[] got = HostMemoryBackend.values(e.value());
                if (copied.contains(e.key())) {
                    String caffe = dn.entrySet().stream().filter(x -> e.key().startsWith(x.getValue() + ".")).findFirst().orElseThrow().getKey();
                    String srcKey = an.get(caffe) + e.key().substring(e.key().lastIndexOf('.'));
                    assertArrayEquals(HostMemoryBackend.values(a.params().get(srcKey).value()), got, e.key());
                } else {
                    // everything else is exactly the fresh initialisation of the same seed
                    assertArrayEquals(HostMemoryBackend.values(fresh.params().get(e.key()).value()), got, e.key());
                }
            }
        }
    }

    @Test
    void batchNormTravelsWithItsConv() {
        Network a = Vgg.build(MEM, DType.FLOAT64, BASE.withBatchNorm(true));
        Initializers.initialize(a, Initializers.Scheme.GLOROT_UNIFORM, 1);
        MEM.fill(a.params().get("features.1.running_var").value(), 2.5);
        Network d = Vgg.build(MEM, DType.FLOAT64, new VggSpec(VggConfig.D, true, 10, 32, 0.125, 32, 0.5, 0));
        List<String> copied = WarmStart.fromA(a, d, Initializers.Scheme.GLOROT_UNIFORM, 2);
        assertEquals(4 * 6 + 3 * 2, copied.size()); // 4 convs x (w, b, gamma, beta, mean, var) + 3 FC x (w, b)
        assertEquals(2.5, HostMemoryBackend.values(d.params().get("features.1.running_var").value())[0]);
    }

    @Test
    void mismatchedShapesFailNamingTheLayer() {
        Network a = Vgg.build(MEM, DType.FLOAT64, BASE);
        Network wider = Vgg.build(MEM, DType.FLOAT64, new VggSpec(VggConfig.D, false, 10, 32, 0.25, 32, 0.5, 0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> WarmStart.fromA(a, wider, Initializers.Scheme.GLOROT_UNIFORM, 1));
        assertEquals("warm start: layer conv1_1 weight has shape 8x3x3x3 in the source (features.0.weight) but 16x3x3x3"
                + " in the target (features.0.weight); width, input size and classes must match", e.getMessage());
        Network classes = Vgg.build(MEM, DType.FLOAT64, new VggSpec(VggConfig.D, false, 100, 32, 0.125, 32, 0.5, 0));
        e = assertThrows(IllegalArgumentException.class, () -> WarmStart.fromA(a, classes, Initializers.Scheme.GLOROT_UNIFORM, 1));
        assertEquals("warm start: layer fc8 weight has shape 10x32 in the source (classifier.6.weight) but 100x32"
                + " in the target (classifier.6.weight); width, input size and classes must match", e.getMessage());
        // nothing was written into the target by the failed attempt
        assertEquals(0.0, HostMemoryBackend.values(classes.params().values())[0]);
        Network bn = Vgg.build(MEM, DType.FLOAT64, new VggSpec(VggConfig.D, true, 10, 32, 0.125, 32, 0.5, 0));
        e = assertThrows(IllegalArgumentException.class, () -> WarmStart.fromA(a, bn, Initializers.Scheme.GLOROT_UNIFORM, 1));
        assertEquals("warm start: layer conv1_1 has a batchnorm in the target network only; both must have one or neither", e.getMessage());
    }
}
