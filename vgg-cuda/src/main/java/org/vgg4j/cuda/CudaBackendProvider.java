package org.vgg4j.cuda;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendProvider;
import org.vgg4j.cuda.api.CudaException;

/**
 * Backend "cuda": {@link CudaBackend} on a real GPU through JCuda (device {@code -Dvgg4j.cuda.device}, default 0,
 * or device r for data-parallel replica r through {@link #create(int)};
 * math {@code -Dvgg4j.cuda.math=fp32|tf32|bf16}; BF16's tensor-core convolutions
 * {@code -Dvgg4j.cuda.tensorcores=auto|off}).
 *
 * <p>{@link #unavailableReason()} says precisely why it cannot run: JCuda missing from the class path, no
 * libcuda.so.1 (no NVIDIA driver), no GPU, or kernels not built (vgg-cuda compiled without nvcc). Nothing of JCuda
 * is loaded before that check, and its failures are caught, so this provider is harmless on machines without a GPU.
 */
public final class CudaBackendProvider implements BackendProvider {
    public static final String NAME = "cuda";

    @Override
    public String name() {
        return NAME;
    }

    /** The probe's answer, computed once per JVM: a failed native load cannot be retried anyway. */
    private static String reason;
    private static boolean probed;

    @Override
    public String unavailableReason() {
        synchronized (CudaBackendProvider.class) {
            if (!probed) {
                reason = probe();
                probed = true;
            }
            return reason;
        }
    }

    private static String probe() {
        if (CudaBackendProvider.class.getResource("/org/vgg4j/cuda/kernels/MANIFEST") == null) {
            return "its GPU kernels were not built (vgg-cuda was compiled where nvcc was not on the PATH)";
        }
        try {
            // presence only: initialising JCudaDriver loads its natives, which is done below under a catch
            Class.forName("jcuda.driver.JCudaDriver", false, CudaBackendProvider.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            return "JCuda (org.jcuda:jcuda) is not on the class path";
        }
        try {
            int n = JCudaDriver.deviceCount();
            int want = Integer.getInteger("vgg4j.cuda.device", 0);
            if (n == 0) {
                return "no CUDA device visible";
            }
            if (want >= n) {
                return "device " + want + " requested (-Dvgg4j.cuda.device) but only " + n + " visible";
            }
            return null;
        } catch (LinkageError e) {
            String m = String.valueOf(e.getMessage());
            if (m.contains("libcuda.so")) {
                return "the NVIDIA driver library libcuda.so.1 cannot be loaded (no NVIDIA driver on this machine)";
            }
            return "JCuda's native library cannot be loaded: " + m.lines().findFirst().orElse(m).trim()
                    + (m.contains("nested") ? " (see JCuda's message for the attempts it made)" : "");
        } catch (CudaException e) {
            return e.getMessage();
        }
    }

    @Override
    public Backend create() {
        return create(Integer.getInteger("vgg4j.cuda.device", 0));
    }

    /** Visible GPUs (CUDA_VISIBLE_DEVICES applies). */
    @Override
    public int deviceCount() {
        return JCudaDriver.deviceCount();
    }

    /** A backend on GPU {@code device}: data-parallel replica r opens device r. */
    @Override
    public Backend create(int device) {
        JCudaDriver d = JCudaDriver.open(device);
        return new CudaBackend(NAME, d, MathMode.parse(System.getProperty("vgg4j.cuda.math", "fp32")));
    }
}
