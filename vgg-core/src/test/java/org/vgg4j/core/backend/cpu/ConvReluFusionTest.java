package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.backend.CpuPrecision;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.ReLU;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;
import org.vgg4j.core.testing.Approx;

/**
 * Convolution + bias + ReLU in one call ({@link Backend#conv2dForwardRelu}; on the direct oneDNN engine a ReLU
 * post-op of the convolution primitive) against the convolution followed by {@link Backend#reluForward}: BIT FOR BIT
 * on finite values, on every engine of the cpu backend, with and without bias, in slices, and in BF16 where the CPU
 * has it; then whole networks: {@link Network}'s fused forward and the backward after it against the layers run
 * one by one (unfused). Legend: N batch, C in, K out, H/W in, R kernel.
 */
final class ConvReluFusionTest {
    private static final List<CpuBackend> BACKENDS = new ArrayList<>();

    @BeforeAll
    static void backends() {
        assertTrue(DnnlConv.available(), "oneDNN's natives (org.bytedeco:dnnl) must load on the build machine");
    }

    @AfterAll
    static void close() {
        BACKENDS.forEach(CpuBackend::close);
    }

    private static CpuBackend cpu(String which) {
        CpuBackend.Options d = CpuBackend.Options.defaults();
        CpuBackend b = new CpuBackend(switch (which) {
            case "auto" -> d;
            case "dnnl-sliced" -> d.withRouting(ConvEngine.Routing.DNNL).withSliceElements(1);
            case "gemm" -> d.withRouting(ConvEngine.Routing.GEMM);
            case "nd4j" -> d.withRouting(ConvEngine.Routing.ND4J);
            case "bf16" -> d.withPrecision(CpuPrecision.BF16);
            default -> throw new IllegalArgumentException(which);
        });
        BACKENDS.add(b);
        return b;
    }

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        List<String> engines = new ArrayList<>(List.of("auto", "dnnl-sliced", "gemm", "nd4j"));
        if (Bf16Support.unavailableReason() == null) {
            engines.add("bf16");
        }
        int[][] shapes = { // N, C, H, W, K, R, pad
            {2, 3, 12, 12, 64, 3, 1},   // VGG's first layer
            {2, 64, 8, 8, 64, 3, 1},
            {3, 32, 4, 4, 48, 3, 1},    // W3's small maps
            {1, 17, 7, 5, 5, 3, 1},     // no multiple of any block
            {2, 16, 7, 7, 24, 7, 0},    // dense evaluation's FC6 as a 7x7 'valid' conv
            {2, 24, 1, 1, 10, 1, 0}};   // FC7/FC8 as 1x1
        for (String e : engines) {
            for (int[] s : shapes) {
                a.add(Arguments.of(e, s, true));
            }
            a.add(Arguments.of(e, shapes[1], false));
        }
        return a.stream();
    }



    @ParameterizedTest(name = "{0} {1} bias={2}")
    @MethodSource("cases")
    void fusedEqualsConvThenReluBitForBit(String engine, int[] s, boolean bias) {
        CpuBackend b = cpu(engine);
        int n = s[0], c = s[1], h = s[2], w = s[3], k = s[4], r = s[5], pad = s[6];
        Tensor x = TestTensors.random(b, DType.FLOAT32, Shape.of(n, c, h, w), 11, -1, 1);
        Tensor wt = TestTensors.random(b, DType.FLOAT32, Shape.of(k, c, r, r), 12, -0.3, 0.3);
        Tensor bt = bias ? TestTensors.random(b, DType.FLOAT32, Shape.of(k), 13, -0.2, 0.2) : null;
        Shape ys = Shape.of(n, k, h + 2 * pad - r + 1, w + 2 * pad - r + 1);
        Tensor unfused = b.allocate(DType.FLOAT32, ys);
        Tensor fused = b.allocate(DType.FLOAT32, ys);
        b.fill(fused, Double.NaN); // overwritten, not accumulated
        convThenReluAndFused(b, x, wt, bt, unfused, fused, pad);
        float[] want = TestTensors.floats(unfused);
        int zeros = 0;
        for (float v : want) {
            zeros += v == 0 ? 1 : 0;
        }
        assertTrue(zeros > 0 && zeros < want.length, "the case must have outputs on both sides of 0: " + zeros);
        Approx.assertSameBits(want, TestTensors.floats(fused), engine + " conv" + r + " " + c + "->" + k);
    }

    /** The convolution then the ReLU in place into unfused, and the fused call into fused. */
    private static void convThenReluAndFused(Backend b, Tensor x, Tensor wt, Tensor bias, Tensor unfused, Tensor fused,
                                             int pad) {
        b.conv2dForward(x, wt, bias, unfused, pad);
        b.reluForward(unfused, unfused);
        b.conv2dForwardRelu(x, wt, bias, fused, pad);
    }

    /** The SPI's default (the reference backend has no fused call) is the two calls. */
    @Test
    void referenceDefaultIsConvThenRelu() {
        Backend ref = Backends.reference();
        Tensor x = TestTensors.random(ref, DType.FLOAT64, Shape.of(1, 2, 5, 5), 3, -1, 1);
        Tensor wt = TestTensors.random(ref, DType.FLOAT64, Shape.of(3, 2, 3, 3), 4, -1, 1);
        Tensor y1 = ref.allocate(DType.FLOAT64, Shape.of(1, 3, 5, 5));
        Tensor y2 = ref.allocate(DType.FLOAT64, Shape.of(1, 3, 5, 5));
        convThenReluAndFused(ref, x, wt, null, y1, y2, 1);
        double[] a = new double[75];
        double[] bb = new double[75];
        ref.copyOut(y1, a, 0);
        ref.copyOut(y2, bb, 0);
        assertEquals(java.util.Arrays.toString(a), java.util.Arrays.toString(bb));
    }

    /**
     * Documented difference (Backend#conv2dForwardRelu): oneDNN's ReLU post-op maps a NaN accumulator to 0, where
     * the separate ReLU keeps it; finite outputs stay bitwise equal.
     */
    @Test
    void aNanInTheDirectEngineBecomesZeroAndTheRestIsUnchanged() {
        CpuBackend b = cpu("auto");
        double[] xv = TestTensors.uniform(21, 2 * 8 * 6 * 6, -1, 1);
        xv[0] = Double.NaN; // image 0, channel 0, pixel (0,0): NaN in the outputs around (0,0) of image 0
        Tensor x = TestTensors.of(b, DType.FLOAT32, Shape.of(2, 8, 6, 6), xv);
        Tensor wt = TestTensors.random(b, DType.FLOAT32, Shape.of(4, 8, 3, 3), 22, -0.3, 0.3);
        Tensor unfused = b.allocate(DType.FLOAT32, Shape.of(2, 4, 6, 6));
        Tensor fused = b.allocate(DType.FLOAT32, Shape.of(2, 4, 6, 6));
        convThenReluAndFused(b, x, wt, null, unfused, fused, 1);
        float[] u = TestTensors.floats(unfused);
        float[] f = TestTensors.floats(fused);
        int nans = 0;
        for (int i = 0; i < u.length; i++) {
            if (Float.isNaN(u[i])) {
                nans++;
                assertEquals(0f, f[i], "fused output " + i);
            } else {
                assertEquals(Float.floatToRawIntBits(u[i]), Float.floatToRawIntBits(f[i]), "output " + i);
            }
        }
        assertEquals(4 * 4, nans, "each of the 4 output channels has NaN at the 2x2 pixels whose window holds (0,0)");
    }

    /**
     * featuresAt on the cpu backend: a conv's name gives its pre-ReLU output (the pair then runs unfused), the ReLU's
     * name the post-ReLU one, both bitwise what the layers give run one by one.
     */
    @Test
    void featuresAtGivesEachLayersOwnActivation() {
        CpuBackend b = cpu("auto");
        VggSpec spec = VggSpec.small(VggConfig.A, 32, 10).withWidth(0.125).withHidden(24).withSeed(3);
        try (Network net = Vgg.build(b, DType.FLOAT32, spec)) {
            b.copyIn(TestTensors.uniform(8, (int) net.params().values().size(), -0.2, 0.2), 0, net.params().values());
            Tensor x = TestTensors.random(b, DType.FLOAT32, Shape.of(2, 3, 32, 32), 9, -1, 1);
            List<float[]> each = new ArrayList<>();
            Tensor h = x;
            for (int i = 0; i <= 5; i++) { // features.0 conv, .1 relu, .2 pool, .3 conv, .4 relu, .5 pool
                h = net.layers().get(i).layer().forward(h, false);
                each.add(TestTensors.floats(h));
            }
            String[] names = {"features.0", "features.1", "features.4", "features.5"};
            try (org.vgg4j.core.model.Features f = net.featuresAt(x, names)) {
                Approx.assertSameBits(each.get(0), f.toFloats("features.0"), "conv1 before its ReLU");
                Approx.assertSameBits(each.get(1), f.toFloats("features.1"), "conv1 after its ReLU");
                Approx.assertSameBits(each.get(4), f.toFloats("features.4"), "conv2 after its (fused) ReLU");
                Approx.assertSameBits(each.get(5), f.toFloats("features.5"), "pool2");
                float[] pre = f.toFloats("features.0");
                boolean negative = false;
                for (float v : pre) {
                    negative |= v < 0;
                }
                assertTrue(negative, "a pre-ReLU output has negative values");
            }
        }
    }

    /**
     * Because a fused pair maps a NaN to 0, a network refuses a non-finite input up front (forward and featuresAt),
     * naming it, instead of turning a NaN pixel into finite logits.
     */
    @Test
    void aNetworkRefusesANonFiniteInputInsteadOfHidingIt() {
        CpuBackend b = cpu("auto");
        VggSpec spec = VggSpec.small(VggConfig.A, 32, 10).withWidth(0.125).withHidden(24).withSeed(3);
        try (Network net = Vgg.build(b, DType.FLOAT32, spec)) {
            assertTrue(net.fusesRelu(0), "features.0 and features.1 run fused");
            for (double bad : new double[] {Double.NaN, Double.POSITIVE_INFINITY}) {
                double[] xv = TestTensors.uniform(9, 2 * 3 * 32 * 32, -1, 1);
                xv[100] = bad;
                Tensor x = TestTensors.of(b, DType.FLOAT32, Shape.of(2, 3, 32, 32), xv);
                IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                        IllegalArgumentException.class, () -> net.forward(x, false));
                assertTrue(e.getMessage().contains("holds a NaN or an infinity; expected finite values"), e.getMessage());
                assertTrue(e.getMessage().startsWith("input 2x3x32x32 of network "), e.getMessage());
                org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                        () -> net.featuresAt(x, "features.1"));
            }
        }
    }

    static Stream<Arguments> networks() {
        VggSpec a = VggSpec.small(VggConfig.A, 32, 10).withWidth(0.125).withHidden(24).withSeed(5);
        VggSpec bn = VggSpec.small(VggConfig.B, 32, 10).withWidth(0.125).withHidden(24).withBatchNorm(true).withSeed(6);
        VggSpec c = VggSpec.small(VggConfig.C, 32, 10).withWidth(0.125).withHidden(24).withSeed(7); // conv1 layers
        return Stream.of(Arguments.of(a, "auto"), Arguments.of(bn, "auto"), Arguments.of(c, "gemm"),
                Arguments.of(a, "dnnl-sliced"));
    }

    /**
     * A training forward and backward through {@link Network} (fused pairs) against the same layers run one by one
     * ({@link FusionSteps}: each {@link Layer#forward}, no fusion): logits and every parameter gradient bitwise
     * equal. Dropout off (p = 0) so both passes draw nothing.
     */
    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("networks")
    void networkForwardAndBackwardEqualTheUnfusedLayers(VggSpec spec, String engine) {
        CpuBackend b = cpu(engine);
        try (Network net = Vgg.build(b, DType.FLOAT32, spec.withDropout(0))) {
            int pairs = 0;
            for (int i = 0; i + 1 < net.layers().size(); i++) {
                boolean pair = net.layers().get(i).layer() instanceof Conv2d
                        && net.layers().get(i + 1).layer() instanceof ReLU;
                assertEquals(pair, net.fusesRelu(i), "layer " + i);
                pairs += pair ? 1 : 0;
            }
            long convs = spec.config().layers().stream().filter(t -> !t.equals("M") && !t.equals("LRN")).count();
            assertEquals(spec.batchNorm() ? 0 : convs, pairs, "fused pairs");
            FusionSteps.initialise(b, net);
            Tensor x = TestTensors.random(b, DType.FLOAT32, Shape.of(3, 3, 32, 32), 9, -1, 1);
            FusionSteps[] steps = FusionSteps.fusedAndUnfused(net, x, new int[] {1, 7, 4});
            Approx.assertSameBits(steps[1].logits(), steps[0].logits(), "logits");
            Approx.assertSameBits(steps[1].grads(), steps[0].grads(), "parameter gradients");
        }
    }
}
