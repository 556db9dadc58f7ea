package org.vgg4j.core.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.backend.DropoutRng;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Dropout's mask key (layer seed, step, position in the global batch, feature): the mask of an example is the same
 * whether the global batch goes through one forward, is cut into consecutive shares (replicas, micro-batches) or is
 * interleaved over processes. Legend: B global batch, F features.
 */
class DropoutTest {
    private static final int B = 6;
    private static final int F = 7;
    private static final double P = 0.5;
    private static final long SEED = 99;

    private Backend be = Backends.create("reference");

    /** The (rows,F) mask of a forward over {@code rows} examples at (step, first, stride); x is all ones. */
    private double[] mask(Dropout d, long step, long first, long stride, int rows) {
        d.setMaskKey(step, first, stride);
        Tensor x = be.allocate(DType.FLOAT64, Shape.of(rows, F));
        be.fill(x, 1.0);
        double[] out = new double[rows * F];
        be.copyOut(d.forward(x, true), out, 0);
        be.free(x);
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"reference", "cpu"})
    void theMaskOfAnExampleDoesNotDependOnHowTheGlobalBatchIsSplit(String backend) {
        be = Backends.create(backend);
        Dropout d = new Dropout(be, P, SEED);
        double[] whole = mask(d, 5, 0, 1, B); // (B,F): one replica, the whole batch
        // two consecutive shares (2 replicas, or micro-batches of 3)
        double[] halves = new double[B * F];
        System.arraycopy(mask(d, 5, 0, 1, 3), 0, halves, 0, 3 * F);
        System.arraycopy(mask(d, 5, 3, 1, 3), 0, halves, 3 * F, 3 * F);
        assertArrayEquals(whole, halves);
        // two processes interleaving positions (rank 0: 0, 2, 4; rank 1: 1, 3, 5)
        double[] rank0 = mask(d, 5, 0, 2, 3);
        double[] rank1 = mask(d, 5, 1, 2, 3);
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(Arrays.copyOfRange(whole, 2 * i * F, (2 * i + 1) * F),
                    Arrays.copyOfRange(rank0, i * F, (i + 1) * F), "position " + 2 * i);
            assertArrayEquals(Arrays.copyOfRange(whole, (2 * i + 1) * F, (2 * i + 2) * F),
                    Arrays.copyOfRange(rank1, i * F, (i + 1) * F), "position " + (2 * i + 1));
        }
        // rank 1's micro-batch of its last two examples: positions 3 and 5
        double[] tail = mask(d, 5, 3, 2, 2);
        assertArrayEquals(Arrays.copyOfRange(whole, 3 * F, 4 * F), Arrays.copyOfRange(tail, 0, F));
        assertArrayEquals(Arrays.copyOfRange(whole, 5 * F, 6 * F), Arrays.copyOfRange(tail, F, 2 * F));
    }

    @Test
    void theMaskIsKeyedByStepAndLayerSeedAndNotByHowOftenForwardRan() {
        Dropout d = new Dropout(be, P, SEED);
        double[] step5 = mask(d, 5, 0, 1, B);
        assertArrayEquals(step5, mask(d, 5, 0, 1, B), "same key, same mask: no hidden counter");
        assertFalse(Arrays.equals(step5, mask(d, 6, 0, 1, B)), "another step draws another mask");
        assertFalse(Arrays.equals(step5, mask(new Dropout(be, P, SEED + 1), 5, 0, 1, B)), "another layer seed");
        // element f of position e at step s is keep(mix64(seed ^ s * K), e * F + f): kept ones scaled by 1/(1-p)
        long stepSeed = DropoutRng.mix64(SEED ^ 5 * 0xD1B54A32D192ED03L);
        int kept = 0;
        for (int i = 0; i < B * F; i++) {
            assertEquals(DropoutRng.keep(stepSeed, i, P) ? 2.0 : 0.0, step5[i], "element " + i);
            kept += step5[i] != 0 ? 1 : 0;
        }
        assertFalse(kept == 0 || kept == B * F, "a mask of " + kept + " kept of " + B * F);
    }

    /**
     * A loop of one's own that never sets the key (as README's training snippet) gets a fresh mask every training
     * forward: forward k draws step k's mask at positions 0, 1, ..., which is the mask the old per-layer counter of
     * forward calls drew (keep(mix64(seed ^ k * K), i)), so such a loop trains as it did before the key existed.
     */
    @Test
    void aLoopThatNeverSetsTheKeyDrawsTheNextStepsMaskEveryForward() {
        Dropout d = new Dropout(be, P, SEED);
        Tensor x = be.allocate(DType.FLOAT64, Shape.of(B, F));
        be.fill(x, 1.0);
        for (int k = 0; k < 4; k++) {
            double[] got = new double[B * F];
            be.copyOut(d.forward(x, true), got, 0);
            long counterSeed = DropoutRng.mix64(SEED ^ k * 0xD1B54A32D192ED03L);
            for (int i = 0; i < B * F; i++) {
                assertEquals(DropoutRng.keep(counterSeed, i, P) ? 2.0 : 0.0, got[i], "forward " + k + ", element " + i);
            }
            d.forward(x, false); // evaluation forwards draw nothing and do not advance
        }
        be.free(x);
    }

    @Test
    void aBadKeyIsRefusedNamingIt() {
        Dropout d = new Dropout(be, P, SEED);
        assertEquals("dropout mask key: step -1 and first example 0 must be >= 0, example stride 1 >= 1",
                assertThrows(IllegalArgumentException.class, () -> d.setMaskKey(-1, 0, 1)).getMessage());
        assertEquals("dropout mask key: step 0 and first example 0 must be >= 0, example stride 0 >= 1",
                assertThrows(IllegalArgumentException.class, () -> d.setMaskKey(0, 0, 0)).getMessage());
    }
}
