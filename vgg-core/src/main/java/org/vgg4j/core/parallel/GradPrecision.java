package org.vgg4j.core.parallel;

import java.util.Locale;

/**
 * The number format gradients travel in during an all-reduce (command line: {@code --grad-precision}).
 *
 * <p>FP32 (default) sends float32 and matches single-device training to float32 rounding. BF16 and FP16 halve the
 * bytes on the links: each bucket is rounded to the 16-bit format before it leaves a device, partial sums are
 * formed in float32 and rounded again before they travel on, and the final mean is rounded ONCE to the 16-bit
 * format by the one device that owns it, then distributed, so replicas still end bitwise identical. BF16 keeps
 * float32's exponent range (8 significand bits: relative error up to 2^-9 per rounding); FP16 has 11 significand
 * bits but overflows above 65504 and flushes below ~6e-8 (gradients of a loss averaged over the batch are small,
 * which is why BF16 is the safer choice). Not here: loss scaling (this is not mixed-precision training; parameters,
 * momentum and the update stay float32).
 */
public enum GradPrecision {
    FP32(4), BF16(2), FP16(2);

    private final int bytes;

    GradPrecision(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per gradient element on the wire. */
    public int bytes() {
        return bytes;
    }

    /** "fp32", "bf16" or "fp16" (any case). */
    public static GradPrecision parse(String s) {
        for (GradPrecision p : values()) {
            if (p.name().equalsIgnoreCase(s.trim())) {
                return p;
            }
        }
        throw new IllegalArgumentException("gradient precision '" + s + "': expected fp32, bf16 or fp16");
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
