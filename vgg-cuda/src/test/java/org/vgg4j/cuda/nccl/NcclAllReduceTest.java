package org.vgg4j.cuda.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.parallel.CollectiveProvider;
import org.vgg4j.core.parallel.ProcessGroup;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.CudaBackend;
import org.vgg4j.cuda.EmulatedDriver;
import org.vgg4j.cuda.MathMode;

/**
 * What can be checked of the NCCL collective without a GPU: it is found for the cuda backend (and only that one),
 * its availability check names the missing piece, and its argument checks refuse what NCCL cannot reduce before
 * any native code runs. The NCCL calls themselves need GPUs (docs/distributed.md, "not tested here").
 */
class NcclAllReduceTest {

    @Test
    void theProviderServesTheCudaBackendOnly() {
        CollectiveProvider p = CollectiveProvider.forBackend("cuda");
        assertEquals("nccl", p.name());
        assertTrue(p.create(ProcessGroup.SINGLE) instanceof NcclAllReduce);
        assertNull(CollectiveProvider.forBackend("cuda-emulated"));
        assertNull(CollectiveProvider.forBackend("cpu"));
    }

    @Test
    void availabilityIsEitherAVersionOrAReasonNamingTheMissingPiece() {
        String why = Nccl.unavailableReason();
        if (why == null) { // a machine with the natives, a CUDA 11 runtime, NCCL and a driver
            assertTrue(Nccl.version() >= 20000, "NCCL version " + Nccl.version());
            return;
        }
        assertTrue(why.startsWith("NCCL unavailable: "), why);
        assertTrue(why.contains("-Pnccl") || why.contains("libcuda.so.1") || why.contains("libcudart.so.11.0")
                || why.contains("libnccl.so.2") || why.contains("could not load"), why);
        // and average() says the same instead of failing somewhere inside JavaCPP
        assumeEmulator();
    }

    @Test
    void loadingErrorsBecomeTheMissingPieceAndWhatToDo() {
        assertTrue(Nccl.explain(new UnsatisfiedLinkError("no jnicudart in java.library.path: /usr/lib"))
                .contains("org.bytedeco:cuda:11.6-8.3-1.5.7:"));
        // what JavaCPP 1.5.7 throws with -Pnccl on this GPU-less machine (measured): the real cause is the nested one
        assertTrue(Nccl.explain(new UnsatisfiedLinkError("no jnicudart in java.library.path: /usr/lib").initCause(
                new UnsatisfiedLinkError("/root/.javacpp/cache/cuda-11.6-8.3-1.5.7-linux-x86_64.jar/org/bytedeco/cuda/"
                        + "linux-x86_64/libjnicudart.so: libcuda.so.1: cannot open shared object file: No such file or"
                        + " directory"))).contains("no NVIDIA driver"));
        assertTrue(Nccl.explain(new UnsatisfiedLinkError("/tmp/x/libjnicudart.so: libcudart.so.11.0: cannot open shared"
                + " object file")).contains("CUDA 11"));
        String m = Nccl.explain(new NoClassDefFoundError("Could not initialize class")
                .initCause(new UnsatisfiedLinkError("libnccl.so.2: cannot open shared object file")));
        assertTrue(m.contains("libnccl.so.2") && m.contains("-Pnccl-redist"), m);
    }

    @Test
    void argumentsAreCheckedBeforeAnyNativeCode() {
        NcclAllReduce nccl = new NcclAllReduce(ProcessGroup.SINGLE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> nccl.average(List.of()));
        assertTrue(e.getMessage().contains("no buffers"), e.getMessage());
        Backend ref = Backends.create("reference");
        Tensor t = ref.allocate(DType.FLOAT32, Shape.of(10));
        e = assertThrows(IllegalArgumentException.class, () -> nccl.average(List.of(t)));
        assertTrue(e.getMessage().contains("'reference'") && e.getMessage().contains("--collective tcp"), e.getMessage());

        assumeEmulator();
        try (CudaBackend emu = new CudaBackend("cuda-emulated", EmulatedDriver.open(0), MathMode.FP32)) {
            Tensor g = emu.allocate(DType.FLOAT32, Shape.of(10));
            e = assertThrows(IllegalArgumentException.class, () -> nccl.average(List.of(g)));
            assertTrue(e.getMessage().contains("buffer 0") && e.getMessage().contains("real GPU"), e.getMessage());
            // the device address a collective would use is the tensor's, offset included
            Tensor view = g.view(3, Shape.of(4));
            assertEquals(emu.devicePointer(g) + 12, emu.devicePointer(view));
            Tensor other = ref.allocate(DType.FLOAT32, Shape.of(4));
            assertThrows(IllegalArgumentException.class, () -> emu.devicePointer(other));
        }
    }

    /** Skips without the emulated device outside CI; in CI (CI=true, where .ci/run installs g++) fails instead. */
    private static void assumeEmulator() {
        String why = EmulatedDriver.unavailableReason();
        if (why != null && "true".equalsIgnoreCase(System.getenv("CI"))) {
            Assertions.fail("emulated CUDA device not available in CI (CI=true): " + why);
        }
        Assumptions.assumeTrue(why == null, () -> "emulated CUDA device not available: " + why);
    }
}
