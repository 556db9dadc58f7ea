package org.vgg4j.train.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.train.HostAllReduce;

/**
 * The CPU all-reduce across processes: 3 processes x 2 local replicas give, on every rank, exactly the bits that
 * HostAllReduce gives for the same 6 buffers in one process (float64 sum in global replica order, one rounding),
 * for sizes spanning several chunks and not a multiple of anything; mismatched buffers are refused by name.
 */
class TcpAllReduceTest {
    private static final Duration T = Duration.ofSeconds(30);
    private static final int P = 3;
    private static final int L = 2;

    /** Buffer of global replica g: values of very different magnitudes, so the summation order matters. */
    private static double[] data(int g, int n) {
        SplittableRandom rng = new SplittableRandom(1000 + g);
        double[] d = new double[n];
        for (int i = 0; i < n; i++) {
            d[i] = rng.nextGaussian() * Math.pow(10, rng.nextInt(-6, 7));
        }
        return d;
    }

    @Test
    void equalsTheInProcessAllReduceBitForBitOnEveryRank() throws Exception {
        int n = 600_001; // > 2 chunks of 2^18, odd
        for (DType dtype : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
            // the reference: the 6 buffers in one process
            Backend b = Backends.create("reference");
            List<Tensor> all = new ArrayList<>();
            for (int g = 0; g < P * L; g++) {
                Tensor t = b.allocate(dtype, Shape.of(n));
                b.copyIn(data(g, n), 0, t);
                all.add(t);
            }
            new HostAllReduce().average(all);
            double[] want = new double[n];
            b.copyOut(all.get(0), want, 0);

            List<Object> res = Ranks.run(P, T, (rank, group) -> {
                Backend mine = Backends.create("reference");
                List<Tensor> local = new ArrayList<>();
                for (int l = 0; l < L; l++) {
                    Tensor t = mine.allocate(dtype, Shape.of(n));
                    mine.copyIn(data(rank * L + l, n), 0, t);
                    local.add(t);
                }
                new TcpAllReduce(group).average(local);
                double[][] out = new double[L][n];
                for (int l = 0; l < L; l++) {
                    mine.copyOut(local.get(l), out[l], 0);
                }
                return out;
            });
            for (int r = 0; r < P; r++) {
                double[][] out = assertInstanceOf(double[][].class, res.get(r), String.valueOf(res.get(r)));
                for (int l = 0; l < L; l++) {
                    assertArrayEquals(want, out[l], dtype + " rank " + r + " replica " + l); // exact: no delta
                }
            }
            // the average is a real one: spot-check an element against a float64 sum of the inputs
            double s = 0;
            for (int g = 0; g < P * L; g++) {
                s += dtype == DType.FLOAT32 ? (float) data(g, n)[12345] : data(g, n)[12345];
            }
            assertEquals(dtype == DType.FLOAT32 ? (double) (float) (s / (P * L)) : s / (P * L), want[12345]);
        }
    }

    @Test
    void buffersThatDifferAcrossRanksAreRefusedNamingTheRank() throws Exception {
        List<Object> res = Ranks.run(2, T, (rank, group) -> {
            Backend mine = Backends.create("reference");
            Tensor t = mine.allocate(DType.FLOAT32, Shape.of(rank == 0 ? 10 : 11));
            new TcpAllReduce(group).average(List.of(t));
            return "reduced";
        });
        for (int r = 0; r < 2; r++) {
            IllegalStateException e = assertInstanceOf(IllegalStateException.class, res.get(r), String.valueOf(res.get(r)));
            assertTrue(e.getMessage().contains("rank ") && e.getMessage().contains("11")
                    && e.getMessage().contains("10"), e.getMessage());
        }
    }
}
