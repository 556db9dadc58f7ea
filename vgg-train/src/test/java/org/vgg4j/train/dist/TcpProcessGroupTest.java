package org.vgg4j.train.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import org.junit.jupiter.api.Test;

/** The TCP rendezvous and the star's collectives; failures name the rank and never hang. */
class TcpProcessGroupTest {
    private static final Duration T = Duration.ofSeconds(20);

    @Test
    void broadcastGatherSumAndBarrierAcrossThreeRanks() throws Exception {
        List<Object> res = Ranks.run(3, T, (rank, g) -> {
            assertEquals(rank, g.rank());
            assertEquals(3, g.size());
            byte[] id = new byte[128]; // an NCCL unique id's size
            if (rank == 0) {
                for (int i = 0; i < id.length; i++) {
                    id[i] = (byte) (i * 7 + 3);
                }
            }
            byte[] got = g.broadcast(rank == 0 ? id : null);
            byte[][] all = g.allGather(("rank" + rank).repeat(rank + 1).getBytes(StandardCharsets.UTF_8));
            // 0.1 + 0.2 + 0.3 added in rank order on every rank: the same bits everywhere
            double[] sum = g.sum(new double[] {0.1 * (rank + 1), rank});
            g.barrier();
            return new Object[] {got, all, sum};
        });
        byte[] want = new byte[128];
        for (int i = 0; i < want.length; i++) {
            want[i] = (byte) (i * 7 + 3);
        }
        for (int r = 0; r < 3; r++) {
            Object[] o = (Object[]) assertInstanceOf(Object[].class, res.get(r), String.valueOf(res.get(r)));
            assertArrayEquals(want, (byte[]) o[0]);
            byte[][] all = (byte[][]) o[1];
            for (int k = 0; k < 3; k++) {
                assertEquals(("rank" + k).repeat(k + 1), new String(all[k], StandardCharsets.UTF_8));
            }
            double[] sum = (double[]) o[2];
            assertEquals(Double.doubleToLongBits((0.1 + 0.2) + 0.30000000000000004), Double.doubleToLongBits(sum[0]));
            assertEquals(3.0, sum[1]);
        }
    }

    @Test
    void laterRanksRetryUntilRankZeroListensAndATimeoutNamesTheAddress() throws Exception {
        int port = Ranks.freePort();
        // rank 1 starts first: it keeps retrying while rank 0 is not there yet
        CompletableFuture<byte[]> one = CompletableFuture.supplyAsync(() -> {
            try (TcpProcessGroup g = TcpProcessGroup.connect(Ranks.env(1, 2, port), new TcpProcessGroup.Options(T, T))) {
                return g.broadcast(null);
            }
        });
        Thread.sleep(300);
        try (TcpProcessGroup g = TcpProcessGroup.connect(Ranks.env(0, 2, port), new TcpProcessGroup.Options(T, T))) {
            g.broadcast(new byte[] {42});
        }
        assertArrayEquals(new byte[] {42}, one.get());

        int closed = Ranks.freePort(); // nobody listens there
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> TcpProcessGroup.connect(
                Ranks.env(1, 2, closed), new TcpProcessGroup.Options(Duration.ofMillis(600), T)));
        assertTrue(e.getMessage().contains("127.0.0.1:" + closed) && e.getMessage().contains("MASTER_ADDR"), e.getMessage());

        e = assertThrows(IllegalStateException.class, () -> TcpProcessGroup.connect(
                Ranks.env(0, 3, closed), new TcpProcessGroup.Options(Duration.ofMillis(600), T)));
        assertTrue(e.getMessage().contains("only 1 of 3 ranks") && e.getMessage().contains("missing ranks 1,2"), e.getMessage());
    }

    @Test
    void disagreeingWorldSizesAreRefusedByName() throws Exception {
        int port = Ranks.freePort();
        CompletableFuture<Object> one = CompletableFuture.supplyAsync(() -> {
            try {
                return TcpProcessGroup.connect(new LaunchEnv(1, 3, 0, 1, "127.0.0.1", port, "test"),
                        new TcpProcessGroup.Options(Duration.ofSeconds(5), T));
            } catch (RuntimeException ex) {
                return ex;
            }
        });
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> TcpProcessGroup.connect(
                Ranks.env(0, 2, port), new TcpProcessGroup.Options(Duration.ofSeconds(5), T)));
        assertTrue(e.getMessage().contains("rank 1") && e.getMessage().contains("WORLD_SIZE=3")
                && e.getMessage().contains("rank 0 has 2"), e.getMessage());
        Object r1 = one.get();
        assertInstanceOf(IllegalStateException.class, r1, String.valueOf(r1));
    }

    @Test
    void aRankThatDiesMakesEveryOtherRankFailNamingIt() throws Exception {
        // rank 2 "dies": its sockets close without a word, as the kernel closes a killed process's sockets
        List<Object> res = Ranks.run(3, T, (rank, g) -> {
            g.barrier();
            if (rank == 2) {
                g.close();
                return "died";
            }
            g.allGather(new byte[] {1}); // rank 0 waits for rank 2 here, rank 1 for rank 0's answer
            return "finished";
        });
        assertEquals("died", res.get(2));
        for (int r = 0; r < 2; r++) {
            IllegalStateException e = assertInstanceOf(IllegalStateException.class, res.get(r), String.valueOf(res.get(r)));
            assertTrue(e.getMessage().contains("rank 2") && e.getMessage().contains("did its process die"), e.getMessage());
        }
    }

    @Test
    void aRankThatFailsTellsTheOthersWhyAndAStuckRankTimesOut() throws Exception {
        List<Object> res = Ranks.run(3, T, (rank, g) -> {
            if (rank == 1) {
                g.abort("out of memory on device 1");
                return "aborted";
            }
            g.broadcast(new byte[1]);
            g.allGather(new byte[1]);
            return "finished";
        });
        for (int r : new int[] {0, 2}) {
            IllegalStateException e = assertInstanceOf(IllegalStateException.class, res.get(r), String.valueOf(res.get(r)));
            assertTrue(e.getMessage().contains("rank 1 failed: out of memory on device 1"), e.getMessage());
        }
        // rank 1 stays alive but never answers: rank 0's read times out naming it, and rank 0 tells rank 2
        res = Ranks.run(3, Duration.ofMillis(800), (rank, g) -> {
            if (rank == 1) {
                Thread.sleep(2500);
                return "late";
            }
            g.allGather(new byte[1]);
            return "finished";
        });
        for (int r : new int[] {0, 2}) {
            IllegalStateException e = assertInstanceOf(IllegalStateException.class, res.get(r), String.valueOf(res.get(r)));
            assertTrue(e.getMessage().contains("rank 1 sent nothing") && e.getMessage().contains("timeout"), e.getMessage());
        }
    }
}
