package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.core.testing.Approx.assertClose;
import static org.vgg4j.core.testing.Approx.assertExact;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * Parity of every op of the {@code cpu} backend with the {@code reference} backend (the definition), float32 and
 * float64, on shapes that are no multiple of any tile (odd H/W, C and K like 3, 5, 17), every tensor a VIEW at an
 * odd offset inside a larger buffer. GEMM and convolution also run on small integers, where every partial sum is
 * an exactly representable integer, so float results must be EXACT whatever the summation order.
 *
 * <p>Legend: N batch, C in-channels, K out-channels, H/W input, P/Q output, R/S kernel, F features.
 */
final class CpuBackendParityTest {
    private static Backend ref;
    private static Backend cpu;        // the production backend, as users get it
    private static Backend cpuSliced;  // slices every convolution image by image (exercises the slicing code)
    private static Backend cpuGemm;    // the im2col + OpenBLAS convolution engine (the plain natives' default)
    private static Backend cpuGemm1;   // the same, one image per GEMM (no grouping)
    private static Backend cpuSplit;   // oneDNN, backward split into GemmConv filter + deconv2d data up to 14x14 outputs
    private static Backend cpuNd4j;    // ND4J's ops (oneDNN 2.3 inside ND4J) with their routing table, unsliced
    private static Backend cpuDnnl;    // oneDNN called directly (DnnlConv) for EVERY float32 convolution
    private static Backend cpuDnnlSliced; // the same, image by image (weights reordered once, dw/db added per slice)
    private static Backend cpuDnnlDirect; // the same, backward-weights forced to convolution_direct (no Winograd)
    private static Backend cpuDnnlWinograd; // backward-weights forced to Winograd (3x3, channels multiples of 16)
    /** Convolution engines under test, by name: every one must match the reference on every shape. */
    private static final java.util.Map<String, Backend> ENGINES = new java.util.LinkedHashMap<>();

    @BeforeAll
    static void backends() {
        assertNull(CpuBackendProvider.probe(), "ND4J natives must load on the build machine");
        ref = Backends.create("reference");
        cpu = Backends.create("cpu");
        CpuBackend.Options d = CpuBackend.Options.defaults();
        cpuSliced = new CpuBackend(d.withRouting(ConvEngine.Routing.ND4J).withSliceElements(1));
        cpuGemm = new CpuBackend(d.withRouting(ConvEngine.Routing.GEMM));
        cpuGemm1 = new CpuBackend(d.withRouting(ConvEngine.Routing.GEMM).withColElements(1));
        cpuSplit = new CpuBackend(d.withRouting(ConvEngine.Routing.ND4J).withUnfusedMaxPixels(196));
        assertTrue(DnnlConv.available(), "oneDNN's natives (org.bytedeco:dnnl) must load on the build machine");
        cpuNd4j = new CpuBackend(d.withRouting(ConvEngine.Routing.ND4J));
        cpuDnnl = new CpuBackend(d.withRouting(ConvEngine.Routing.DNNL));
        cpuDnnlSliced = new CpuBackend(d.withRouting(ConvEngine.Routing.DNNL).withSliceElements(1));
        cpuDnnlDirect = new CpuBackend(d.withRouting(ConvEngine.Routing.DNNL).withDnnlBwdWeights("direct"));
        cpuDnnlWinograd = new CpuBackend(d.withRouting(ConvEngine.Routing.DNNL).withDnnlBwdWeights("winograd"));
        ENGINES.put("cpu (production: auto)", cpu);
        ENGINES.put("nd4j", cpuNd4j);
        ENGINES.put("nd4j sliced", cpuSliced);
        ENGINES.put("nd4j split <= 14x14", cpuSplit);
        ENGINES.put("gemm", cpuGemm);
        ENGINES.put("gemm one image per GEMM", cpuGemm1);
        ENGINES.put("dnnl", cpuDnnl);
        ENGINES.put("dnnl sliced", cpuDnnlSliced);
        ENGINES.put("dnnl direct", cpuDnnlDirect);
        ENGINES.put("dnnl winograd", cpuDnnlWinograd);
    }

    @AfterAll
    static void close() {
        cpu.close();
        cpuSliced.close();
        cpuGemm.close();
        cpuGemm1.close();
        cpuSplit.close();
        cpuNd4j.close();
        cpuDnnl.close();
        cpuDnnlSliced.close();
        cpuDnnlDirect.close();
        cpuDnnlWinograd.close();
        ENGINES.clear();
    }

    /** A pair of tensors with equal contents, one per backend, each a view at an odd offset. */
    private record Pair(Tensor r, Tensor c) {
        double[] ref() {
            return TestTensors.toArray(r);
        }

        double[] cpu() {
            return TestTensors.toArray(c);
        }
    }

    private static Tensor viewWith(Backend b, DType dt, Shape shape, double[] values, int offset) {
        Tensor base = b.allocate(dt, Shape.of(Math.toIntExact(shape.size()) + offset + 2));
        b.fill(base, Double.NaN); // what lies around a view must never leak into a result
        Tensor t = base.view(offset, shape);
        b.copyIn(values, 0, t);
        return t;
    }

    private static Pair pair(Backend c, DType dt, Shape shape, double[] values) {
        return new Pair(viewWith(ref, dt, shape, values, 3), viewWith(c, dt, shape, values, 5));
    }

    private static Pair random(Backend c, DType dt, long seed, int... dims) {
        Shape s = Shape.of(dims);
        return pair(c, dt, s, TestTensors.uniform(seed, Math.toIntExact(s.size()), -1, 1));
    }

