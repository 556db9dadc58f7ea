package org.vgg4j.cuda.nccl;

import static org.bytedeco.cuda.global.nccl.NCCL_UNIQUE_ID_BYTES;
import static org.bytedeco.cuda.global.nccl.ncclAllReduce;
import static org.bytedeco.cuda.global.nccl.ncclCommDestroy;
import static org.bytedeco.cuda.global.nccl.ncclCommInitRank;
import static org.bytedeco.cuda.global.nccl.ncclFloat32;
import static org.bytedeco.cuda.global.nccl.ncclGetUniqueId;
import static org.bytedeco.cuda.global.nccl.ncclGroupEnd;
import static org.bytedeco.cuda.global.nccl.ncclGroupStart;
import static org.bytedeco.cuda.global.nccl.ncclSuccess;
import static org.bytedeco.cuda.global.nccl.ncclSum;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.cuda.nccl.ncclUniqueId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.ProcessGroup;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.CudaBackend;
import org.vgg4j.cuda.JCudaDriver;

/**
 * {@link AllReduce} across processes and machines through NCCL: every local replica (one GPU each) is one NCCL rank
 * of R = processes x local replicas; {@code average} queues ncclAllReduce(sum, in place) on each backend's own
 * stream (so it runs after the backward kernels queued there and before the SGD step queued after it) and then
 * scales by 1/R on the same stream.
 *
 * <p>Set-up, at the first {@code average} (all ranks make it together): rank 0 calls ncclGetUniqueId; the
 * 128-byte id reaches every process over the {@link ProcessGroup} (vgg-train's TCP rendezvous — vgg-cuda does not
 * depend on vgg-train, so the group is handed in); each process creates its communicators with ncclCommInitRank
 * inside ncclGroupStart/End, after cudaSetDevice(its device). The CUDA runtime inside NCCL works in the device's
 * PRIMARY context, the one {@link JCudaDriver} retains, so device pointers and the stream handle are valid for it.
 *
 * <p>Exactness: NCCL's ring and tree algorithms compute each element's sum once and distribute that value, so every
 * rank receives the same bits; the scale by 1/R is the same kernel on the same bits. The summation order is NCCL's
 * (fixed for a fixed topology and NCCL version), not rank order: results agree with one process "to rounding".
 *
 * <p>Not tested here (no GPU in CI): the NCCL calls themselves. What is tested: argument checks and the clear
 * "NCCL unavailable: ..." error. Legend: T elements per buffer, L local replicas, P processes, R = P*L.
 */
public final class NcclAllReduce implements AllReduce {
    private static final Logger LOG = LoggerFactory.getLogger(NcclAllReduce.class);

    private final ProcessGroup group;
    private ncclComm[] comms; // (L) one communicator per local GPU, created at the first average
    private int[] devices;    // (L) their device ordinals

    public NcclAllReduce(ProcessGroup group) {
        this.group = group;
    }

    @Override
    public ProcessGroup group() {
        return group;
    }

    @Override
    public synchronized void average(List<Tensor> buffers) {
        List<CudaBackend> backends = check(buffers);
        Nccl.require();
        if (comms == null) {
            connect(backends);
        } else if (backends.size() != comms.length) {
            throw new IllegalArgumentException("NCCL all-reduce set up for " + comms.length + " local buffers, now given "
                    + backends.size());
        }
        int world = comms.length * group.size();
        long count = buffers.get(0).size();
        nccl(ncclGroupStart(), "ncclGroupStart");
        for (int l = 0; l < comms.length; l++) {
            CudaBackend b = backends.get(l);
            JCudaDriver d = (JCudaDriver) b.driver();
            long ptr = b.devicePointer(buffers.get(l));
            nccl(ncclAllReduce(new Nccl.Raw(ptr), new Nccl.Raw(ptr), count, ncclFloat32, ncclSum, comms[l],
                    new CUstream_st(new Nccl.Raw(d.streamHandle()))), "ncclAllReduce(" + count + " floats, device "
                    + devices[l] + ")");
        }
        nccl(ncclGroupEnd(), "ncclGroupEnd");
        if (world > 1) {
            for (int l = 0; l < comms.length; l++) {
                backends.get(l).scale(buffers.get(l), 1.0 / world); // queued after the all-reduce on the same stream
            }
        }
    }

