package org.vgg4j.cuda.nccl;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;

/**
 * Whether NCCL can run here, and the small pieces of JavaCPP glue {@link NcclAllReduce} needs. NCCL comes through
 * JavaCPP's CUDA presets ({@code org.bytedeco:cuda:11.6-8.3-1.5.7}, built on JavaCPP 1.5.7 like ND4J): the Java
 * classes are a dependency of vgg-cuda; the JNI wrappers ({@code -Pnccl}) and the libraries they link against
 * (libcuda.so.1 from the driver, libcudart.so.11.0, libnccl.so.2 — installed, or {@code -Pnccl-redist}) are not
 * always there. {@link #unavailableReason()} says which piece is missing, starting with "NCCL unavailable: ";
 * nothing falls back silently.
 *
 * <p>Is not: loaded unless asked — the probe touches JavaCPP's natives only inside a catch, so machines without
 * them never fail at class loading.
 */
public final class Nccl {
    private static final String PREFIX = "NCCL unavailable: ";
    private static String reason;
    private static boolean probed;
    private static int version;

    private Nccl() {
    }

    /** Null when NCCL's natives load and report a version; else why not, starting with "NCCL unavailable: ". */
    public static synchronized String unavailableReason() {
        if (!probed) {
            reason = probe();
            probed = true;
        }
        return reason;
    }

    /** NCCL's version code (e.g. 21104 for 2.11.4) once available; 0 before. */
    public static synchronized int version() {
        return version;
    }

    /** Throws {@link IllegalStateException} with {@link #unavailableReason()} when NCCL cannot run here. */
    static void require() {
        String why = unavailableReason();
        if (why != null) {
            throw new IllegalStateException(why);
        }
    }

    private static String probe() {
        ClassLoader cl = Nccl.class.getClassLoader();
        try {
            Class.forName("org.bytedeco.javacpp.Loader", false, cl);
            Class.forName("org.bytedeco.cuda.global.nccl", false, cl);
        } catch (ClassNotFoundException e) {
            // vgg-cuda depends on these classes; only a hand-made class path (a bundle) can lack them
            return PREFIX + "JavaCPP's classes (org.bytedeco:javacpp and org.bytedeco:cuda) are not on the class path;"
                    + " they come with vgg-cuda's dependencies, and -Pnccl adds their natives";
        }
        try {
            Loader.load(org.bytedeco.cuda.global.nccl.class);
            int[] v = new int[1];
            int r = org.bytedeco.cuda.global.nccl.ncclGetVersion(v);
            if (r != org.bytedeco.cuda.global.nccl.ncclSuccess) {
                return PREFIX + "ncclGetVersion failed with code " + r;
            }
            version = v[0];
            return null;
        } catch (LinkageError e) { // UnsatisfiedLinkError, NoClassDefFoundError, ExceptionInInitializerError
            return PREFIX + explain(e);
        }
    }

    /** Turns JavaCPP's loading error into the missing piece and what to do about it. */
    static String explain(Throwable e) {
        StringBuilder all = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            all.append(t.getMessage()).append('\n');
        }
        String m = all.toString();
        String platform = platform();
        // JavaCPP reports "no jnicudart in java.library.path" on top and the real cause below it: look for the
        // libraries the JNI wrapper links against first.
        if (m.contains("libcuda.so")) {
            return "the NVIDIA driver library libcuda.so.1 cannot be loaded (no NVIDIA driver on this machine)";
        }
        if (m.contains("libcudart.so")) {
            return "libcudart.so.11.0 (the CUDA 11 runtime JavaCPP's presets 1.5.7 were built against) cannot be loaded;"
                    + " install a CUDA 11.x runtime or add the natives of -Pnccl-redist";
        }
        if (m.contains("libnccl.so")) {
            return "libnccl.so.2 cannot be loaded; install NCCL 2 (for CUDA 11) or add the natives of -Pnccl-redist";
        }
        if (m.contains("no jnicudart") || m.contains("no jninccl")) {
            return "JavaCPP's CUDA natives (org.bytedeco:cuda:11.6-8.3-1.5.7:" + platform + ") are not on the class path;"
                    + " build with -Pnccl (docs/distributed.md)";
        }
        String first = m.lines().filter(l -> !l.isBlank() && !l.equals("null")).findFirst().orElse(e.toString()).trim();
        return "JavaCPP could not load NCCL's natives on " + platform + ": " + first;
    }

    /** JavaCPP's platform name, or the JVM's own when JavaCPP's classes are missing too. */
    private static String platform() {
        try {
            return Loader.getPlatform();
        } catch (LinkageError e) {
            return System.getProperty("os.name") + "-" + System.getProperty("os.arch");
        }
    }

    /** A JavaCPP pointer at a raw address (device memory, a stream handle); owns nothing. */
    static final class Raw extends Pointer {
        Raw(long address) {
            super((Pointer) null);
            this.address = address;
        }
    }

    /** NCCL's message for a result code. */
    static String errorString(int result) {
        BytePointer p = org.bytedeco.cuda.global.nccl.ncclGetErrorString(result);
        return p == null ? "code " + result : p.getString() + " (code " + result + ")";
    }
}
