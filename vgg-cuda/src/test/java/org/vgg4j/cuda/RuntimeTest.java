package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.api.CudaOutOfMemoryException;

/**
 * The runtime around the kernels: provider discovery and their unavailable reasons, the caching allocator, the
 * out-of-memory message (batch size and one that would fit), several emulated devices, freeing views.
 */
@Tag(Parity.EMULATOR_TAG)
class RuntimeTest {

    @Test
    void bothProvidersAreOnTheClassPath() {
        assertTrue(Backends.names().contains(CudaBackendProvider.NAME), Backends.names().toString());
        assertTrue(Backends.names().contains(EmulatedCudaBackendProvider.NAME), Backends.names().toString());
    }

    @Test
    void theGpuBackendSaysWhyItCannotRunOrRuns() {
        String why = new CudaBackendProvider().unavailableReason();
        if (why == null) {
            try (Backend b = Backends.create("cuda")) { // a machine with a GPU and built kernels
                assertEquals("cuda", b.name());
            }
            return;
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.create("cuda"));
        assertTrue(e.getMessage().contains(why), e.getMessage());
        assertTrue(why.contains("libcuda") || why.contains("not built") || why.contains("device")
                || why.contains("cuInit") || why.contains("JCuda"), why);
    }

    @Test
    void theEmulatedBackendIsFoundByName() {
        Parity.assumeEmulator();
        try (Backend b = Backends.create("cuda-emulated")) {
            Tensor t = b.allocate(DType.FLOAT32, Shape.of(3));
            b.fill(t, 2);
            assertEquals(12.0, b.sumOfSquares(t), 0.0);
        }
    }

    @Test
    void theAllocatorReusesFreedBlocks() {
        Parity.assumeEmulator();
        try (CudaBackend b = new CudaBackend("cuda-emulated", EmulatedDriver.open(0), MathMode.FP32)) {
            Tensor a = b.allocate(DType.FLOAT32, Shape.of(64, 3, 32, 32));
            long used = b.deviceBytesInUse();
            b.free(a);
            assertEquals(0, b.deviceBytesInUse());
            Tensor c = b.allocate(DType.FLOAT32, Shape.of(64, 3, 32, 32));
            assertEquals(used, b.deviceBytesInUse());
            assertTrue(((DeviceBuffer) c.storage()).devPtr == ((DeviceBuffer) a.storage()).devPtr,
                    "the same block comes back from the cache");
            b.free(c.view(10, Shape.of(5))); // a view: nothing is released
            assertEquals(used, b.deviceBytesInUse());
            assertThrows(IllegalArgumentException.class, () -> {
                b.free(c);
                b.fill(c, 1); // use after free is refused
            });
        }
        assertEquals(4 * 1024 * 1024, DeviceAllocator.roundUp(4 * 1024 * 1024));
        assertEquals(512, DeviceAllocator.roundUp(1));
        assertTrue(DeviceAllocator.roundUp(5_000_001) <= 5_000_001 * 1.125 + 1);
    }

    @Test
    void splitKPlansFillTheDeviceWithoutShallowSlices() {
        Parity.assumeEmulator();
        try (CudaBackend b = new CudaBackend("cuda-emulated", EmulatedDriver.open(0), MathMode.FP32)) {
            // the emulator reports 4 multiprocessors: aim for 8 blocks
            // VGG-16's first layer backward-filter at batch 64: one 64x27 tile summed over 64*224*224
            assertEquals(new CudaBackend.SplitK(8, 401408), b.splitK(1, 64L * 224 * 224, 64 * 27));
            assertEquals(1, b.splitK(8, 1 << 20, 1 << 12).splits(), "enough tiles: no split");
            assertEquals(1, b.splitK(1, 500, 64).splits(), "too shallow to split");
            CudaBackend.SplitK sk = b.splitK(2, 900, 64);
            assertEquals(new CudaBackend.SplitK(3, 304), sk, "chunks are multiples of 16, the last one ragged");
            assertTrue((long) sk.splits() * sk.chunk() >= 900 && (long) (sk.splits() - 1) * sk.chunk() < 900);
        }
    }

