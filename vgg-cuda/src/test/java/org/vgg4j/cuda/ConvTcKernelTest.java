package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.stream.Stream;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.cuda.api.CudaException;

/**
 * conv_tc.cu, the BF16 tensor-core convolution kernels, launched directly on the device (the emulator, or a GPU under
 * -Dvgg4j.cuda.test.driver=jcuda) against plain loops in double over the same bf16-rounded operands: forward without
 * bias, with bias and with bias + ReLU; backward-data as the forward kernel on dy with flipped weights; the weight
 * gradient in one slice and in three (the last one short) reduced onto an existing dw. Exact on small integers, within
 * 1e-5 of the sum of |products| on random bf16-exact reals. The shapes exercise every edge of the 128x128x32 tiles:
 * N*P*Q and K not multiples of 128, K = 8 (one mma column block), R*S*C not a multiple of 32, C = 8 (a stage spans
 * several taps), 1x1, 3x3 and 5x5 kernels, C = 3 (VGG's conv1_1) run with its channels padded to 8 by the layout
 * kernels. Also the layout kernels bit for bit (the padding channels zero), and the launch checks.
 */
@Tag(Parity.DEVICE_TAG)
class ConvTcKernelTest {
    /** N, C, H, W, K, R, S, pad; NHWC inside the kernels, the host arrays below are NCHW / KCRS. */
    record Case(int n, int c, int h, int w, int k, int r, int s, int pad) {
        int p() {
            return h + 2 * pad - r + 1;
        }

        int q() {
            return w + 2 * pad - s + 1;
        }

        int nx() {
            return n * c * h * w;
        }

        int nw() {
            return k * c * r * s;
        }

