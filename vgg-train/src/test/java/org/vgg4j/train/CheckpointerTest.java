package org.vgg4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.io.Checkpoint;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;

class CheckpointerTest {

    private static TrainState state(long step) {
        return new TrainState(1, 2, step, new Schedule.Plateau.State(1, 0.25, 0), 0.1, 3.5, 16, 0.25, 0);
    }

    /** Saves steps 1..5 with parameters that differ per step (a constant added), keep last 3, best at step 2. */
    private static Replicas savedRun(Path dir) throws IOException {
        Replicas r = Tiny.replicas(1, Tiny.spec(false, 0.5), DType.FLOAT32, 0.9, 5e-4);
        Initializers.initialize(r.primary(), Initializers.Scheme.GLOROT_UNIFORM, 3);
        Checkpointer c = new Checkpointer(dir, 3);
        for (long step = 1; step <= 5; step++) {
            r.primary().backend().fill(r.optimizer(0).velocity(), step * 0.5);
            r.primary().backend().fill(r.primary().params().get("classifier.6.bias").value(), step);
            c.save(r, state(step), "test", step == 2);
        }
        return r;
    }

    private static double bias0(Replicas r) {
        double[] b = new double[10];
        r.primary().backend().copyOut(r.primary().params().get("classifier.6.bias").value(), b, 0);
        return b[0];
    }

    @Test
    void keepsTheLastKAndTheBestAndRestoresEverything(@TempDir Path dir) throws IOException {
        try (Replicas r = savedRun(dir)) {
            Checkpointer c = new Checkpointer(dir, 3);
            assertEquals(List.of("step-0000000005.safetensors", "step-0000000004.safetensors", "step-0000000003.safetensors"),
                    c.list().stream().map(p -> p.getFileName().toString()).toList());
            assertTrue(Files.exists(dir.resolve(Checkpointer.BEST)));
            float[] before = new float[Math.toIntExact(r.primary().params().values().size())];
            r.primary().backend().copyOut(r.primary().params().values(), before, 0);
            r.primary().backend().fill(r.primary().params().values(), 0);
            r.primary().backend().fill(r.optimizer(0).velocity(), 0);
            TrainState s = c.restore(r).orElseThrow();
            assertEquals(5, s.step());
            assertEquals(state(5).plateau(), s.plateau());
            assertEquals(0.1, s.lrScale());
            assertEquals(3.5, s.epochLossSum());
            float[] after = new float[before.length];
            r.primary().backend().copyOut(r.primary().params().values(), after, 0);
            assertArrayEquals(before, after);
            assertEquals(2.5, Tiny.host(r.optimizer(0).velocity(), r.primary())[7]);
            // best.safetensors is the step-2 file and loads as a plain network checkpoint (torchvision names)
            try (Network plain = Vgg.build(r.primary().backend(), DType.FLOAT32, Tiny.spec(false, 0.5))) {
                Initialization.loadWeights(plain, dir.resolve(Checkpointer.BEST));
                double[] b = new double[10];
                plain.backend().copyOut(plain.params().get("classifier.6.bias").value(), b, 0);
                assertEquals(2.0, b[3]);
            }
        }
    }

    @Test
    void aCorruptNewestCheckpointIsDetectedAndThePreviousOneUsed(@TempDir Path dir) throws IOException {
        try (Replicas r = savedRun(dir)) {
            Path newest = dir.resolve("step-0000000005.safetensors");
            try (RandomAccessFile f = new RandomAccessFile(newest.toFile(), "rw")) {
                f.seek(f.length() - 100); // inside the momentum data: only the checksum can tell
                int b = f.read();
                f.seek(f.length() - 100);
                f.write(b ^ 0x10);
            }
            IOException e = assertThrows(IOException.class, () -> Checkpointer.load(newest, r));
            assertTrue(e.getMessage().contains("checksum"), e.getMessage());
            TrainState s = new Checkpointer(dir, 3).restore(r).orElseThrow();
            assertEquals(4, s.step());
            assertEquals(4.0, bias0(r));
        }
    }

    @Test
    void aTruncatedCheckpointIsDetectedAndThePreviousOneUsed(@TempDir Path dir) throws IOException {
        try (Replicas r = savedRun(dir)) {
            Path newest = dir.resolve("step-0000000005.safetensors");
            try (RandomAccessFile f = new RandomAccessFile(newest.toFile(), "rw")) {
                f.setLength(f.length() / 2);
            }
            Files.writeString(dir.resolve("step-0000000004.safetensors"), "garbage"); // and the next one too
            TrainState s = new Checkpointer(dir, 3).restore(r).orElseThrow();
            assertEquals(3, s.step());
            assertEquals(3.0, bias0(r));
        }
    }

