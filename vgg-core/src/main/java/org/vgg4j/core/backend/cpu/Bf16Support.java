package org.vgg4j.core.backend.cpu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import org.bytedeco.dnnl.global.dnnl;

/**
 * Whether this machine can run {@link CpuPrecision#BF16}: the CPU must report the {@code avx512_bf16} flag in
 * /proc/cpuinfo AND oneDNN's effective ISA must reach avx512_core_bf16 (ONEDNN_MAX_CPU_ISA can lower it). Without
 * them oneDNN would either refuse the bf16 primitives or emulate them slowly; neither is what a user asked for.
 */
final class Bf16Support {
    private static String reason;
    private static boolean probed;

    private Bf16Support() {
    }

    /** Null where BF16 runs here, else why not (naming the missing instruction set); probed once. */
    static synchronized String unavailableReason() {
        if (!probed) {
            probed = true;
            if (!DnnlConv.available()) {
                reason = "oneDNN's natives (org.bytedeco:dnnl) do not load here; bf16 needs them";
            } else {
                reason = reason(cpuFlags(), dnnl.dnnl_get_effective_cpu_isa());
            }
        }
        return reason;
    }

    /**
     * The decision, on its inputs (tests give it other machines'): {@code flags} the "flags" line of /proc/cpuinfo
     * (null when unreadable), {@code isa} oneDNN's dnnl_get_effective_cpu_isa().
     */
    static String reason(String flags, int isa) {
        if (flags == null || !Arrays.asList(flags.trim().split("\\s+")).contains("avx512_bf16")) {
            return "the CPU lacks the AVX512-BF16 instruction set (no avx512_bf16 flag in /proc/cpuinfo"
                    + (flags == null ? ", which is unreadable here" : "") + ")";
        }
        int bf16 = dnnl.dnnl_cpu_isa_avx512_core_bf16;
        if ((isa & bf16) != bf16) {
            return "oneDNN's effective ISA (0x" + Integer.toHexString(isa) + ") is below avx512_core_bf16 (0x"
                    + Integer.toHexString(bf16) + "): is ONEDNN_MAX_CPU_ISA set?";
        }
        return null;
    }

    /** The first "flags" line of /proc/cpuinfo, or null. */
    private static String cpuFlags() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("flags")) {
                    return line.substring(line.indexOf(':') + 1);
                }
            }
            return "";
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
