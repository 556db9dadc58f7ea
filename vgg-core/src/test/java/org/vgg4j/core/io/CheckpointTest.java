package org.vgg4j.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.model.HostMemoryBackend;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;

/** Checkpoints of a Network under torchvision names: bitwise round trip, strict checks, torchvision interop. */
class CheckpointTest {
    private static final HostMemoryBackend MEM = new HostMemoryBackend();
    /** The narrow vgg11_bn of scripts/goldens/make_goldens.py: width 1/32, hidden 16, 10 classes, 32x32. */
    static final VggSpec VGG11_BN_NARROW = new VggSpec(VggConfig.A, true, 10, 32, 1.0 / 32, 16, 0.0, 0);

    @TempDir
    Path dir;

    private static Network net(VggSpec spec, DType dt, long seed) {
        Network n = Vgg.build(MEM, dt, spec);
        Initializers.initialize(n, Initializers.Scheme.GLOROT_UNIFORM, seed);
        return n;
    }

    @Test
    void roundTripIsBitwiseWithTorchvisionNames() throws IOException {
        for (DType dt : DType.values()) {
            Network a = net(VGG11_BN_NARROW, dt, 1);
            MEM.fill(a.params().get("features.1.running_mean").value(), 0.25); // state travels too
            Path p = dir.resolve("a-" + dt + ".safetensors");
            Checkpoint.save(a, p, Map.of("epoch", "3"), 17);
            Network b = net(VGG11_BN_NARROW, dt, 2);
            Checkpoint.Loaded l = Checkpoint.load(b, p);
            assertEquals(17, l.batchesTracked());
            assertEquals("3", l.metadata().get("epoch"));
            for (ParamStore.Entry e : a.params().entries()) {
                assertArrayEquals(HostMemoryBackend.values(e.value()), HostMemoryBackend.values(b.params().get(e.key()).value()), e.key());
            }
            try (Safetensors.Reader r = Safetensors.open(p)) {
                assertEquals(dt == DType.FLOAT64 ? Safetensors.Dtype.F64 : Safetensors.Dtype.F32, r.info("features.0.weight").dtype());
                assertArrayEquals(new long[] {2, 3, 3, 3}, r.info("features.0.weight").shape());
                assertArrayEquals(new long[] {10, 16}, r.info("classifier.6.weight").shape());
                assertEquals(Safetensors.Dtype.I64, r.info("features.1.num_batches_tracked").dtype());
                assertArrayEquals(new long[0], r.info("features.1.num_batches_tracked").shape());
            }
        }
    }

    @Test
    void readsTorchvisionsOwnStateDictStrictly() throws IOException {
        Path tv = golden("vgg11_bn_narrow_state_dict.safetensors");
        Network n = Vgg.build(MEM, DType.FLOAT32, VGG11_BN_NARROW);
        Checkpoint.Loaded l;
        try (Safetensors.Reader r = Safetensors.open(tv)) {
            // our key set equals torchvision's state_dict key set exactly
            assertEquals(new ArrayList<>(r.tensors().keySet()).stream().sorted().toList(),
                    new ArrayList<>(Checkpoint.expectedKeys(n).keySet()).stream().sorted().toList());
            l = Checkpoint.load(n, r, Checkpoint.Options.STRICT);
            for (ParamStore.Entry e : n.params().entries()) {
                assertArrayEquals(r.readDoubles(e.key()), HostMemoryBackend.values(e.value()), e.key());
            }
        }
        assertEquals(2, l.batchesTracked()); // the script ran two training-mode forwards
        // Save it back for the reverse check: python3 scripts/goldens/make_goldens.py --check-java <this file>
        Path out = Paths.get("target", "interop", "vgg11_bn_narrow_from_java.safetensors");
        Checkpoint.save(n, out, Map.of("format", "pt", "source", "vgg4j"), l.batchesTracked());
        assertTrue(Files.size(out) > 0);
    }

