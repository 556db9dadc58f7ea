package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.testing.Approx;
import org.vgg4j.cuda.api.CudaException;

/**
 * Negative tests: the emulated device must CATCH real kernel bugs, not hide them. The kernels come from
 * src/test/cuda/broken.cu (compiled only into the test build of the emulator): the real GEMM tile core with a
 * missing __syncthreads() or an off-by-one depth bound must fail the same parity check its fault-free control
 * passes; a shift through shared memory without its barrier must be caught although the racing read depends on a
 * LOWER-numbered thread; a barrier reached by only part of a block and a write one element past a buffer must fail
 * their launch.
 */
@Tag(Parity.EMULATOR_TAG)
class BrokenKernelTest extends OnEmulatedDevice {
    // c (M,Nd) = a (M,Kd) * b (Kd,Nd): Kd = 37 is not a multiple of the tile depth 16, so the last stage is partial
    static final int M = 70;
    static final int KD = 37;
    static final int ND = 66;

    BrokenKernelTest() {
        super(1); // the second emulated device: several devices are presented
    }

    /** Runs one of broken.cu's GEMM kernels on integer inputs; returns c and the exact product. */
    private double[][] gemm(String kernel) {
        float[] a = new float[M * KD];
        float[] b = new float[KD * ND];
        double[] ai = Parity.ints(1, a.length, -4, 4);
        double[] bi = Parity.ints(2, b.length, -4, 4);
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) ai[i];
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) bi[i];
        }
        double[] want = new double[M * ND];
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < ND; j++) {
                double s = 0;
                for (int l = 0; l < KD; l++) {
                    s += a[i * KD + l] * b[l * ND + j];
                }
                want[i * ND + j] = s;
            }
        }
        long da = d.malloc(4L * a.length);
        long db = d.malloc(4L * b.length);
        long dc = d.malloc(4L * M * ND);
        d.copyIn(a, 0, da, a.length);
        d.copyIn(b, 0, db, b.length);
        d.launch(d.function("broken", kernel), (ND + 63) / 64, (M + 63) / 64, 1, 256,
                KernelArgs.of().ptr(da).ptr(db).ptr(dc).i32(M).i32(ND).i32(KD));
        float[] c = new float[M * ND];
        d.copyOut(dc, c, 0, c.length);
        double[] got = new double[c.length];
        for (int i = 0; i < c.length; i++) {
            got[i] = c[i];
        }
        return new double[][] {want, got};
    }

    private static boolean matches(double[][] r) {
        for (int i = 0; i < r[0].length; i++) {
            if (!Approx.close(r[0][i], r[1][i], 0, 0)) {
                return false;
            }
        }
        return true;
    }

    @Test
    void theFaultFreeTileCorePasses() {
        double[][] r = gemm("gemm_control");
        assertArrayEquals(r[0], r[1], 0.0, "control kernel");
    }

    @Test
    void aMissingSyncthreadsIsCaught() {
        assertFalse(matches(gemm("gemm_broken_nosync")),
                "the tile core without its __syncthreads() after the load passed the parity check");
    }

    @Test
    void anOffByOneTileBoundIsCaught() {
        assertFalse(matches(gemm("gemm_broken_offbyone")),
                "the tile core with `k <= Kd` passed the parity check");
    }

    /** out = in shifted by one inside each block of 256, by kernel {@code kernel}; returns how many elements differ. */
    private int shiftMismatches(String kernel) {
        int n = 4 * 256;
        float[] in = new float[n];
        for (int i = 0; i < n; i++) {
            in[i] = i + 1;
        }
        long din = d.malloc(4L * n);
        long dout = d.malloc(4L * n);
        d.copyIn(in, 0, din, n);
        d.launch(d.function("broken", kernel), 4, 1, 1, 256, KernelArgs.of().ptr(din).ptr(dout).i32(n));
        float[] out = new float[n];
        d.copyOut(dout, out, 0, n);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            float want = i % 256 == 0 ? 0 : in[i - 1];
            bad += out[i] == want ? 0 : 1;
        }
        return bad;
    }

    @Test
    void aRaceWithALowerNumberedThreadIsCaught() {
        assertEquals(0, shiftMismatches("shift_sync"), "control kernel with its barrier");
        // thread t reads what t - 1 wrote: ascending order would hide the missing barrier, descending order does not
        assertTrue(shiftMismatches("shift_nosync") > 0, "the missing barrier between write and read went unnoticed");
    }

    @Test
    void aBarrierReachedByPartOfABlockFailsTheLaunch() {
        long out = d.malloc(4 * 256);
        CudaException e = assertThrows(CudaException.class, () -> d.launch(d.function("broken", "divergent_barrier"),
                1, 1, 1, 256, KernelArgs.of().ptr(out)));
        assertTrue(e.getMessage().contains("divergent __syncthreads()"), e.getMessage());
    }

    @Test
    void aWritePastTheEndOfABufferFailsTheLaunch() {
        long out = d.malloc(4 * 100);
        CudaException e = assertThrows(CudaException.class, () -> d.launch(d.function("broken", "write_past_end"),
                1, 1, 1, 256, KernelArgs.of().ptr(out).i32(100)));
        assertTrue(e.getMessage().contains("out-of-bounds write after the end of a 400-byte"), e.getMessage());
    }
}