    /** Argument checks, before any native code: one live FLOAT32 tensor per distinct real GPU, equal sizes. */
    static List<CudaBackend> check(List<Tensor> buffers) {
        if (buffers == null || buffers.isEmpty()) {
            throw new IllegalArgumentException("NCCL all-reduce of no buffers: each process hands in one per local GPU");
        }
        List<CudaBackend> out = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        long size = buffers.get(0).size();
        for (int i = 0; i < buffers.size(); i++) {
            Tensor t = buffers.get(i);
            if (!(t.backend() instanceof CudaBackend b)) {
                throw new IllegalArgumentException("NCCL all-reduce: buffer " + i + " is a tensor of backend '"
                        + t.backend().name() + "'; NCCL needs tensors of the cuda backend (use the TCP collective for"
                        + " other backends: vgg train --collective tcp)");
            }
            if (!(b.driver() instanceof JCudaDriver d)) {
                throw new IllegalArgumentException("NCCL all-reduce: buffer " + i + " is on " + b.name() + " ("
                        + b.driver().describe() + "); NCCL needs a real GPU (use --collective tcp on the emulated device)");
            }
            if (t.dtype() != DType.FLOAT32) {
                throw new IllegalArgumentException("NCCL all-reduce: buffer " + i + " is " + t.dtype() + "; expected FLOAT32");
            }
            if (t.size() != size) {
                throw new IllegalArgumentException("NCCL all-reduce: buffer " + i + " has " + t.size()
                        + " elements; buffer 0 has " + size);
            }
            if (!seen.add(d.deviceOrdinal())) {
                throw new IllegalArgumentException("NCCL all-reduce: buffers on device " + d.deviceOrdinal() + " twice;"
                        + " NCCL needs one rank per GPU");
            }
            out.add(b);
        }
        return out;
    }

    private void connect(List<CudaBackend> backends) {
        int local = backends.size();
        int world = local * group.size();
        byte[] id = null;
        if (group.rank() == 0) {
            ncclUniqueId uid = new ncclUniqueId();
            nccl(ncclGetUniqueId(uid), "ncclGetUniqueId");
            id = new byte[NCCL_UNIQUE_ID_BYTES];
            uid.internal().get(id);
        }
        id = group.broadcast(id);
        if (id == null || id.length != NCCL_UNIQUE_ID_BYTES) {
            throw new IllegalStateException("NCCL unique id from rank 0 has " + (id == null ? "no" : id.length)
                    + " bytes; expected " + NCCL_UNIQUE_ID_BYTES);
        }
        ncclUniqueId uid = new ncclUniqueId();
        uid.internal().put(id);
        comms = new ncclComm[local];
        devices = new int[local];
        nccl(ncclGroupStart(), "ncclGroupStart");
        for (int l = 0; l < local; l++) {
            devices[l] = ((JCudaDriver) backends.get(l).driver()).deviceOrdinal();
            // the runtime's current device: ncclCommInitRank binds the communicator to it (its primary context)
            int r = org.bytedeco.cuda.global.cudart.cudaSetDevice(devices[l]);
            if (r != 0) {
                throw new IllegalStateException("cudaSetDevice(" + devices[l] + ") failed with CUDA error " + r);
            }
            comms[l] = new ncclComm();
            int rank = group.rank() * local + l;
            nccl(ncclCommInitRank(comms[l], world, uid, rank), "ncclCommInitRank(rank " + rank + " of " + world
                    + ", device " + devices[l] + ")");
        }
        nccl(ncclGroupEnd(), "ncclGroupEnd (communicator set-up)");
        LOG.info("NCCL {} communicators: process {} of {}, {} local GPU(s), {} ranks", Nccl.version(), group.rank(),
                group.size(), local, world);
    }

    private static void nccl(int result, String what) {
        if (result != ncclSuccess) {
            throw new IllegalStateException("NCCL " + what + " failed: " + Nccl.errorString(result));
        }
    }

    @Override
    public synchronized void close() {
        if (comms != null) {
            for (ncclComm c : comms) {
                if (c != null) {
                    ncclCommDestroy(c);
                }
            }
            comms = null;
        }
    }
}
