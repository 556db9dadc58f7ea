package org.vgg4j.train.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.junit.jupiter.api.Test;

/** The launcher conventions, from maps: torchrun's (and Kubernetes operators'), Slurm's, and the errors. */
class LaunchEnvTest {

    @Test
    void torchrunVariables() {
        LaunchEnv e = LaunchEnv.from(Map.of("RANK", "5", "WORLD_SIZE", "8", "LOCAL_RANK", "1", "LOCAL_WORLD_SIZE", "4",
                "MASTER_ADDR", "node07", "MASTER_PORT", "29400"));
        assertEquals(new LaunchEnv(5, 8, 1, 4, "node07", 29400, "torchrun"), e);
        assertTrue(e.distributed());
        // a Kubernetes PyTorchJob sets no LOCAL_*: one process per pod
        e = LaunchEnv.from(Map.of("RANK", "2", "WORLD_SIZE", "3", "MASTER_ADDR", "job-master-0", "MASTER_PORT", "23456"));
        assertEquals(new LaunchEnv(2, 3, 0, 1, "job-master-0", 23456, "torchrun"), e);
        // torchrun inside an sbatch script: its variables win over Slurm's
        e = LaunchEnv.from(Map.of("RANK", "1", "WORLD_SIZE", "2", "MASTER_ADDR", "a", "MASTER_PORT", "1",
                "SLURM_PROCID", "0", "SLURM_NTASKS", "1"));
        assertEquals(1, e.rank());
        assertEquals("torchrun", e.source());
    }

    @Test
    void slurmVariablesWithTheFirstHostOfTheNodeList() {
        LaunchEnv e = LaunchEnv.from(Map.of("SLURM_PROCID", "6", "SLURM_NTASKS", "8", "SLURM_LOCALID", "2",
                "SLURM_NTASKS_PER_NODE", "4", "SLURM_JOB_NODELIST", "gpu[01-02]"));
        assertEquals(new LaunchEnv(6, 8, 2, 4, "gpu01", LaunchEnv.DEFAULT_PORT, "slurm"), e);
        e = LaunchEnv.from(Map.of("SLURM_PROCID", "0", "SLURM_NTASKS", "2", "SLURM_NODELIST", "a1,b2",
                "SLURM_NTASKS_PER_NODE", "1(x2)", "MASTER_PORT", "1234"));
        assertEquals(new LaunchEnv(0, 2, 0, 1, "a1", 1234, "slurm"), e);
        e = LaunchEnv.from(Map.of("SLURM_PROCID", "1", "SLURM_NTASKS", "2", "SLURM_NODELIST", "x[1-2]",
                "MASTER_ADDR", "10.0.0.9"));
        assertEquals("10.0.0.9", e.masterAddr()); // an explicit MASTER_ADDR wins over the node list
    }

    @Test
    void firstHostOfSlurmHostLists() {
        assertEquals("node01", LaunchEnv.firstHost("node[01-04]"));
        assertEquals("gpu3", LaunchEnv.firstHost("gpu[3,5-7],cpu1"));
        assertEquals("gpu3", LaunchEnv.firstHost("gpu[3-4,7]"));
        assertEquals("rack1-n08", LaunchEnv.firstHost("rack[1-2]-n[08-09]"));
        assertEquals("a-b.c", LaunchEnv.firstHost("a-b.c,d"));
        assertEquals("single", LaunchEnv.firstHost(" single "));
        assertThrows(IllegalArgumentException.class, () -> LaunchEnv.firstHost("node[01-04"));
        assertThrows(IllegalArgumentException.class, () -> LaunchEnv.firstHost("node01]"));
        assertThrows(IllegalArgumentException.class, () -> LaunchEnv.firstHost("node[a-b]"));
        assertThrows(IllegalArgumentException.class, () -> LaunchEnv.firstHost(",x"));
    }

    @Test
    void errorsNameTheVariableTheValueAndWhatWasExpected() {
        String m = message(Map.of("RANK", "5", "WORLD_SIZE", "4", "MASTER_ADDR", "h", "MASTER_PORT", "1"));
        assertTrue(m.contains("RANK=5") && m.contains("[0, WORLD_SIZE=4)"), m);
        m = message(Map.of("RANK", "one", "WORLD_SIZE", "4", "MASTER_ADDR", "h", "MASTER_PORT", "1"));
        assertTrue(m.contains("RANK=one") && m.contains("WORLD_SIZE=4"), m);
        m = message(Map.of("RANK", "0", "WORLD_SIZE", "0"));
        assertTrue(m.contains("WORLD_SIZE=0") && m.contains(">= 1"), m);
        m = message(Map.of("RANK", "0", "WORLD_SIZE", "2", "MASTER_PORT", "1"));
        assertTrue(m.contains("MASTER_ADDR is not set"), m);
        m = message(Map.of("RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "70000"));
        assertTrue(m.contains("MASTER_PORT=70000") && m.contains("65535"), m);
        m = message(Map.of("RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "h"));
        assertTrue(m.contains("MASTER_PORT is not set"), m);
        m = message(Map.of("RANK", "0", "WORLD_SIZE", "4", "LOCAL_RANK", "2", "LOCAL_WORLD_SIZE", "2", "MASTER_ADDR", "h",
                "MASTER_PORT", "9"));
        assertTrue(m.contains("LOCAL_RANK=2") && m.contains("LOCAL_WORLD_SIZE=2"), m);
        m = message(Map.of("WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "9"));
        assertTrue(m.contains("RANK is not set"), m);
        m = message(Map.of("SLURM_PROCID", "3", "SLURM_NTASKS", "2", "SLURM_NODELIST", "n1"));
        assertTrue(m.contains("SLURM_PROCID=3") && m.contains("SLURM_NTASKS=2"), m);
        m = message(Map.of("SLURM_PROCID", "0", "SLURM_NTASKS", "2", "SLURM_NODELIST", "n[1-2"));
        assertTrue(m.contains("SLURM_NODELIST=n[1-2") && m.contains("host list"), m);
        m = message(Map.of("SLURM_PROCID", "0", "SLURM_NTASKS", "2"));
        assertTrue(m.contains("SLURM_JOB_NODELIST"), m);
    }

    @Test
    void presenceMeansMoreThanOneProcess() {
        assertFalse(LaunchEnv.present(Map.of()));
        assertFalse(LaunchEnv.present(Map.of("RANK", "0", "WORLD_SIZE", "1")));
        assertTrue(LaunchEnv.present(Map.of("RANK", "0", "WORLD_SIZE", "2")));
        assertFalse(LaunchEnv.present(Map.of("SLURM_PROCID", "0", "SLURM_NTASKS", "1")));
        assertTrue(LaunchEnv.present(Map.of("SLURM_PROCID", "0", "SLURM_NTASKS", "4")));
        assertEquals("single", LaunchEnv.from(Map.of()).source());
        assertFalse(LaunchEnv.from(Map.of("RANK", "0", "WORLD_SIZE", "1")).distributed());
    }

    private static String message(Map<String, String> env) {
        return assertThrows(IllegalArgumentException.class, () -> LaunchEnv.from(env)).getMessage();
    }
}
