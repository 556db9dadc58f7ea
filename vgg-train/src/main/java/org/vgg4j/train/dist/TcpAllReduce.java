package org.vgg4j.train.dist;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.ProcessGroup;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.train.HostAllReduce;

/**
 * {@link AllReduce} across processes on the CPU, over a {@link TcpProcessGroup}: every rank sends its local
 * replicas' buffers, chunk by chunk, to rank 0, which adds all R = processes x local replicas values in a FIXED
 * order (process 0's replicas, then process 1's, ... — global replica order) in float64, divides by R, rounds once
 * to the buffers' dtype and sends the same bits back to everybody. So the result is bitwise identical on every
 * rank, independent of timing, and equal bit for bit to {@link org.vgg4j.train.HostAllReduce} over the same R
 * buffers in one process (tested). Works for any backend (copyOut / copyIn), e.g. {@code cpu}, {@code reference},
 * {@code cuda-emulated}.
 *
 * <p>Is not: bandwidth-optimal (rank 0's link carries everything; a ring would spread it) — PyTorch's gloo has the
 * same role next to NCCL: make N processes work and testable without GPUs.
 *
 * <p>Legend: T elements of one buffer, L local replicas, P processes, R = P*L, c elements of one chunk.
 */
public final class TcpAllReduce implements AllReduce {
    private static final int CHUNK = 1 << 18; // elements per chunk and buffer: 1 MiB of float32 per frame and replica

    private final TcpProcessGroup group;

    public TcpAllReduce(TcpProcessGroup group) {
        this.group = group;
    }

    @Override
    public ProcessGroup group() {
        return group;
    }

    @Override
    public void average(List<Tensor> buffers) {
        int local = buffers.size();
        if (local == 0) {
            throw new IllegalArgumentException("all-reduce of no buffers: each process hands in its replicas' buffers");
        }
        Tensor first = buffers.get(0);
        for (Tensor t : buffers) {
            if (t.size() != first.size() || t.dtype() != first.dtype()) {
                throw new IllegalArgumentException("all-reduce buffers differ: " + t + " vs " + first);
            }
        }
        int p = group.size();
        if (p == 1) {
            new HostAllReduce().average(buffers);
            return;
        }
        boolean f32 = first.dtype() == DType.FLOAT32;
        int width = f32 ? 4 : 8;
        long total = first.size();
        synchronized (group) {
            group.checkHealthy();
            agreeOnShape(local, total, first.dtype());
            int world = p * local;
            int chunk = (int) Math.min(Math.max(total, 1), CHUNK);
            float[] hostF = f32 ? new float[chunk] : null;     // (c) one replica's chunk
            double[] hostD = f32 ? null : new double[chunk];    // (c)
            double[] sum = new double[chunk];                   // (c) float64 running sum, global replica order
            byte[] frame = new byte[local * chunk * width];     // (L,c) this process's replicas, or the result (c)
            byte[] peerFrame = new byte[local * chunk * width]; // (L,c) another process's replicas (rank 0)
            for (long off = 0; off < total; off += chunk) {
                int len = (int) Math.min(chunk, total - off);
                if (group.rank() == 0) {
                    java.util.Arrays.fill(sum, 0, len, 0.0);
                    for (Tensor t : buffers) { // process 0's replicas first
                        HostAllReduce.addChunk(t, off, len, hostF, hostD, sum);
                    }
                    for (int r = 1; r < p; r++) { // then every other process's, in rank order
                        int bytes = local * len * width;
                        byte[] got = group.receive(r, bytes == peerFrame.length ? peerFrame : null, "all-reduce");
                        if (got.length != bytes) {
                            throw new IllegalStateException("rank " + r + " sent " + got.length + " bytes for a chunk of "
                                    + bytes); // cannot happen after agreeOnShape
                        }
                        ByteBuffer b = ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN);
                        for (int k = 0; k < local; k++) {
                            for (int i = 0; i < len; i++) {
                                sum[i] += f32 ? b.getFloat() : b.getDouble();
                            }
                        }
                    }
                    ByteBuffer out = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN);
                    for (int i = 0; i < len; i++) { // one rounding of the mean
                        if (f32) {
                            hostF[i] = (float) (sum[i] / world);
                            out.putFloat(hostF[i]);
                        } else {
                            hostD[i] = sum[i] / world;
                            out.putDouble(hostD[i]);
                        }
                    }
                    for (int r = 1; r < p; r++) {
                        group.send(r, frame, 0, len * width, "all-reduce");
                    }
                } else {
                    ByteBuffer out = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN);
                    for (Tensor t : buffers) {
                        Tensor v = HostAllReduce.flat(t).view(off, Shape.of(len));
                        if (f32) {
                            t.backend().copyOut(v, hostF, 0);
                            for (int i = 0; i < len; i++) {
                                out.putFloat(hostF[i]);
                            }
                        } else {
                            t.backend().copyOut(v, hostD, 0);
                            for (int i = 0; i < len; i++) {
                                out.putDouble(hostD[i]);
                            }
                        }
                    }
                    group.send(0, frame, 0, local * len * width, "all-reduce");
                    byte[] got = group.receive(0, "all-reduce");
                    if (got.length != len * width) {
                        throw new IllegalStateException("rank 0 sent " + got.length + " bytes for a chunk of " + len * width);
                    }
                    ByteBuffer b = ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN);
                    for (int i = 0; i < len; i++) {
                        if (f32) {
                            hostF[i] = b.getFloat();
                        } else {
                            hostD[i] = b.getDouble();
                        }
                    }
                }
                for (Tensor t : buffers) {
                    Tensor v = HostAllReduce.flat(t).view(off, Shape.of(len));
                    if (f32) {
                        t.backend().copyIn(hostF, 0, v);
                    } else {
                        t.backend().copyIn(hostD, 0, v);
                    }
                }
            }
        }
    }

    /** Every process must hand in the same number of buffers of the same size and dtype: checked once per call. */
    private void agreeOnShape(int local, long total, DType dtype) {
        byte[] mine = ByteBuffer.allocate(16).putInt(local).putLong(total).putInt(dtype.ordinal()).array();
        byte[][] all = group.allGather(mine);
        for (int r = 0; r < all.length; r++) {
            ByteBuffer b = ByteBuffer.wrap(all[r]);
            int l = b.getInt();
            long t = b.getLong();
            int d = b.getInt();
            if (l != local || t != total || d != dtype.ordinal()) {
                String message = "all-reduce: rank " + r + " hands in " + l + " buffer(s) of " + t + " "
                        + DType.values()[d] + " elements; rank " + group.rank() + " has " + local + " of " + total + " "
                        + dtype + " (every process needs the same --devices and the same network)";
                group.abort(message);
                throw new IllegalStateException(message);
            }
        }
    }

    @Override
    public void close() {
        // the group is the caller's (it outlives the collective: the trainer uses it for broadcasts)
    }
}
