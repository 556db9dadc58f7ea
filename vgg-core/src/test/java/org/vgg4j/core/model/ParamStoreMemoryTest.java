package org.vgg4j.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.ProcessMemory;
import org.vgg4j.core.testing.TestTensors;

/**
 * A network that is never trained does not hold its gradient buffer in memory (ParamStore hands it back at once,
 * Backend#allocateReleased): on the cpu backend a 64 MiB weight costs 64 MiB of resident memory, not 128, at no
 * moment of its construction either, and its
 * gradient reads zero until a backward writes it, which then works as ever.
 */
class ParamStoreMemoryTest {

    @Test
    void untrainedNetworkHoldsNoGradientMemory() throws Exception {
        try (Backend cpu = Backends.cpu()) {
            ProcessMemory.resetPeak();
            long before = ProcessMemory.rssKib();
            try (Network n = new Network("big", cpu, DType.FLOAT32, Shape.of(4096),
                    List.of(new NamedLayer("fc", new Linear(cpu, 4096, 4096))))) {
                long after = ProcessMemory.rssKib();
                long grownMib = (after - before) / 1024;
                assertTrue(grownMib > 48 && grownMib < 100, "RSS grew by " + grownMib
                        + " MiB for a 64 MiB weight: expected the weight alone, not its gradient too");
                // not even for a moment while the network was built (the gradient buffer is never written)
                long peakMib = (ProcessMemory.peakKib() - before) / 1024;
                assertTrue(peakMib < 100, "the peak RSS rose by " + peakMib + " MiB while a network of a 64 MiB weight"
                        + " was built: its gradient buffer was written");
                assertEquals(0.0, cpu.sumOfSquares(n.params().grads()));
                Tensor x = TestTensors.random(cpu, DType.FLOAT32, Shape.of(2, 4096), 1, -1, 1);
                SoftmaxCrossEntropy loss = new SoftmaxCrossEntropy(cpu);
                loss.forwardBackward(n.forward(x, true), new int[] {3, 4000});
                n.backward(loss.gradient());
                // dW = dy^T x, and db = the sum of dy over the batch: each row of dy sums to 0
                Tensor dw = n.params().get("fc.weight").grad();
                assertTrue(cpu.sumOfSquares(dw) > 0, "the gradient is written once a backward runs");
                double[] dy = TestTensors.toArray(loss.gradient());
                double[] xs = TestTensors.toArray(x);
                for (int o = 0; o < 4096; o += 1023) {
                    for (int i = 0; i < 4096; i += 511) {
                        double want = dy[o] * xs[i] + dy[4096 + o] * xs[4096 + i];
                        double got = TestTensors.toArray(dw.view((long) o * 4096 + i, Shape.of(1)))[0];
                        assertEquals(want, got, 1e-6, "dW[" + o + "," + i + "]");
                    }
                }
            }
        }
    }
}
