package org.vgg4j.core.parallel;

import java.util.List;

import org.vgg4j.core.tensor.Tensor;

/**
 * The collective of synchronous data-parallel SGD: every replica hands in its one gradient buffer (ParamStore's
 * contiguous grads) and gets back the element-wise MEAN over replicas, bitwise identical in every replica, so the
 * replicas' identical SGD steps keep their parameters identical. vgg-train's {@code HostAllReduce} is the CPU implementation
 * (through host memory, in vgg-train); the CUDA module implements it for GPUs. It lives in vgg-core, not in the
 * trainer, so that vgg-cuda can implement it while depending on vgg-core only (DESIGN.md: dependencies point one
 * way). Several processes: see {@link #group()} (vgg-train's {@code TcpAllReduce}, vgg-cuda's
 * {@code NcclAllReduce}). Not here: deciding what to reduce or when (vgg-train's {@code Replicas} do that).
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

    @Override
    default void close() {
    }
}
