package org.vgg4j.core.backend.cpu;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendProvider;
import org.vgg4j.core.backend.CpuPrecision;

/**
 * {@link java.util.ServiceLoader} entry of the {@code cpu} backend (ND4J + OpenBLAS, oneDNN convolutions where
 * the oneDNN natives are present). It picks the native variant before ND4J loads ({@link NativeVariant}) and
 * reports why the natives cannot load instead of falling back silently to another backend. The backend's settings
 * come from {@link CpuBackend.Options#fromSystemProperties()}.
 */
public final class CpuBackendProvider implements BackendProvider {
    private static String reason;
    private static String variant;
    private static boolean probed;

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String unavailableReason() {
        return probe();
    }

    @Override
    public Backend create() {
        String why = probe();
        if (why != null) {
            throw new IllegalStateException("backend 'cpu' cannot run here: " + why);
        }
        return new CpuBackend(CpuBackend.Options.fromSystemProperties());
    }

    /**
     * A backend with the settings of {@link CpuBackend.Options#fromSystemProperties()} but operand precision
     * {@code precision} (what {@link org.vgg4j.core.backend.Backends#cpu(CpuPrecision)} calls); BF16 where it
     * cannot run fails with the reason.
     */
    public Backend create(CpuPrecision precision) {
        OpenMpWaitPolicy.valueToSet(System.getProperty(OpenMpWaitPolicy.PROPERTY), null); // a bad value fails every time
        String why = probe();
        if (why != null) {
            throw new IllegalStateException("backend 'cpu' cannot run here: " + why);
        }
        return new CpuBackend(CpuBackend.Options.fromSystemProperties().withPrecision(precision));
    }

    /** Whether ND4J's loaded natives are the -onednn variant (its convolution ops then run in oneDNN). */
    static boolean nd4jOpsAreOneDnn() {
        probe();
        synchronized (CpuBackendProvider.class) {
            return variant != null && variant.contains("onednn");
        }
    }

    /** Whether {@link #probe()} has run in this process (ND4J's, OpenBLAS's and OpenMP's natives loaded or tried). */
    static synchronized boolean loaded() {
        return probed;
    }

    /** Loads ND4J's and OpenBLAS's natives once; null when they work, else the reason. */
    static synchronized String probe() {
        if (!probed) {
            probed = true;
            variant = NativeVariant.select();
            NativeVariant.liftPhysicalBytesLimit();
            NativeVariant.quietNd4jInitialization();
            GlibcMalloc.tune();
            OpenMpWaitPolicy.apply();
            try {
                org.nd4j.linalg.factory.Nd4j.create(org.nd4j.linalg.api.buffer.DataType.FLOAT, 1).close();
                org.bytedeco.javacpp.Loader.load(org.bytedeco.openblas.global.openblas.class);
                reason = null;
            } catch (Throwable t) {
                reason = "ND4J/OpenBLAS natives failed to load (platform " + NativeVariant.platform()
                        + ", variant '" + variant + "'): " + t;
            }
        }
        return reason;
    }
}
