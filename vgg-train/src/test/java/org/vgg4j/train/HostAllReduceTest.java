package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * The in-process all-reduce on its own: every replica ends with the float64 mean of the replicas' values in rank
 * order, rounded once, bit for bit, through one instance reused across sizes (larger than one host chunk, then
 * smaller) and dtypes, so its kept scratch never leaks one call's values into the next.
 */
class HostAllReduceTest {

    @Test
    void oneInstanceAveragesExactlyAcrossSizesAndDtypes() {
        Backend b = Backends.create("reference");
        HostAllReduce reduce = new HostAllReduce();
        int[][] cases = {{3, (1 << 20) + 7}, {2, 1_000}, {3, 17}};
        for (DType dtype : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
            for (int[] c : cases) {
                int replicas = c[0];
                int n = c[1];
                List<Tensor> buffers = new ArrayList<>();
                double[][] values = new double[replicas][];
                for (int r = 0; r < replicas; r++) {
                    values[r] = data(31L * r + n, n, dtype);
                    Tensor t = b.allocate(dtype, Shape.of(n));
                    b.copyIn(values[r], 0, t);
                    buffers.add(t);
                }
                reduce.average(buffers);
                double[] got = new double[n];
                for (int r = 0; r < replicas; r++) {
                    b.copyOut(buffers.get(r), got, 0);
                    for (int i = 0; i < n; i++) {
                        double s = 0;
                        for (int q = 0; q < replicas; q++) {
                            s += values[q][i];
                        }
                        double mean = s / replicas;
                        double want = dtype == DType.FLOAT32 ? (float) mean : mean;
                        if (Double.doubleToRawLongBits(want) != Double.doubleToRawLongBits(got[i])) {
                            fail(dtype + " " + replicas + " x " + n + ": replica " + r + " element " + i
                                    + " is " + got[i] + ", expected " + want);
                        }
                    }
                }
                for (Tensor t : buffers) {
                    b.free(t);
                }
            }
        }
    }

    /** n values of very different magnitudes (the summation order shows), representable in dtype. */
    private static double[] data(long seed, int n, DType dtype) {
        SplittableRandom rng = new SplittableRandom(seed);
        double[] d = new double[n];
        for (int i = 0; i < n; i++) {
            double v = rng.nextGaussian() * Math.pow(10, rng.nextInt(-6, 7));
            d[i] = dtype == DType.FLOAT32 ? (float) v : v;
        }
        return d;
    }
}
