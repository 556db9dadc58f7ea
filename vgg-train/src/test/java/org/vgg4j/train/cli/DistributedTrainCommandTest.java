package org.vgg4j.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.train.dist.Ranks;

import picocli.CommandLine;

/**
 * {@code vgg train} under a launcher's environment (torchrun's variables, given as maps; the two ranks are threads
 * of this JVM, see DistributedTrainingTest for why): the global batch is split over the ranks, the TCP collective is
 * chosen for the reference backend, only rank 0 prints and writes, and the epoch losses equal a one-process run's
 * to float32 rounding (1e-5 relative: the sums differ only in order, ~1e-7 relative per float32 operation).
 */
class DistributedTrainCommandTest {
    private static final String[] COMMON = {"--backend", "reference", "--data", "fashion-mnist-sample", "--limit", "32",
        "--batch", "8", "--width", "0.0625", "--hidden", "16", "--dropout", "0", "--no-progress", "--schedule",
        "constant", "--lr", "0.02", "--epochs", "2", "--dist-timeout", "60", "--no-bn"}; // BatchNorm normalises per
    // replica (per rank), as in DDP without SyncBN: with it the two runs differ by design (docs/training.md)

    private static TrainCommand command(Path out, Map<String, String> env, String... more) {
        TrainCommand c = new TrainCommand();
        List<String> args = new ArrayList<>(List.of(COMMON));
        args.add("--out");
        args.add(out.toString());
        args.addAll(List.of(more));
        new CommandLine(c).parseArgs(args.toArray(new String[0]));
        return c.withEnvironment(env);
    }

    private static PrintStream into(ByteArrayOutputStream b) {
        return new PrintStream(b, true, StandardCharsets.UTF_8);
    }

    @Test
    void twoRanksTrainLikeOneProcessAndOnlyRankZeroWrites(@TempDir Path dir) throws Exception {
        TrainCommand.Result one = command(dir.resolve("one"), Map.of()).train(null, into(new ByteArrayOutputStream()));
        int port = Ranks.freePort();
        List<CompletableFuture<Object>> ranks = new ArrayList<>();
        List<ByteArrayOutputStream> outs = new ArrayList<>();
        for (int r = 0; r < 2; r++) {
            Map<String, String> env = Map.of("RANK", "" + r, "WORLD_SIZE", "2", "LOCAL_RANK", "" + r, "LOCAL_WORLD_SIZE",
                    "2", "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", "" + port);
            TrainCommand c = command(dir.resolve("rank" + r), env);
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            outs.add(b);
            ranks.add(CompletableFuture.supplyAsync(() -> {
                try {
                    return c.train(null, into(b));
                } catch (Exception e) {
                    return e;
                }
            }));
        }
        TrainCommand.Result r0 = assertInstanceOf(TrainCommand.Result.class, ranks.get(0).get(120, TimeUnit.SECONDS));
        assertInstanceOf(TrainCommand.Result.class, ranks.get(1).get(120, TimeUnit.SECONDS));
        assertEquals(one.trainer().state().step(), r0.trainer().state().step());
        for (int e = 0; e < 2; e++) {
            double want = one.trainer().epochs().get(e).trainLoss();
            double got = r0.trainer().epochs().get(e).trainLoss();
            assertEquals(want, got, 1e-5 * want, "epoch " + (e + 1) + " training loss");
            assertEquals(one.trainer().epochs().get(e).valTop1Error(), r0.trainer().epochs().get(e).valTop1Error(), 1e-9);
        }
        String said0 = outs.get(0).toString(StandardCharsets.UTF_8);
        assertTrue(said0.contains("x 2 processes (torchrun, rank 0 at 127.0.0.1:" + port + ")"), said0);
        assertEquals("", outs.get(1).toString(StandardCharsets.UTF_8)); // rank 1 prints nothing
        assertTrue(Files.exists(dir.resolve("rank0").resolve("metrics.csv")));
        assertTrue(Files.exists(dir.resolve("rank0").resolve("checkpoints").resolve("step-0000000004.safetensors")));
        assertTrue(!Files.exists(dir.resolve("rank1")), "rank 1 wrote into its --out");
    }

    @Test
    void aBatchThatDoesNotSplitIsRefusedBeforeTraining(@TempDir Path dir) throws Exception {
        int port = Ranks.freePort();
        List<CompletableFuture<Object>> ranks = new ArrayList<>();
        for (int r = 0; r < 3; r++) {
            TrainCommand c = command(dir.resolve("r" + r), Map.of("RANK", "" + r, "WORLD_SIZE", "3", "MASTER_ADDR",
                    "127.0.0.1", "MASTER_PORT", "" + port));
            ranks.add(CompletableFuture.supplyAsync(() -> {
                try {
                    return c.train(null, into(new ByteArrayOutputStream()));
                } catch (Exception e) {
                    return e;
                }
            }));
        }
        for (CompletableFuture<Object> f : ranks) {
            Object o = f.get(60, TimeUnit.SECONDS);
            assertInstanceOf(IllegalArgumentException.class, o, String.valueOf(o));
            assertTrue(((Exception) o).getMessage().contains("--batch 8") && ((Exception) o).getMessage().contains("WORLD_SIZE=3"));
        }
        TrainCommand env = command(dir.resolve("x"), Map.of(), "--dist", "env");
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> env.train(null, into(new ByteArrayOutputStream())));
        assertTrue(e.getMessage().contains("--dist env") && e.getMessage().contains("WORLD_SIZE"), e.getMessage());
    }
}
