package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * A new head keeps every other tensor and starts fresh; freezing stops backward and the update exactly at the named
 * layer; learning-rate multipliers scale the update of their group and nothing else. Reference backend, float64.
 */
class TransferLearningTest {
    private static final Backend REF = Backends.create("reference");
    /** Narrow A with BatchNorm at 32x32: features.0 conv, .1 BN, .2 ReLU, .3 pool, .4 conv, ... */
    private static final VggSpec SPEC = new VggSpec(VggConfig.A, true, 10, 32, 0.0625, 16, 0.0, 1);

    @AfterAll
    static void close() {
        REF.close();
    }

    private static Network net(VggSpec spec, long seed) {
        Network n = Vgg.build(REF, DType.FLOAT64, spec);
        Initializers.initialize(n, Initializers.Scheme.GLOROT_UNIFORM, seed);
        return n;
    }

    private static double[] values(Tensor t) {
        double[] v = new double[Math.toIntExact(t.size())];
        t.backend().copyOut(t, v, 0);
        return v;
    }

    /** One forward and backward of 4 fixed random images; gradients accumulate into the network's buffer. */
    private static void forwardBackward(Network n) {
        SplittableRandom r = new SplittableRandom(5);
        double[] host = new double[4 * 3 * 32 * 32];
        for (int i = 0; i < host.length; i++) {
            host[i] = r.nextDouble(-1, 1);
        }
        Tensor x = REF.allocate(DType.FLOAT64, Shape.of(4, 3, 32, 32));
        REF.copyIn(host, 0, x);
        SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(REF);
        loss.forwardBackward(n.forward(x, true), new int[] {0, 3, 7, 9});
        n.backward(loss.gradient());
        loss.release();
        REF.free(x);
    }

    @Test
    void aNewHeadKeepsEveryOtherTensorAndStartsFresh() {
        try (Network pretrained = net(SPEC, 99);
             Network tuned = TransferLearning.withNewHead(pretrained, new VggSpec(VggConfig.A, true, 5, 32, 0.0625, 16, 0.0, 1),
                     Initializers.Scheme.GLOROT_UNIFORM, 3);
             Network fresh = net(new VggSpec(VggConfig.A, true, 5, 32, 0.0625, 16, 0.0, 1), 3)) {
            assertEquals("classifier.6", TransferLearning.head(tuned));
            assertEquals(Shape.of(5, 16), tuned.params().get("classifier.6.weight").value().shape());
            for (ParamStore.Entry e : tuned.params().entries()) {
                Network from = e.key().startsWith("classifier.6.") ? fresh : pretrained;
                assertArrayEquals(values(from.params().get(e.key()).value()), values(e.value()), e.key());
            }
        }
    }

