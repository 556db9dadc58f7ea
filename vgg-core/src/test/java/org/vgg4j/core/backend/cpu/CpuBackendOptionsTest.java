package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.CpuPrecision;

/** {@link CpuBackend.Options}: the defaults, the one reader of the -Dvgg4j.cpu.* properties, and its errors. */
final class CpuBackendOptionsTest {

    @Test
    void defaultsAreTheDocumentedOnes() {
        CpuBackend.Options d = CpuBackend.Options.defaults();
        assertEquals(ConvEngine.Routing.AUTO, d.routing());
        assertEquals(1L << 23, d.sliceElements());
        assertEquals(GemmConv.COL_ELEMENTS, d.colElements());
        assertEquals(0, d.unfusedMaxPixels());
        assertEquals("auto", d.dnnlBwdWeights());
        assertEquals(CpuPrecision.FP32, d.precision());
    }

    @Test
    void propertiesOverrideTheDefaultsAndBadValuesAreNamed() {
        String[] keys = {CpuBackend.Options.CONV, CpuBackend.Options.SLICE_ELEMENTS,
            CpuBackend.Options.UNFUSED_MAX_PIXELS, CpuBackend.Options.DNNL_BWD_WEIGHTS, CpuBackend.Options.PRECISION};
        String[] saved = new String[keys.length];
        for (int i = 0; i < keys.length; i++) {
            saved[i] = System.getProperty(keys[i]);
        }
        try {
            System.setProperty(CpuBackend.Options.CONV, "gemm");
            System.setProperty(CpuBackend.Options.SLICE_ELEMENTS, "1000");
            System.setProperty(CpuBackend.Options.UNFUSED_MAX_PIXELS, "196");
            System.setProperty(CpuBackend.Options.DNNL_BWD_WEIGHTS, "direct");
            System.setProperty(CpuBackend.Options.PRECISION, "bf16");
            assertEquals(new CpuBackend.Options(ConvEngine.Routing.GEMM, 1000, GemmConv.COL_ELEMENTS, 196, "direct", "auto",
                    CpuPrecision.BF16), CpuBackend.Options.fromSystemProperties());
            System.setProperty(CpuBackend.Options.PRECISION, "AUTO");
            assertEquals(CpuPrecision.AUTO, CpuBackend.Options.fromSystemProperties().precision());

            System.setProperty(CpuBackend.Options.PRECISION, "fp16");
            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                    CpuBackend.Options::fromSystemProperties);
            assertEquals("vgg4j.cpu.precision=fp16: expected fp32, bf16 or auto", bad.getMessage());
            System.setProperty(CpuBackend.Options.PRECISION, "fp32");

            System.setProperty(CpuBackend.Options.SLICE_ELEMENTS, "8M");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    CpuBackend.Options::fromSystemProperties);
            assertTrue(e.getMessage().contains("vgg4j.cpu.convSliceElements=8M"), e.getMessage());

            System.setProperty(CpuBackend.Options.SLICE_ELEMENTS, "1000");
            System.setProperty(CpuBackend.Options.CONV, "cudnn");
            e = assertThrows(IllegalArgumentException.class, CpuBackend.Options::fromSystemProperties);
            assertTrue(e.getMessage().contains("vgg4j.cpu.conv=cudnn"), e.getMessage());
        } finally {
            for (int i = 0; i < keys.length; i++) {
                if (saved[i] == null) {
                    System.clearProperty(keys[i]);
                } else {
                    System.setProperty(keys[i], saved[i]);
                }
            }
        }
    }

    @Test
    void invalidSettingsAreRejectedWithTheirValue() {
        CpuBackend.Options d = CpuBackend.Options.defaults();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> d.withDnnlBwdWeights("fast"));
        assertTrue(e.getMessage().contains("vgg4j.cpu.dnnlBwdWeights=fast"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> d.withSliceElements(0));
        assertTrue(e.getMessage().contains("sliceElements 0"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> d.withUnfusedMaxPixels(-1));
        assertThrows(IllegalArgumentException.class, () -> d.withRouting(null));
        assertThrows(IllegalArgumentException.class, () -> d.withPrecision(null));
    }
}
