package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fault injection: the disk fills up in the middle of writing a checkpoint (the write fails as a full disk makes it
 * fail, with ENOSPC's "No space left on device", after part of the file is written). The run stops with that error,
 * no checkpoint that was complete before is lost or damaged, and a resumed run (after space is freed) continues bit
 * for bit as if nothing had happened.
 */
class FullDiskTest {
    private static final String FULL = "No space left on device";

    @Test
    void aCheckpointWriteThatHitsAFullDiskLosesNothingAndTheRunResumesBitwise(@TempDir Path dir) throws Exception {
        Scenario.Outcome whole = Scenario.run(dir.resolve("whole"), List.of(), (p, t) -> { });

        Path run = dir.resolve("run");
        String failing = String.format("step-%010d.safetensors", 9);
        Checkpointer.WriteHook diskFills = (target, tensor) -> {
            if (target.getFileName().toString().equals(failing) && tensor.equals("features.4.weight")) {
                throw new UncheckedIOException(new IOException(target + ": " + FULL));
            }
        };
        Exception e = assertThrows(Exception.class, () -> Scenario.run(run, List.of(), diskFills));
        assertTrue(messages(e).contains(FULL), "the error says the disk is full: " + messages(e));

        List<Path> kept = new Checkpointer(run, 2).list();
        assertTrue(!kept.isEmpty(), "earlier checkpoints are kept");
        assertTrue(kept.stream().noneMatch(p -> p.getFileName().toString().equals(failing)),
                "the half-written checkpoint is not taken for a complete one: " + kept);
        try (Stream<Path> files = Files.list(run)) {
            List<String> names = files.map(p -> p.getFileName().toString()).toList();
            assertTrue(names.stream().noneMatch(n -> n.equals(failing)), "no file under the final name: " + names);
        }

        Scenario.Outcome resumed = Scenario.run(run, List.of(), (p, t) -> { });
        assertArrayEquals(whole.params(), resumed.params(), "parameters");
        assertArrayEquals(whole.state(), resumed.state(), "BatchNorm running statistics");
        assertArrayEquals(whole.momentum(), resumed.momentum(), "momentum");
        assertEquals(whole.result().state().step(), resumed.result().state().step());
        try (Stream<Path> files = Files.list(run)) {
            List<String> left = files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".tmp")).toList();
            assertTrue(left.isEmpty(), "the failed write's temporary file is gone once a newer checkpoint landed: " + left);
        }
    }

    private static String messages(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            b.append(c.getMessage()).append(" | ");
        }
        return b.toString();
    }
}