        int ny() {
            return n * k * p() * q();
        }
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case(2, 8, 7, 7, 8, 3, 3, 1),     // N*P*Q = 98 < one tile, K = 8, R*S*C = 72 (3 stages, last short)
                new Case(2, 16, 7, 7, 24, 1, 1, 0),   // 1x1, R*S*C = 16 < one stage, K = 24
                new Case(1, 40, 9, 11, 136, 3, 3, 1), // K = 136: two column tiles; C = 40: taps straddle the stages
                new Case(1, 8, 9, 8, 16, 5, 5, 2),    // 5x5 pad 2
                new Case(3, 16, 9, 9, 8, 3, 3, 1),    // N*P*Q = 243: two row tiles, the second ragged
                new Case(2, 3, 7, 7, 8, 3, 3, 1));    // C = 3 padded to 8: zeros in x and w, dw's 3 real channels
    }

    private Driver d;

    @BeforeAll
    static void device() {
        Parity.assumeDevice();
    }

    @BeforeEach
    void open() {
        d = Parity.onGpu() ? JCudaDriver.open(Integer.getInteger("vgg4j.cuda.device", 0)) : EmulatedDriver.open(0);
    }

    @AfterEach
    void close() {
        d.close();
    }

    // ------------------------------------------------------------------ host side

    /** BF16 round to nearest even, as bf16_bits. */
    static int bf16Bits(double v) {
        int u = Float.floatToRawIntBits((float) v);
        return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
    }

    static double bf16(double v) {
        return Float.intBitsToFloat(bf16Bits(v) << 16);
    }

    /** n bf16-exact reals in [-1, 1), or small integers in [-lim, lim]. */
    static double[] data(long seed, int n, boolean ints, int lim) {
        double[] v = ints ? Parity.ints(seed, n, -lim, lim) : Parity.floats(seed, n, -1, 1);
        for (int i = 0; i < n; i++) {
            v[i] = bf16(v[i]);
        }
        return v;
    }

    /** The three passes in double, plus each output's sum of |products| (the scale of its rounding error). */
    static final class Reference {
        final double[] y, yAbs, dx, dxAbs, dw, dwAbs;

        Reference(Case c, double[] x, double[] w, double[] dy) {
            int p = c.p(), q = c.q();
            y = new double[c.ny()];
            yAbs = new double[c.ny()];
            dx = new double[c.nx()];
            dxAbs = new double[c.nx()];
            dw = new double[c.nw()];
            dwAbs = new double[c.nw()];
            for (int n = 0; n < c.n; n++) {
                for (int k = 0; k < c.k; k++) {
                    for (int pp = 0; pp < p; pp++) {
                        for (int qq = 0; qq < q; qq++) {
                            int yi = ((n * c.k + k) * p + pp) * q + qq;
                            for (int ch = 0; ch < c.c; ch++) {
                                for (int r = 0; r < c.r; r++) {
                                    for (int s = 0; s < c.s; s++) {
                                        int hh = pp + r - c.pad, ww = qq + s - c.pad;
                                        if (hh < 0 || hh >= c.h || ww < 0 || ww >= c.w) {
                                            continue;
                                        }
                                        int xi = ((n * c.c + ch) * c.h + hh) * c.w + ww;
                                        int wi = ((k * c.c + ch) * c.r + r) * c.s + s;
                                        y[yi] += x[xi] * w[wi];
                                        yAbs[yi] += Math.abs(x[xi] * w[wi]);
                                        dx[xi] += dy[yi] * w[wi];
                                        dxAbs[xi] += Math.abs(dy[yi] * w[wi]);
                                        dw[wi] += dy[yi] * x[xi];
                                        dwAbs[wi] += Math.abs(dy[yi] * x[xi]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /** Exact (ints) or within 1e-5 of each element's sum of |products| (FP32 accumulation of bf16 products). */
    static void assertMatches(double[] want, double[] scale, float[] got, boolean ints, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            double tol = ints ? 0 : 1e-5 * scale[i] + 1e-7;
            if (!(Math.abs(got[i] - want[i]) <= tol)) {
                fail(what + ": element " + i + " is " + got[i] + ", expected " + want[i] + " (tolerance " + tol + ")");
            }
        }
    }

    // ------------------------------------------------------------------ device side

    private long upload(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        long p = d.malloc(4L * Math.max(1, f.length));
        d.copyIn(f, 0, p, f.length);
        return p;
    }

    private float[] download(long p, int n) {
        return Parity.download(d, p, n);
    }

    /** A buffer of n bf16 values, rounded up to whole floats so it can be read back as floats. */
    private long mallocBf16(int n) {
        return d.malloc(4L * ((n + 1) / 2));
    }

    private int[] downloadBf16(long p, int n) {
        float[] f = download(p, (n + 1) / 2);
        int[] b = new int[n];
        for (int i = 0; i < n; i++) {
            int u = Float.floatToRawIntBits(f[i / 2]);
            b[i] = i % 2 == 0 ? u & 0xffff : u >>> 16; // little-endian: element 2i in the low half
        }
        return b;
    }

    private void elementwise(String kernel, KernelArgs args) {
        d.launch(d.function("conv_tc", kernel), 3, 1, 1, 256, args); // any grid: grid-stride loops
    }

    /** NCHW f32 on the host -> NHWC bf16 on the device, the channels padded with zeros to cp. */
    private long nhwc(double[] nchw, int n, int c, int cp, int hw) {
        long f = upload(nchw);
        long b = mallocBf16(n * cp * hw);
        elementwise("nchw_to_nhwc_bf16", KernelArgs.of().ptr(f).ptr(b).i32(n).i32(c).i32(cp).i32(hw));
        return b;
    }

    /** w (K,C,R,S) f32 on the device -> (K,R,S,Cp) bf16. */
    private long pack(long wf, Case c, int cp) {
        long wp = mallocBf16(c.k * cp * c.r * c.s);
        elementwise("conv_tc_pack_weights_bf16", KernelArgs.of().ptr(wf).ptr(wp).i32(c.k).i32(c.c).i32(cp).i32(c.r)
                .i32(c.s));
        return wp;
    }

    /** The channels the kernels run with: C rounded up to a multiple of 8, as the backend pads them. */
    private static int padded(int c) {
        return TensorCoreConv.paddedChannels(c);
    }

    /** conv_tc_fwd_bf16 then back to NCHW f32: y (n, k, p*q). */
    private float[] forward(long x, long w, long bias, int n, int h, int wd, int c, int k, int r, int s, int pad,
            boolean relu) {
        int p = h + 2 * pad - r + 1, q = wd + 2 * pad - s + 1, m = n * p * q;
        long y = d.malloc(4L * m * k);
        d.launch(d.function("conv_tc", "conv_tc_fwd_bf16"), (m + 127) / 128, (k + 127) / 128, 1, 256,
                KernelArgs.of().ptr(x).ptr(w).ptr(bias).ptr(y).i32(n).i32(h).i32(wd).i32(c).i32(k).i32(r).i32(s)
                        .i32(pad).i32(relu ? 1 : 0));
        long out = d.malloc(4L * m * k);
        elementwise("nhwc_to_nchw_f32", KernelArgs.of().ptr(y).ptr(out).i32(n).i32(k).i32(p * q));
        return download(out, m * k);
    }

    /**
     * dw (K,C,R,S) = dw0 + the weight gradient, through z slices of ceil(N*P*Q / z) pixels rounded up to 32, x with
     * its channels padded to cp.
     */
    private float[] wgrad(Case c, int cp, long x, long dy, double[] dw0, int z) {
        int npq = c.n * c.p() * c.q(), rsc = c.r * c.s * cp;
        int chunk = ((npq + z - 1) / z + 31) / 32 * 32;
        long partial = d.malloc(4L * z * c.k * rsc);
        d.launch(d.function("conv_tc", "conv_tc_wgrad_bf16"), (rsc + 127) / 128, (c.k + 127) / 128, z, 256,
                KernelArgs.of().ptr(x).ptr(dy).ptr(partial).i32(c.n).i32(c.h).i32(c.w).i32(cp).i32(c.k).i32(c.r)
                        .i32(c.s).i32(c.pad).i32(chunk).i32(0));
        long dw = upload(dw0);
        elementwise("conv_tc_wgrad_reduce",
                KernelArgs.of().ptr(partial).ptr(dw).i32(z).i32(c.k).i32(c.c).i32(cp).i32(c.r).i32(c.s));
        return download(dw, c.nw());
    }

    /** Every pass of one case on integers or reals. */
    private void allPasses(Case c, boolean ints) {
        String what = c + (ints ? " integers" : " reals");
        double[] x = data(1, c.nx(), ints, 4), w = data(2, c.nw(), ints, 3), bias = data(3, c.k, ints, 5);
        double[] dy = data(4, c.ny(), ints, 3), dw0 = data(5, c.nw(), ints, 2);
        Reference ref = new Reference(c, x, w, dy);
        int p = c.p(), q = c.q();

        int cp = padded(c.c);
        long xb = nhwc(x, c.n, c.c, cp, c.h * c.w);
        long wf = upload(w);
        long wp = pack(wf, c, cp);
        long bf = upload(bias);

        // forward: no bias, bias, bias + ReLU (fp32 epilogue: the sum rounded, then + bias, then max(0, .))
        double[] withBias = new double[c.ny()], relu = new double[c.ny()];
        for (int i = 0; i < c.ny(); i++) {
            withBias[i] = (float) ref.y[i] + bias[(i / (p * q)) % c.k];
            relu[i] = Math.max(0, withBias[i]);
        }
        assertMatches(ref.y, ref.yAbs, forward(xb, wp, 0, c.n, c.h, c.w, cp, c.k, c.r, c.s, c.pad, false),
                ints, what + " forward");
        assertMatches(withBias, ref.yAbs, forward(xb, wp, bf, c.n, c.h, c.w, cp, c.k, c.r, c.s, c.pad, false),
                ints, what + " forward + bias");
        assertMatches(relu, ref.yAbs, forward(xb, wp, bf, c.n, c.h, c.w, cp, c.k, c.r, c.s, c.pad, true),
                ints, what + " forward + bias + ReLU");

        // backward-data: forward of dy (N,P,Q,K) with the flipped weights (C,R,S,K) and pad R-1-pad gives dx (N,H,W,C)
        long dyb = nhwc(dy, c.n, c.k, c.k, p * q);
        long wt = mallocBf16(c.nw());
        elementwise("conv_tc_flip_weights_bf16", KernelArgs.of().ptr(wf).ptr(wt).i32(c.k).i32(c.c).i32(c.r).i32(c.s));
        assertMatches(ref.dx, ref.dxAbs, forward(dyb, wt, 0, c.n, p, q, c.k, c.c, c.r, c.s, c.r - 1 - c.pad, false),
                ints, what + " backward-data");

        // weight gradient, accumulated onto dw0: one slice, and three (chunks rounded up to 32 pixels, so the last slice
        // is short -- or empty, which must then contribute zeros -- for these shapes)
        double[] dwWant = new double[c.nw()];
        for (int i = 0; i < c.nw(); i++) {
            dwWant[i] = ref.dw[i] + dw0[i];
        }
        double[] dwScale = ref.dwAbs.clone();
        for (int i = 0; i < c.nw(); i++) {
            dwScale[i] += Math.abs(dw0[i]);
        }
        assertMatches(dwWant, dwScale, wgrad(c, cp, xb, dyb, dw0, 1), ints, what + " weight gradient, Z = 1");
        assertMatches(dwWant, dwScale, wgrad(c, cp, xb, dyb, dw0, 3), ints, what + " weight gradient, Z = 3");
    }

    @ParameterizedTest
    @MethodSource("cases")
    void smallIntegersAreExact(Case c) {
        allPasses(c, true);
    }

    @Test
    void bf16RealsMatchWithinFp32Accumulation() {
        allPasses(new Case(1, 40, 9, 11, 136, 3, 3, 1), false);
        allPasses(new Case(2, 8, 7, 7, 8, 3, 3, 1), false);
    }

    /**
     * accumulate = 1: one slice adds its sums onto the buffer instead of storing them (a fully connected layer's
     * dw += dy^T x in place; for a 1x1 kernel the (K, C) slice is dw's own layout). More than one slice is refused.
     */
    @Test
    void oneSliceAccumulatesInPlace() {
        Case c = new Case(2, 16, 5, 7, 24, 1, 1, 0);
        double[] x = data(21, c.nx(), true, 4), dy = data(22, c.ny(), true, 3), dw0 = data(23, c.nw(), true, 5);
        Reference ref = new Reference(c, x, new double[c.nw()], dy);
        long xb = nhwc(x, c.n, c.c, c.c, c.h * c.w), dyb = nhwc(dy, c.n, c.k, c.k, c.p() * c.q());
        long dw = upload(dw0);
        int npq = c.n * c.p() * c.q(), chunk = (npq + 31) / 32 * 32;
        KernelArgs args = KernelArgs.of().ptr(xb).ptr(dyb).ptr(dw).i32(c.n).i32(c.h).i32(c.w).i32(c.c).i32(c.k)
                .i32(1).i32(1).i32(0).i32(chunk).i32(1);
        d.launch(d.function("conv_tc", "conv_tc_wgrad_bf16"), 1, 1, 1, 256, args);
        double[] want = new double[c.nw()];
        for (int i = 0; i < want.length; i++) {
            want[i] = dw0[i] + ref.dw[i];
        }
        assertMatches(want, ref.dwAbs, download(dw, c.nw()), true, c + " dw += in place");
        Assumptions.assumeFalse(Parity.onGpu(), "a trapped launch would end the GPU context");
        CudaException e = assertThrows(CudaException.class, () -> {
            d.launch(d.function("conv_tc", "conv_tc_wgrad_bf16"), 1, 1, 2, 256, args);
            d.synchronize();
        });
        assertTrue(e.getMessage().contains("accumulate == 0 || gridDim.z == 1"), e.getMessage());
    }

    @Test
    void anOddNumberOfOutputChannelsIsStoredOneByOne() {
        Case c = new Case(1, 8, 5, 6, 13, 3, 3, 0); // K = 13: no 8-byte pair stores, a ragged last column block
        double[] x = data(11, c.nx(), true, 4), w = data(12, c.nw(), true, 3), bias = data(13, c.k, true, 5);
        Reference ref = new Reference(c, x, w, new double[c.ny()]);
        long wp = pack(upload(w), c, c.c);
        double[] want = new double[c.ny()];
        for (int i = 0; i < c.ny(); i++) {
            want[i] = ref.y[i] + bias[(i / (c.p() * c.q())) % c.k];
        }
        assertMatches(want, ref.yAbs, forward(nhwc(x, c.n, c.c, c.c, c.h * c.w), wp, upload(bias), c.n, c.h, c.w, c.c,
                c.k, c.r, c.s, c.pad, false), true, c + " forward + bias");
    }

    // ------------------------------------------------------------------ layout kernels, bit for bit

    @Test
    void nchwToNhwcRoundsToNearestEven() {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to the even 1; 1 + 3 * 2^-8 is halfway too: to 1 + 2^-6
        double[] x = {1 + 0x1p-8, 1 + 3 * 0x1p-8, -2.5, 0.1, Double.NaN, 7, 8, 9, 10, 11, 12, 13};
        int n = 2, c = 3, hw = 2; // x (2, 3, 2)
        int[] got = downloadBf16(nhwc(x, n, c, c, hw), x.length);
        for (int img = 0; img < n; img++) {
            for (int p = 0; p < hw; p++) {
                for (int ch = 0; ch < c; ch++) {
                    double v = x[(img * c + ch) * hw + p];
                    int g = got[(img * hw + p) * c + ch];
                    if (Double.isNaN(v)) {
                        assertTrue(Float.isNaN(Float.intBitsToFloat(g << 16)), "NaN stays NaN, got " + g);
                    } else {
                        assertEquals(bf16Bits(v), g, "bf16 of " + v);
                    }
                }
            }
        }
        assertEquals(0x3f80, got[0], "1 + 2^-8 rounds to even 1");
        assertEquals(0x3f82, got[3], "1 + 3 * 2^-8 rounds to even 1 + 2^-6"); // x[1] is (img 0, c 0, p 1): y[1 * 3 + 0]
    }

    @Test
    void paddedChannelsAreZero() {
        int n = 2, c = 3, cp = 8, hw = 5;
        double[] x = new double[n * c * hw];
        for (int i = 0; i < x.length; i++) {
            x[i] = i + 1; // exact in bf16, none zero
        }
        int[] got = downloadBf16(nhwc(x, n, c, cp, hw), n * cp * hw);
        for (int img = 0; img < n; img++) {
            for (int p = 0; p < hw; p++) {
                for (int ch = 0; ch < cp; ch++) {
                    int want = ch < c ? bf16Bits(x[(img * c + ch) * hw + p]) : 0;
                    assertEquals(want, got[(img * hw + p) * cp + ch], "x image " + img + " pixel " + p + " channel " + ch);
                }
            }
        }
        Case k = new Case(1, 3, 1, 1, 2, 2, 2, 0); // w (2,3,2,2) -> (2,2,2,8)
        double[] w = new double[k.nw()];
        for (int i = 0; i < w.length; i++) {
            w[i] = -(i + 1);
        }
        int[] packed = downloadBf16(pack(upload(w), k, cp), k.k * cp * k.r * k.s);
        for (int kk = 0; kk < k.k; kk++) {
            for (int rr = 0; rr < k.r; rr++) {
                for (int ss = 0; ss < k.s; ss++) {
                    for (int ch = 0; ch < cp; ch++) {
                        int want = ch < c ? bf16Bits(w[((kk * c + ch) * k.r + rr) * k.s + ss]) : 0;
                        assertEquals(want, packed[((kk * k.r + rr) * k.s + ss) * cp + ch], "w " + kk + rr + ss + ch);
                    }
                }
            }
        }
    }

    @Test
    void packAndFlipPlaceEveryWeight() {
        int k = 3, c = 2, r = 3, s = 2;
        double[] w = new double[k * c * r * s];
        for (int i = 0; i < w.length; i++) {
            w[i] = i + 1; // exact in bf16 (< 256)
        }
        long wf = upload(w), wp = mallocBf16(w.length), wt = mallocBf16(w.length);
        elementwise("conv_tc_pack_weights_bf16", KernelArgs.of().ptr(wf).ptr(wp).i32(k).i32(c).i32(c).i32(r).i32(s));
        elementwise("conv_tc_flip_weights_bf16", KernelArgs.of().ptr(wf).ptr(wt).i32(k).i32(c).i32(r).i32(s));
        int[] packed = downloadBf16(wp, w.length), flipped = downloadBf16(wt, w.length);
        for (int kk = 0; kk < k; kk++) {
            for (int cc = 0; cc < c; cc++) {
                for (int rr = 0; rr < r; rr++) {
                    for (int ss = 0; ss < s; ss++) {
                        int src = bf16Bits(w[((kk * c + cc) * r + rr) * s + ss]);
                        assertEquals(src, packed[((kk * r + rr) * s + ss) * c + cc], "packed w" + kk + cc + rr + ss);
                        assertEquals(src, flipped[((cc * r + (r - 1 - rr)) * s + (s - 1 - ss)) * k + kk],
                                "flipped w" + kk + cc + rr + ss);
                    }
                }
            }
        }
    }

    @Test
    void nhwcToNchwTransposesBack() {
        int n = 2, k = 3, pq = 5;
        double[] y = new double[n * pq * k];
        for (int i = 0; i < y.length; i++) {
            y[i] = i * 0.37 - 3;
        }
        long out = d.malloc(4L * y.length);
        elementwise("nhwc_to_nchw_f32", KernelArgs.of().ptr(upload(y)).ptr(out).i32(n).i32(k).i32(pq));
        float[] got = download(out, y.length);
        for (int img = 0; img < n; img++) {
            for (int kk = 0; kk < k; kk++) {
                for (int p = 0; p < pq; p++) {
                    assertEquals((float) y[(img * pq + p) * k + kk], got[(img * k + kk) * pq + p]);
                }
            }
        }
    }

    // ------------------------------------------------------------------ launch checks

    @Test
    void channelsNotAMultipleOfEightFailTheLaunch() {
        // on a GPU the check traps, which ends the context: only the emulator can show it and go on
        Assumptions.assumeFalse(Parity.onGpu(), "a trapped launch would end the GPU context");
        long x = d.malloc(4096), w = d.malloc(4096), y = d.malloc(4096);
        CudaException e = assertThrows(CudaException.class, () -> {
            d.launch(d.function("conv_tc", "conv_tc_fwd_bf16"), 1, 1, 1, 256, KernelArgs.of().ptr(x).ptr(w).ptr(0)
                    .ptr(y).i32(1).i32(4).i32(4).i32(4).i32(8).i32(3).i32(3).i32(1).i32(0));
            d.synchronize();
        });
        assertTrue(e.getMessage().contains("c % 8 == 0"), e.getMessage());
    }
}