    @Test
    void theSplitKWorkspaceStaysWithTheBackendUntilItsLaunchesRan() {
        Parity.assumeEmulator();
        try (CudaBackend b = new CudaBackend("cuda-emulated", EmulatedDriver.open(0), MathMode.FP32)) {
            // 3 x 3000 . 3000 x 5: one tile, 3000 deep -> split-K on the emulator's 4 nominal multiprocessors
            CudaBackend.SplitK sk = b.splitK(1, 3000, 15);
            assertTrue(sk.splits() > 1, "the shape must take the split-K path: " + sk);
            Tensor a = b.allocate(DType.FLOAT32, Shape.of(3, 3000));
            Tensor bb = b.allocate(DType.FLOAT32, Shape.of(3000, 5));
            Tensor c = b.allocate(DType.FLOAT32, Shape.of(3, 5));
            assertEquals(0, b.splitKWorkspaceBytes());
            b.gemm(false, false, 1.0, a, bb, 0.0, c);
            long ws = b.splitKWorkspacePointer();
            assertEquals(4L * sk.splits() * 15, b.splitKWorkspaceBytes(), "held after the launches were queued");
            // an allocation right after the split-K GEMM (as for another stream) never receives the workspace block
            Tensor t = b.allocate(DType.FLOAT32, Shape.of(sk.splits() * 15));
            assertTrue(((DeviceBuffer) t.storage()).devPtr != ws, "the workspace went back to the allocator");
            b.gemm(false, false, 1.0, a, bb, 0.0, c);
            assertEquals(ws, b.splitKWorkspacePointer(), "the next split-K launch reuses it");
            // a deeper split needs more: the workspace grows (the old one is released after the stream drained)
            Tensor a2 = b.allocate(DType.FLOAT32, Shape.of(60, 3000));
            Tensor c2 = b.allocate(DType.FLOAT32, Shape.of(60, 5));
            b.gemm(false, false, 1.0, a2, bb, 0.0, c2);
            assertTrue(b.splitKWorkspaceBytes() > 4L * sk.splits() * 15, "grown: " + b.splitKWorkspaceBytes());
        }
    }

    @Test
    void outOfMemoryNamesTheBatchSizeAndOneThatFits() {
        Parity.assumeEmulator();
        // 7 MiB device; per image 64x32x32 floats = 256 KiB per activation, 4 MiB per activation of batch 16
        try (CudaBackend b = new CudaBackend("cuda-emulated", EmulatedDriver.open(0, 7L << 20), MathMode.FP32)) {
            List<Tensor> acts = new ArrayList<>();
            CudaOutOfMemoryException e = assertThrows(CudaOutOfMemoryException.class, () -> {
                for (int i = 0; i < 100; i++) {
                    acts.add(b.allocate(DType.FLOAT32, Shape.of(16, 64, 32, 32)));
                }
            });
            assertEquals(1, acts.size(), "one 4 MiB activation of batch 16 fits in 7 MiB, the second does not");
            String m = e.getMessage();
            assertTrue(m.contains("16x64x32x32") && m.contains("Batch size 16 does not fit"), m);
            // two activations of batch b take b * 512 KiB: 7 MiB holds b = 14
            assertTrue(m.contains("batch size 14 or less would"), m);
        }
    }

    @Test
    void severalEmulatedDevicesHaveSeparateMemory() {
        Parity.assumeEmulator();
        try (EmulatedDriver d0 = EmulatedDriver.open(0, 1 << 20); EmulatedDriver d1 = EmulatedDriver.open(1, 1 << 20)) {
            long a = d0.malloc(1 << 20);
            long b = d1.malloc(1 << 20); // device 0 being full does not affect device 1
            assertNotNull(d1.describe());
            assertTrue(d0.describe().contains("device 0 of") && d1.describe().contains("device 1 of"));
            assertThrows(CudaOutOfMemoryException.class, () -> d0.malloc(4));
            d0.free(a);
            d1.free(b);
        }
        assertThrows(IllegalArgumentException.class, () -> EmulatedDriver.open(EmulatedDriver.deviceCount()));
    }
}
