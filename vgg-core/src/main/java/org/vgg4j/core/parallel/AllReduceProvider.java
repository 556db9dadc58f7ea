package org.vgg4j.core.parallel;

import java.util.Optional;
import java.util.ServiceLoader;

/**
 * A {@link ServiceLoader} entry offering an {@link AllReduce} made for the replicas of some backends: vgg-cuda's
 * ring all-reduce between CUDA devices, say. This is how vgg-train finds a device all-reduce without depending on
 * the module that implements it (dependencies point one way). Not here: choosing between processes
 * and devices (the trainer's command line does that).
 */
public interface AllReduceProvider {

    /** Whether {@link #create} makes an all-reduce for replicas on backends named {@code backendName}. */
    boolean supports(String backendName);

    /** A new all-reduce sending gradients in {@code precision}. */
    AllReduce create(GradPrecision precision);

    /** The all-reduce of the first provider on the class path that supports {@code backendName}, if any. */
    static Optional<AllReduce> find(String backendName, GradPrecision precision) {
        for (AllReduceProvider p : ServiceLoader.load(AllReduceProvider.class)) {
            if (p.supports(backendName)) {
                return Optional.of(p.create(precision));
            }
        }
        return Optional.empty();
    }
}
