package org.vgg4j.core.backend;

/**
 * The counter-based random source of dropout masks: keep(seed, i) is a pure function, so every backend (Java,
 * CUDA, emulated) draws the same mask for the same seed, whatever the order or the threads.
 *
 * <p>uniform(seed, i) = top 24 bits of mix64(seed + (i+1) * GOLDEN) / 2^24, where mix64 is SplitMix64's
 * finaliser. An element is kept when uniform &gt;= p.
 */
public final class DropoutRng {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    private DropoutRng() {
    }

    public static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** A uniform draw in [0, 1) with 24 bits, exactly representable in float32. */
    public static float uniform(long seed, long index) {
        return (mix64(seed + (index + 1) * GOLDEN) >>> 40) * 0x1.0p-24f;
    }

    /**
     * The seed whose draw i is draw {@code first + i} of {@code seed}: uniform(atIndex(seed, first), i) equals
     * uniform(seed, first + i) exactly (64-bit arithmetic wraps on both sides), so an op that numbers its elements
     * from 0 can draw any slice of a longer mask.
     */
    public static long atIndex(long seed, long first) {
        return seed + first * GOLDEN;
    }

    public static boolean keep(long seed, long index, double p) {
        return uniform(seed, index) >= p;
    }
}
