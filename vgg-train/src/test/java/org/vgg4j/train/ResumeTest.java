package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resume after kill -9 reproduces the uninterrupted run bit for bit: a child JVM runs {@link Scenario}, is killed
 * with SIGKILL (Process.destroyForcibly) mid-run or in the middle of writing a checkpoint, and this JVM resumes
 * from what is on disk. Parameters, BatchNorm statistics and momentum must equal the uninterrupted run's exactly.
 */
class ResumeTest {
    private static Scenario.Outcome reference;

    @BeforeAll
    static void uninterrupted(@TempDir Path dir) throws IOException {
        reference = Scenario.run(dir, List.of(), (p, t) -> { });
        assertEquals(15, reference.result().state().step());
    }

    /** Starts the child, waits until a line starting with {@code trigger} appears, then kills it with SIGKILL. */
    private static String runAndKill(Path dir, String mode, String trigger) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // the child runs on the class path alone: this JVM's class path and its module path (the modules under test)
        String cp = Stream.of(System.getProperty("java.class.path"), System.getProperty("jdk.module.path"))
                .filter(p -> p != null && !p.isEmpty()).collect(Collectors.joining(File.pathSeparator));
        ProcessBuilder pb = new ProcessBuilder(java, "-Xmx256m", "-cp", cp, Scenario.class.getName(), dir.toString(), mode);
        pb.redirectError(ProcessBuilder.Redirect.DISCARD);
        Process child = pb.start();
        String seen = null;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.startsWith(trigger)) {
                    seen = line;
                    child.destroyForcibly(); // SIGKILL on Linux: no shutdown hooks, no flushing
                    break;
                }
            }
        } finally {
            child.destroyForcibly();
            assertTrue(child.waitFor(30, TimeUnit.SECONDS), "child did not die");
        }
        assertTrue(seen != null, "child never printed " + trigger);
        return seen;
    }

    private static void assertSameAsUninterrupted(Scenario.Outcome resumed) {
        assertArrayEquals(reference.params(), resumed.params(), "parameters");
        assertArrayEquals(reference.state(), resumed.state(), "BatchNorm running statistics");
        assertArrayEquals(reference.momentum(), resumed.momentum(), "momentum");
        assertEquals(reference.result().state().step(), resumed.result().state().step());
        assertEquals(reference.result().state().bestError(), resumed.result().state().bestError());
    }

    @Test
    void killedMidRunResumesBitwise(@TempDir Path dir) throws Exception {
        runAndKill(dir, "slow", "STEP 7");
        assertTrue(new Checkpointer(dir, 2).list().size() >= 1, "the child left checkpoints");
        assertSameAsUninterrupted(Scenario.run(dir, List.of(), (p, t) -> { }));
    }

    @Test
    void killedMidCheckpointWriteResumesBitwiseFromThePreviousOne(@TempDir Path dir) throws Exception {
        runAndKill(dir, "midwrite:9", "MIDWRITE");
        try (Stream<Path> files = Files.list(dir)) {
            List<String> names = files.map(p -> p.getFileName().toString()).toList();
            assertTrue(names.stream().anyMatch(n -> n.endsWith(".tmp")), "a half-written temporary file: " + names);
            assertTrue(names.contains("step-0000000008.safetensors"), names.toString());
            assertTrue(!names.contains("step-0000000009.safetensors"), names.toString());
        }
        assertSameAsUninterrupted(Scenario.run(dir, List.of(), (p, t) -> { }));
        try (Stream<Path> files = Files.list(dir)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "stale temporary files removed");
        }
    }

    @Test
    void anIterationLimitInsideAnEpochResumesWhereItStopped(@TempDir Path dir) throws Exception {
        // A schedule that does not depend on the total step count, so a longer second run can match a whole one.
        Recipe constant = Scenario.recipe().toBuilder().schedule(new Schedule.Constant()).build();
        Scenario.Outcome whole = Scenario.run(dir.resolve("whole"), constant, List.of(), (p, t) -> { });
        assertEquals(15, whole.result().state().step());
        Path split = dir.resolve("split");
        Scenario.Outcome first = Scenario.run(split, constant.toBuilder().maxEpochs(3).maxIterations(7).build(), List.of(), (p, t) -> { });
        assertEquals(7, first.result().state().step()); // 5 batches per epoch: stopped after batch 2 of epoch 2
        assertEquals(1, first.result().state().epoch());
        assertEquals(2, first.result().state().position());
        Scenario.Outcome rest = Scenario.run(split, constant, List.of(), (p, t) -> { });
        assertEquals(15, rest.result().state().step());
        assertArrayEquals(whole.params(), rest.params(), "parameters");
        assertArrayEquals(whole.state(), rest.state(), "BatchNorm running statistics");
        assertArrayEquals(whole.momentum(), rest.momentum(), "momentum");
    }

    /**
     * Checkpoints written while the Dropout layers counted their forward calls carry those counters in the metadata
     * ("dropout.calls"); the masks are keyed by the step now, so such a checkpoint resumes with the field ignored.
     */
    @Test
    void aCheckpointWithTheOldDropoutCountersStillResumesBitwise(@TempDir Path dir) throws Exception {
        Recipe constant = Scenario.recipe().toBuilder().schedule(new Schedule.Constant()).build();
        Scenario.Outcome whole = Scenario.run(dir.resolve("whole"), constant, List.of(), (p, t) -> { });
        Path split = dir.resolve("split");
        assertEquals(7, Scenario.run(split, constant.toBuilder().maxEpochs(3).maxIterations(7).build(), List.of(), (p, t) -> { }).result().state().step());
        List<Path> saved = new Checkpointer(split, 2).list();
        assertTrue(!saved.isEmpty());
        for (Path p : saved) {
            addOldDropoutCounters(p, "21,21"); // micro-batches of 3 over a batch of 8: 3 forwards per step
        }
        try (var r = org.vgg4j.core.io.Safetensors.open(saved.get(0))) {
            assertEquals("21,21", r.metadata().get("dropout.calls"));
        }
        Scenario.Outcome rest = Scenario.run(split, constant, List.of(), (p, t) -> { });
        assertEquals(15, rest.result().state().step());
        assertArrayEquals(whole.params(), rest.params(), "parameters");
        assertArrayEquals(whole.state(), rest.state(), "BatchNorm running statistics");
        assertArrayEquals(whole.momentum(), rest.momentum(), "momentum");
    }

    /** Rewrites {@code file}'s safetensors header with a "dropout.calls" metadata entry; the data stays as it is. */
    private static void addOldDropoutCounters(Path file, String calls) throws IOException {
        byte[] all = Files.readAllBytes(file);
        java.nio.ByteBuffer len = java.nio.ByteBuffer.wrap(all, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int n = Math.toIntExact(len.getLong());
        String header = new String(all, 8, n, StandardCharsets.UTF_8);
        String open = "{\"__metadata__\":{";
        assertTrue(header.startsWith(open), header);
        StringBuilder h = new StringBuilder(open).append("\"dropout.calls\":\"").append(calls).append("\",")
                .append(header.substring(open.length()).stripTrailing());
        while (h.toString().getBytes(StandardCharsets.UTF_8).length % 8 != 0) {
            h.append(' '); // the data area stays 8-byte aligned
        }
        byte[] head = h.toString().getBytes(StandardCharsets.UTF_8);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.write(java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(head.length).array());
        out.write(head);
        out.write(all, 8 + n, all.length - 8 - n);
        Files.write(file, out.toByteArray());
    }
}
