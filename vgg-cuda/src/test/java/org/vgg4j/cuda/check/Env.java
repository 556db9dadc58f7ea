package org.vgg4j.cuda.check;

import java.util.List;

import org.vgg4j.cuda.CudaBackend;
import org.vgg4j.cuda.CudaBackendProvider;
import org.vgg4j.cuda.JCudaDriver;
import org.vgg4j.cuda.MathMode;

/**
 * Stage a of scripts/gpu-check.sh: that JCuda's native library loads, the driver's CUDA version, the device, and
 * which kernel image (cubin for which architecture, or PTX) each of our modules was loaded from.
 * {@code --emulated}: the emulated device instead (its kernels are the emulator library's).
 */
public final class Env {
    /** One kernel per module: loading it loads the module. */
    private static final List<String[]> MODULES = List.of(new String[] {"conv", "conv_fwd_f32"},
            new String[] {"gemm", "gemm_f32"}, new String[] {"elementwise", "fill_f32"},
            new String[] {"pool_lrn", "maxpool_fwd"}, new String[] {"reduce", "softmax_rows"},
            new String[] {"collective", "ring_reduce_f32"});

    private Env() {
    }

    public static void main(String[] args) {
        boolean emulated = Devices.emulated(args);
        System.out.println("java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name")
                + "), " + Runtime.getRuntime().availableProcessors() + " cores, max heap "
                + (Runtime.getRuntime().maxMemory() >> 20) + " MiB");
        if (!emulated) {
            String why = new CudaBackendProvider().unavailableReason();
            if (why != null) {
                System.out.println("the cuda backend cannot run here: " + why);
                System.exit(1);
            }
            System.out.println("JCuda native library loaded; driver supports CUDA " + JCudaDriver.driverVersion()
                    + "; devices: " + JCudaDriver.deviceCount());
        }
        try (CudaBackend be = Devices.open(emulated, 0, MathMode.FP32)) {
            System.out.println("device: " + be.describe());
            for (String[] m : MODULES) {
                be.driver().function(m[0], m[1]);
            }
            if (be.driver() instanceof JCudaDriver j) {
                j.loadedImages().forEach((module, image) -> System.out.println("module " + module + ": " + image));
            } else {
                System.out.println("modules: the emulator library (every .cu compiled by g++)");
            }
        }
        System.out.println("ENV OK");
    }
}
