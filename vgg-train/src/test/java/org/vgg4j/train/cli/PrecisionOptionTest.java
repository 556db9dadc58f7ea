package org.vgg4j.train.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.train.cli.CliRun.vgg;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backends;

/**
 * {@code vgg train --precision fp32|tf32|bf16}: the cuda backends' operand precision for one run (refused, naming
 * the value, on the CPU backends and for anything else), set for the run and restored after it.
 */
class PrecisionOptionTest {
    private static final String[] TINY = {"train", "--batch", "8", "--width", "0.125", "--hidden", "16", "--epochs", "1",
        "--schedule", "constant", "--no-progress"};

    /** Fashion-MNIST's four IDX files with 16 training and 8 test images of noise: validation stays short. */
    private static Path tinyIdx(Path dir) throws IOException {
        SplittableRandom r = new SplittableRandom(5);
        for (String[] split : new String[][] {{"train", "16"}, {"t10k", "8"}}) {
            int n = Integer.parseInt(split[1]);
            ByteBuffer images = ByteBuffer.allocate(16 + n * 28 * 28).putInt(0x803).putInt(n).putInt(28).putInt(28);
            ByteBuffer labels = ByteBuffer.allocate(8 + n).putInt(0x801).putInt(n);
            for (int i = 0; i < n; i++) {
                labels.put((byte) (i % 10));
                for (int px = 0; px < 28 * 28; px++) {
                    images.put((byte) r.nextInt(256));
                }
            }
            Files.write(dir.resolve(split[0] + "-images-idx3-ubyte"), images.array());
            Files.write(dir.resolve(split[0] + "-labels-idx1-ubyte"), labels.array());
        }
        return dir;
    }

    private static String[] with(String[] a, String... b) {
        String[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** A usage error: exit code 2 and one line on stderr. */
    private static String refused(String... args) {
        CliRun r = vgg(args);
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        return r.err();
    }

    @Test
    void cpuBackendsAndUnknownValuesAreRefusedNamingTheValue(@TempDir Path dir) {
        String[] t = with(TINY, "--out", dir.resolve("run").toString());
        String err = refused(with(t, "--backend", "reference", "--precision", "bf16"));
        assertTrue(err.contains("--precision bf16: the reference backend computes in FP32 only; bf16 needs the cpu"
                + " backend (with AVX512-BF16) or a cuda backend"), err);
        err = refused(with(t, "--backend", "reference", "--precision", "tf32"));
        assertTrue(err.contains("--precision tf32: tf32 is a tensor-core format; the reference backend computes in"
                + " fp32, and tf32 needs the cuda (or cuda-emulated) backend"), err);
        err = refused(with(t, "--backend", "cpu", "--precision", "tf32"));
        assertTrue(err.contains("--precision tf32: tf32 is a tensor-core format; the cpu backend computes in fp32 or"
                + " bf16"), err);
        err = refused(with(t, "--backend", "reference", "--precision", "fp16"));
        assertTrue(err.contains("--precision fp16: expected fp32, tf32 or bf16"), err);
    }

    @Test
    void bf16ReachesTheCudaBackendForThisRunOnly(@TempDir Path dir) throws IOException {
        try {
            Backends.deviceCount("cuda-emulated");
        } catch (RuntimeException e) {
            Assumptions.abort("emulated CUDA device not available: " + e.getMessage());
        }
        String before = System.getProperty(TrainCommand.CUDA_MATH);
        String[] t = tinyOn("cuda-emulated", dir);
        CliRun fp32 = run(t, dir, "fp32", "fp32");
        assertEquals(0, fp32.code(), fp32.err());
        CliRun bf16 = run(t, dir, "bf16", "BF16");
        assertEquals(0, bf16.code(), bf16.err());
        assertTrue(bf16.out().contains("precision bf16: operands of the convolutions and GEMMs; FP32 accumulation,"
                + " master weights and SGD"), bf16.out());
        assertEquals(before, System.getProperty(TrainCommand.CUDA_MATH), "the property is restored after the run");
        assertBf16LossNearFp32(fp32, bf16);
    }

    /**
     * On a CPU with AVX512-BF16 the cpu backend trains in bf16 for this run (a loss near fp32's, not equal); on one
     * without, the run is refused naming the missing instruction set. Either way the property is restored.
     */
    @Test
    void bf16ReachesTheCpuBackendOrIsRefusedNamingWhy(@TempDir Path dir) throws IOException {
        String before = System.getProperty(TrainCommand.CPU_PRECISION);
        String[] t = tinyOn("cpu", dir);
        CliRun fp32 = run(t, dir, "fp32", "fp32");
        assertEquals(0, fp32.code(), fp32.err());
        CliRun bf16 = run(t, dir, "bf16", "bf16");
        assertEquals(before, System.getProperty(TrainCommand.CPU_PRECISION), "the property is restored after the run");
        boolean hasBf16 = Files.readString(Path.of("/proc/cpuinfo")).contains(" avx512_bf16");
        if (hasBf16) {
            assertEquals(0, bf16.code(), bf16.err());
            assertBf16LossNearFp32(fp32, bf16);
        } else {
            assertNotEquals(0, bf16.code(), bf16.out());
            assertTrue(bf16.err().contains("avx512_bf16"), bf16.err());
        }
    }

    /** TINY on backend, reading tiny IDX data written under dir. */
    private static String[] tinyOn(String backend, Path dir) throws IOException {
        Path data = tinyIdx(Files.createDirectories(dir.resolve("data")));
        return with(TINY, "--backend", backend, "--data", data.toString());
    }

    /** Runs t at precision, writing under dir/out. */
    private static CliRun run(String[] t, Path dir, String out, String precision) {
        return vgg(with(t, "--out", dir.resolve(out).toString(), "--precision", precision));
    }

    /** Same data, same initial weights: bf16 operands move the loss a little, not a lot. */
    private static void assertBf16LossNearFp32(CliRun fp32, CliRun bf16) {
        double a = trainLoss(fp32.out());
        double b = trainLoss(bf16.out());
        assertNotEquals(a, b, "bf16 operands change the loss: the backend ran in bf16");
        assertTrue(Math.abs(a - b) < 0.05 * a, "fp32 loss " + a + ", bf16 loss " + b);
    }

    private static double trainLoss(String out) {
        Matcher m = Pattern.compile("epoch 1: train loss ([0-9.]+)").matcher(out);
        assertTrue(m.find(), out);
        return Double.parseDouble(m.group(1));
    }
}