    @Test
    void checkpointsCarryTorchvisionNamesAndTheMomentum(@TempDir Path dir) throws IOException {
        try (Replicas r = savedRun(dir)) {
            var keys = Checkpoint.expectedKeys(r.primary()).keySet();
            try (var reader = org.vgg4j.core.io.Safetensors.open(dir.resolve("step-0000000005.safetensors"))) {
                assertTrue(reader.tensors().keySet().containsAll(keys));
                assertTrue(reader.tensors().containsKey(Checkpointer.MOMENTUM));
                assertEquals("test", reader.metadata().get("recipe"));
            }
        }
    }

    @Test
    void aNonFiniteCheckpointIsSkippedAndWhenNoneIsLeftTheResumeStopsNamingFileAndTensor(@TempDir Path dir)
            throws IOException {
        try (Replicas r = savedRun(dir)) {
            // a run that diverged inside the SGD update saves a NaN with a valid checksum
            r.primary().backend().fill(r.primary().params().get("features.3.bias").value(), Double.NaN);
            Checkpointer c = new Checkpointer(dir, 3);
            c.save(r, state(6), "test", false);
            r.primary().backend().fill(r.primary().params().get("features.3.bias").value(), 0);
            assertEquals(5, c.restore(r).orElseThrow().step()); // the previous, finite one
            assertEquals(5.0, bias0(r));

            Path nan = dir.resolve("step-0000000006.safetensors");
            Path alone = Files.createDirectory(dir.resolve("alone"));
            Files.copy(nan, alone.resolve(nan.getFileName()));
            r.primary().backend().fill(r.primary().params().values(), 0.25);
            IOException e = assertThrows(IOException.class, () -> new Checkpointer(alone, 3).restore(r));
            String m = e.getMessage();
            assertTrue(m.contains("none of its 1 checkpoint is usable") && m.contains(alone.resolve(nan.getFileName()).toString())
                    && m.contains("tensor 'features.3.bias' holds NaN at element 0") && !m.contains("\n"), m);
            assertTrue(Arrays.stream(Tiny.values(r.primary())).allMatch(v -> v == 0.25)); // the replicas untouched
        }
    }

    @Test
    void aCheckpointOfAnotherNetworkStopsTheResumeAtOnceAndLeavesTheReplicasAsTheyWere(@TempDir Path dir)
            throws IOException {
        savedRun(dir).close();
        VggSpec wider = new VggSpec(VggConfig.A, false, 10, 32, 0.125, 16, 0.5, 7);
        try (Replicas other = Tiny.replicas(1, wider, DType.FLOAT32, 0.9, 5e-4)) {
            other.primary().backend().fill(other.primary().params().values(), 0.25);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Checkpointer(dir, 3).restore(other));
            String m = e.getMessage();
            assertTrue(m.startsWith("cannot resume: " + dir.resolve("step-0000000005.safetensors") + " does not fit")
                    && m.contains("expected"), m);
            assertTrue(Arrays.stream(Tiny.values(other.primary())).allMatch(v -> v == 0.25));
        }
        assertEquals(3, new Checkpointer(dir, 3).list().size());
    }

    @Test
    void aResumedRunNeverPrunesWhatItWritesInFavourOfAHigherNumberedFile(@TempDir Path dir) throws IOException {
        try (Replicas r = savedRun(dir)) { // steps 3, 4, 5 on disk
            Path newest = dir.resolve("step-0000000005.safetensors");
            Files.writeString(dir.resolve("step-0000000004.safetensors"), "garbage");
            Files.writeString(newest, "garbage");
            Checkpointer c = new Checkpointer(dir, 1); // keep only the last
            TrainState s = c.restore(r).orElseThrow();
            assertEquals(3, s.step());
            c.save(r, state(4), "test", false); // replaces the damaged step 4; step 5 is not this run's past
            assertEquals(List.of("step-0000000005.safetensors", "step-0000000004.safetensors"),
                    c.list().stream().map(p -> p.getFileName().toString()).toList());
            assertEquals(4, c.restore(r).orElseThrow().step()); // what the resumed run wrote, not pruned
            c.save(r, state(5), "test", false);
            assertEquals(List.of("step-0000000005.safetensors"), c.list().stream().map(p -> p.getFileName().toString()).toList());
            assertEquals(5, c.restore(r).orElseThrow().step());
        }
    }
}
