package org.vgg4j.core.backend;

import java.util.Locale;

/**
 * Operand precision of the {@code cpu} backend's float32 convolutions ({@code -Dvgg4j.cpu.precision=fp32|bf16|auto},
 * or {@link Backends#cpu(CpuPrecision)}).
 *
 * <p>BF16: the three passes of every float32 convolution (forward, backward-data, backward-weights) run in oneDNN
 * with x, w and dy rounded to bfloat16 (round to nearest even, in the reorders into oneDNN's blocked layouts) and
 * float32 accumulation; y, dx, dw and db are float32. The float32 GEMMs (the FC layers' three) likewise: A and B
 * rounded to bf16, C float32, through oneDNN's matmul, where M, N and K are all at least 32; smaller GEMMs
 * (GlobalAvgPool's averaging, an FC layer at a batch below 32, a layer of fewer than 32 outputs) are bound by reading
 * their operands, not by arithmetic, and stay float32 with unrounded operands. What stays float32: the parameters
 * themselves (master weights), the SGD update, every memory-bound op (ReLU, pooling, LRN, batch norm, softmax, bias) and all float64 work.
 * Needs the AVX512-BF16 instructions (the {@code avx512_bf16} flag of /proc/cpuinfo, and oneDNN's effective ISA
 * avx512_core_bf16) and the cpu backend's direct oneDNN engine.
 */
public enum CpuPrecision {
    /** Float32 operands (the default). */
    FP32,
    /** Bfloat16 operands, float32 accumulation and outputs; an error where the CPU lacks AVX512-BF16. */
    BF16,
    /** BF16 where the CPU has AVX512-BF16, else FP32 with one warning line in the log. */
    AUTO;

    /** "fp32", "bf16" or "auto" (any case) to its constant; the error names the value and what was expected. */
    public static CpuPrecision parse(String s) {
        return switch (s == null ? "" : s.trim().toLowerCase(Locale.ROOT)) {
            case "fp32" -> FP32;
            case "bf16" -> BF16;
            case "auto" -> AUTO;
            default -> throw new IllegalArgumentException("vgg4j.cpu.precision=" + s
                    + ": expected fp32, bf16 or auto");
        };
    }

    /** The lower-case name ("fp32", "bf16", "auto"), as parsed. */
    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
