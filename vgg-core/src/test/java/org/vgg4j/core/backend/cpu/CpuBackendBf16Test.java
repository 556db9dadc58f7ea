package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.core.testing.Approx.assertClose;
import static org.vgg4j.core.testing.Approx.assertExact;

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
import org.vgg4j.core.layers.ParamSpec;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * The {@code cpu} backend in {@link CpuPrecision#BF16}: each convolution pass against the {@code reference} backend
 * run on the SAME operands rounded to bf16 (round to nearest even), float32 results. Small integers are exact in
 * bf16 and every partial sum of them is exact in f32, so there the results must be EQUAL whatever oneDNN's order;
 * on reals the two differ only by the f32 summation order (tolerance below). On a machine without AVX512-BF16 the
 * same tests assert the error that names the missing instruction set instead. Legend: N batch, C in, K out, H/W
 * in, P/Q out, R/S kernel (3x3, padding 1: VGG's).
 */
final class CpuBackendBf16Test {
    /** Why BF16 cannot run on this machine; null where it can (then the parity branch runs). */
    private static final String MISSING = Bf16Support.unavailableReason();
    /**
     * Reals in [-1, 1]: both sides sum the same exact bf16 products (8-bit mantissas: each product is exact in
     * f32) in f32, in different orders; C*R*S <= 1152 terms of magnitude <= 1 give |error| <= ~1e-4 at worst.
     */
    private static final double RTOL = 1e-5;
    private static final double ATOL = 1e-4;

    private static Backend ref;
    private static CpuBackend bf16;

    @BeforeAll
    static void backends() {
        assertNull(CpuBackendProvider.probe(), "ND4J natives must load on the build machine");
        assertTrue(DnnlConv.available(), "oneDNN's natives (org.bytedeco:dnnl) must load on the build machine");
        ref = Backends.reference();
        bf16 = MISSING == null ? new CpuBackend(CpuBackend.Options.defaults().withPrecision(CpuPrecision.BF16)) : null;
    }

    @AfterAll
    static void close() {
        if (bf16 != null) {
            bf16.close();
        }
    }

    /** x rounded to the nearest bfloat16, ties to even (what oneDNN's f32 to bf16 reorder does). */
    static float toBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if (Float.isNaN(x)) {
            return x;
        }
        bits += 0x7FFF + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(bits & 0xFFFF0000);
    }

    private static double[] roundedToBf16(double[] v) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            r[i] = toBf16((float) v[i]);
        }
        return r;
    }

    private static double[] toF32(double[] v) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            r[i] = (float) v[i];
        }
        return r;
    }

    private static double[] integers(long seed, int n, int lo, int hi) {
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = rnd.nextInt(lo, hi + 1);
        }
        return v;
    }

    private static Tensor tensor(Backend b, double[] v, int... dims) {
        return TestTensors.of(b, DType.FLOAT32, Shape.of(dims), v);
    }

    static Stream<Arguments> shapes() {
        return Stream.of( // N, C, H, W, K
                Arguments.of(2, 3, 12, 12, 64),  // VGG's first layer: C = 3
                Arguments.of(2, 64, 8, 8, 64),   // block 1
                Arguments.of(1, 64, 6, 6, 128),  // block 2's first layer
                Arguments.of(2, 128, 4, 4, 128), // block 2
                Arguments.of(1, 17, 7, 5, 5),    // no multiple of any block: odd C, K, H, W
                Arguments.of(32, 16, 2, 2, 24),  // 2x2 maps (W3's last block): the filter gradient as a bf16 GEMM
                Arguments.of(32, 40, 1, 1, 32)); // a 1x1 map, the same
    }

    /** The BF16 backend refuses to start, naming the missing instruction set: the branch of machines without it. */
    /** True where bf16 cannot run here, once the backend's refusal is checked to say why. */
    private static boolean refusedHere() {
        if (MISSING == null) {
            return false;
        }
        assertRefused();
        return true;
    }

    private static void assertRefused() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new CpuBackend(CpuBackend.Options.defaults().withPrecision(CpuPrecision.BF16)));
        assertTrue(e.getMessage().contains("vgg4j.cpu.precision=bf16 cannot run here: ")
                && e.getMessage().contains(MISSING), e.getMessage());
        assertTrue(MISSING.contains("avx512_bf16") || MISSING.contains("avx512_core_bf16")
                || MISSING.contains("oneDNN's natives"), MISSING);
    }

    /**
     * Forward, backward-data and backward-weights (dw and db ACCUMULATED onto non-zero values), both unfused and
     * fused, of the BF16 backend against the reference on bf16-rounded x, w, dy.
     */
    private static void allPasses(int n, int c, int h, int w, int k, boolean exact) {
        int pad = 1;
        long seed = 7L * n + 13L * c + h + 31L * k;
        int xs = n * c * h * w;
        int ws = k * c * 9;
        int ys = n * k * h * w;
        double[] x = exact ? integers(seed, xs, -3, 3) : TestTensors.uniform(seed, xs, -1, 1);
        double[] wt = exact ? integers(seed + 1, ws, -2, 2) : TestTensors.uniform(seed + 1, ws, -1, 1);
        double[] dy = exact ? integers(seed + 2, ys, -3, 3) : TestTensors.uniform(seed + 2, ys, -1, 1);
        double[] b = exact ? integers(seed + 3, k, -5, 5) : TestTensors.uniform(seed + 3, k, -1, 1);
        double[] dw0 = exact ? integers(seed + 4, ws, -4, 4) : TestTensors.uniform(seed + 4, ws, -1, 1);
        double[] db0 = exact ? integers(seed + 5, k, -4, 4) : TestTensors.uniform(seed + 5, k, -1, 1);
        String what = "bf16 conv N" + n + " C" + c + " " + h + "x" + w + " K" + k + (exact ? " integers" : " reals");

        // the expected values: the reference on operands rounded to bf16; biases and accumulators stay f32
        Tensor[] r = {tensor(ref, roundedToBf16(x), n, c, h, w), tensor(ref, roundedToBf16(wt), k, c, 3, 3),
            tensor(ref, b, k), tensor(ref, roundedToBf16(dy), n, k, h, w)};
        Tensor[] g = {tensor(bf16, x, n, c, h, w), tensor(bf16, wt, k, c, 3, 3), tensor(bf16, b, k),
            tensor(bf16, dy, n, k, h, w)};
        double[][] want = passes(ref, r, dw0, db0, n, c, h, w, k);
        double[][] got = passes(bf16, g, dw0, db0, n, c, h, w, k);
        String[] names = {"forward", "backward-data", "backward-weights dw", "backward-weights db",
            "fused backward dx", "fused backward dw", "fused backward db"};
        for (int i = 0; i < names.length; i++) {
            if (exact) {
                assertExact(want[i], got[i], what + " " + names[i]);
            } else {
                assertClose(want[i], got[i], RTOL, ATOL, what + " " + names[i]);
            }
        }
        // the master values are untouched (the rounding happens in oneDNN's copies)
        assertExact(toF32(x), TestTensors.toArray(g[0]), what + " x stays f32");
        assertExact(toF32(wt), TestTensors.toArray(g[1]), what + " w stays f32");
        for (Tensor t : r) {
            ref.free(t);
        }
        for (Tensor t : g) {
            bf16.free(t);
        }
    }

    /** y; dx; dw, db (unfused, from dw0, db0); dx, dw, db (fused, from dw0, db0): as arrays. t = x, w, b, dy. */
    private static double[][] passes(Backend be, Tensor[] t, double[] dw0, double[] db0, int n, int c, int h,
                                     int w, int k) {
        Tensor y = be.allocate(DType.FLOAT32, Shape.of(n, k, h, w));
        Tensor dx = be.allocate(DType.FLOAT32, Shape.of(n, c, h, w));
        Tensor dw = tensor(be, dw0, k, c, 3, 3);
        Tensor db = tensor(be, db0, k);
        double[][] out = new double[7][];
        be.conv2dForward(t[0], t[1], t[2], y, 1);
        out[0] = TestTensors.toArray(y);
        be.conv2dBackwardData(t[3], t[1], dx, 1);
        out[1] = TestTensors.toArray(dx);
        be.conv2dBackwardFilter(t[0], t[3], dw, db, 1);
        out[2] = TestTensors.toArray(dw);
        out[3] = TestTensors.toArray(db);
        be.copyIn(dw0, 0, dw);
        be.copyIn(db0, 0, db);
        be.fill(dx, 0.5);
        be.conv2dBackward(t[0], t[1], t[3], dx, dw, db, 1);
        out[4] = TestTensors.toArray(dx);
        out[5] = TestTensors.toArray(dw);
        out[6] = TestTensors.toArray(db);
        for (Tensor u : new Tensor[] {y, dx, dw, db}) {
            be.free(u);
        }
        return out;
    }

    @ParameterizedTest(name = "N{0} C{1} {2}x{3} K{4}")
    @MethodSource("shapes")
    void eachPassOnSmallIntegersIsExact(int n, int c, int h, int w, int k) {
        if (refusedHere()) {
            return;
        }
        allPasses(n, c, h, w, k, true);
    }

    @ParameterizedTest(name = "N{0} C{1} {2}x{3} K{4}")
    @MethodSource("shapes")
    void eachPassOnRealsMatchesTheReferenceOnBf16Operands(int n, int c, int h, int w, int k) {
        if (refusedHere()) {
            return;
        }
        allPasses(n, c, h, w, k, false);
    }

    static Stream<Arguments> gemmCases() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                b.add(Arguments.of(ta, tb, 33, 40, 96, 1.0, 0.0));    // odd sizes, C overwritten: bf16
                b.add(Arguments.of(ta, tb, 64, 32, 512, 0.5, 1.0));   // an FC layer's: batch 64, 512 -> 32, C += ...
                b.add(Arguments.of(ta, tb, 5, 7, 33, 1.0, 0.0));      // below 32: f32
                b.add(Arguments.of(ta, tb, 4, 64, 512, 0.5, 1.0));    // an FC layer's at batch 4: f32 (memory-bound)
                b.add(Arguments.of(ta, tb, 6, 1, 49, 1.0, 0.0));      // matrix-vector (GlobalAvgPool): f32
            }
        }
        return b.build();
    }

    /**
     * The FC layers' GEMM in BF16 (oneDNN's matmul): C = alpha op(A) op(B) + beta C against the reference on A and
     * B rounded to bf16: exact on small integers (alpha 0.5 and beta 1 keep them exact), the same tolerance as the
     * convolutions on reals. A GEMM with M, N or K below {@link CpuBackend#BF16_GEMM_MIN_DIM} stays f32 (operands
     * not rounded).
     */
    @ParameterizedTest(name = "transA {0} transB {1} M{2} N{3} K{4} alpha {5} beta {6}")
    @MethodSource("gemmCases")
    void gemmMatchesTheReferenceOnBf16Operands(boolean ta, boolean tb, int m, int n, int k, double alpha,
                                               double beta) {
        if (refusedHere()) {
            return;
        }
        for (boolean exact : new boolean[] {true, false}) {
            long seed = 97L * m + n + 13L * k + (ta ? 1 : 0) + (tb ? 2 : 0);
            double[] a = exact ? integers(seed, m * k, -3, 3) : TestTensors.uniform(seed, m * k, -1, 1);
            double[] bv = exact ? integers(seed + 1, k * n, -3, 3) : TestTensors.uniform(seed + 1, k * n, -1, 1);
            double[] c0 = exact ? integers(seed + 2, m * n, -9, 9) : TestTensors.uniform(seed + 2, m * n, -1, 1);
            int[] aDims = ta ? new int[] {k, m} : new int[] {m, k};
            int[] bDims = tb ? new int[] {n, k} : new int[] {k, n};
            boolean f32 = Math.min(m, Math.min(n, k)) < CpuBackend.BF16_GEMM_MIN_DIM; // no rounding
            Tensor ar = tensor(ref, f32 ? a : roundedToBf16(a), aDims);
            Tensor br = tensor(ref, f32 ? bv : roundedToBf16(bv), bDims);
            Tensor cr = tensor(ref, c0, m, n);
            Tensor ag = tensor(bf16, a, aDims);
            Tensor bg = tensor(bf16, bv, bDims);
            Tensor cg = tensor(bf16, c0, m, n);
            ref.gemm(ta, tb, alpha, ar, br, beta, cr);
            bf16.gemm(ta, tb, alpha, ag, bg, beta, cg);
            String what = "bf16 gemm " + (exact ? "integers" : "reals");
            if (exact) {
                assertExact(TestTensors.toArray(cr), TestTensors.toArray(cg), what);
            } else {
                assertClose(TestTensors.toArray(cr), TestTensors.toArray(cg), RTOL, ATOL, what);
            }
            assertExact(toF32(a), TestTensors.toArray(ag), what + ": A stays f32");
            for (Tensor t : new Tensor[] {ar, br, cr}) {
                ref.free(t);
            }
            for (Tensor t : new Tensor[] {ag, bg, cg}) {
                bf16.free(t);
            }
        }
    }

    /**
     * The SGD step of an FC weight held as factors (sgdStepLowRank) rounds the factors exactly where the dense
     * gradient's GEMM (M = 300, N = 700, K = the examples) would run in BF16: at 40 examples, not at 4. Against the
     * reference's step on the factors rounded (or not) the same way.
     */
    @Test
    void lowRankStepRoundsItsFactorsAsTheGemmWould() {
        if (refusedHere()) {
            return;
        }
        int m = 300;
        int k = 700;
        for (int r : new int[] {4, 40}) {
            boolean rounds = r >= CpuBackend.BF16_GEMM_MIN_DIM;
            double[] dy = TestTensors.uniform(r, r * m, -1, 1);
            double[] x = TestTensors.uniform(r + 1, r * k, -1, 1);
            double[] w = TestTensors.uniform(r + 2, m * k, -1, 1);
            double[] v = TestTensors.uniform(r + 3, m * k, -0.1, 0.1);
            Tensor[] want = {tensor(ref, w, m, k), tensor(ref, v, m, k)};
            ref.sgdStepLowRank(want[0], want[1], tensor(ref, rounds ? roundedToBf16(dy) : dy, r, m),
                    tensor(ref, rounds ? roundedToBf16(x) : x, r, k), 0.05, 0.9, 5e-4, true);
            Tensor[] got = {tensor(bf16, w, m, k), tensor(bf16, v, m, k)};
            Tensor dyg = tensor(bf16, dy, r, m);
            bf16.sgdStepLowRank(got[0], got[1], dyg, tensor(bf16, x, r, k), 0.05, 0.9, 5e-4, true);
            String what = "low-rank step, " + r + " examples";
            assertClose(TestTensors.toArray(want[0]), TestTensors.toArray(got[0]), 1e-6, 1e-6, what + ": weight");
            assertClose(TestTensors.toArray(want[1]), TestTensors.toArray(got[1]), 1e-6, 1e-6, what + ": velocity");
            assertExact(toF32(dy), TestTensors.toArray(dyg), what + ": the caller's factors stay f32");
        }
    }

    /**
     * An inference convolution whose weight outweighs its data (dense evaluation's FC6 onto a 1x1 output) runs as a
     * GEMM (ConvEngine) under the GEMM's rule: f32 at 4 images (operands unrounded), bf16 at 40 (all of M = 80 outputs,
     * N = 40 images, K = 784 inputs at least 32).
     */
    @Test
    void weightHeavyConvolutionFollowsTheGemmRule() {
        if (refusedHere()) {
            return;
        }
        int k = 80;
        for (int n : new int[] {4, 40}) {
            assertTrue((long) k * 16 * 49 > (long) n * 16 * 49 + (long) n * k, "the weight outweighs the data");
            boolean rounds = n >= CpuBackend.BF16_GEMM_MIN_DIM;
            double[] x = TestTensors.uniform(n, n * 16 * 49, -1, 1);
            double[] wt = TestTensors.uniform(n + 1, k * 16 * 49, -1, 1);
            double[] b = TestTensors.uniform(n + 2, k, -1, 1);
            Tensor yr = ref.allocate(DType.FLOAT32, Shape.of(n, k, 1, 1));
            ref.conv2dForwardRelu(tensor(ref, rounds ? roundedToBf16(x) : x, n, 16, 7, 7),
                    tensor(ref, rounds ? roundedToBf16(wt) : wt, k, 16, 7, 7), tensor(ref, b, k), yr, 0);
            Tensor yg = bf16.allocate(DType.FLOAT32, Shape.of(n, k, 1, 1));
            bf16.conv2dForwardRelu(tensor(bf16, x, n, 16, 7, 7), tensor(bf16, wt, k, 16, 7, 7), tensor(bf16, b, k), yg, 0);
            assertClose(TestTensors.toArray(yr), TestTensors.toArray(yg), RTOL, ATOL, "weight-heavy conv, N" + n);
        }
    }

    /** The operands really are bf16: oneDNN's bf16 kernels run, and reals differ from the f32 result. */
    @Test
    void bf16KernelsRunAndRoundTheOperands() {
        if (refusedHere()) {
            return;
        }
        assertEquals(CpuPrecision.BF16, bf16.precision());
        assertEquals("bf16", bf16.dnnl().operandType());
        String impls = bf16.dnnl().implementations(2, 64, 8, 8, 64, 3, 3, 1);
        for (String pass : impls.split(" ")) {
            assertTrue(pass.contains("bf16"), impls);
        }
        double[] x = TestTensors.uniform(1, 2 * 64 * 64, -1, 1);
        double[] wt = TestTensors.uniform(2, 64 * 64 * 9, -1, 1);
        Tensor xr = tensor(ref, x, 2, 64, 8, 8);
        Tensor wr = tensor(ref, wt, 64, 64, 3, 3);
        Tensor yr = ref.allocate(DType.FLOAT32, Shape.of(2, 64, 8, 8));
        ref.conv2dForward(xr, wr, null, yr, 1);
        Tensor xg = tensor(bf16, x, 2, 64, 8, 8);
        Tensor wg = tensor(bf16, wt, 64, 64, 3, 3);
        Tensor yg = bf16.allocate(DType.FLOAT32, Shape.of(2, 64, 8, 8));
        bf16.conv2dForward(xg, wg, null, yg, 1);
        double[] f32 = TestTensors.toArray(yr);
        double[] got = TestTensors.toArray(yg);
        double maxDiff = 0;
        for (int i = 0; i < f32.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(f32[i] - got[i]));
        }
        // 576 products, each operand off by up to 2^-9 relative: far above the f32 tolerance of the parity tests
        assertTrue(maxDiff > 1e-2, "bf16 result within " + maxDiff + " of the f32 one: the operands were not rounded");
    }

    @Test
    void roundingToBf16IsToNearestEven() {
        // bf16 keeps 7 mantissa bits: its ulp at 1 is 2^-7
        assertEquals(1.0f, toBf16(1.0f + 0x1p-8f)); // exactly half an ulp above 1 (even): down to 1
        assertEquals(1.0f + 0x1p-6f, toBf16(1.0f + 0x1p-7f + 0x1p-8f)); // half an ulp above an odd one: up, to even
        assertEquals(1.0f + 0x1p-7f, toBf16(1.0f + 0x1p-8f + 0x1p-20f)); // above half: up
        assertEquals(1.0f, toBf16(1.0f + 0x1p-8f - 0x1p-20f)); // below half: down
        assertEquals(-3.0f, toBf16(-3.0f));
    }

    /** Where the CPU or oneDNN lacks BF16 the reason names the missing instruction set (other machines' inputs). */
    @Test
    void missingBf16IsNamed() {
        String withBf16 = "fpu sse2 avx512f avx512_bf16 avx512_vnni";
        assertNull(Bf16Support.reason(withBf16, 0xE7));
        assertTrue(Bf16Support.reason("fpu sse2 avx2 avx512f", 0xE7).contains("no avx512_bf16 flag in /proc/cpuinfo"));
        assertTrue(Bf16Support.reason("avx512_bf16x", 0xE7).contains("avx512_bf16")); // a whole flag, not a prefix
        assertTrue(Bf16Support.reason(null, 0xE7).contains("unreadable"));
        assertTrue(Bf16Support.reason(withBf16, 0x67).contains("below avx512_core_bf16"),
                Bf16Support.reason(withBf16, 0x67)); // ONEDNN_MAX_CPU_ISA=avx512_core_vnni
    }

    /** bf16 where it cannot run is an error; auto then falls back to fp32; routings without oneDNN refuse bf16. */
    @Test
    void precisionResolution() {
        String none = "the CPU lacks the AVX512-BF16 instruction set (no avx512_bf16 flag in /proc/cpuinfo)";
        assertEquals(CpuPrecision.FP32, CpuBackend.resolve(CpuPrecision.FP32, ConvEngine.Routing.GEMM, none));
        assertEquals(CpuPrecision.FP32, CpuBackend.resolve(CpuPrecision.AUTO, ConvEngine.Routing.AUTO, none));
        assertEquals(CpuPrecision.BF16, CpuBackend.resolve(CpuPrecision.AUTO, ConvEngine.Routing.AUTO, null));
        assertEquals(CpuPrecision.BF16, CpuBackend.resolve(CpuPrecision.BF16, ConvEngine.Routing.DNNL, null));
        assertEquals(CpuPrecision.FP32, CpuBackend.resolve(CpuPrecision.AUTO, ConvEngine.Routing.GEMM, null));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> CpuBackend.resolve(CpuPrecision.BF16, ConvEngine.Routing.AUTO, none));
        assertEquals("vgg4j.cpu.precision=bf16 cannot run here: " + none + "; use fp32, or auto to fall back to fp32",
                e.getMessage());
        e = assertThrows(IllegalStateException.class,
                () -> CpuBackend.resolve(CpuPrecision.BF16, ConvEngine.Routing.ND4J, null));
        assertTrue(e.getMessage().contains("vgg4j.cpu.conv=nd4j bypasses the direct oneDNN engine"), e.getMessage());
    }

    /**
     * A narrow VGG-A (1/8 width, 32x32, 10 classes, no dropout) trained 50 momentum-SGD steps (lr 0.004) on one
     * fixed batch of 16 in BF16 tracks the same run in FP32: the first 10 losses within {@link #EARLY_TOL} of FP32's,
     * every loss within {@link #LOSS_TOL} (absolute; the first loss is ~2.78 and the run memorises the batch, so
     * the curves are steep in the middle, where the two drift apart most: 0.08 at most on the build machine), and
     * both runs really learn (the last loss under 2 % of the first).
     */
    @Test
    void narrowVggTrainsInBf16LikeFp32() {
        if (refusedHere()) {
            return;
        }
        VggSpec spec = VggSpec.small(VggConfig.A, 32, 10).withWidth(0.125).withHidden(32).withDropout(0)
                .withSeed(3);
        double[] fp32;
        try (Backend b = new CpuBackend(CpuBackend.Options.defaults())) {
            fp32 = trainLosses(b, spec);
        }
        double[] bf = trainLosses(bf16, spec);
        double worst = 0;
        double worstEarly = 0;
        boolean differ = false;
        for (int s = 0; s < TRAIN_STEPS; s++) {
            worst = Math.max(worst, Math.abs(bf[s] - fp32[s]));
            worstEarly = s < 10 ? worst : worstEarly;
            differ |= bf[s] != fp32[s];
        }
        String losses = "fp32 " + java.util.Arrays.toString(fp32) + "\nbf16 " + java.util.Arrays.toString(bf);
        assertTrue(worstEarly <= EARLY_TOL, "bf16 loss off fp32's by " + worstEarly + " in 10 steps\n" + losses);
        assertTrue(worst <= LOSS_TOL, "bf16 loss off fp32's by " + worst + "\n" + losses);
        assertTrue(differ, "bf16 gave fp32's losses bit for bit: it did not run in bf16");
        assertTrue(fp32[TRAIN_STEPS - 1] < 0.02 * fp32[0] && bf[TRAIN_STEPS - 1] < 0.02 * bf[0], losses);
    }

    private static final int TRAIN_STEPS = 50;
    private static final double EARLY_TOL = 0.05;
    private static final double LOSS_TOL = 0.2;

    /** The loss of each of {@link #TRAIN_STEPS} steps on one batch; parameters drawn on the host (same for all). */
    private static double[] trainLosses(Backend backend, VggSpec spec) {
        int batch = 16;
        try (Network net = Vgg.build(backend, DType.FLOAT32, spec)) {
            ParamStore ps = net.params();
            for (ParamStore.Entry e : ps.entries()) {
                double bound = e.spec().role() == ParamSpec.Role.WEIGHT ? Math.sqrt(6.0 / e.spec().fanIn()) : 0.05;
                backend.copyIn(TestTensors.uniform(e.key().hashCode(), (int) e.value().size(), -bound, bound), 0,
                        e.value());
            }
            Tensor x = TestTensors.random(backend, DType.FLOAT32, Shape.of(batch, 3, 32, 32), 17, -1, 1);
            int[] labels = new int[batch];
            for (int i = 0; i < batch; i++) {
                labels[i] = (i * 7) % 10;
            }
            SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(backend);
            double[] losses = new double[TRAIN_STEPS];
            try (Sgd sgd = new Sgd(ps, Sgd.Settings.PAPER)) {
                for (int s = 0; s < TRAIN_STEPS; s++) {
                    Tensor logits = net.forward(x, true);
                    losses[s] = loss.forwardBackward(logits, labels);
                    net.backward(loss.gradient());
                    sgd.step(0.004);
                }
            }
            loss.release();
            backend.free(x);
            return losses;
        }
    }

    /** The public way in: Backends.cpu(precision) gives bf16 here, or the named error; auto never fails. */
    @Test
    void backendsCpuTakesThePrecision() {
        try (Backend auto = Backends.cpu(CpuPrecision.AUTO)) {
            assertEquals(MISSING == null ? CpuPrecision.BF16 : CpuPrecision.FP32, ((CpuBackend) auto).precision());
        }
        try (Backend fp32 = Backends.cpu(CpuPrecision.FP32)) {
            assertEquals(CpuPrecision.FP32, ((CpuBackend) fp32).precision());
        }
        if (MISSING != null) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.cpu(CpuPrecision.BF16));
            assertTrue(e.getMessage().contains(MISSING), e.getMessage());
        } else {
            try (Backend b = Backends.cpu(CpuPrecision.BF16)) {
                assertEquals(CpuPrecision.BF16, ((CpuBackend) b).precision());
            }
        }
    }
}
