package org.vgg4j.core.backend.cpu;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.BackendProvider;

/**
 * {@link java.util.ServiceLoader} entry of the {@code cpu} backend (ND4J + OpenBLAS, oneDNN convolutions where
 * the oneDNN natives are present). It picks the native variant before ND4J loads ({@link NativeVariant}) and
 * reports why the natives cannot load instead of falling back silently to another backend.
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
        boolean nd4jOnednn = variant != null && variant.contains("onednn");
        CpuBackend.ConvRouting routing = routing();
        // forced nd4j keeps ND4J's ops even on the plain natives (their im2col), as before
        return new CpuBackend(CpuBackend.SLICE_ELEMENTS, routing, nd4jOnednn || routing == CpuBackend.ConvRouting.ND4J,
                GemmConv.COL_ELEMENTS,
                CpuBackend.UNFUSED_MAX_PIXELS);
    }

    /**
     * -Dvgg4j.cpu.conv=auto|dnnl|nd4j|gemm (default auto): which engine each convolution takes, the table in
     * {@link CpuBackend.ConvRouting}. auto: oneDNN called directly (org.bytedeco:dnnl) for float32 where its natives
     * load, except 2x2 output images; ND4J's ops (-onednn natives) or im2col + OpenBLAS otherwise — the fastest
     * measured in each case (docs/benchmarks.md). dnnl, nd4j and gemm force one engine (nd4j keeps GemmConv for
     * VGG's first layer and images of 8x8 and below, as before).
     */
    static CpuBackend.ConvRouting routing() {
        String mode = System.getProperty("vgg4j.cpu.conv", "auto");
        return switch (mode) {
            case "auto" -> CpuBackend.ConvRouting.AUTO;
            case "dnnl" -> CpuBackend.ConvRouting.DNNL;
            case "nd4j" -> CpuBackend.ConvRouting.ND4J;
            case "gemm" -> CpuBackend.ConvRouting.GEMM;
            default -> throw new IllegalArgumentException("vgg4j.cpu.conv=" + mode
                    + ": expected auto, dnnl, nd4j or gemm");
        };
    }

    /** Loads ND4J's and OpenBLAS's natives once; null when they work, else the reason. */
    static synchronized String probe() {
        if (!probed) {
            probed = true;
            variant = NativeVariant.select();
            NativeVariant.liftPhysicalBytesLimit();
            GlibcMalloc.tune();
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
