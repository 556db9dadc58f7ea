package org.vgg4j.train;

import java.util.List;

import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * {@link AllReduce} through host memory for replicas on CPU backends (each replica its own backend instance):
 * copy every buffer out, sum in float64 in rank order 0..N-1, divide by N, round once to the buffers' dtype and
 * copy the same values into every replica. The fixed order makes the result independent of thread timing, and
 * the single rounding makes every replica bitwise identical. Works in chunks so host memory stays bounded.
 * Not a ring all-reduce: with 2 CPU cores the copies are cheap next to a VGG's forward/backward.
 *
 * <p>Legend: T elements of one buffer, N replicas.
 */
public final class HostAllReduce implements AllReduce {
    private static final int CHUNK = 1 << 20; // elements per host chunk

    // host scratch, kept from call to call (allocated per call, these arrays cost more than the averaging itself,
    // docs/benchmarks.md): grown to the largest chunk seen
    private double[] sum = new double[0];   // (chunk) running float64 sum over replicas
    private double[] hostD = new double[0]; // (chunk) one replica's values (float64 buffers)
    private float[] hostF = new float[0];   // (chunk) one replica's values (float32 buffers)

    /** Averages in place; synchronized: the scratch serves one call at a time. */
    @Override
    public synchronized void average(List<Tensor> buffers) {
        int n = buffers.size();
        if (n <= 1) {
            return; // one replica: the mean is the buffer itself, untouched bits
        }
        Tensor first = buffers.get(0);
        for (Tensor t : buffers) {
            if (t.size() != first.size() || t.dtype() != first.dtype()) {
                throw new IllegalArgumentException("all-reduce buffers differ: " + t + " vs " + first);
            }
        }
        long total = first.size();
        int chunk = (int) Math.min(total, CHUNK);
        if (sum.length < chunk) {
            sum = new double[chunk];
            hostD = new double[chunk];
            hostF = new float[chunk];
        }
        double[] sum = this.sum;
        double[] hostD = this.hostD;
        float[] hostF = first.dtype() == DType.FLOAT32 ? this.hostF : null;
        for (long off = 0; off < total; off += chunk) {
            int len = (int) Math.min(chunk, total - off);
            java.util.Arrays.fill(sum, 0, len, 0.0);
            for (Tensor t : buffers) {
                addChunk(t, off, len, hostF, hostD, sum);
            }
            if (hostF != null) {
                for (int i = 0; i < len; i++) {
                    hostF[i] = (float) (sum[i] / n);
                }
            } else {
                for (int i = 0; i < len; i++) {
                    hostD[i] = sum[i] / n;
                }
            }
            for (Tensor t : buffers) {
                Tensor v = flat(t).view(off, Shape.of(len));
                if (hostF != null) {
                    t.backend().copyIn(hostF, 0, v);
                } else {
                    t.backend().copyIn(hostD, 0, v);
                }
            }
        }
    }

    /**
     * sum[0..len) += elements [off, off+len) of t (flattened), read through hostF (float32, non-null) or hostD:
     * the one place a replica's chunk is added into a float64 running sum (also used by the TCP all-reduce).
     */
    public static void addChunk(Tensor t, long off, int len, float[] hostF, double[] hostD, double[] sum) {
        Tensor v = flat(t).view(off, Shape.of(len));
        if (hostF != null) {
            t.backend().copyOut(v, hostF, 0);
            for (int i = 0; i < len; i++) {
                sum[i] += hostF[i];
            }
        } else {
            t.backend().copyOut(v, hostD, 0);
            for (int i = 0; i < len; i++) {
                sum[i] += hostD[i];
            }
        }
    }

    /** t as a vector (a view when it already is one). */
    public static Tensor flat(Tensor t) {
        return t.rank() == 1 ? t : t.reshape(Math.toIntExact(t.size()));
    }
}
