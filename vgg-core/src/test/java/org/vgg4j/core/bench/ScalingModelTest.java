package org.vgg4j.core.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;

/** {@link ScalingModel} against numbers worked out by hand, and VGG-16's counts against torchvision's (138,357,544 parameters) and the paper's. */
class ScalingModelTest {

    /**
     * Two layers: a conv (100 weights, 10 biases, 1000 MACs) and an FC (1000 weights, 10 biases, 1000 MACs); N = 2,
     * b = 1, R = 6000 FLOP/s, B = 4000 B/s, fp32, buckets of 500.
     * Compute: 6 * 2000 / 6000 = 2 s; forward 2 * 2000 / 6000 = 2/3 s; FC backward 4 * 1000 / 6000 = 2/3 s, so the
     * FC's gradients are ready at 4/3 s and the conv's at 2 s. Link: 2 (N-1)/N * 4 B / 4000 B/s = 1 ms per element.
     * Buckets (weights [0,1100), then biases [1100,1120)): [0,500) holds conv weights -> ready 2 s; [500,1000) and
     * [1000,1100) FC weights -> 4/3 s; [1100,1120) holds the conv's bias -> 2 s.
     * Overlap: 4/3 + 0.5 + 0.1 = 1.9333, then max(1.9333, 2) + 0.5 + 0.02 = 2.52 s: speed-up 2 * 2 / 2.52.
     * No overlap: 2 + 1.12 = 3.12 s: speed-up 4 / 3.12.
     */
    @Test
    void twoLayerNetworkByHand() {
        ScalingModel m = new ScalingModel(List.of(new ScalingModel.LayerCost("conv", 100, 10, 1000, false),
                new ScalingModel.LayerCost("fc", 1000, 10, 1000, true)), 2000);
        assertEquals(1120, m.parameters());
        assertEquals(1010, m.fullyConnectedParameters());
        assertEquals(12000, m.flopsPerImage(), 0);
        ScalingModel.Prediction over = m.predict(2, 1, 6000, 4000, 4, 500, true);
        assertEquals(2.0, over.computeSeconds(), 1e-12);
        assertEquals(1.12, over.transferSeconds(), 1e-12);
        assertEquals(2.52, over.stepSeconds(), 1e-12);
        assertEquals(4 / 2.52, over.speedup(), 1e-12);
        assertEquals(1120 * 4 * 2.0 * 1 / 2, over.bytesPerGpu(), 1e-9);
        ScalingModel.Prediction plain = m.predict(2, 1, 6000, 4000, 4, 500, false);
        assertEquals(3.12, plain.stepSeconds(), 1e-12);
        assertEquals(4 / 3.12, plain.speedup(), 1e-12);
        // bf16 halves every transfer: 1.3333 + 0.25 + 0.05 = 1.6333, then max(., 2) + 0.25 + 0.01 = 2.26 s
        assertEquals(2.26, m.predict(2, 1, 6000, 4000, 2, 500, true).stepSeconds(), 1e-12);
        assertEquals(1.0, m.predict(1, 1, 6000, 4000, 4, 500, true).speedup(), 0);
    }

    /** D has 138,357,544 parameters (torchvision's vgg16) and 15.470 G forward MACs per image at 224. */
    @Test
    void vgg16Counts() {
        ScalingModel m = ScalingModel.of(VggSpec.paper(VggConfig.D));
        assertEquals(138_357_544L, m.parameters());
        // fc6 25088x4096 + 4096, fc7 4096x4096 + 4096, fc8 4096x1000 + 1000
        assertEquals(25088L * 4096 + 4096 + 4096L * 4096 + 4096 + 4096L * 1000 + 1000, m.fullyConnectedParameters());
        assertEquals(6 * 15.470e9, m.flopsPerImage(), 6 * 0.0005e9);
    }
}
