package org.vgg4j.data;

import java.util.SplittableRandom;

/**
 * Where every random draw of the data pipeline comes from: a {@link SplittableRandom} keyed by (seed, epoch,
 * stream, index) through a fixed mixing function, so a sample's crop, flip and colour shift depend only on
 * those numbers — not on which thread handles it, nor on what was drawn before (resume mid-epoch is exact).
 */
public final class SampleRandom {
    /** Stream ids keep unrelated uses apart even for equal indices. */
    public static final long SHUFFLE = 1;
    public static final long AUGMENT = 2;

    private SampleRandom() {
    }

    /** The generator for (seed, epoch, stream, index). */
    public static SplittableRandom of(long seed, long epoch, long stream, long index) {
        long h = mix(seed ^ 0x9E3779B97F4A7C15L);
        h = mix(h ^ epoch);
        h = mix(h ^ (stream * 0xC2B2AE3D27D4EB4FL));
        h = mix(h ^ index);
        return new SplittableRandom(h);
    }

    /** Stafford's variant 13 of the SplitMix64 finaliser: a bijection with good avalanche. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
