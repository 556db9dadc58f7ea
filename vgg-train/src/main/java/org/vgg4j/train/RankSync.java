package org.vgg4j.train;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import org.vgg4j.core.model.Network;
import org.vgg4j.core.parallel.ProcessGroup;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * What the {@link Trainer} needs to keep the processes of a multi-process run in step, over the replicas'
 * {@link ProcessGroup}: rank 0 is the only one that reads and writes checkpoints and validates; after it restores
 * or initialises (and after a rollback), its parameters, momentum, BatchNorm state and {@link TrainState} are
 * broadcast to every rank. Every method is collective: all ranks call it at the same point of the loop. In one
 * process every method is a no-op or a local call.
 *
 * <p>Not here: the per-step gradient all-reduce and loss sums ({@link Replicas}), the transport (vgg-train's
 * {@code dist.TcpProcessGroup}).
 */
final class RankSync {
    private static final int CHUNK = 1 << 20; // elements per broadcast frame

    private final ProcessGroup group;

    RankSync(ProcessGroup group) {
        this.group = group;
    }

    boolean leader() {
        return group.rank() == 0;
    }

    boolean single() {
        return group.size() == 1;
    }

    /** Rank 0's flag on every rank. */
    boolean fromLeader(boolean flag) {
        return single() ? flag : group.broadcast(new byte[] {(byte) (flag ? 1 : 0)})[0] == 1;
    }

    /** Rank 0's validation result on every rank (the others pass null). */
    Evaluator.Result fromLeader(Evaluator.Result v) {
        if (single()) {
            return v;
        }
        ByteBuffer b = ByteBuffer.allocate(25);
        if (leader()) {
            b.put((byte) (v == null ? 0 : 1));
            if (v != null) {
                b.putLong(v.count()).putLong(v.top1Wrong()).putLong(v.top5Wrong());
            }
        }
        ByteBuffer got = ByteBuffer.wrap(group.broadcast(b.array()));
        return got.get() == 0 ? null : new Evaluator.Result(got.getLong(), got.getLong(), got.getLong());
    }

    /**
     * Makes every rank hold rank 0's training state: parameters, momentum and BatchNorm state of its replica 0 go
     * to every process's replica 0, then to the local replicas; the {@link TrainState} (rank 0 passes it, the others
     * null) comes back on every rank.
     */
    TrainState fromLeader(Replicas replicas, TrainState state) throws IOException {
        if (single()) {
            return state;
        }
        byte[] encoded = leader() ? encode(state) : null;
        TrainState s = decode(group.broadcast(encoded));
        Network net = replicas.primary();
        broadcast(net.params().values());
        broadcast(replicas.optimizer(0).velocity());
        if (net.params().state() != null) {
            broadcast(net.params().state());
        }
        replicas.broadcastFromPrimary();
        replicas.zeroGrads();
        return s;
    }

    /** Rank 0's values of {@code t} into everybody's, through host memory, in chunks. */
    private void broadcast(Tensor t) {
        Tensor flat = t.rank() == 1 ? t : t.reshape(Math.toIntExact(t.size()));
        boolean f32 = t.dtype() == DType.FLOAT32;
        int width = f32 ? 4 : 8;
        long total = t.size();
        int chunk = (int) Math.min(Math.max(total, 1), CHUNK);
        float[] hostF = f32 ? new float[chunk] : null; // (c)
        double[] hostD = f32 ? null : new double[chunk];
        for (long off = 0; off < total; off += chunk) {
            int len = (int) Math.min(chunk, total - off);
            Tensor v = flat.view(off, Shape.of(len));
            byte[] frame = null;
            if (leader()) {
                ByteBuffer b = ByteBuffer.allocate(len * width).order(ByteOrder.LITTLE_ENDIAN);
                if (f32) {
                    t.backend().copyOut(v, hostF, 0);
                    for (int i = 0; i < len; i++) {
                        b.putFloat(hostF[i]);
                    }
                } else {
                    t.backend().copyOut(v, hostD, 0);
                    for (int i = 0; i < len; i++) {
                        b.putDouble(hostD[i]);
                    }
                }
                frame = b.array();
            }
            byte[] got = group.broadcast(frame);
            if (got.length != len * width) {
                throw new IllegalStateException("rank 0 broadcast " + got.length + " bytes of a tensor chunk; expected "
                        + len * width + " (do all ranks build the same network?)");
            }
            if (!leader()) {
                ByteBuffer b = ByteBuffer.wrap(got).order(ByteOrder.LITTLE_ENDIAN);
                if (f32) {
                    for (int i = 0; i < len; i++) {
                        hostF[i] = b.getFloat();
                    }
                    t.backend().copyIn(hostF, 0, v);
                } else {
                    for (int i = 0; i < len; i++) {
                        hostD[i] = b.getDouble();
                    }
                    t.backend().copyIn(hostD, 0, v);
                }
            }
        }
    }

    private static byte[] encode(TrainState s) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream d = new DataOutputStream(bytes)) {
            Map<String, String> m = Checkpointer.TrainStateCodec.encode(s);
            d.writeInt(m.size());
            for (Map.Entry<String, String> e : m.entrySet()) {
                d.writeUTF(e.getKey());
                d.writeUTF(e.getValue());
            }
        }
        return bytes.toByteArray();
    }

    private static TrainState decode(byte[] blob) throws IOException {
        try (DataInputStream d = new DataInputStream(new java.io.ByteArrayInputStream(blob))) {
            int n = d.readInt();
            Map<String, String> m = new LinkedHashMap<>();
            for (int i = 0; i < n; i++) {
                m.put(d.readUTF(), d.readUTF());
            }
            return Checkpointer.TrainStateCodec.decode(m, Path.of("<rank 0's training state>"));
        }
    }
}
