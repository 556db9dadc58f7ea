package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.vgg4j.cuda.api.CudaException;

/**
 * Kernel argument widths: JCuda passes 4 bytes for an int and 8 for a long or pointer, the emulator 8-byte slots, so
 * an int passed where a kernel takes {@code long long} would pass every emulator test and read garbage on a GPU.
 * Every launch is therefore checked against the kernel's signature -- on the emulator the one its C++ parameter
 * types give, on a GPU the PTX's {@code .param} list -- and this test proves that the two agree for every kernel
 * the build made, and that a wrong width fails the launch.
 */
@Tag(Parity.EMULATOR_TAG)
class KernelSignatureTest {
    private static final String KERNELS = "/org/vgg4j/cuda/kernels/";

    @BeforeAll
    static void emulator() {
        Parity.assumeEmulator();
    }

    @Test
    void ptxParameterListsBecomeSignatures() {
        String ptx = """
                .visible .entry fill_f32(
                	.param .u64 fill_f32_param_0,
                	.param .u64 fill_f32_param_1,
                	.param .f32 fill_f32_param_2
                )
                { ret; }
                .visible .entry mixed(
                	.param .u32 mixed_param_0, .param .s32 mixed_param_1, .param .f64 mixed_param_2,
                	.param .align 4 .b8 mixed_param_3[12]
                )
                .visible .entry none()
                """;
        assertEquals(Map.of("fill_f32", "qqf", "mixed", "iid?", "none", ""), PtxSignatures.parse(ptx));
    }

    @Test
    void anIntWhereTheKernelTakesALongLongFailsTheLaunch() {
        try (EmulatedDriver d = EmulatedDriver.open(0)) {
            Driver.Function fill = d.function("elementwise", "fill_f32"); // (float* p, long long n, float v)
            assertEquals("qqf", fill.signature());
            long p = d.malloc(4 * 8);
            CudaException e = assertThrows(CudaException.class,
                    () -> d.launch(fill, 1, 1, 1, 32, KernelArgs.of().ptr(p).i32(8).f32(1f)));
            assertTrue(e.getMessage().contains("fill_f32") && e.getMessage().contains("argument 1 is a 4-byte int")
                    && e.getMessage().contains("takes an 8-byte integer"), e.getMessage());
            e = assertThrows(CudaException.class, () -> d.launch(fill, 1, 1, 1, 32, KernelArgs.of().ptr(p).i64(8)));
            assertTrue(e.getMessage().contains("with 2 arguments") && e.getMessage().contains("takes 3"), e.getMessage());
            d.launch(fill, 1, 1, 1, 32, KernelArgs.of().ptr(p).i64(8).f32(1f)); // the right widths run
            float[] out = new float[8];
            d.copyOut(p, out, 0, 8);
            assertEquals(1f, out[7]);
            d.free(p);
        }
    }

    /** Every kernel in the PTX the build made has, in the emulator, the same parameter widths. */
    @Test
    void theEmulatorsSignaturesEqualThePtxParameterLists() throws IOException {
        String manifest = resource("MANIFEST");
        Assumptions.assumeTrue(manifest != null, "no GPU kernels in this build (nvcc was not found): the PTX side"
                + " of this check runs where they were built; every emulated launch is still checked");
        List<String> checked = new ArrayList<>();
        try (EmulatedDriver d = EmulatedDriver.open(0)) {
            for (String line : manifest.split("\n")) {
                if (!line.endsWith(".ptx")) {
                    continue;
                }
                String module = line.substring(0, line.length() - 4);
                Map<String, String> ptx = PtxSignatures.parse(resource(line));
                assertFalse(ptx.isEmpty(), line + " declares no kernels");
                for (Map.Entry<String, String> k : ptx.entrySet()) {
                    assertFalse(k.getValue().contains("?"), k.getKey() + " takes a parameter of a type KernelArgs"
                            + " cannot pass: " + k.getValue());
                    assertEquals(k.getValue(), d.function(module, k.getKey()).signature(),
                            "emulator signature of " + module + "/" + k.getKey() + " vs its PTX");
                    checked.add(k.getKey());
                }
            }
        }
        assertTrue(checked.containsAll(List.of("conv_fwd_f32", "gemm_bf16", "fill_f32", "ring_reduce_wire",
                "bn_bwd", "lrn_fwd")), "every module's kernels were compared: " + checked);
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = KernelSignatureTest.class.getResourceAsStream(KERNELS + name)) {
            return in == null ? null : new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
    }
}
