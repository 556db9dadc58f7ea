package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backends;

class CpuThreadsTest {

    @Test
    void coresAreSharedOnlyWhenNobodyChoseAndNothingLoaded() {
        assertEquals(1, CpuThreads.decide(2, null, null, false, 2));
        assertEquals(4, CpuThreads.decide(4, null, null, false, 16));
        assertEquals(2, CpuThreads.decide(3, null, null, false, 8), "cores / replicas, rounded down");
        assertEquals(1, CpuThreads.decide(8, null, null, false, 2), "at least one thread");
        assertEquals(0, CpuThreads.decide(1, null, null, false, 2), "one replica keeps every core");
        assertEquals(0, CpuThreads.decide(2, "2", null, false, 2), "the user's -Dvgg4j.cpu.threads wins");
        assertEquals(0, CpuThreads.decide(2, null, "2", false, 2), "the user's OMP_NUM_THREADS wins");
        assertEquals(0, CpuThreads.decide(2, null, null, true, 2), "too late once the backend has loaded");
    }

    @Test
    void aReplicaCountBelowOneIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CpuThreads.decide(0, null, null, false, 2));
        assertEquals("replicas 0: expected at least 1", e.getMessage());
    }

    @Test
    void afterTheBackendHasLoadedNothingChanges() {
        Backends.create("cpu").close();
        String before = System.getProperty(CpuBackend.Options.THREADS);
        assertEquals(0, CpuThreads.shareCores(2));
        assertEquals(before, System.getProperty(CpuBackend.Options.THREADS));
    }
}
