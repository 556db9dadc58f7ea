package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.MaxPool2d;
import org.vgg4j.core.layers.ReLU;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;

/** Vgg.vgg11() ... vgg19_bn() and Vgg.of: torchvision's architecture and layer numbering, a backend they own. */
class OneLineModelsTest {
    private static final VggOptions NARROW = VggOptions.torchvision().backend("reference").inputSize(32).width(0.0625)
            .hidden(16).classes(10);

    @Test
    void vgg16IsTorchvisionsOnTheCpuBackendAndInitialised() {
        try (Network net = Vgg.vgg16()) {
            assertEquals("cpu", net.backend().name());
            assertEquals("D", net.name());
            assertEquals(DType.FLOAT32, net.dtype());
            assertEquals(Shape.of(3, 224, 224), net.inputShape());
            assertEquals(Shape.of(1, 1000), net.outputShape(1));
            assertEquals(138_357_544L, net.params().entries().stream().mapToLong(e -> e.value().size()).sum());
            assertEquals(List.of(4096, 512 * 7 * 7), dims(net.params().get("classifier.0.weight").value().shape()));
            assertEquals(List.of(1000, 4096), dims(net.params().get("classifier.6.weight").value().shape()));
            float[] w = new float[64 * 3 * 3 * 3];
            net.backend().copyOut(net.params().get("features.0.weight").value(), w, 0);
            double a = Initializers.glorotBound(3 * 9, 64 * 9);
            for (float v : w) {
                assertTrue(v != 0 && Math.abs(v) <= a, "Glorot-uniform draw " + v + " outside +-" + a);
            }
        }
    }

    @Test
    void layerNumberingIsTorchvisionsForEveryConfigurationAndBatchNorm() {
        // torchvision's vgg*.features indices: the convs and the pools ('M'); every conv is followed by [bn,] relu
        check(VggConfig.A, false, List.of(0, 3, 6, 8, 11, 13, 16, 18), List.of(2, 5, 10, 15, 20));
        check(VggConfig.A, true, List.of(0, 4, 8, 11, 15, 18, 22, 25), List.of(3, 7, 14, 21, 28));
        check(VggConfig.B, false, List.of(0, 2, 5, 7, 10, 12, 15, 17, 20, 22), List.of(4, 9, 14, 19, 24));
        check(VggConfig.B, true, List.of(0, 3, 7, 10, 14, 17, 21, 24, 28, 31), List.of(6, 13, 20, 27, 34));
        check(VggConfig.D, false, List.of(0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28), List.of(4, 9, 16, 23, 30));
        check(VggConfig.D, true, List.of(0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40), List.of(6, 13, 23, 33, 43));
        check(VggConfig.E, false, List.of(0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34),
                List.of(4, 9, 18, 27, 36));
        check(VggConfig.E, true, List.of(0, 3, 7, 10, 14, 17, 20, 23, 27, 30, 33, 36, 40, 43, 46, 49),
                List.of(6, 13, 26, 39, 52));
    }

    /** The features.i layers of the narrow model Vgg.of builds: convs at {@code convs}, pools at {@code pools}. */
    private static void check(VggConfig config, boolean bn, List<Integer> convs, List<Integer> pools) {
        String what = config + (bn ? "_bn" : "");
        try (Network net = Vgg.of(config, NARROW.batchNorm(bn))) {
            List<NamedLayer> features = net.layers().stream().filter(l -> l.name().startsWith("features.")).toList();
            int last = pools.get(pools.size() - 1);
            assertEquals(last + 1, features.size(), what);
            for (int i = 0; i <= last; i++) {
                NamedLayer nl = features.get(i);
                assertEquals("features." + i, nl.name(), what);
                int conv = convs.indexOf(i - (bn ? 2 : 1));
                Class<? extends Layer> expected = convs.contains(i) ? Conv2d.class : pools.contains(i) ? MaxPool2d.class
                        : bn && convs.contains(i - 1) ? BatchNorm2d.class : ReLU.class;
                assertEquals(expected, nl.layer().getClass(), what + " features." + i);
                if (expected == ReLU.class) {
                    assertTrue(conv >= 0, what + ": features." + i + " is a ReLU right after a conv" + (bn ? " and BN" : ""));
                }
            }
            List<String> classifier = net.layers().stream().map(NamedLayer::name).filter(n -> !n.startsWith("features.")).toList();
            assertEquals(List.of("flatten", "classifier.0", "classifier.1", "classifier.2", "classifier.3", "classifier.4",
                    "classifier.5", "classifier.6"), classifier, what);
            assertEquals(bn, net.params().entries().stream().anyMatch(e -> e.key().endsWith("running_var")), what);
        }
    }

