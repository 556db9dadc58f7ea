package org.vgg4j.cuda;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendProvider;

/**
 * Backend "cuda-emulated": {@link CudaBackend} on the emulated CUDA device (our kernels compiled by g++ and run on
 * the CPU, see {@link EmulatedDriver}). For CI and for debugging kernels without a GPU; slow by design.
 * Device {@code -Dvgg4j.cuda.device} (default 0), math {@code -Dvgg4j.cuda.math}.
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
        return new CudaBackend(NAME, EmulatedDriver.open(Integer.getInteger("vgg4j.cuda.device", 0)),
                MathMode.parse(System.getProperty("vgg4j.cuda.math", "fp32")));
    }
}