    private static Pair integers(Backend c, DType dt, long seed, int lo, int hi, int... dims) {
        Shape s = Shape.of(dims);
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] v = new double[Math.toIntExact(s.size())];
        for (int i = 0; i < v.length; i++) {
            v[i] = lo + rnd.nextInt(hi - lo + 1);
        }
        return pair(c, dt, s, v);
    }

    private static double rtol(DType dt) {
        return dt == DType.FLOAT32 ? 2e-5 : 1e-12;
    }

    private static double atol(DType dt) {
        return dt == DType.FLOAT32 ? 2e-5 : 1e-12;
    }

    private static void close(Pair p, DType dt, String what) {
        assertClose(p.ref(), p.cpu(), rtol(dt), atol(dt), what);
    }

    private static void close(Pair p, double tol, String what) {
        assertClose(p.ref(), p.cpu(), tol, tol, what);
    }

    // ---------------------------------------------------------------- convolution

    /** Engine name, dtype, N, C, H, W, K, R (= S), pad: every engine of {@link #ENGINES} on every shape. */
    static Stream<Arguments> convShapes() {
        return convCases(false);
    }

    /** As {@link #convShapes()}, plus forced Winograd on the shapes it applies to (not exact: it rounds). */
    static Stream<Arguments> convShapesWithWinograd() {
        return convCases(true);
    }

    /** Whether oneDNN's Winograd backward-weights exists for a float32 shape here (AVX-512, 3x3, C and K % 16). */
    static boolean winograd(DType dt, int ch, int k, int r) {
        return dt == DType.FLOAT32 && r == 3 && ch % 16 == 0 && k % 16 == 0 && WINOGRAD_HERE;
    }

    /** Whether this CPU has oneDNN's Winograd kernels (AVX-512 Skylake or later); the tests then cover them. */
    private static final boolean WINOGRAD_HERE = winogradHere();

    private static boolean winogradHere() {
        if (!DnnlConv.available()) {
            return false;
        }
        try (DnnlConv d = new DnnlConv("winograd", false, false)) {
            return d.backwardWeightsImpl(2, 16, 12, 10, 32, 3, 3, 1).contains("wino");
        } catch (RuntimeException e) {
            return false; // "could not create a primitive descriptor": no Winograd kernels on this CPU
        }
    }

    private static Stream<Arguments> convCases(boolean withWinograd) {
        List<Arguments> list = new ArrayList<>();
        // The production backend sends every float32 call to DnnlConv; ND4J's routing sends
        // few-input layers (C*R*S < 32) and small images (P*Q <= 64) to GemmConv, the rest to ND4J: all kinds are
        // here, and the forced engines run every shape.
        int[][] shapes = {
            {2, 3, 7, 5, 5, 3, 1},     // first-layer-like: C = 3, odd H and W (GemmConv)
            {1, 17, 6, 9, 3, 3, 1},    // C = 17, small image (GemmConv)
            {3, 5, 5, 5, 17, 3, 1},    // K = 17 (GemmConv)
            {2, 5, 8, 7, 6, 1, 0},     // 1x1 (config C)
            {1, 4, 9, 7, 5, 5, 0},     // k x k valid (dense evaluation)
            {2, 3, 4, 4, 2, 3, 0},     // 3x3 valid, P = Q = 2
            {2, 7, 11, 9, 4, 3, 1},    // C*R*S = 63, P*Q = 99: ND4J (backward unfused: P*Q <= 196)
            {1, 17, 13, 9, 5, 3, 1},   // C = 17, odd 13x9: ND4J (backward unfused)
            {3, 5, 9, 11, 17, 3, 1},   // K = 17, N = 3: ND4J (backward unfused)
            {2, 40, 9, 9, 3, 1, 0},    // 1x1 with C = 40, P*Q = 81: ND4J (backward unfused)
            {2, 8, 16, 15, 6, 3, 1},   // P*Q = 240: ND4J with the fused backward (conv2d_bp)
            {1, 3, 9, 8, 4, 7, 0},     // 7x7 valid, P*Q = 6 (dense evaluation's FC6 as a convolution)
            {2, 6, 7, 7, 5, 7, 0},     // 7x7 valid onto a 1x1 output (FC6 at 224 in dense evaluation: P*Q = 1)
            {3, 16, 2, 2, 16, 3, 1},   // 2x2 images, N = 3 (W3's last block)
            {2, 24, 1, 1, 8, 3, 1},    // a 1x1 map under 3x3 (filter gradient as one GEMM: fewer pixels than taps)
            {3, 8, 2, 3, 12, 3, 1},    // a 2x3 map, the same
            {2, 16, 12, 10, 32, 3, 1}, // 3x3, channels multiples of 16: forced Winograd backward-weights
            {1, 32, 7, 9, 16, 3, 1},   // the same, odd sizes
        };
        for (String engine : List.of("cpu (production: auto)", "nd4j", "nd4j sliced", "nd4j split <= 14x14", "gemm",
                "gemm one image per GEMM", "dnnl", "dnnl sliced", "dnnl direct", "dnnl winograd")) {
            for (DType dt : DType.values()) {
                for (int[] s : shapes) {
                    if (!engine.equals("dnnl winograd") || withWinograd && winograd(dt, s[1], s[4], s[5])) {
                        list.add(Arguments.of(engine, dt, s[0], s[1], s[2], s[3], s[4], s[5], s[6]));
                    }
                }
            }
        }
        return list.stream();
    }

    private static void convAll(Backend c, DType dt, int n, int ch, int h, int w, int k, int r, int pad,
                                boolean exact, boolean withBias) {
        convAll(c, dt, n, ch, h, w, k, r, pad, exact, withBias, rtol(dt));
    }

    /**
     * Winograd's tolerance: F(4x4,3x3) moves each tile through transforms with factors up to 8 and sums 36
     * products per output of each channel, so its float32 rounding error is a few times a direct sum's; on these
     * sums of 576 or more products of values in [-1, 1] (magnitudes up to ~10) it stays within 1e-4.
     */
    private static final double WINOGRAD_TOL = 1e-4;

    private static void convAll(Backend c, DType dt, int n, int ch, int h, int w, int k, int r, int pad,
                                boolean exact, boolean withBias, double tol) {
        int p = h + 2 * pad - r + 1;
        int q = w + 2 * pad - r + 1;
        long seed = 31L * n + 7L * ch + h + 11L * k + r;
        Pair x = exact ? integers(c, dt, seed, -3, 3, n, ch, h, w) : random(c, dt, seed, n, ch, h, w);
        Pair wt = exact ? integers(c, dt, seed + 1, -2, 2, k, ch, r, r) : random(c, dt, seed + 1, k, ch, r, r);
        Pair b = withBias ? (exact ? integers(c, dt, seed + 2, -5, 5, k) : random(c, dt, seed + 2, k)) : null;
        Pair y = random(c, dt, seed + 3, n, k, p, q); // old contents: overwritten
        Pair dy = exact ? integers(c, dt, seed + 4, -3, 3, n, k, p, q) : random(c, dt, seed + 4, n, k, p, q);
        Pair dx = random(c, dt, seed + 5, n, ch, h, w);
        // parameter gradients ACCUMULATE: start from non-zero values
        Pair dw = exact ? integers(c, dt, seed + 6, -4, 4, k, ch, r, r) : random(c, dt, seed + 6, k, ch, r, r);
        Pair db = withBias ? (exact ? integers(c, dt, seed + 7, -4, 4, k) : random(c, dt, seed + 7, k)) : null;

        ref.conv2dForward(x.r, wt.r, b == null ? null : b.r, y.r, pad);
        c.conv2dForward(x.c, wt.c, b == null ? null : b.c, y.c, pad);
        // Conv2d.backward's call: both gradients at once (the cpu backend fuses them; the reference runs the two)
        ref.conv2dBackward(x.r, wt.r, dy.r, dx.r, dw.r, db == null ? null : db.r, pad);
        c.conv2dBackward(x.c, wt.c, dy.c, dx.c, dw.c, db == null ? null : db.c, pad);
        String what = dt + " conv N" + n + " C" + ch + " " + h + "x" + w + " K" + k + " R" + r + " pad" + pad;
        if (exact) {
            assertExact(y.ref(), y.cpu(), what + " forward");
            assertExact(dx.ref(), dx.cpu(), what + " backward data");
            assertExact(dw.ref(), dw.cpu(), what + " backward filter");
            if (db != null) {
                assertExact(db.ref(), db.cpu(), what + " bias gradient");
            }
        } else {
            close(y, tol, what + " forward");
            close(dx, tol, what + " backward data");
            close(dw, tol, what + " backward filter");
            if (db != null) {
                close(db, tol, what + " bias gradient");
            }
        }

        // the unfused paths: a filter gradient alone (VGG's first layer), then a data gradient alone
        ref.conv2dBackwardFilter(x.r, dy.r, dw.r, db == null ? null : db.r, pad);
        c.conv2dBackwardFilter(x.c, dy.c, dw.c, db == null ? null : db.c, pad);
        ref.fill(dx.r, 0.5);
        c.fill(dx.c, 0.5);
        ref.conv2dBackwardData(dy.r, wt.r, dx.r, pad);
        c.conv2dBackwardData(dy.c, wt.c, dx.c, pad);
        if (exact) {
            assertExact(dw.ref(), dw.cpu(), what + " filter-only gradient");
            assertExact(dx.ref(), dx.cpu(), what + " data-only gradient");
        } else {
            close(dw, tol, what + " filter-only gradient");
            close(dx, tol, what + " data-only gradient");
        }

        // the layer's call without an input gradient (VGG's first layer): the filter gradient only, dx untouched
        double[] dxBefore = dx.cpu();
        ref.conv2dBackward(x.r, wt.r, dy.r, null, dw.r, db == null ? null : db.r, pad);
        c.conv2dBackward(x.c, wt.c, dy.c, null, dw.c, db == null ? null : db.c, pad);
        if (exact) {
            assertExact(dw.ref(), dw.cpu(), what + " backward without input gradient");
        } else {
            close(dw, tol, what + " backward without input gradient");
        }
        if (db != null && exact) {
            assertExact(db.ref(), db.cpu(), what + " bias gradient without input gradient");
        } else if (db != null) {
            close(db, tol, what + " bias gradient without input gradient");
        }
        assertExact(dxBefore, dx.cpu(), what + " dx untouched without input gradient");
    }

    @ParameterizedTest(name = "{0} {1} N{2} C{3} {4}x{5} K{6} R{7} pad{8}")
    @MethodSource("convShapesWithWinograd")
    void convolutionMatchesReference(String engine, DType dt, int n, int ch, int h, int w, int k, int r, int pad) {
        Backend c = ENGINES.get(engine);
        convAll(c, dt, n, ch, h, w, k, r, pad, false, true);
        convAll(c, dt, n, ch, h, w, k, r, pad, false, false); // biases absent
    }

    @ParameterizedTest(name = "{0} {1} N{2} C{3} {4}x{5} K{6} R{7} pad{8}")
    @MethodSource("convShapes")
    void convolutionOnSmallIntegersIsExact(String engine, DType dt, int n, int ch, int h, int w, int k, int r,
                                           int pad) {
        Backend c = ENGINES.get(engine);
        convAll(c, dt, n, ch, h, w, k, r, pad, true, true);
        convAll(c, dt, n, ch, h, w, k, r, pad, true, false);
    }

    /**
     * Forward and backward-data in Winograd on the layers where it pays (DnnlConv#winogradPays: 3x3, C and K >= 64
     * on maps >= 14x14, or C >= 128 and K >= 256 on maps >= 4x4): against the reference within Winograd's
     * tolerance; where this CPU has oneDNN's Winograd, the
     * implementations are Winograd there and direct on a smaller shape, and direct everywhere with
     * -Dvgg4j.cpu.dnnlWinograd=off.
     */
    @Test
    void winogradForwardAndBackwardDataOnTheLayersWhereItPays() {
        for (int[] s : new int[][] {{1, 64, 14, 14, 64, 3, 1}, {2, 64, 16, 15, 80, 3, 1}, {2, 128, 4, 5, 256, 3, 1}}) {
            convAll(cpu, DType.FLOAT32, s[0], s[1], s[2], s[3], s[4], s[5], s[6], false, true, WINOGRAD_TOL);
            convAll(cpu, DType.FLOAT32, s[0], s[1], s[2], s[3], s[4], s[5], s[6], false, false, WINOGRAD_TOL);
        }
        DnnlConv dnnl = ((CpuBackend) cpu).dnnl();
        String big = dnnl.implementations(2, 64, 16, 15, 80, 3, 3, 1);
        String deep = dnnl.implementations(2, 128, 4, 5, 256, 3, 3, 1);
        if (WINOGRAD_HERE) {
            assertTrue(big.startsWith("forward=jit_wino") && big.contains("backward-data=jit_wino"), big);
            assertTrue(deep.startsWith("forward=jit_wino") && deep.contains("backward-data=jit_wino"), deep);
        }
        // below the rule: few channels on a large map, a small map without enough channels, a 2x2 map
        for (String direct : List.of(dnnl.implementations(2, 32, 16, 15, 80, 3, 3, 1),
                dnnl.implementations(2, 64, 8, 8, 64, 3, 3, 1), dnnl.implementations(2, 128, 4, 4, 128, 3, 3, 1),
                dnnl.implementations(2, 512, 2, 2, 512, 3, 3, 1))) {
            assertTrue(!direct.contains("forward=jit_wino") && !direct.contains("backward-data=jit_wino"), direct);
        }
        // backward-weights on auto: oneDNN's choice, but direct on maps below 4x4 (Winograd's tiles are padding there)
        String tiny = dnnl.backwardWeightsImpl(64, 512, 2, 2, 512, 3, 3, 1); // W3's: oneDNN would take Winograd
        assertTrue(!tiny.contains("wino"), tiny);
        try (CpuBackend off = new CpuBackend(CpuBackend.Options.defaults().withDnnlWinograd("off"))) {
            String direct = off.dnnl().implementations(2, 64, 16, 15, 80, 3, 3, 1);
            assertTrue(!direct.contains("forward=jit_wino") && !direct.contains("backward-data=jit_wino"), direct);
        }
    }

    @Test
    void productionRoutingTakesDirectOneDnnForFloat32() {
        assertEquals("auto+dnnl", ((CpuBackend) cpu).convolutionEngine());
    }

    /** The forced-Winograd engine of the parity tests really runs Winograd (else those cases would prove nothing). */
    @Test
    void winogradEngineRunsWinogradWhereThisCpuHasIt() {
        org.junit.jupiter.api.Assumptions.assumeTrue(WINOGRAD_HERE, "no Winograd kernels on this CPU (AVX-512)");
        assertTrue(((CpuBackend) cpuDnnlWinograd).dnnl().backwardWeightsImpl(1, 32, 7, 9, 16, 3, 3, 1).contains("wino"));
        assertTrue(((CpuBackend) cpuDnnlDirect).dnnl().backwardWeightsImpl(1, 32, 7, 9, 16, 3, 3, 1)
                .startsWith("jit:"));
    }

    /** close() frees DnnlConv's native buffers and primitives at once; the backend then works again (re-created). */
    @Test
    void dnnlCloseFreesNativeMemoryAndTheEngineRecovers() {
        CpuBackend b = new CpuBackend(CpuBackend.Options.defaults().withRouting(ConvEngine.Routing.DNNL));
        try {
            convAll(b, DType.FLOAT32, 2, 8, 9, 9, 6, 3, 1, true, true);
            assertTrue(b.dnnlWorkBytes() > 0, "blocked layouts need work buffers");
            b.close();
            assertEquals(0, b.dnnlWorkBytes());
            convAll(b, DType.FLOAT32, 2, 8, 9, 9, 6, 3, 1, true, true);
        } finally {
            b.close();
        }
    }

    // ---------------------------------------------------------------- GEMM

    static Stream<Arguments> gemmCases() {
        List<Arguments> list = new ArrayList<>();
        for (DType dt : DType.values()) {
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    list.add(Arguments.of(dt, ta, tb));
                }
            }
        }
        return list.stream();
    }

    @ParameterizedTest
    @MethodSource("gemmCases")
    void gemmMatchesReferenceAndIsExactOnIntegers(DType dt, boolean ta, boolean tb) {
        int[][] sizes = {{1, 1, 1}, {5, 17, 3}, {33, 7, 65}, {4, 129, 10}};
        for (int[] s : sizes) {
            int m = s[0];
            int kd = s[1];
            int nn = s[2];
            int[] aDims = ta ? new int[] {kd, m} : new int[] {m, kd};
            int[] bDims = tb ? new int[] {nn, kd} : new int[] {kd, nn};
            String what = dt + " gemm " + m + "x" + kd + "x" + nn + (ta ? " A^T" : "") + (tb ? " B^T" : "");
            // exact: integers, alpha and beta small integers
            Pair a = integers(cpu, dt, 1, -3, 3, aDims);
            Pair b = integers(cpu, dt, 2, -3, 3, bDims);
            Pair c = integers(cpu, dt, 3, -9, 9, m, nn);
            ref.gemm(ta, tb, 2.0, a.r, b.r, -1.0, c.r);
            cpu.gemm(ta, tb, 2.0, a.c, b.c, -1.0, c.c);
            assertExact(c.ref(), c.cpu(), what + " (integers)");
            // beta = 0 ignores old contents, even NaN
            Pair nan = pair(cpu, dt, Shape.of(m, nn), fillArray(m * nn, Double.NaN));
            ref.gemm(ta, tb, 1.0, a.r, b.r, 0.0, nan.r);
            cpu.gemm(ta, tb, 1.0, a.c, b.c, 0.0, nan.c);
            assertExact(nan.ref(), nan.cpu(), what + " beta 0 over NaN");
            // real values
            Pair ar = random(cpu, dt, 4, aDims);
            Pair br = random(cpu, dt, 5, bDims);
            Pair cr = random(cpu, dt, 6, m, nn);
            ref.gemm(ta, tb, 0.75, ar.r, br.r, 0.5, cr.r);
            cpu.gemm(ta, tb, 0.75, ar.c, br.c, 0.5, cr.c);
            close(cr, dt, what);
        }
    }

    private static double[] fillArray(int n, double v) {
        double[] a = new double[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    // ---------------------------------------------------------------- memory

    @ParameterizedTest
    @EnumSource(DType.class)
    void memoryOpsMatchReference(DType dt) {
        double[] v = TestTensors.uniform(9, 37, -2, 2);
        Pair t = pair(cpu, dt, Shape.of(37), v);
        close(t, dt, dt + " copyIn/copyOut");
        // float[] entry points with a host offset
        float[] host = new float[40];
        for (int i = 0; i < host.length; i++) {
            host[i] = i * 0.25f - 3;
        }
        ref.copyIn(host, 2, t.r);
        cpu.copyIn(host, 2, t.c);
        assertExact(t.ref(), t.cpu(), dt + " copyIn(float[])");
        float[] outR = new float[40];
        float[] outC = new float[40];
        ref.copyOut(t.r, outR, 1);
        cpu.copyOut(t.c, outC, 1);
        assertArrayEquals(outR, outC, dt + " copyOut(float[])");
        Pair dst = random(cpu, dt, 10, 37);
        ref.copy(t.r, dst.r);
        cpu.copy(t.c, dst.c);
        assertExact(dst.ref(), dst.cpu(), dt + " copy");
        ref.fill(dst.r, 1.5);
        cpu.fill(dst.c, 1.5);
        assertExact(dst.ref(), dst.cpu(), dt + " fill");
        Tensor fresh = cpu.allocate(dt, Shape.of(3, 5));
        assertExact(new double[15], TestTensors.toArray(fresh), dt + " allocate is zero-filled");
    }

    // ---------------------------------------------------------------- pooling, activations

    @ParameterizedTest
    @EnumSource(DType.class)
    void maxPoolMatchesReferenceWithTiesAndOddSizes(DType dt) {
        int[][] shapes = {{2, 3, 7, 5}, {1, 17, 6, 6}, {3, 5, 2, 9}};
        for (int[] s : shapes) {
            // small integers: many ties inside windows, where the FIRST maximum must take the gradient
            Pair x = integers(cpu, dt, s[1], -2, 2, s);
            Pair y = random(cpu, dt, 2, s[0], s[1], s[2] / 2, s[3] / 2);
            Pair dy = random(cpu, dt, 3, s[0], s[1], s[2] / 2, s[3] / 2);
            Pair dx = random(cpu, dt, 4, s);
            ref.maxPool2x2Forward(x.r, y.r);
            cpu.maxPool2x2Forward(x.c, y.c);
            assertExact(y.ref(), y.cpu(), dt + " maxpool forward " + Shape.of(s));
            ref.maxPool2x2Backward(x.r, y.r, dy.r, dx.r);
            cpu.maxPool2x2Backward(x.c, y.c, dy.c, dx.c);
            assertExact(dx.ref(), dx.cpu(), dt + " maxpool backward " + Shape.of(s));
        }
    }

    /** The 7 kinds of value a max-pool window mixes: 7^4 = 2401 windows, 49 planes of 7x7 windows. */
    private static final double[] POOL_KINDS = {Double.NaN, -0.0, 0.0, 1.0, -1.0, Double.POSITIVE_INFINITY,
        Double.NEGATIVE_INFINITY};

    @ParameterizedTest
    @EnumSource(DType.class)
    void maxPoolOnNaNSignedZerosInfinitiesAndTiesIsTheReferenceBitForBit(DType dt) {
        // x (7, 7, 15, 15): window k (plane k / 49, row (k % 49) / 7, column k % 7) holds, at its element e
        // (row-major), POOL_KINDS[digit e of k in base 7]: every combination once. H and W odd: the last row and
        // column are ignored (2.0 there, more than any finite kind).
        int[] s = {7, 7, 15, 15};
        double[] xv = new double[7 * 7 * 15 * 15];
        java.util.Arrays.fill(xv, 2.0);
        double[] dyv = new double[2401];
        for (int k = 0; k < 2401; k++) {
            for (int e = 0; e < 4; e++) {
                xv[poolElement(k, e)] = POOL_KINDS[(k / (int) Math.pow(7, e)) % 7];
            }
            dyv[k] = k + 1; // where each window's gradient lands is visible
        }
        Pair x = pair(cpu, dt, Shape.of(s), xv);
        Pair y = random(cpu, dt, 2, 7, 7, 7, 7);
        Pair dy = pair(cpu, dt, Shape.of(7, 7, 7, 7), dyv);
        Pair dx = random(cpu, dt, 4, s);
        ref.maxPool2x2Forward(x.r, y.r);
        cpu.maxPool2x2Forward(x.c, y.c);
        assertArrayEquals(y.ref(), y.cpu(), dt + " maxpool forward"); // bits: NaN equals NaN, -0 is not +0
        ref.maxPool2x2Backward(x.r, y.r, dy.r, dx.r);
        cpu.maxPool2x2Backward(x.c, y.c, dy.c, dx.c);
        assertArrayEquals(dx.ref(), dx.cpu(), dt + " maxpool backward");
        // The rule, spelt out on a few windows (kinds: 0 NaN, 1 -0, 2 +0, 3 one, 4 minus one, 5 +inf, 6 -inf):
        // the first element, replaced only by a strictly greater later one.
        double[] yc = y.cpu();
        double[] dxc = dx.cpu();
        int[][] windows = {{0, 3, 3, 3, 0}, {3, 0, 6, 5, 3}, {1, 2, 4, 4, 0}, {2, 1, 4, 4, 0}, {3, 3, 3, 3, 0},
            {4, 0, 0, 4, 0}, {6, 6, 6, 0, 0}};
        for (int[] w : windows) { // four kinds, then the element that wins
            int k = w[0] + 7 * w[1] + 49 * w[2] + 343 * w[3];
            String at = dt + " window " + java.util.Arrays.toString(java.util.Arrays.copyOf(w, 4));
            assertEquals(Double.doubleToLongBits(POOL_KINDS[w[w[4]]]), Double.doubleToLongBits(yc[k]), at);
            for (int e = 0; e < 4; e++) {
                assertEquals(e == w[4] ? k + 1 : 0.0, dxc[poolElement(k, e)], at + " element " + e);
            }
        }
    }

    /** Index in x (7, 7, 15, 15) of element e (row-major) of 2x2 window k. */
    private static int poolElement(int k, int e) {
        int plane = k / 49;
        int i = (k % 49) / 7;
        int j = k % 7;
        return (plane * 15 + 2 * i + e / 2) * 15 + 2 * j + e % 2;
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void reluBackwardOnSpecialValuesIsTheDefinitionBitForBit(DType dt) {
        // The cpu backend selects with an integer mask, not a comparison: every kind of y against every kind of dy.
        double[] kinds = {0.0, -0.0, Float.MIN_VALUE, -Float.MIN_VALUE, 1.0, -1.0, Float.MAX_VALUE,
            Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NaN};
        int n = kinds.length * kinds.length;
        double[] yv = new double[n];
        double[] dyv = new double[n];
        for (int i = 0; i < n; i++) {
            yv[i] = kinds[i / kinds.length];
            dyv[i] = kinds[i % kinds.length] * 1.5;
        }
        Pair y = pair(cpu, dt, Shape.of(n), yv);
        Pair dy = pair(cpu, dt, Shape.of(n), dyv);
        Pair dx = random(cpu, dt, 5, n);
        ref.reluBackward(y.r, dy.r, dx.r);
        cpu.reluBackward(y.c, dy.c, dx.c);
        double[] got = dx.cpu();
        double[] reference = dx.ref();
        double[] dys = dy.ref();
        for (int i = 0; i < n; i++) { // bits, so that NaN and the sign of zero count: the reference, the definition
            String at = "y " + yv[i] + " dy " + dyv[i];
            assertEquals(Double.doubleToLongBits(reference[i]), Double.doubleToLongBits(got[i]), at);
            assertEquals(Double.doubleToLongBits(yv[i] > 0 ? dys[i] : 0.0), Double.doubleToLongBits(got[i]), at);
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void reluMatchesReferenceOutOfPlaceAndInPlace(DType dt) {
        Pair x = random(cpu, dt, 1, 3, 5, 7);
        Pair y = random(cpu, dt, 2, 3, 5, 7);
        ref.reluForward(x.r, y.r);
        cpu.reluForward(x.c, y.c);
        assertExact(y.ref(), y.cpu(), dt + " relu");
        ref.reluForward(x.r, x.r);
        cpu.reluForward(x.c, x.c);
        assertExact(x.ref(), x.cpu(), dt + " relu in place");
        Pair dy = random(cpu, dt, 3, 3, 5, 7);
        Pair dx = random(cpu, dt, 4, 3, 5, 7);
        ref.reluBackward(y.r, dy.r, dx.r);
        cpu.reluBackward(y.c, dy.c, dx.c);
        assertExact(dx.ref(), dx.cpu(), dt + " relu backward");
        ref.reluBackward(y.r, dy.r, dy.r);
        cpu.reluBackward(y.c, dy.c, dy.c);
        assertExact(dy.ref(), dy.cpu(), dt + " relu backward in place");
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void lrnMatchesReference(DType dt) {
        for (int size : new int[] {5, 4, 1}) {
            int[] s = {2, 7, 3, 5};
            Pair x = random(cpu, dt, size, s);
            Pair y = random(cpu, dt, 2, s);
            Pair scale = random(cpu, dt, 3, s);
            Pair dy = random(cpu, dt, 4, s);
            Pair dx = random(cpu, dt, 5, s);
            // a large alpha so the normalisation is far from the identity
            ref.lrnForward(x.r, y.r, scale.r, size, 0.5, 0.75, 2.0);
            cpu.lrnForward(x.c, y.c, scale.c, size, 0.5, 0.75, 2.0);
            close(y, dt, dt + " lrn forward size " + size);
            close(scale, dt, dt + " lrn scale size " + size);
            ref.lrnBackward(x.r, y.r, scale.r, dy.r, dx.r, size, 0.5, 0.75, 2.0);
            cpu.lrnBackward(x.c, y.c, scale.c, dy.c, dx.c, size, 0.5, 0.75, 2.0);
            close(dx, dt, dt + " lrn backward size " + size);
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void dropoutAndMultiplyMatchReference(DType dt) {
        Pair x = random(cpu, dt, 1, 5, 33);
        Pair y = random(cpu, dt, 2, 5, 33);
        Pair mask = random(cpu, dt, 3, 5, 33);
        ref.dropoutForward(x.r, y.r, mask.r, 0.3, 1234L);
        cpu.dropoutForward(x.c, y.c, mask.c, 0.3, 1234L);
        assertExact(mask.ref(), mask.cpu(), dt + " dropout mask");
        assertExact(y.ref(), y.cpu(), dt + " dropout output");
        Pair dy = random(cpu, dt, 4, 5, 33);
        ref.multiply(dy.r, mask.r, dy.r);
        cpu.multiply(dy.c, mask.c, dy.c);
        assertExact(dy.ref(), dy.cpu(), dt + " multiply in place");
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void batchNormMatchesReference(DType dt) {
        assertBatchNormMatches(dt, new int[] {3, 5, 4, 7}, TestTensors.uniform(1, 3 * 5 * 4 * 7, -1, 1),
                TestTensors.uniform(2, 5, -1, 1), dt + " batchnorm");
    }

    /**
     * Training forward, backward and inference of batch norm on x (s) of these values and gamma, every other input
     * random, cpu against the reference; {@code what} names the case.
     */
    private static void assertBatchNormMatches(DType dt, int[] s, double[] xv, double[] gammaV, String what) {
        int c = s[1];
        Pair x = pair(cpu, dt, Shape.of(s), xv);
        Pair gamma = pair(cpu, dt, Shape.of(c), gammaV);
        Pair beta = random(cpu, dt, 3, c);
        Pair y = random(cpu, dt, 4, s);
        Pair rm = random(cpu, dt, 5, c);
        Pair rv = pair(cpu, dt, Shape.of(c), TestTensors.uniform(6, c, 0.5, 2));
        Pair sm = random(cpu, dt, 7, c);
        Pair si = random(cpu, dt, 8, c);
        ref.batchNormForwardTraining(x.r, gamma.r, beta.r, y.r, rm.r, rv.r, sm.r, si.r, 0.1, 1e-5);
        cpu.batchNormForwardTraining(x.c, gamma.c, beta.c, y.c, rm.c, rv.c, sm.c, si.c, 0.1, 1e-5);
        close(y, dt, what + " training output");
        close(rm, dt, what + " running mean");
        close(rv, dt, what + " running var");
        close(sm, dt, what + " saved mean");
        close(si, dt, what + " saved inverse std");
        Pair dy = random(cpu, dt, 9, s);
        Pair dx = random(cpu, dt, 10, s);
        Pair dg = random(cpu, dt, 11, c);
        Pair dbt = random(cpu, dt, 12, c);
        ref.batchNormBackward(x.r, dy.r, gamma.r, sm.r, si.r, dx.r, dg.r, dbt.r);
        cpu.batchNormBackward(x.c, dy.c, gamma.c, sm.c, si.c, dx.c, dg.c, dbt.c);
        close(dx, dt, what + " dx");
        close(dg, dt, what + " dgamma (accumulated)");
        close(dbt, dt, what + " dbeta (accumulated)");
        ref.batchNormForwardInference(x.r, gamma.r, beta.r, y.r, rm.r, rv.r, 1e-5);
        cpu.batchNormForwardInference(x.c, gamma.c, beta.c, y.c, rm.c, rv.c, 1e-5);
        close(y, dt, what + " inference");
    }

    /**
     * dtype, N, C, H, W, and whether the values sit at 1000 with a standard deviation of 0.1: C of 1, 3 and 16,
     * batches of 1 and 7, H*W below, equal to and above F32Loops.BLOCK (planes of one block, of a block and a
     * remainder, and of less; tiny planes, many to a block, the blocks not aligned with images), mostly odd.
     */
    static Stream<Arguments> batchNormCases() {
        int[][] shapes = {{1, 1, 5, 7}, {7, 1, 3, 3}, {7, 3, 13, 17}, {7, 16, 9, 11}, {1, 3, 67, 71}, {1, 16, 64, 64},
            {2, 3, 65, 65}, {7, 16, 2, 2}, {3, 5, 1, 3}};
        List<Arguments> cases = new ArrayList<>();
        for (DType dt : DType.values()) {
            for (int[] s : shapes) {
                for (boolean largeMean : new boolean[] {false, true}) {
                    cases.add(Arguments.of(dt, s[0], s[1], s[2], s[3], largeMean));
                }
            }
        }
        return cases.stream();
    }

    /**
     * Training forward, backward and inference against the reference on odd shapes. At mean 1000 and variance
     * 1e-2, sums in float (a one-pass E[x^2] - E[x]^2 above all) or a mean rounded to float in the element loops
     * miss the reference by far more than the tolerance (ulp(1000) in float is 6e-5, 6e-4 of a standard deviation).
     */
    @ParameterizedTest(name = "{0} {1}x{2}x{3}x{4} large mean {5}")
    @MethodSource("batchNormCases")
    void batchNormMatchesReferenceOnOddShapesAndLargeMeans(DType dt, int nb, int c, int h, int w, boolean largeMean) {
        int[] s = {nb, c, h, w};
        int n = nb * c * h * w;
        java.util.Random rnd = new java.util.Random(nb * 1000 + c * 100 + h);
        double[] xv = new double[n];
        for (int i = 0; i < n; i++) {
            xv[i] = largeMean ? 1000 + 0.1 * rnd.nextGaussian() : rnd.nextGaussian();
        }
        assertBatchNormMatches(dt, s, xv, TestTensors.uniform(2, c, 0.5, 2),
                dt + " " + Shape.of(s) + (largeMean ? " at mean 1000" : ""));
    }

    /**
     * Every batch-norm output is the same bits split over 1, 2 or 3 threads. The shapes are big enough for
     * the float32 loops to make two parts or more (H*W 1155, three planes to a block; planes of two segments;
     * 4x4 planes, 256 to a block, in up to four parts).
     */
    @ParameterizedTest
    @EnumSource(DType.class)
    void batchNormGivesTheSameBitsOnOneTwoAndThreeThreads(DType dt) {
        for (int[] s : new int[][] {{7, 16, 33, 35}, {7, 3, 67, 71}, {128, 128, 4, 4}}) {
            List<double[]> one = batchNormOutputs(dt, s, 1);
            for (int threads = 2; threads <= 3; threads++) {
                List<double[]> more = batchNormOutputs(dt, s, threads);
                for (int k = 0; k < one.size(); k++) {
                    assertArrayEquals(one.get(k), more.get(k), dt + " " + Shape.of(s) + " output " + k + " on "
                            + threads + " threads");
                }
            }
        }
    }

    /** y, running mean and var, saved mean and inverse std, dx, dgamma, dbeta, inference y: cpu, on threads. */
    private static List<double[]> batchNormOutputs(DType dt, int[] s, int threads) {
        int c = s[1];
        int n = s[0] * c * s[2] * s[3];
        Tensor x = viewWith(cpu, dt, Shape.of(s), TestTensors.uniform(1, n, 3, 5), 5);
        Tensor gamma = viewWith(cpu, dt, Shape.of(c), TestTensors.uniform(2, c, 0.5, 2), 1);
        Tensor beta = viewWith(cpu, dt, Shape.of(c), TestTensors.uniform(3, c, -1, 1), 1);
        Tensor y = viewWith(cpu, dt, Shape.of(s), new double[n], 3);
        Tensor rm = viewWith(cpu, dt, Shape.of(c), TestTensors.uniform(5, c, -1, 1), 1);
        Tensor rv = viewWith(cpu, dt, Shape.of(c), TestTensors.uniform(6, c, 0.5, 2), 1);
        Tensor sm = viewWith(cpu, dt, Shape.of(c), new double[c], 1);
        Tensor si = viewWith(cpu, dt, Shape.of(c), new double[c], 1);
        Tensor dy = viewWith(cpu, dt, Shape.of(s), TestTensors.uniform(9, n, -1, 1), 7);
        Tensor dx = viewWith(cpu, dt, Shape.of(s), new double[n], 3);
        Tensor dg = viewWith(cpu, dt, Shape.of(c), TestTensors.uniform(11, c, -1, 1), 1);
        Tensor dbt = viewWith(cpu, dt, Shape.of(c), TestTensors.uniform(12, c, -1, 1), 1);
        NormLoops.batchNormForwardTraining(x, gamma, beta, y, rm, rv, sm, si, 0.1, 1e-5, threads);
        List<double[]> out = new ArrayList<>();
        for (Tensor t : new Tensor[] {y, rm, rv, sm, si}) {
            out.add(TestTensors.toArray(t));
        }
        NormLoops.batchNormBackward(x, dy, gamma, sm, si, dx, dg, dbt, threads);
        for (Tensor t : new Tensor[] {dx, dg, dbt}) {
            out.add(TestTensors.toArray(t));
        }
        NormLoops.batchNormForwardInference(x, gamma, beta, y, rm, rv, 1e-5, threads);
        out.add(TestTensors.toArray(y));
        return out;
    }

    // ---------------------------------------------------------------- dense algebra, loss, optimiser

    @ParameterizedTest
    @EnumSource(DType.class)
    void biasAxpyScaleMatchReference(DType dt) {
        for (int[] s : new int[][] {{3, 17}, {2, 5, 3, 7}}) {
            Pair y = random(cpu, dt, 1, s);
            Pair bias = random(cpu, dt, 2, s[1]);
            ref.addBias(y.r, bias.r);
            cpu.addBias(y.c, bias.c);
            close(y, dt, dt + " addBias " + Shape.of(s));
            ref.biasBackward(y.r, bias.r);
            cpu.biasBackward(y.c, bias.c);
            close(bias, dt, dt + " biasBackward " + Shape.of(s));
        }
        Pair x = random(cpu, dt, 3, 41);
        Pair y = random(cpu, dt, 4, 41);
        ref.axpy(-0.5, x.r, y.r);
        cpu.axpy(-0.5, x.c, y.c);
        close(y, dt, dt + " axpy");
        ref.scale(y.r, 3.0);
        cpu.scale(y.c, 3.0);
        close(y, dt, dt + " scale");
        assertClose(ref.sumOfSquares(y.r), cpu.sumOfSquares(y.c), rtol(dt), atol(dt), dt + " sumOfSquares");
        // above one reduction chunk, so the chunked sum is exercised
        Pair big = random(cpu, dt, 5, 3 * Parallel.CHUNK + 17);
        assertClose(ref.sumOfSquares(big.r), cpu.sumOfSquares(big.c), rtol(dt), atol(dt), dt + " sumOfSquares big");
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void softmaxAndCrossEntropyMatchReference(DType dt) {
        Pair logits = pair(cpu, dt, Shape.of(3, 7), TestTensors.uniform(1, 21, -30, 30)); // large: max subtracted
        Pair probs = random(cpu, dt, 2, 3, 7);
        ref.softmax(logits.r, probs.r);
        cpu.softmax(logits.c, probs.c);
        close(probs, dt, dt + " softmax");
        Pair grad = random(cpu, dt, 3, 3, 7);
        int[] labels = {6, 0, 3};
        double lr = ref.softmaxCrossEntropy(logits.r, labels, grad.r);
        double lc = cpu.softmaxCrossEntropy(logits.c, labels, grad.c);
        assertClose(lr, lc, rtol(dt), atol(dt), dt + " cross-entropy loss");
        close(grad, dt, dt + " cross-entropy gradient");
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void sgdStepMatchesReference(DType dt) {
        int n = 1001;
        Pair p = random(cpu, dt, 1, n);
        Pair g = random(cpu, dt, 2, n);
        Pair v = random(cpu, dt, 3, n);
        ref.sgdStep(p.r, g.r, v.r, 0.1, 0.9, 5e-4, 600);
        cpu.sgdStep(p.c, g.c, v.c, 0.1, 0.9, 5e-4, 600);
        close(p, dt, dt + " sgd params");
        close(v, dt, dt + " sgd velocity");
        assertExact(new double[n], g.cpu(), dt + " sgd clears the gradient");
    }

    @Test
    void providerIsFoundAndReportsNoReason() {
        assertTrue(Backends.names().contains("cpu"));
        assertEquals("cpu", cpu.name());
        assertTrue(cpu.supports(DType.FLOAT32) && cpu.supports(DType.FLOAT64));
    }
}
