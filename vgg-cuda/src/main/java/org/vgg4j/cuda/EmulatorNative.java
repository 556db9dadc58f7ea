package org.vgg4j.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * JNI entry points of the emulated device (libvggcudaemu.so, built from src/main/cuda by build-kernels.sh), and
 * the loading of that library.
 *
 * <p>The library comes from the jar ({@code /org/vgg4j/cuda/native/libvggcudaemu.so}, extracted to a temporary
 * file) unless the system property {@value #LIBRARY_PROPERTY} names another build of it (the test suite uses the
 * build that also holds its deliberately broken kernels). Is not: public; {@link EmulatedDriver} is the API.
 */
final class EmulatorNative {
    static final String LIBRARY_PROPERTY = "vgg4j.cuda.emulator.library";
    private static final String RESOURCE = "/org/vgg4j/cuda/native/libvggcudaemu.so";

    private static final String UNAVAILABLE = load();

    private EmulatorNative() {
    }

    /** Null when the library is loaded, else why not. */
    static String unavailableReason() {
        return UNAVAILABLE;
    }

    private static String load() {
        String override = System.getProperty(LIBRARY_PROPERTY);
        try {
            if (override != null && !override.isBlank()) {
                if (!Files.isRegularFile(Path.of(override))) {
                    return "emulator library " + override + " (from -D" + LIBRARY_PROPERTY + ") does not exist"
                            + " (it is built only where g++ exists, on Linux)";
                }
                System.load(Path.of(override).toAbsolutePath().toString());
                return null;
            }
            try (InputStream in = EmulatorNative.class.getResourceAsStream(RESOURCE)) {
                if (in == null) {
                    return "the emulated device was not built into this jar (" + RESOURCE
                            + " is missing: vgg-cuda builds it only on Linux where g++ exists)";
                }
                Path tmp = Files.createTempFile("vggcudaemu", ".so");
                tmp.toFile().deleteOnExit();
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                System.load(tmp.toString());
                return null;
            }
        } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
            return "cannot load the emulated device library: " + e;
        }
    }

    static native long malloc(long bytes);

    static native void free(long ptr);

    /** Null, or a description of the first allocation whose red zone was overwritten (then repaired). */
    static native String checkRedZones();

    static native void copyInFloat(float[] src, int offset, long dst, int n);

    static native void copyInInt(int[] src, int offset, long dst, int n);

    static native void copyOutFloat(long src, float[] dst, int offset, int n);

    static native void copyDeviceToDevice(long dst, long src, long bytes);

    /** Handle of the kernel registered under {@code name}, or 0. */
    static native long kernel(String name);

    /** The kernel's parameter widths, one letter each ({@link KernelArgs#signature}). */
    static native String signature(long kernel);

    /** Runs the grid; null on success, else the emulator's error. */
    static native String launch(long kernel, int gx, int gy, int gz, int bx, int by, int bz, long[] slots);
}
