package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.vgg4j.cuda.CudaBackend.SplitK;

/**
 * The split-K plans as pure functions of the multiprocessor count and the GEMM's sizes, no device:
 * {@link SplitK#plan} and the tensor-core forward / backward-data GEMMs' {@link TensorCoreGemm#productSplit}.
 * (RuntimeTest checks the backend's plans on the emulator's nominal 4 multiprocessors.) Legend: M rows, Kd depth,
 * Nd columns.
 */
class SplitKPlanTest {
    @Test
    void aPlanAimsAtTwoBlocksPerMultiprocessorInChunksOfTheAlignment() {
        assertEquals(new SplitK(8, 401408), SplitK.plan(4, 1, 64L * 224 * 224, 64 * 27));
        assertEquals(new SplitK(1, 1 << 20), SplitK.plan(4, 8, 1 << 20, 1 << 12), "enough tiles: no split");
        assertEquals(new SplitK(3, 304), SplitK.plan(4, 2, 900, 64), "chunks of 16, the last one ragged");
        assertEquals(new SplitK(3, 320), SplitK.plan(4, 2, 900, 64, 32), "chunks of 32");
        assertEquals(new SplitK(1, 512), SplitK.plan(4, 1, 500, 64, 32), "too shallow: one chunk, rounded up");
        assertEquals(new SplitK(64, 4096), SplitK.plan(1000, 1, 1 << 18, 1), "at most 64 slices");
        assertEquals(new SplitK(4, 16384), SplitK.plan(132, 1, 1 << 16, 16 << 20), "the workspace bounded: 4 x 64 MiB");
    }

    /** The plan: a pure function of the multiprocessor count and the GEMM's sizes. */
    @Test
    void thePlanSplitsOnlyWhereTheTilesAreTooFewAndTheSizesFitTheWgradKernel() {
        // fc6 at batch 64 on an H200 (132 SMs): 1 x 32 tiles, 25088 deep -> 9 chunks of 2816 (the last 2560)
        assertEquals(new SplitK(9, 2816), TensorCoreGemm.productSplit(132, 64, 25088, 4096));
        // its backward-data: dx (64, 25088) = dy (64, 4096) w: 196 tiles < 264 -> 2 chunks of 2048
        assertEquals(new SplitK(2, 2048), TensorCoreGemm.productSplit(132, 64, 4096, 25088));
        assertEquals(1, TensorCoreGemm.productSplit(98, 64, 4096, 25088).splits(), "196 tiles = 2 blocks x 98 SMs");
        // fc7, both: 1 x 32 tiles, 4096 deep -> 9 chunks of 480
        assertEquals(new SplitK(9, 480), TensorCoreGemm.productSplit(132, 64, 4096, 4096));
        // fc8: 1 x 8 tiles, 4096 deep: as many chunks as MIN_SPLIT_DEPTH allows (16 of 256)
        assertEquals(new SplitK(16, 256), TensorCoreGemm.productSplit(132, 64, 4096, 1000));
        // its backward-data: 32 tiles, 1000 deep: 3 chunks (MIN_SPLIT_DEPTH) of 352, the last 296
        assertEquals(new SplitK(3, 352), TensorCoreGemm.productSplit(132, 64, 1000, 4096));
        assertEquals(new SplitK(1, 512), TensorCoreGemm.productSplit(132, 64, 504, 1000), "too shallow to split");
        assertEquals(new SplitK(1, 4096), TensorCoreGemm.productSplit(132, 60, 4096, 1000), "M % 8 != 0");
        assertEquals(new SplitK(1, 4096), TensorCoreGemm.productSplit(132, 64, 4096, 1001), "Nd % 8 != 0");
        for (int sms : new int[] {1, 4, 16, 132}) {
            for (int kd : new int[] {512, 1000, 4096, 25088}) {
                SplitK sk = TensorCoreGemm.productSplit(sms, 64, kd, 4096);
                assertEquals(0, sk.chunk() % TensorCoreConv.WGRAD_CHUNK, sms + " SMs, Kd " + kd + ": " + sk);
                assertTrue((long) sk.splits() * sk.chunk() >= kd && (long) (sk.splits() - 1) * sk.chunk() < kd,
                        sms + " SMs, Kd " + kd + ": every slice has rows: " + sk);
                assertEquals(sk, TensorCoreGemm.productSplit(sms, 64, kd, 4096), "the same arguments, the same plan");
            }
        }
    }
}
