package org.vgg4j.cuda.check;

import org.vgg4j.cuda.CudaBackend;
import org.vgg4j.cuda.CudaBackendProvider;
import org.vgg4j.cuda.EmulatedDriver;
import org.vgg4j.cuda.JCudaDriver;
import org.vgg4j.cuda.MathMode;

/**
 * Where the GPU-check programs run: the real GPU ({@code -Dvgg4j.cuda.device}, default 0) or, with
 * {@code --emulated} on their command line, the emulated device (scripts/gpu-check.sh --emulated, in CI).
 * Is not: a fallback -- a GPU asked for and missing is an error naming why.
 */
final class Devices {
    private Devices() {
    }

    /** Whether {@code --emulated} is among the arguments. */
    static boolean emulated(String[] args) {
        return java.util.Arrays.asList(args).contains("--emulated");
    }

    /**
     * A backend for replica {@code replica}: emulated device {@code replica}, or on a GPU the one device for every
     * replica (each backend its own driver, streams and pinned staging buffers in the device's primary context).
     */
    static CudaBackend open(boolean emulated, int replica, MathMode math) {
        if (emulated) {
            String why = EmulatedDriver.unavailableReason();
            if (why != null) {
                throw new IllegalStateException("the emulated CUDA device cannot run here: " + why);
            }
            return new CudaBackend("cuda-emulated", EmulatedDriver.open(replica), math);
        }
        String why = new CudaBackendProvider().unavailableReason();
        if (why != null) {
            throw new IllegalStateException("the cuda backend cannot run here: " + why);
        }
        return new CudaBackend("cuda", JCudaDriver.open(Integer.getInteger("vgg4j.cuda.device", 0)), math);
    }

    /** The integer after {@code flag}, or {@code fallback}. */
    static int intArg(String[] args, String flag, int fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(flag)) {
                return Integer.parseInt(args[i + 1]);
            }
        }
        return fallback;
    }

    /** The string after {@code flag}, or {@code fallback}. */
    static String arg(String[] args, String flag, String fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(flag)) {
                return args[i + 1];
            }
        }
        return fallback;
    }
}
