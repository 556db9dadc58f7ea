package org.vgg4j.core.parallel;

import java.util.List;

import org.vgg4j.core.tensor.Tensor;

/**
 * The collective of synchronous data-parallel SGD: every replica hands in its one gradient buffer (ParamStore's
 * contiguous grads) and gets back the element-wise MEAN over replicas, bitwise identical in every replica, so the
 * replicas' identical SGD steps keep their parameters identical. vgg-train's {@code HostAllReduce} is the CPU implementation
 * (through host memory, in vgg-train); the CUDA module implements it for GPUs. It lives in vgg-core, not in the
 * trainer, so that vgg-cuda can implement it while depending on vgg-core only (dependencies point one way).
 * Several processes: see {@link #group()} (vgg-train's {@code TcpAllReduce}, vgg-cuda's {@code NcclAllReduce}). Not here: deciding what to reduce or when (vgg-train's {@code Replicas} do that).
 *
 * <p>Overlap with backward: {@link #begin} starts an all-reduce whose inputs become final piece by piece, as the
 * replicas' backward passes finish layer after layer ({@link InFlight#ready}); an implementation may reduce those
 * pieces while the backward of earlier layers still runs. The defaults build everything on {@link #average}, so an
 * implementation of {@code average} alone is complete (it then simply reduces everything at
 * {@link InFlight#finish}).
 */
public interface AllReduce extends AutoCloseable {

    /**
     * Replaces each of {@code buffers} (one per replica, index = rank, equal sizes and dtypes, each on its replica's
     * backend) with the mean of all of them. The result must not depend on thread timing.
     */
    void average(List<Tensor> buffers);

    /**
     * The processes this collective spans. With more than one, {@link #average} gets THIS process's buffers and
     * averages over every process's: the world is processes x local buffers (every process hands in the same
     * number), so callers weight their gradients by that world size. {@link ProcessGroup#SINGLE} by default.
     */
    default ProcessGroup group() {
        return ProcessGroup.SINGLE;
    }

    /**
     * Starts averaging {@code buffers} (as {@link #average}) whose elements become final piece by piece. The
     * default waits for {@link InFlight#finish} and then calls {@link #average}.
     */
    default InFlight begin(List<Tensor> buffers) {
        return new InFlight() {
            @Override
            public void ready(int rank, long from, long to) {
            }

            @Override
            public void finish() {
                average(buffers);
            }

            @Override
            public void abort(Throwable cause) {
            }
        };
    }

    /**
     * As {@link #begin(List)}, with {@code cuts}: ascending element offsets where the buffers' natural blocks start
     * (ParamStore's biases, stored after all weights, say). An implementation that works in buckets should not let
     * a bucket cross a cut, so that a block that becomes final late does not hold back another; the cuts must be
     * the same every step, so that results stay independent of timing. The default ignores them.
     */
    default InFlight begin(List<Tensor> buffers, long[] cuts) {
        return begin(buffers);
    }

    /** One all-reduce started by {@link #begin}: told which parts are final, then finished or aborted, once. */
    interface InFlight {

        /**
         * Elements [from, to) of replica {@code rank}'s buffer are final for this step: the work producing them has
         * been issued on that replica's backend (on a device, possibly still queued on its stream). Each element is
         * reported at most once per rank. Called by the replica threads, concurrently.
         */
        void ready(int rank, long from, long to);

        /**
         * Takes every element not yet reported as final, completes the average and waits for it. Throws when it
         * failed on any replica's device, naming the device and the cause.
         */
        void finish();

        /**
         * A replica failed (its exception is {@code cause}): stop every participant of this all-reduce without
         * waiting for the missing parts. Never blocks for long; {@link #finish} is not called afterwards. The
         * buffers' contents are then undefined.
         */
        void abort(Throwable cause);
    }

    @Override
    default void close() {
    }
}
