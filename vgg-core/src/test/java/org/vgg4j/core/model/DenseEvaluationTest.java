package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/** Dense evaluation (§3.2) on the reference backend: equal to the FC network at the training size. */
class DenseEvaluationTest extends OnReferenceBackend {
    private static Tensor image(int n, int h, int w, long seed) {
        double[] v = new double[n * 3 * h * w];
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < v.length; i++) {
            v[i] = 2 * r.nextDouble() - 1;
        }
        Tensor x = reference.allocate(DType.FLOAT64, Shape.of(n, 3, h, w));
        reference.copyIn(v, 0, x);
        return x;
    }

    private static double[] values(Tensor t) {
        double[] d = new double[Math.toIntExact(t.size())];
        reference.copyOut(t, d, 0);
        return d;
    }

    private static void checkEqualAtTrainingSize(VggSpec spec) {
        try (Network fc = Vgg.build(reference, DType.FLOAT64, spec)) {
            Initializers.initialize(fc, Initializers.Scheme.GLOROT_UNIFORM, 8);
            if (spec.batchNorm()) { // non-trivial running statistics for evaluation mode
                reference.fill(fc.params().get("features.1.running_var").value(), 2.0);
                reference.fill(fc.params().get("features.1.running_mean").value(), 0.1);
            }
            try (DenseEvaluation dense = DenseEvaluation.of(fc)) {
                int side = spec.inputSize();
                // FC6 became a conv over the whole final map, bit-identical weights
                Conv2d fc6 = (Conv2d) dense.network().layers().stream().filter(l -> l.name().equals("classifier.0"))
                        .findFirst().orElseThrow().layer();
                assertEquals(side / 32, fc6.kernel());
                assertEquals(Shape.of(spec.hiddenFeatures(), spec.channels(512), side / 32, side / 32),
                        dense.network().params().get("classifier.0.weight").value().shape());
                for (ParamStore.Entry e : fc.params().entries()) {
                    assertArrayEquals(values(e.value()), values(dense.network().params().get(e.key()).value()), e.key());
                }
                Tensor x = image(2, side, side, 1);
                double[] want = values(fc.forward(x, false));
                double[] got = values(dense.forward(x));
                double scale = Arrays.stream(want).map(Math::abs).max().orElseThrow();
                assertTrue(scale > 0);
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], got[i], 1e-12 * scale, "score " + i);
                }
                reference.free(x);
            }
        }
    }

    @Test
    void equalsTheFullyConnectedNetworkAtTheTrainingSize() {
        // training size 64: the final map is 2x2, so FC6 becomes a 2x2 conv (a 1x1 map would hide a layout error)
        checkEqualAtTrainingSize(new VggSpec(VggConfig.A, false, 10, 64, 1.0 / 16, 32, 0.5, 0));
        checkEqualAtTrainingSize(new VggSpec(VggConfig.D, true, 7, 64, 1.0 / 32, 16, 0.5, 0));
        checkEqualAtTrainingSize(new VggSpec(VggConfig.A_LRN, false, 5, 32, 1.0 / 16, 16, 0.5, 0));
    }

    @Test
    void runsOnLargerUncroppedImagesOfAnySize() {
        VggSpec spec = new VggSpec(VggConfig.A, false, 10, 64, 1.0 / 16, 32, 0.5, 0);
        try (Network fc = Vgg.build(reference, DType.FLOAT64, spec); DenseEvaluation dense = DenseEvaluation.of(fc)) {
            Initializers.initialize(dense.network(), Initializers.Scheme.GLOROT_UNIFORM, 3);
            // 100x77: not multiples of 32; the final map is 3x2, the score map 2x1, averaged to (N, 10)
            Tensor x = image(2, 100, 77, 2);
            Tensor y = dense.forward(x);
            assertEquals(Shape.of(2, 10), y.shape());
            assertTrue(Arrays.stream(values(y)).allMatch(Double::isFinite));
            double[] scores = values(y).clone();
            // the class score map before the spatial average: (2, 10, 2, 1); y must be its mean over positions
            Tensor h = x;
            var layers = dense.network().layers();
            for (int i = 0; i < layers.size() - 1; i++) {
                h = layers.get(i).layer().forward(h, false);
            }
            assertEquals(Shape.of(2, 10, 2, 1), h.shape());
            double[] map = values(h);
            for (int i = 0; i < 20; i++) {
                assertEquals((map[2 * i] + map[2 * i + 1]) / 2, scores[i], 1e-12 * (Math.abs(scores[i]) + 1));
            }
            reference.free(x);
            String msg = assertThrows(IllegalArgumentException.class, () -> dense.forward(image(1, 48, 80, 3))).getMessage();
            assertEquals("input 3x48x80 is smaller than the training size 64x64 required by dense evaluation", msg);
        }
    }

    /**
     * sharing: the same scores as the copy, over fc's own memory (a change to fc shows in the view, not in the copy);
     * closing the view leaves fc working; a BatchNorm network's running statistics are shared too.
     */
    @Test
    void sharingViewsTheParametersInPlace() {
        VggSpec spec = new VggSpec(VggConfig.D, true, 7, 64, 1.0 / 32, 16, 0.5, 0);
        try (Network fc = Vgg.build(reference, DType.FLOAT64, spec)) {
            Initializers.initialize(fc, Initializers.Scheme.GLOROT_UNIFORM, 5);
            reference.fill(fc.params().get("features.1.running_var").value(), 2.0);
            Tensor x = image(2, 80, 96, 4);
            double[] before;
            try (DenseEvaluation copy = DenseEvaluation.of(fc); DenseEvaluation view = DenseEvaluation.sharing(fc)) {
                before = values(copy.forward(x));
                assertArrayEquals(before, values(view.forward(x)), "shared and copied parameters score alike");
                assertEquals(Shape.of(16, spec.channels(512), 2, 2),
                        view.network().params().get("classifier.0.weight").value().shape());
                // a live view: fc's parameters (running statistics included) changed, the view follows, the copy not
                reference.fill(fc.params().get("classifier.6.bias").value(), 0.5);
                reference.fill(fc.params().get("features.1.running_mean").value(), 0.25);
                double[] changed = values(view.forward(x));
                assertArrayEquals(before, values(copy.forward(x)), "the copy is a snapshot");
                assertTrue(!Arrays.equals(before, changed), "the view sees fc's new parameters");
                try (DenseEvaluation fresh = DenseEvaluation.of(fc)) {
                    assertArrayEquals(values(fresh.forward(x)), changed);
                }
            }
            // both closed: fc's parameters are still its own and alive
            Tensor y = fc.forward(image(2, 64, 64, 6), false);
            assertTrue(Arrays.stream(values(y)).allMatch(Double::isFinite));
            reference.free(x);
        }
    }

    /** A view outliving its source fails with a clear error on the cpu backend, not a read of freed memory. */
    @Test
    void aViewUsedAfterItsSourceClosedSaysSo() {
        org.vgg4j.core.backend.Backend cpu = org.vgg4j.core.backend.Backends.cpu();
        try {
            VggSpec spec = new VggSpec(VggConfig.A, false, 10, 32, 1.0 / 16, 16, 0.5, 0);
            Network fc = Vgg.build(cpu, DType.FLOAT32, spec);
            DenseEvaluation view = DenseEvaluation.sharing(fc);
            fc.close();
            Tensor x = cpu.allocate(DType.FLOAT32, Shape.of(1, 3, 32, 32));
            cpu.fill(x, 0.5);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> view.forward(x));
            assertTrue(e.getMessage().contains("freed"), e.getMessage());
            view.close();
            cpu.free(x);
        } finally {
            cpu.close();
        }
    }

    @Test
    void aNetworkSharesOnlyAMatchingParameterLayout() {
        VggSpec spec = new VggSpec(VggConfig.A, false, 10, 32, 1.0 / 16, 16, 0.5, 0);
        VggSpec other = new VggSpec(VggConfig.A, false, 12, 32, 1.0 / 16, 16, 0.5, 0);
        try (Network fc = Vgg.build(reference, DType.FLOAT64, spec)) {
            var layers = Vgg.layers(reference, other);
            String msg = assertThrows(IllegalArgumentException.class, () -> new Network("other", reference,
                    DType.FLOAT64, fc.inputShape(), layers, fc)).getMessage();
            assertTrue(msg.contains("classifier.6.weight") && msg.contains("same keys, roles and sizes"), msg);
        }
    }
}
