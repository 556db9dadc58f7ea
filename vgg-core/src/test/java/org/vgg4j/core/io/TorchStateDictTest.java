package org.vgg4j.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.model.HostMemoryBackend;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.tensor.DType;

/**
 * torch.save files (scripts/make_pth_fixtures.py, real torch 1.13) read element for element as torch wrote them,
 * in both formats, and hostile or unsupported files refused with errors that name the problem.
 */
class TorchStateDictTest {
    private static final HostMemoryBackend MEM = new HostMemoryBackend();

    @TempDir
    Path dir;

    static Path pth(String name) {
        try {
            return Paths.get(TorchStateDictTest.class.getResource("/pth/" + name).toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Every tensor of {@code file} against torch's values stored under "{@code expectedPrefix}/key". */
    private static void assertMatchesTorch(String file, String expectedPrefix, StateDicts.Format format) throws IOException {
        try (TorchStateDict sd = TorchStateDict.open(pth(file));
             Safetensors.Reader want = Safetensors.open(pth("expected.safetensors"))) {
            assertEquals(format, sd.format(), file);
            List<String> keys = new ArrayList<>();
            for (String k : want.tensors().keySet()) {
                if (k.startsWith(expectedPrefix + "/")) {
                    keys.add(k.substring(expectedPrefix.length() + 1));
                }
            }
            assertTrue(keys.size() > 0, expectedPrefix);
            assertEquals(keys, new ArrayList<>(sd.tensors().keySet()), file + ": keys in state-dict order");
            for (String k : keys) {
                Safetensors.TensorInfo w = want.info(expectedPrefix + "/" + k);
                TorchStateDict.TensorInfo got = sd.info(k);
                assertEquals(w.dtype(), got.dtype(), file + " " + k);
                assertArrayEquals(w.shape(), got.shape(), file + " " + k);
                if (w.dtype().isFloat()) {
                    assertArrayEquals(want.readDoubles(w.name()), sd.readDoubles(k), file + " " + k);
                } else {
                    assertArrayEquals(want.readLongs(w.name()), sd.readLongs(k), file + " " + k);
                }
            }
        }
    }

    @Test
    void zipFormatMatchesTorchElementForElement() throws IOException {
        assertMatchesTorch("vgg11_bn_narrow.pth", "vgg11_bn_narrow.pth", StateDicts.Format.TORCH_ZIP);
        assertMatchesTorch("tiny_f16.pth", "tiny_f16.pth", StateDicts.Format.TORCH_ZIP);
        assertMatchesTorch("tiny_f64.pth", "tiny_f64.pth", StateDicts.Format.TORCH_ZIP);
    }

    @Test
    void legacyFormatMatchesTorchElementForElement() throws IOException {
        assertMatchesTorch("vgg11_bn_narrow_legacy.pth", "vgg11_bn_narrow.pth", StateDicts.Format.TORCH_LEGACY);
        assertMatchesTorch("tiny_bf16_legacy.pth", "tiny_bf16_legacy.pth", StateDicts.Format.TORCH_LEGACY);
    }

    @Test
    void tensorsSharingAStorageAndParametersAreRead() throws IOException {
        assertMatchesTorch("shared_storage.pth", "shared_storage.pth", StateDicts.Format.TORCH_ZIP);
        try (TorchStateDict sd = TorchStateDict.open(pth("shared_storage.pth"))) {
            // base = arange(12) / 8; a = base[2:8].view(2, 3), b = base[8:], p = Parameter([1.5, -2.25])
            assertArrayEquals(new double[] {0.25, 0.375, 0.5, 0.625, 0.75, 0.875}, sd.readDoubles("a"));
            assertArrayEquals(new long[] {2, 3}, sd.info("a").shape());
            assertArrayEquals(new double[] {1.0, 1.125, 1.25, 1.375}, sd.readDoubles("b"));
            assertArrayEquals(new double[] {1.5, -2.25}, sd.readDoubles("p"));
        }
    }

    @Test
    void torchvisionStateDictLoadsIntoANetworkFromEitherFormat() throws IOException {
        for (String file : List.of("vgg11_bn_narrow.pth", "vgg11_bn_narrow_legacy.pth")) {
            Network n = Vgg.build(MEM, DType.FLOAT32, CheckpointTest.VGG11_BN_NARROW);
            Checkpoint.Loaded l = StateDicts.load(n, pth(file), Checkpoint.Options.STRICT);
            assertEquals(2, l.batchesTracked(), file); // the script ran two training-mode forwards
            try (Safetensors.Reader want = Safetensors.open(pth("expected.safetensors"))) {
                for (ParamStore.Entry e : n.params().entries()) {
                    assertArrayEquals(want.readDoubles("vgg11_bn_narrow.pth/" + e.key()),
                            HostMemoryBackend.values(e.value()), file + " " + e.key());
                }
            }
            // the same through the one-call entry point, into a float64 network (converted)
            Network d = Vgg.build(MEM, DType.FLOAT64, CheckpointTest.VGG11_BN_NARROW);
            Checkpoint.loadWeights(d, pth(file));
            assertArrayEquals(HostMemoryBackend.values(n.params().get("features.0.weight").value()),
                    HostMemoryBackend.values(d.params().get("features.0.weight").value()));
        }
    }

    @Test
    void aStateDictThatDoesNotFitTheNetworkIsRefusedByName() {
        Network n = Vgg.build(MEM, DType.FLOAT32, CheckpointTest.VGG11_BN_NARROW);
        String m = assertThrows(IOException.class, () -> Checkpoint.loadWeights(n, pth("tiny_f64.pth"))).getMessage();
        assertTrue(m.contains("missing keys") && m.contains("features.1.weight"), m);
    }

    @Test
    void convertsToSafetensorsBitForBit() throws IOException {
        Path out = dir.resolve("tiny.safetensors");
        try (TorchStateDict sd = TorchStateDict.open(pth("tiny_bf16_legacy.pth"))) {
            sd.toSafetensors(out, Map.of("source", "test"));
        }
        try (Safetensors.Reader r = Safetensors.open(out);
             Safetensors.Reader want = Safetensors.open(pth("expected.safetensors"))) {
            assertEquals(List.of("features.0.weight", "features.0.bias", "classifier.6.weight", "classifier.6.bias"),
                    new ArrayList<>(r.tensors().keySet()));
            for (String k : r.tensors().keySet()) {
                assertEquals(Safetensors.Dtype.BF16, r.info(k).dtype());
                assertArrayEquals(want.readDoubles("tiny_bf16_legacy.pth/" + k), r.readDoubles(k), k);
            }
            assertEquals("test", r.metadata().get("source"));
        }
    }

    @Test
    void formatIsChosenByContent() throws IOException {
        assertEquals(StateDicts.Format.TORCH_ZIP, StateDicts.detect(pth("tiny_f16.pth")));
        assertEquals(StateDicts.Format.TORCH_LEGACY, StateDicts.detect(pth("tiny_bf16_legacy.pth")));
        assertEquals(StateDicts.Format.SAFETENSORS, StateDicts.detect(pth("expected.safetensors")));
        Path txt = dir.resolve("weights.pth");
        Files.writeString(txt, "not weights");
        String m = assertThrows(IOException.class, () -> StateDicts.detect(txt)).getMessage();
        assertTrue(m.contains("not a weights file") && m.contains("6e6f74"), m);
    }

    // ------------------------------------------------------------------ refused

    private static String refused(Path p) {
        return assertThrows(IOException.class, () -> TorchStateDict.open(p).close()).getMessage();
    }

    @Test
    void aPickleThatWouldRunACommandIsRefusedNamingTheGlobal() {
        for (String file : List.of("malicious.pth", "malicious_legacy.pth")) {
            String m = refused(pth(file));
            assertTrue(m.contains("global 'posix.system' is not allowed"), m);
            assertTrue(m.contains("collections.OrderedDict"), m); // says what is allowed
        }
    }

    @Test
    void truncatedFilesAreRefused() {
        String zip = refused(pth("truncated.pth"));
        assertTrue(zip.contains("truncated"), zip);
        String legacy = refused(pth("truncated_legacy.pth"));
        assertTrue(legacy.contains("storage") && legacy.contains("truncated"), legacy);
    }

    @Test
    void nonContiguousTensorsAndUnsupportedDtypesAreRefused() {
        String nc = refused(pth("noncontiguous.pth"));
        assertTrue(nc.contains("strides [1, 3]") && nc.contains("contiguous"), nc);
        String cx = refused(pth("complex.pth"));
        assertTrue(cx.contains("unsupported dtype") && cx.contains("torch.ComplexFloatStorage"), cx);
    }

    // ------------------------------------------------------------------ hostile pickles written by hand

    /** A hand-written pickle: opcodes and their arguments. */
    private static final class Pickle {
        private final ByteArrayOutputStream b = new ByteArrayOutputStream();

        Pickle op(int... bytes) {
            for (int x : bytes) {
                b.write(x);
            }
            return this;
        }

        Pickle global(String module, String name) {
            b.write('c');
            b.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
            return this;
        }

        Pickle str(String s) {
            byte[] u = s.getBytes(StandardCharsets.UTF_8);
            b.write('X');
            b.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(u.length).array());
            b.writeBytes(u);
            return this;
        }

        Pickle long8(long v) { // LONG1 with 8 bytes
            b.write(0x8a);
            b.write(8);
            b.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
            return this;
        }

        byte[] bytes() {
            return b.toByteArray();
        }
    }

    /** {"w": a float tensor of {@code elements} viewing storage "0" that declares {@code declared} elements}. */
    private static byte[] stateDictPickle(long declared, long elements) {
        return new Pickle().op(0x80, 2).global("collections", "OrderedDict").op(')', 'R', '(').str("w")
                .global("torch._utils", "_rebuild_tensor_v2").op('(', '(').str("storage").global("torch", "FloatStorage")
                .str("0").str("cpu").long8(declared).op('t', 'Q', 'K', 0).long8(elements).op(0x85, 'K', 1, 0x85, 0x89)
                .global("collections", "OrderedDict").op(')', 'R', 't', 'R', 'u', '.').bytes();
    }

    /** The same as PyTorch before 0.4 wrote it: _rebuild_tensor(storage, offset, size, stride). */
    private static byte[] stateDictPickleV1(long elements) {
        return new Pickle().op(0x80, 2).global("collections", "OrderedDict").op(')', 'R', '(').str("w")
                .global("torch._utils", "_rebuild_tensor").op('(', '(').str("storage").global("torch", "HalfStorage")
                .str("0").str("cpu").long8(elements).op('t', 'Q', 'K', 1).long8(elements - 1).op(0x85, 'K', 1, 0x85)
                .op('t', 'R', 'u', '.').bytes();
    }

    private Path zip(byte[] pickle, byte[] storage) throws IOException {
        Path p = dir.resolve("hand.pth");
        try (OutputStream f = Files.newOutputStream(p); ZipOutputStream z = new ZipOutputStream(f)) {
            z.putNextEntry(new ZipEntry("hand/data.pkl"));
            z.write(pickle);
            z.putNextEntry(new ZipEntry("hand/data/0"));
            z.write(storage);
        }
        return p;
    }

    @Test
    void handWrittenStateDictReadsAndHostileSizesFailBeforeAllocating() throws IOException {
        try (TorchStateDict sd = TorchStateDict.open(zip(stateDictPickle(3, 3), new byte[12]))) {
            assertArrayEquals(new double[3], sd.readDoubles("w"));
        }
        // PyTorch < 0.4: a half tensor [1.0, 2.0] at offset 1 of a 3-element storage
        byte[] halves = {0, 0, 0, 0x3c, 0, 0x40}; // 0.0, 1.0, 2.0 as little-endian float16
        try (TorchStateDict sd = TorchStateDict.open(zip(stateDictPickleV1(3), halves))) {
            assertEquals(Safetensors.Dtype.F16, sd.info("w").dtype());
            assertArrayEquals(new double[] {1.0, 2.0}, sd.readDoubles("w"));
        }
        // a storage declaring 2^40 floats in a 12-byte entry: refused from the sizes alone
        String big = refused(zip(stateDictPickle(1L << 40, 3), new byte[12]));
        assertTrue(big.contains("declares 1099511627776 F32 elements") && big.contains("holds 12 bytes"), big);
        // a tensor larger than the storage it views
        String past = refused(zip(stateDictPickle(3, 1L << 50), new byte[12]));
        assertTrue(past.contains("runs past its storage '0' of 3 elements"), past);
    }

    private static String unpickleFails(byte[] pickle) {
        return assertThrows(IOException.class,
                () -> Unpickler.load(ByteBuffer.wrap(pickle), "hand", Unpickler::refusePersistent)).getMessage();
    }

    @Test
    void unpicklerChecksEveryLengthAndRefusesWhatAStateDictDoesNotNeed() {
        // a string declaring 2 GB in a 10-byte pickle
        String len = unpickleFails(new Pickle().op(0x80, 2, 'X', 0xff, 0xff, 0xff, 0x7f, 'a', '.').bytes());
        assertTrue(len.contains("declared length 2147483647 exceeds the 2 bytes left"), len);
        assertTrue(unpickleFails(new Pickle().op(0x80, 2).global("builtins", "eval").op('.').bytes())
                .contains("global 'builtins.eval' is not allowed"));
        assertTrue(unpickleFails(new Pickle().op(0x80, 2, 0x81, '.').bytes()).contains("opcode 0x81 is not supported"));
        assertTrue(unpickleFails(new Pickle().op(0x80, 2, 'h', 7, '.').bytes()).contains("memo entry 7"));
        assertTrue(unpickleFails(new Pickle().op(0x80, 2, 'N').bytes()).contains("truncated"));
        assertTrue(unpickleFails(new Pickle().op(0x80, 2).global("torch", "FloatStorage").op(')', 'R', '.').bytes())
                .contains("torch.FloatStorage cannot be called"));
    }
}