    @Test
    void anotherArchitectureIsRefusedNamingTheTensor() {
        try (Network pretrained = net(SPEC.withWidth(0.125), 99)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TransferLearning.withNewHead(
                    pretrained, SPEC, Initializers.Scheme.GLOROT_UNIFORM, 3));
            assertTrue(e.getMessage().contains("features.0.weight") && e.getMessage().contains("same shape"), e.getMessage());
        }
        try (Network pretrained = net(SPEC.withHidden(32), 99)) { // the head's inputs differ: not a head swap
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TransferLearning.withNewHead(
                    pretrained, SPEC, Initializers.Scheme.GLOROT_UNIFORM, 3));
            assertTrue(e.getMessage().contains("classifier.0.weight"), e.getMessage());
        }
    }

    @Test
    void freezingStopsBackwardAndTheUpdateAtTheNamedLayerOnly() {
        try (Network frozen = net(SPEC, 7); Network plain = net(SPEC, 7)) {
            List<String> keys = TransferLearning.freezeUpTo(frozen, "features.3"); // conv1 + its BN, up to the pool
            assertEquals(List.of("features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias"), keys);
            forwardBackward(frozen);
            forwardBackward(plain);
            for (ParamStore.Entry e : frozen.params().entries()) {
                if (e.grad() == null) {
                    continue;
                }
                double[] g = values(e.grad());
                if (keys.contains(e.key())) {
                    assertTrue(Arrays.stream(g).allMatch(v -> v == 0), e.key() + " got a gradient"); // never computed
                } else {
                    assertArrayEquals(values(plain.params().get(e.key()).grad()), g, e.key()); // unchanged by freezing
                }
            }
            double[] before = values(frozen.params().values());
            try (Sgd sgd = new Sgd(frozen.params(), new Sgd.Settings(0.9, 5e-4))) {
                sgd.step(0.1);
                double[] after = values(frozen.params().values());
                for (ParamStore.Group g : frozen.params().groups()) {
                    for (long i = g.offset(); i < g.offset() + g.count(); i++) {
                        if (g.lrMult() == 0) {
                            assertEquals(before[(int) i], after[(int) i], "frozen element " + i);
                            assertEquals(0.0, values(sgd.velocity())[(int) i]);
                        }
                    }
                }
                assertNotEquals(before[Math.toIntExact(frozen.params().get("features.4.weight").value().offset())],
                        after[Math.toIntExact(frozen.params().get("features.4.weight").value().offset())]);
                assertTrue(Arrays.stream(values(frozen.params().grads())).allMatch(v -> v == 0)); // the step clears all
            }
        }
    }

    @Test
    void groupsAreRunsOfEqualMultiplierSplitAtTheDecayedPrefix() {
        try (Network n = net(SPEC, 1)) {
            assertTrue(n.params().uniformLr());
            assertEquals(List.of(new ParamStore.Group(0, n.params().decayedCount(), 1, true),
                    new ParamStore.Group(n.params().decayedCount(), n.params().trainedCount() - n.params().decayedCount(), 1,
                            false)), n.params().groups());
            TransferLearning.configure(n, "features.3", Map.of("features", 0.1));
            long w0 = n.params().get("features.0.weight").value().size();
            long w4 = n.params().get("features.4.weight").value().offset();
            assertEquals(new ParamStore.Group(0, w0, 0, true), n.params().groups().get(0));
            assertEquals(0.1, n.params().groups().get(1).lrMult());
            assertEquals(w4, n.params().groups().get(1).offset());
            assertEquals(6, n.params().groups().size()); // frozen, 0.1, 1 for the weights, the same for the rest
            TransferLearning.configure(n, null, Map.of()); // from scratch: everything trains again
            assertTrue(n.params().uniformLr());
        }
    }

    @Test
    void aMultiplierScalesTheRateOfItsGroupAsCaffesLrMult() {
        try (Network mult = net(SPEC, 4); Network slow = net(SPEC, 4); Network base = net(SPEC, 4)) {
            TransferLearning.configure(mult, null, Map.of("features", 0.1, "classifier.6", 2.0));
            for (Network n : List.of(mult, slow, base)) {
                forwardBackward(n);
            }
            try (Sgd a = new Sgd(mult.params(), new Sgd.Settings(0.9, 5e-4));
                 Sgd b = new Sgd(slow.params(), new Sgd.Settings(0.9, 5e-4));
                 Sgd c = new Sgd(base.params(), new Sgd.Settings(0.9, 5e-4));
                 Network fast = net(SPEC, 4)) {
                forwardBackward(fast);
                try (Sgd d = new Sgd(fast.params(), new Sgd.Settings(0.9, 5e-4))) {
                    a.step(0.05);
                    b.step(0.05 * 0.1);
                    c.step(0.05);
                    d.step(0.05 * 2.0);
                    for (ParamStore.Entry e : mult.params().entries()) {
                        if (e.grad() == null) {
                            continue;
                        }
                        Network same = e.key().startsWith("features.") ? slow : e.key().startsWith("classifier.6.") ? fast : base;
                        assertArrayEquals(values(same.params().get(e.key()).value()), values(e.value()), e.key());
                    }
                }
            }
        }
    }

    @Test
    void badNamesAreRefusedListingTheValidOnes() {
        try (Network n = net(SPEC, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TransferLearning.freezeUpTo(n, "features.99"));
            assertTrue(e.getMessage().contains("features.99") && e.getMessage().contains("classifier.6"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> TransferLearning.freezeUpTo(n, "classifier.6"));
            assertTrue(e.getMessage().contains("leaves no layer"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> TransferLearning.configure(n, null, Map.of("feature", 0.1)));
            assertTrue(e.getMessage().contains("'feature'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> TransferLearning.configure(n, null, Map.of("features", -1.0)));
            assertTrue(e.getMessage().contains("-1.0"), e.getMessage());
        }
    }
}