    static Path golden(String name) {
        try {
            return Paths.get(CheckpointTest.class.getResource("/goldens/" + name).toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private String loadFails(Network n, Path p) {
        return assertThrows(IOException.class, () -> Checkpoint.load(n, p)).getMessage();
    }

    @Test
    void wrongDtypeIsReportedUnlessConversionIsAsked() throws IOException {
        Network f64 = net(VGG11_BN_NARROW, DType.FLOAT64, 1);
        Path p = dir.resolve("f64.safetensors");
        Checkpoint.save(f64, p, null);
        Network f32 = net(VGG11_BN_NARROW, DType.FLOAT32, 2);
        assertTrue(loadFails(f32, p).contains("tensor 'features.0.weight' has dtype F64; expected F32 (the network's dtype)"));
        try (Safetensors.Reader r = Safetensors.open(p)) {
            Checkpoint.load(f32, r, new Checkpoint.Options(true, k -> false));
        }
        double[] want = HostMemoryBackend.values(f64.params().get("classifier.0.weight").value());
        double[] got = HostMemoryBackend.values(f32.params().get("classifier.0.weight").value());
        for (int i = 0; i < want.length; i++) {
            assertEquals((float) want[i], (float) got[i]);
        }
    }

    @Test
    void wrongShapeMissingAndExtraKeysAreAllReported() throws IOException {
        Network ten = net(VGG11_BN_NARROW, DType.FLOAT32, 1);
        Path p = dir.resolve("ten.safetensors");
        Checkpoint.save(ten, p, null);
        Network hundred = net(new VggSpec(VggConfig.A, true, 100, 32, 1.0 / 32, 16, 0.0, 0), DType.FLOAT32, 1);
        String msg = loadFails(hundred, p);
        assertTrue(msg.contains("tensor 'classifier.6.weight' has shape [10, 16]; expected [100, 16]"), msg);
        assertTrue(msg.contains("tensor 'classifier.6.bias' has shape [10]; expected [100]"), msg);

        Network plain = net(new VggSpec(VggConfig.A, false, 10, 32, 1.0 / 32, 16, 0.0, 0), DType.FLOAT32, 1);
        msg = loadFails(plain, p); // a BN file into a network without BN: every BN key is unexpected, convs moved
        assertTrue(msg.contains("unexpected keys [features.1.weight, features.1.bias, features.1.running_mean,"), msg);
        assertTrue(msg.contains("missing keys [features.3.weight"), msg);

        // a file lacking one tensor, and one with a stray tensor
        List<Safetensors.Entry> entries = new ArrayList<>();
        try (Safetensors.Reader r = Safetensors.open(p)) {
            for (Safetensors.TensorInfo t : r.tensors().values()) {
                if (!t.name().equals("features.4.bias")) {
                    double[] v = t.dtype() == Safetensors.Dtype.I64 ? null : r.readDoubles(t.name());
                    entries.add(v == null ? Safetensors.ofLongs(t.name(), t.shape(), r.readLongs(t.name()))
                            : Safetensors.ofDoubles(t.name(), t.dtype(), t.shape(), v));
                }
            }
        }
        entries.add(Safetensors.ofDoubles("classifier.9.weight", Safetensors.Dtype.F32, new long[] {1}, new double[1]));
        Path q = dir.resolve("edited.safetensors");
        Safetensors.write(q, entries, null);
        msg = loadFails(ten, q);
        assertTrue(msg.endsWith("does not fit network 'A_bnx0.03125': missing keys [features.4.bias]; unexpected keys [classifier.9.weight]"), msg);
        // ignored keys are skipped, the missing one still fails
        try (Safetensors.Reader r = Safetensors.open(q)) {
            msg = assertThrows(IOException.class, () -> Checkpoint.load(ten, r, new Checkpoint.Options(false, k -> k.startsWith("classifier.9")))).getMessage();
        }
        assertTrue(msg.endsWith("missing keys [features.4.bias]"), msg);
    }

    @Test
    void aFailedLoadChangesNothing() throws IOException {
        Network ten = net(VGG11_BN_NARROW, DType.FLOAT32, 1);
        Path p = dir.resolve("ten.safetensors");
        Checkpoint.save(ten, p, null);
        Network other = net(new VggSpec(VggConfig.A, true, 100, 32, 1.0 / 32, 16, 0.0, 0), DType.FLOAT32, 5);
        double[] before = HostMemoryBackend.values(other.params().values());
        assertThrows(IOException.class, () -> Checkpoint.load(other, p));
        assertArrayEquals(before, HostMemoryBackend.values(other.params().values()));
    }
}
