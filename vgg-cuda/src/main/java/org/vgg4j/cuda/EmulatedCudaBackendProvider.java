package org.vgg4j.cuda;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendProvider;

/**
 * Backend "cuda-emulated": {@link CudaBackend} on the emulated CUDA device (our kernels compiled by g++ and run on
 * the CPU, see {@link EmulatedDriver}). For CI and for debugging kernels without a GPU; slow by design.
 * Device {@code -Dvgg4j.cuda.device} (default 0) for {@link #create()}; data-parallel replicas open device r for rank
 * r through {@link #create(int)}, out of {@value EmulatedDriver#DEVICES_PROPERTY} devices (default 2). Math
 * {@code -Dvgg4j.cuda.math}.
 */
public final class EmulatedCudaBackendProvider implements BackendProvider {
    public static final String NAME = "cuda-emulated";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public String unavailableReason() {
        return EmulatedDriver.unavailableReason();
    }

    @Override
    public Backend create() {
        return create(Integer.getInteger("vgg4j.cuda.device", 0));
    }

    @Override
    public int deviceCount() {
        return EmulatedDriver.deviceCount();
    }

    @Override
    public Backend create(int device) {
        return new CudaBackend(NAME, EmulatedDriver.open(device),
                MathMode.parse(System.getProperty("vgg4j.cuda.math", "fp32")));
    }
}
