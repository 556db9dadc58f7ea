package org.vgg4j.core.parallel;

/**
 * The processes of one multi-process (possibly multi-machine) training run, as a launcher started them (torchrun,
 * Slurm, a Kubernetes indexed Job): each knows its rank in [0, size) and can exchange small blobs with the others.
 *
 * <p>Is: the control plane of data parallelism — the NCCL unique id going from rank 0 to everybody, the per-step
 * loss and batch-size sums, the start-up broadcast of rank 0's parameters and training state, barriers. Every call
 * is COLLECTIVE: every rank makes the same calls in the same order (a rank that does not, or dies, makes the others
 * fail with an error naming it, never hang forever). Is not: the gradient all-reduce itself ({@link AllReduce} does
 * that, over this group or over NCCL) and not a launcher (vgg-train's {@code org.vgg4j.train.dist} reads the
 * launcher's environment and implements this over TCP).
 *
 * <p>Implementations need {@link #rank()}, {@link #size()}, {@link #broadcast(byte[])} and {@link #allGather(byte[])};
 * the rest is built from them. {@link #SINGLE} is the group of one process.
 */
public interface ProcessGroup extends AutoCloseable {

    /** This process's rank in [0, {@link #size()}). */
    int rank();

    /** Number of processes. */
    int size();

    /**
     * Rank 0's {@code blob} on every rank: rank 0 passes its bytes and gets them back; the others pass anything
     * (ignored, may be null) and get a copy of rank 0's.
     */
    byte[] broadcast(byte[] blob);

    /** Every rank's blob, indexed by rank, on every rank (blobs may differ in length). */
    byte[][] allGather(byte[] blob);

    /** Returns when every rank has called it. */
    default void barrier() {
        allGather(new byte[0]);
    }

    /**
     * Element-wise sums over ranks of small vectors (loss sums, example counts): every rank adds the gathered
     * vectors in rank order 0..size-1 in float64, so every rank gets the same bits whatever the timing.
     *
     * @throws IllegalStateException when ranks hand in vectors of different lengths
     */
    default double[] sum(double[] values) {
        java.nio.ByteBuffer mine = java.nio.ByteBuffer.allocate(8 * values.length);
        for (double v : values) {
            mine.putDouble(v);
        }
        byte[][] all = allGather(mine.array());
        double[] out = new double[values.length];
        for (int r = 0; r < all.length; r++) {
            if (all[r].length != 8 * values.length) {
                throw new IllegalStateException("rank " + r + " summed " + all[r].length / 8 + " values; rank " + rank()
                        + " " + values.length + " (the ranks are not running the same code path)");
            }
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(all[r]);
            for (int i = 0; i < out.length; i++) {
                out[i] += b.getDouble();
            }
        }
        return out;
    }

    @Override
    default void close() {
    }

    /** The group of one process: broadcasts and gathers return what they are given. */
    ProcessGroup SINGLE = new ProcessGroup() {
        @Override
        public int rank() {
            return 0;
        }

        @Override
        public int size() {
            return 1;
        }

        @Override
        public byte[] broadcast(byte[] blob) {
            return blob;
        }

        @Override
        public byte[][] allGather(byte[] blob) {
            return new byte[][] {blob};
        }

        @Override
        public String toString() {
            return "single process";
        }
    };
}
