package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.vgg4j.cuda.api.CudaException;

/**
 * The emulated device's warp-level instructions (warp_mma.cuh, emu/warp.cpp) against the PTX ISA's documented
 * semantics, computed here independently: mma.sync bf16 m16n8k16 and tf32 m16n8k8 (exact equality with a reference
 * that sums with {@link Math#fma} in k order from c), ldmatrix x1/x2/x4 with and without .trans, cp.async's
 * zero-fill and commit/wait groups, and shfl.xor. Negative tests prove the emulator catches the bugs these
 * instructions invite: a wrong fragment mapping, a missing cp.async wait, a warp op only part of a warp reaches, a
 * warp op in a barrier-free kernel, copies pending at exit, misaligned addresses. Kernels: src/test/cuda/warp_check.cu.
 */
@Tag(Parity.EMULATOR_TAG)
class WarpInstructionsTest extends OnEmulatedDevice {
    static final String MODULE = "warp_check";

    WarpInstructionsTest() {
        super(0);
    }

    // ------------------------------------------------------------------ helpers

    private int[] downloadInts(long p, int n) {
        float[] raw = download(p, n);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = Float.floatToRawIntBits(raw[i]);
        }
        return out;
    }

    private void launch(String kernel, int blocks, int threads, KernelArgs args) {
        d.launch(d.function(MODULE, kernel), blocks, 1, 1, threads, args);
    }

    private CudaException launchFails(String kernel, int threads, KernelArgs args) {
        return assertThrows(CudaException.class, () -> launch(kernel, 1, threads, args));
    }

    private static float bf16(float v) { // truncation: the values drawn are then exact bf16 numbers
        return Float.intBitsToFloat(Float.floatToRawIntBits(v) & 0xffff0000);
    }

    private static float tf32(float v) { // the tensor core ignores the low 13 mantissa bits of a tf32 operand
        return Float.intBitsToFloat(Float.floatToRawIntBits(v) & 0xffffe000);
    }

    /** n values: small integers in [-8, 8] when {@code integers}, else reals in (-4, 4) of all magnitudes. */
    private static float[] draw(SplittableRandom rnd, int n, boolean integers) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = integers ? rnd.nextInt(-8, 9) : (float) ((rnd.nextDouble() * 8 - 4) * Math.pow(2, -rnd.nextInt(12)));
        }
        return v;
    }

    /** d (16,8) = a (16,k) * b (k,8) + c, row-major, rounded as fmaf in increasing k starting from c. */
    private static float[] reference(float[] a, float[] b, float[] c, int k, int problem) {
        float[] d = new float[128];
        for (int i = 0; i < 16; i++) {
            for (int j = 0; j < 8; j++) {
                float acc = c[problem * 128 + i * 8 + j];
                for (int l = 0; l < k; l++) {
                    acc = Math.fma(a[problem * 16 * k + i * k + l], b[problem * k * 8 + l * 8 + j], acc);
                }
                d[i * 8 + j] = acc;
            }
        }
        return d;
    }

    /** Runs a bf16 (k 16) or tf32 (k 8) mma kernel on `problems` problems, two warps a block; returns d. */
    private float[] mma(String kernel, int k, int problems, float[] a, float[] b, float[] c) {
        long pa = upload(a);
        long pb = upload(b);
        long pc = upload(c);
        long pd = d.malloc(4L * 128 * problems);
        launch(kernel, problems / 2, 64, KernelArgs.of().ptr(pa).ptr(pb).ptr(pc).ptr(pd));
        return download(pd, 128 * problems);
    }

    private static float[] problem(float[] all, int p) {
        return Arrays.copyOfRange(all, p * 128, (p + 1) * 128);
    }

    // ------------------------------------------------------------------ mma.sync

    private float[][] bf16Inputs(boolean integers, int problems) {
        SplittableRandom rnd = new SplittableRandom(integers ? 16 : 17);
        float[] a = draw(rnd, 256 * problems, integers);
        float[] b = draw(rnd, 128 * problems, integers);
        float[] c = draw(rnd, 128 * problems, integers);
        for (int i = 0; i < a.length; i++) {
            a[i] = bf16(a[i]);
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = bf16(b[i]);
        }
        return new float[][] {a, b, c}; // c stays fp32: the accumulator
    }

    /** Four bf16 mma problems on small integers or reals, each exactly equal to the fma reference. */
    private void assertMmaBf16EqualsReference(boolean integers) {
        int problems = 4;
        float[][] in = bf16Inputs(integers, problems);
        float[] got = mma("mma_bf16_check", 16, problems, in[0], in[1], in[2]);
        for (int p = 0; p < problems; p++) {
            assertArrayEquals(reference(in[0], in[1], in[2], 16, p), problem(got, p), 0f, "problem " + p);
        }
    }

    @Test
    void mmaBf16MultipliesSmallIntegersExactly() {
        assertMmaBf16EqualsReference(true);
    }

    @Test
    void mmaBf16OnRealsRoundsAsFmaInKOrder() {
        assertMmaBf16EqualsReference(false);
    }

    @Test
    void mmaTf32IgnoresTheLow13MantissaBitsAndRoundsAsFmaInKOrder() {
        int problems = 2;
        for (boolean integers : new boolean[] {true, false}) {
            SplittableRandom rnd = new SplittableRandom(integers ? 32 : 33);
            float[] a = draw(rnd, 128 * problems, integers);
            float[] b = draw(rnd, 64 * problems, integers);
            float[] c = draw(rnd, 128 * problems, integers);
            float[] got = mma("mma_tf32_check", 8, problems, a, b, c); // raw fp32 bits go in
            float[] at = a.clone();
            float[] bt = b.clone();
            for (int i = 0; i < at.length; i++) {
                at[i] = tf32(at[i]);
            }
            for (int i = 0; i < bt.length; i++) {
                bt[i] = tf32(bt[i]);
            }
            for (int p = 0; p < problems; p++) {
                assertArrayEquals(reference(at, bt, c, 8, p), problem(got, p), 0f,
                        (integers ? "integers" : "reals") + ", problem " + p);
            }
            if (!integers) { // the truncation matters: the unrounded operands give another product
                assertFalse(Arrays.equals(reference(a, b, c, 8, 0), problem(got, 0)),
                        "tf32 operands were used with all their mantissa bits");
            }
        }
    }

    @Test
    void aWrongFragmentMappingGivesAWrongProduct() {
        int problems = 2;
        float[][] in = bf16Inputs(true, problems);
        float[] got = mma("mma_bf16_wrong_fragment", 16, problems, in[0], in[1], in[2]);
        float[] want = reference(in[0], in[1], in[2], 16, 0);
        int wrong = 0;
        for (int i = 0; i < 128; i++) {
            wrong += got[i] == want[i] ? 0 : 1;
        }
        assertTrue(wrong > 64, "a[1] and a[2] swapped gave only " + wrong + " of 128 wrong elements");
    }

    // ------------------------------------------------------------------ ldmatrix

    /** Element k of row j of matrix i in ldmatrix_check's shared tile. */
    private static int element(int i, int j, int k) {
        return 64 * i + 8 * j + k + 1;
    }

    private int[] ldmatrix(int matrices, boolean trans, int misalignLane) {
        long out = d.malloc(4L * 32 * 4);
        launch("ldmatrix_check", 1, 32, KernelArgs.of().ptr(out).i32(matrices).i32(trans ? 1 : 0).i32(misalignLane));
        return downloadInts(out, 32 * 4);
    }

    @Test
    void ldmatrixGivesEachLaneItsDocumentedElements() {
        for (int matrices : new int[] {1, 2, 4}) {
            for (boolean trans : new boolean[] {false, true}) {
                int[] got = ldmatrix(matrices, trans, -1);
                for (int lane = 0; lane < 32; lane++) {
                    int row = lane / 4;
                    int col = 2 * (lane % 4);
                    for (int i = 0; i < 4; i++) {
                        int want;
                        if (i >= matrices) {
                            want = -1; // registers past the count are untouched
                        } else if (trans) { // the transposed matrix's row `row`: the original's column
                            want = element(i, col, row) | element(i, col + 1, row) << 16;
                        } else {
                            want = element(i, row, col) | element(i, row, col + 1) << 16;
                        }
                        assertEquals(want, got[lane * 4 + i], "ldmatrix.x" + matrices + (trans ? ".trans" : "")
                                + " lane " + lane + " register " + i);
                    }
                }
            }
        }
    }

    @Test
    void ldmatrixIgnoresTheAddressesOfLanesPastItsMatricesButNotAMisalignedRow() {
        // x2 reads lanes 0-15 only: a misaligned lane 20 is ignored, a misaligned lane 9 fails the launch
        int[] got = ldmatrix(2, false, 20);
        assertEquals(element(0, 0, 0) | element(0, 0, 1) << 16, got[0]);
        CudaException e = assertThrows(CudaException.class, () -> ldmatrix(2, false, 9));
        assertTrue(e.getMessage().contains("of lane 9 (matrix 1, row 1) is not 16-byte aligned"), e.getMessage());
    }

    // ------------------------------------------------------------------ cp.async

    private float[] sequence(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = i + 1;
        }
        return v;
    }

    private float[] cpAsync(String kernel, int srcBytes) {
        long src = upload(sequence(128));
        long out = d.malloc(4L * 128);
        launch(kernel, 1, 32, KernelArgs.of().ptr(src).ptr(out).i32(srcBytes));
        return download(out, 128);
    }

    @Test
    void cpAsyncReadsSrcBytesAndZeroFillsTheRest() {
        for (int srcBytes : new int[] {0, 8, 16}) {
            float[] got = cpAsync("cp_async_zero_fill", srcBytes);
            for (int t = 0; t < 32; t++) {
                int from = t ^ 1; // the kernel reads its neighbour's bytes after the barrier
                for (int k = 0; k < 4; k++) {
                    float want = 4 * k < srcBytes ? 4 * from + k + 1 : 0f;
                    assertEquals(want, got[4 * t + k], "srcBytes " + srcBytes + ", thread " + t + ", float " + k);
                }
            }
        }
    }

    @Test
    void cpAsyncWaitRetiresAllButTheNewestNGroups() {
        long src = upload(sequence(3 * 128));
        long out = d.malloc(4L * 4 * 3 * 128);
        launch("cp_async_groups", 1, 32, KernelArgs.of().ptr(src).ptr(out));
        float[] got = download(out, 4 * 3 * 128);
        String[] stages = {"before any wait", "after wait<2>", "after wait<1>", "after wait<0>"};
        for (int stage = 0; stage < 4; stage++) {
            for (int q = 0; q < 3; q++) {
                boolean done = q < stage; // wait<N> with 3 groups committed completes the oldest 3 - N
                for (int t = 0; t < 32; t++) {
                    for (int k = 0; k < 4; k++) {
                        float want = done ? (q * 32 + t) * 4 + k + 1 : -1f;
                        assertEquals(want, got[((stage * 3 + q) * 32 + t) * 4 + k],
                                "group " + q + " " + stages[stage] + ", thread " + t);
                    }
                }
            }
        }
    }

    @Test
    void aMissingWaitReadsTheOldContents() {
        float[] got = cpAsync("cp_async_missing_wait", 16);
        float[] stale = new float[128];
        Arrays.fill(stale, -7f);
        assertArrayEquals(stale, got, 0f, "the tile read before the wait should still hold what it held before");
    }

    @Test
    void aCopyPendingAtExitFailsTheLaunch() {
        long src = upload(sequence(128));
        long out = d.malloc(4L * 128);
        CudaException e = launchFails("cp_async_pending_at_exit", 32, KernelArgs.of().ptr(src).ptr(out));
        assertTrue(e.getMessage().contains("cp.async pending at exit"), e.getMessage());
    }

    @Test
    void aMisalignedCopyFailsTheLaunch() {
        long src = upload(sequence(128));
        CudaException e = launchFails("cp_async_misaligned", 32, KernelArgs.of().ptr(src).i32(4));
        assertTrue(e.getMessage().contains("cp.async of thread 5"), e.getMessage());
        assertTrue(e.getMessage().contains("must both be 16-byte aligned"), e.getMessage());
    }

    // ------------------------------------------------------------------ shfl and the rendezvous

    @Test
    void shflXorExchangesWithinEachWarp() {
        long out = d.malloc(4L * 5 * 96);
        launch("shfl_check", 1, 96, KernelArgs.of().ptr(out));
        float[] got = download(out, 5 * 96);
        for (int x = 0; x < 96; x++) {
            for (int s = 0; s < 5; s++) {
                assertEquals(1000 * (x / 32) + ((x % 32) ^ (1 << s)), got[5 * x + s], "thread " + x + " mask " + (1 << s));
            }
        }
    }

    @Test
    void aWarpOpInABlockOfPartialWarpsFailsTheLaunch() {
        long out = d.malloc(4L * 5 * 48);
        CudaException e = launchFails("shfl_check", 48, KernelArgs.of().ptr(out));
        assertTrue(e.getMessage().contains("in a block of 48 threads"), e.getMessage());
    }

    @Test
    void aWarpOpThatHalfTheWarpLeavesFailsTheLaunch() {
        long out = d.malloc(4L * 64);
        CudaException e = launchFails("warp_op_divergent", 64, KernelArgs.of().ptr(out).i32(0));
        assertTrue(e.getMessage().contains("divergent warp op: lane 16 of warp 0 returned while lane"), e.getMessage());
        assertTrue(e.getMessage().contains("waits at shfl.sync.bfly (16 of 32 lanes arrived)"), e.getMessage());
    }

    @Test
    void aWarpOpThatHalfTheWarpMeetsAtABarrierFailsTheLaunch() {
        long out = d.malloc(4L * 64);
        CudaException e = launchFails("warp_op_divergent", 64, KernelArgs.of().ptr(out).i32(1));
        assertTrue(e.getMessage().contains("divergent warp op: lane 16 of warp 0 reached __syncthreads()"),
                e.getMessage());
    }

    @Test
    void lanesOfOneWarpAtDifferentWarpOpsFailTheLaunch() {
        long out = d.malloc(4L * 32);
        CudaException e = launchFails("warp_op_mismatch", 32, KernelArgs.of().ptr(out));
        assertTrue(e.getMessage().contains("divergent warp op: lane"), e.getMessage());
        assertTrue(e.getMessage().contains("of warp 0 reached "), e.getMessage());
        assertTrue(e.getMessage().contains("of its warp waits at "), e.getMessage());
    }

    @Test
    void aShuffleWithAPartialMaskFailsTheLaunch() {
        long out = d.malloc(4L * 32);
        CudaException e = launchFails("shfl_partial_mask", 32, KernelArgs.of().ptr(out));
        assertTrue(e.getMessage().contains("member mask 0x0000ffff"), e.getMessage());
    }

    @Test
    void aWarpOpInABarrierFreeKernelFailsTheLaunch() {
        long out = d.malloc(4L * 32);
        CudaException e = launchFails("warp_op_nosync", 32, KernelArgs.of().ptr(out));
        assertTrue(e.getMessage().contains("EMU_KERNEL_NOSYNC used the warp-level instruction shfl.sync.bfly"),
                e.getMessage());
    }
}
