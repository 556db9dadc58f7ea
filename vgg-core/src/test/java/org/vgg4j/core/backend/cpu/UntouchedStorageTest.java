package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.ProcessMemory;
import org.vgg4j.core.testing.TestTensors;

/**
 * {@link CpuBackend#allocateReleased}: calloc'd memory under an ND4J buffer. It reads zero, costs no resident memory
 * until written, works as any tensor once written (copies, GEMMs through its address), and is freed once, by us,
 * whatever the garbage collector does with ND4J's wrapper in between.
 */
class UntouchedStorageTest {

    @Test
    void readsZeroHoldsNoMemoryUntilWrittenAndFreesOnce() throws Exception {
        try (Backend cpu = Backends.cpu()) {
            for (DType dt : DType.values()) {
                long before = ProcessMemory.rssKib();
                Tensor big = cpu.allocateReleased(dt, Shape.of(64 << 20 >> (dt == DType.FLOAT32 ? 2 : 3))); // 64 MiB
                long grownMib = (ProcessMemory.rssKib() - before) / 1024;
                assertTrue(grownMib < 8, dt + ": RSS grew by " + grownMib + " MiB for an unwritten 64 MiB buffer");
                assertEquals(0.0, cpu.sumOfSquares(big), dt + " reads zero");
                cpu.fill(big, 0.5);
                assertEquals(0.25 * big.size(), cpu.sumOfSquares(big), 1e-6 * big.size(), dt + " once written");
                cpu.free(big);
                cpu.free(big); // a second free is a no-op
                assertThrows(IllegalStateException.class, () -> cpu.sumOfSquares(big), dt + " after free");
            }
        }
    }

    @Test
    void survivesManyLifecyclesUnderTheGarbageCollector() {
        try (Backend cpu = Backends.cpu()) {
            for (int i = 0; i < 60; i++) {
                int n = 4096 + 37 * i;
                Tensor a = cpu.allocateReleased(DType.FLOAT32, Shape.of(64, n / 64));
                Tensor b = TestTensors.random(cpu, DType.FLOAT32, Shape.of(64, n / 64), i, -1, 1);
                Tensor c = cpu.allocateReleased(DType.FLOAT32, Shape.of(64, 64));
                cpu.copy(b, a);
                cpu.gemm(false, true, 1.0, a, b, 0.0, c); // through the raw address
                double[] bv = TestTensors.toArray(b);
                double want = 0;
                for (int k = 0; k < n / 64; k++) {
                    want += bv[k] * bv[k];
                }
                assertEquals(want, TestTensors.toArray(c)[0], 1e-4 * (1 + want), "round " + i);
                cpu.free(a);
                cpu.free(b);
                cpu.free(c);
                if (i % 10 == 0) {
                    System.gc();
                }
            }
        }
    }
}
