package org.vgg4j.cuda;

import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.AllReduceProvider;
import org.vgg4j.core.parallel.GradPrecision;

/**
 * The {@link java.util.ServiceLoader} entry through which vgg-train finds {@link RingAllReduce} for replicas on the
 * "cuda" and "cuda-emulated" backends, without depending on this module. Bucket size, staging and overlap come from
 * {@link RingAllReduce.Options#fromSystemProperties}.
 */
public final class RingAllReduceProvider implements AllReduceProvider {

    @Override
    public boolean supports(String backendName) {
        return CudaBackendProvider.NAME.equals(backendName) || EmulatedCudaBackendProvider.NAME.equals(backendName);
    }

    @Override
    public AllReduce create(GradPrecision precision) {
        return new RingAllReduce(RingAllReduce.Options.fromSystemProperties(precision));
    }
}
