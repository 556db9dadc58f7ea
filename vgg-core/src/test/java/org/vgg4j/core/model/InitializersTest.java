package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.tensor.DType;

/** Statistics and bitwise reproducibility of {@link Initializers}. */
class InitializersTest {
    private static final HostMemoryBackend MEM = new HostMemoryBackend();

    private static Network net(VggSpec spec, DType dtype) {
        return Vgg.build(MEM, dtype, spec);
    }

    private static final VggSpec SMALL_BN = VggSpec.small(VggConfig.A, 32, 10).withWidth(0.25).withHidden(256).withBatchNorm(true);

    @Test
    void glorotUniformHasTheRightBoundsMeanAndSpread() {
        Network n = net(SMALL_BN, DType.FLOAT64);
        Initializers.initialize(n, Initializers.Scheme.GLOROT_UNIFORM, 42);
        ParamStore.Entry fc7 = n.params().get("classifier.3.weight"); // 256 x 256: 65,536 draws
        double a = Math.sqrt(6.0 / (256 + 256));
        double[] v = HostMemoryBackend.values(fc7.value());
        double mean = Arrays.stream(v).average().orElseThrow();
        double var = Arrays.stream(v).map(x -> (x - mean) * (x - mean)).sum() / (v.length - 1);
        assertTrue(Arrays.stream(v).allMatch(x -> x >= -a && x < a), "every draw inside [-a, a)");
        // U(-a,a): mean 0 with std a/sqrt(3n), variance a^2/3
        assertEquals(0, mean, 5 * a / Math.sqrt(3.0 * v.length));
        assertEquals(a * a / 3, var, 0.02 * a * a / 3);
        assertTrue(Arrays.stream(v).max().orElseThrow() > 0.99 * a, "the draws reach the bound");
        // conv fans include the kernel: features.0 is 3x3 from 3 to 16 channels
        double a0 = Math.sqrt(6.0 / (3 * 9 + 16 * 9));
        assertTrue(Arrays.stream(HostMemoryBackend.values(n.params().get("features.0.weight").value())).allMatch(x -> Math.abs(x) <= a0));
        // biases 0, BN gamma 1, beta 0, running mean 0, running var 1
        assertTrue(Arrays.stream(HostMemoryBackend.values(n.params().get("features.0.bias").value())).allMatch(x -> x == 0));
        assertTrue(Arrays.stream(HostMemoryBackend.values(n.params().get("features.1.weight").value())).allMatch(x -> x == 1));
        assertTrue(Arrays.stream(HostMemoryBackend.values(n.params().get("features.1.bias").value())).allMatch(x -> x == 0));
        assertTrue(Arrays.stream(HostMemoryBackend.values(n.params().get("features.1.running_mean").value())).allMatch(x -> x == 0));
        assertTrue(Arrays.stream(HostMemoryBackend.values(n.params().get("features.1.running_var").value())).allMatch(x -> x == 1));
    }

    @Test
    void paperNormalHasVarianceOneHundredth() {
        Network n = net(SMALL_BN, DType.FLOAT64);
        Initializers.initialize(n, Initializers.Scheme.PAPER_NORMAL, 7);
        double[] v = HostMemoryBackend.values(n.params().get("classifier.3.weight").value());
        double mean = Arrays.stream(v).average().orElseThrow();
        double var = Arrays.stream(v).map(x -> (x - mean) * (x - mean)).sum() / (v.length - 1);
        assertEquals(0, mean, 5 * 0.1 / Math.sqrt(v.length));
        assertEquals(1e-2, var, 0.02 * 1e-2);
        long beyond3 = Arrays.stream(v).filter(x -> Math.abs(x) > 0.3).count();
        assertEquals(0.0027 * v.length, beyond3, 0.0015 * v.length, "Gaussian tails (|x| > 3 sigma)");
        assertTrue(Arrays.stream(HostMemoryBackend.values(n.params().get("classifier.3.bias").value())).allMatch(x -> x == 0));
    }

    @Test
    void sameSeedSameBitsOtherSeedOtherBits() {
        for (DType dt : DType.values()) {
            Network a = net(SMALL_BN, dt);
            Network b = net(SMALL_BN, dt);
            Network c = net(SMALL_BN, dt);
            Initializers.initialize(a, Initializers.Scheme.GLOROT_UNIFORM, 1234);
            Initializers.initialize(b, Initializers.Scheme.GLOROT_UNIFORM, 1234);
            Initializers.initialize(c, Initializers.Scheme.GLOROT_UNIFORM, 1235);
            double[] va = HostMemoryBackend.values(a.params().values());
            assertArrayEquals(va, HostMemoryBackend.values(b.params().values()));
            assertFalse(Arrays.equals(va, HostMemoryBackend.values(c.params().values())));
        }
        // float32 values are float64 draws rounded once
        Network f = net(SMALL_BN, DType.FLOAT32);
        Network d = net(SMALL_BN, DType.FLOAT64);
        Initializers.initialize(f, Initializers.Scheme.PAPER_NORMAL, 9);
        Initializers.initialize(d, Initializers.Scheme.PAPER_NORMAL, 9);
        double[] vf = HostMemoryBackend.values(f.params().values());
        double[] vd = HostMemoryBackend.values(d.params().values());
        for (int i = 0; i < vf.length; i++) {
            assertEquals((float) vd[i], (float) vf[i]);
        }
    }

    @Test
    void addingLayersDoesNotShiftEarlierDraws() {
        // B is A with one more conv in blocks 1 and 2: everything before B's features.2 keeps its draws
        Network a = net(VggSpec.small(VggConfig.A, 32, 10).withWidth(0.25), DType.FLOAT64);
        Network b = net(VggSpec.small(VggConfig.B, 32, 10).withWidth(0.25), DType.FLOAT64);
        Initializers.initialize(a, Initializers.Scheme.GLOROT_UNIFORM, 5);
        Initializers.initialize(b, Initializers.Scheme.GLOROT_UNIFORM, 5);
        assertArrayEquals(HostMemoryBackend.values(a.params().get("features.0.weight").value()),
                HostMemoryBackend.values(b.params().get("features.0.weight").value()));
        // and initialising a subset gives exactly the values of the full initialisation
        Network part = net(VggSpec.small(VggConfig.A, 32, 10).withWidth(0.25), DType.FLOAT64);
        Initializers.initialize(part, Initializers.Scheme.GLOROT_UNIFORM, 5, k -> k.startsWith("classifier.3"));
        assertArrayEquals(HostMemoryBackend.values(a.params().get("classifier.3.weight").value()),
                HostMemoryBackend.values(part.params().get("classifier.3.weight").value()));
        assertTrue(Arrays.stream(HostMemoryBackend.values(part.params().get("features.0.weight").value())).allMatch(x -> x == 0),
                "keys not selected are left untouched");
    }
}
