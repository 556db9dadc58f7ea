package org.vgg4j.cuda;

/**
 * Operand precision of the GEMM-shaped kernels (convolutions and the FC layers' gemm); accumulation is FP32 in all
 * three. Selected per backend ({@code -Dvgg4j.cuda.math=fp32|tf32|bf16}, default fp32).
 *
 * <p>TF32 and BF16 run on tensor cores on a GPU (sm_80+); on the emulated device the v1 kernels run their twin
 * path (operands rounded identically, products by FP32 FMA), see gemm_tile.cuh. In BF16 the convolution passes
 * and the FC layers' GEMMs whose shape qualifies run the NHWC tensor-core kernels of conv_tc.cu instead, on both
 * devices (the emulator implements their mma.sync), see {@link CudaBackend}.
 */
public enum MathMode {
    /** Exact FP32 products (the default, what parity tests compare at tight tolerance). */
    FP32("f32"),
    /** Operands rounded to TF32 (10-bit mantissa). */
    TF32("tf32"),
    /** Operands rounded to BF16 (7-bit mantissa). */
    BF16("bf16");

    /** Suffix of the kernel names: conv_fwd_f32, gemm_tf32, ... */
    final String suffix;

    MathMode(String suffix) {
        this.suffix = suffix;
    }

    public static MathMode parse(String s) {
        for (MathMode m : values()) {
            if (m.name().equalsIgnoreCase(s) || m.suffix.equalsIgnoreCase(s)) {
                return m;
            }
        }
        throw new IllegalArgumentException("math mode '" + s + "' is not one of fp32, tf32, bf16");
    }
}
