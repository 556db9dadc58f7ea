package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.IdentityHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * Network#shareOutputBuffers: an evaluation-only network's layers write into two shared buffers. The scores are
 * the same bits as the same network with a buffer per layer (batch norm in evaluation mode, LRN, dropout, pooling,
 * FC layers, fused conv + ReLU), the outputs of a forward occupy at most two storages, and a training forward is
 * refused by name.
 */
class SharedOutputsTest {
    private static final Backend REF = Backends.reference();

    @Test
    void sameScoresInTwoBuffersAndNoTraining() {
        for (VggSpec spec : new VggSpec[] {new VggSpec(VggConfig.D, true, 7, 32, 1.0 / 16, 16, 0.5, 0),
            new VggSpec(VggConfig.A_LRN, false, 5, 32, 1.0 / 16, 16, 0.5, 0)}) {
            try (Network own = Vgg.build(REF, DType.FLOAT64, spec); Network shared = Vgg.build(REF, DType.FLOAT64, spec)) {
                Initializers.initialize(own, Initializers.Scheme.GLOROT_UNIFORM, 11);
                REF.copy(own.params().values(), shared.params().values());
                if (own.params().state() != null) {
                    REF.fill(own.params().state(), 0.75);
                    REF.copy(own.params().state(), shared.params().state());
                }
                shared.shareOutputBuffers();
                Tensor x = TestTensors.random(REF, DType.FLOAT64, Shape.of(3, 3, 32, 32), 4, -1, 1);
                double[] want = TestTensors.toArray(own.forward(x, false));
                assertArrayEquals(want, TestTensors.toArray(shared.forward(x, false)), spec.name());
                assertArrayEquals(want, TestTensors.toArray(shared.forward(x, false)), spec.name() + ", again");

                assertTrue(outputStorages(own, x) > 2, "a buffer per layer without sharing");
                assertEquals(2, outputStorages(shared, x), spec.name() + ": two buffers for all outputs");

                IllegalStateException e = assertThrows(IllegalStateException.class, () -> shared.forward(x, true));
                assertTrue(e.getMessage().contains("evaluates only"), e.getMessage());
                REF.free(x);
            }
        }
    }

    /** Distinct storages among the layers' outputs of one evaluation forward, layer by layer. */
    private static int outputStorages(Network net, Tensor x) {
        Map<Object, Boolean> seen = new IdentityHashMap<>();
        Tensor h = x;
        for (NamedLayer nl : net.layers()) {
            h = nl.layer().forward(h, false);
            if (h.storage() != x.storage()) {
                seen.put(h.storage(), true);
            }
        }
        return seen.size();
    }
}