    @Test
    void ofAppliesTheOptionsAndInitialisesWithTheSeed() {
        try (Network a = Vgg.of(VggConfig.B, NARROW.seed(7)); Network b = Vgg.of(VggConfig.B, NARROW.seed(7));
             Network c = Vgg.of(VggConfig.B, NARROW.seed(8))) {
            assertEquals("reference", a.backend().name());
            assertNotEquals(a.backend(), b.backend()); // each model has a backend of its own
            assertEquals(Shape.of(2, 10), a.outputShape(2));
            assertEquals(Shape.of(3, 32, 32), a.inputShape());
            assertEquals(List.of(16, 32 * 1 * 1), dims(a.params().get("classifier.0.weight").value().shape()));
            float[] wa = values(a, "features.2.weight");
            assertTrue(java.util.Arrays.equals(wa, values(b, "features.2.weight")));
            assertTrue(!java.util.Arrays.equals(wa, values(c, "features.2.weight")));
            assertTrue(java.util.Arrays.stream(box(wa)).anyMatch(v -> v != 0));
        }
        try (Network d = Vgg.of(VggConfig.D, NARROW.dtype(DType.FLOAT64).init(Initializers.Scheme.PAPER_NORMAL))) {
            assertEquals(DType.FLOAT64, d.dtype());
        }
    }

    @Test
    void aBackendThatCannotBeHadIsNamedWithTheWayOut() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Vgg.of(VggConfig.D, VggOptions.torchvision().backend("tpu")));
        assertTrue(e.getMessage().contains("no backend named 'tpu'"), e.getMessage());
        assertTrue(e.getMessage().contains("VggOptions.backend(name)"), e.getMessage());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> Vgg.of(VggConfig.D, NARROW.inputSize(100)));
        assertTrue(bad.getMessage().contains("100"), bad.getMessage());
    }

    @Test
    void aNetworkClosesTheBackendItWasGivenToOwnOnceAndOnlyThen() {
        AtomicInteger closes = new AtomicInteger();
        Backend reference = Backends.reference();
        Backend counting = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("close") && method.getParameterCount() == 0) {
                        closes.incrementAndGet();
                        return null;
                    }
                    try {
                        return method.invoke(reference, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        VggSpec spec = NARROW.spec(VggConfig.A);
        Vgg.build(counting, DType.FLOAT32, spec).close();
        assertEquals(0, closes.get(), "a network built on the caller's backend leaves it open");
        Network owning = Vgg.build(counting, DType.FLOAT32, spec).closingBackend();
        owning.close();
        owning.close();
        assertEquals(1, closes.get());
    }

    @Test
    void backendConveniences() {
        try (Backend r = Backends.reference(); Backend c = Backends.cpu()) {
            assertEquals("reference", r.name());
            assertEquals("cpu", c.name());
        }
        if (!Backends.names().contains("cuda")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Backends.cuda(0));
            assertTrue(e.getMessage().contains("add the org.vgg4j:vgg-cuda dependency"), e.getMessage());
        }
    }

    private static List<Integer> dims(Shape s) {
        List<Integer> d = new ArrayList<>();
        for (int x : s.dims()) {
            d.add(x);
        }
        return d;
    }

    private static float[] values(Network net, String key) {
        org.vgg4j.core.tensor.Tensor t = net.params().get(key).value();
        float[] v = new float[Math.toIntExact(t.size())];
        net.backend().copyOut(t, v, 0);
        return v;
    }

    private static double[] box(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
