package org.vgg4j.cuda.nccl;

import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.CollectiveProvider;
import org.vgg4j.core.parallel.ProcessGroup;

/** Registers {@link NcclAllReduce} as the multi-process collective of the {@code cuda} backend (ServiceLoader). */
public final class NcclCollectiveProvider implements CollectiveProvider {
    @Override
    public String name() {
        return "nccl";
    }

    @Override
    public boolean handles(String backendName) {
        return "cuda".equals(backendName); // cuda-emulated has no GPU for NCCL: the TCP collective serves it
    }

    @Override
    public String unavailableReason() {
        return Nccl.unavailableReason();
    }

    @Override
    public AllReduce create(ProcessGroup group) {
        return new NcclAllReduce(group);
    }
}
