package org.vgg4j.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The safetensors container: round trip and every header corruption the reader must refuse. */
class SafetensorsTest {
    @TempDir
    Path dir;

    /** A file with this exact header text and {@code dataBytes} zero bytes of data. */
    private Path craft(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path p = dir.resolve("crafted.safetensors");
        Files.write(p, b.array());
        return p;
    }

    private String openFails(Path p) {
        return assertThrows(IOException.class, () -> Safetensors.open(p).close()).getMessage();
    }

    @Test
    void roundTripIsBitwiseAndAligned() throws IOException {
        double[] a = {1.0, -0.0, Double.MIN_VALUE, Double.NaN, 1e300, Math.PI};
        double[] f = {1.5f, -2.25f, Float.MIN_VALUE, 3.0e38f};
        Path p = dir.resolve("x.safetensors");
        Safetensors.write(p, List.of(
                Safetensors.ofDoubles("a", Safetensors.Dtype.F64, new long[] {2, 3}, a),
                Safetensors.ofDoubles("f", Safetensors.Dtype.F32, new long[] {4}, f),
                Safetensors.ofLongs("n", new long[0], new long[] {-7})), Map.of("format", "pt", "q\"uote", "a\\b"));
        try (Safetensors.Reader r = Safetensors.open(p)) {
            assertEquals(List.of("a", "f", "n"), List.copyOf(r.tensors().keySet()));
            double[] back = r.readDoubles("a");
            for (int i = 0; i < a.length; i++) {
                assertEquals(Double.doubleToRawLongBits(a[i]), Double.doubleToRawLongBits(back[i]));
            }
            assertArrayEquals(f, r.readDoubles("f"));
            assertArrayEquals(new long[] {-7}, r.readLongs("n"));
            assertArrayEquals(new long[0], r.info("n").shape());
            assertEquals(Map.of("format", "pt", "q\"uote", "a\\b"), r.metadata());
        }
        byte[] raw = Files.readAllBytes(p);
        long n = ByteBuffer.wrap(raw, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + n) % 8, "data area is 8-byte aligned");
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temporary file is left behind");
        }
    }

    @Test
    void halfAndBfloat16AreReadAsFloats() throws IOException {
        // 1.0, -2.0, 65504, 2^-24 (smallest subnormal) as F16; 1.0 and -3.0 as BF16
        ByteBuffer d = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        d.putShort((short) 0x3C00).putShort((short) 0xC000).putShort((short) 0x7BFF).putShort((short) 0x0001);
        d.putShort((short) 0x3F80).putShort((short) 0xC040);
        byte[] h = ("{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]}}").getBytes(StandardCharsets.UTF_8);
        ByteBuffer f = ByteBuffer.allocate(8 + h.length + 12).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h).put(d.array());
        Path p = dir.resolve("half.safetensors");
        Files.write(p, f.array());
        try (Safetensors.Reader r = Safetensors.open(p)) {
            assertArrayEquals(new double[] {1.0, -2.0, 65504.0, 0x1.0p-24}, r.readDoubles("h"));
            assertArrayEquals(new double[] {1.0, -3.0}, r.readDoubles("b"));
        }
    }

    @Test
    void truncatedFiles() throws IOException {
        Path p = dir.resolve("t.safetensors");
        Files.write(p, new byte[] {1, 2, 3});
        assertTrue(openFails(p).endsWith("file is 3 bytes; a safetensors file starts with an 8-byte header length"));
        Safetensors.write(p, List.of(Safetensors.ofDoubles("w", Safetensors.Dtype.F64, new long[] {4}, new double[4])), null);
        byte[] all = Files.readAllBytes(p);
        Files.write(p, Arrays.copyOf(all, all.length - 1)); // last byte of data lost
        assertTrue(openFails(p).contains("tensor 'w' data_offsets [0, 32] run past the data area of 31 bytes (truncated file?)"),
                openFails(p));
        Files.write(p, Arrays.copyOf(all, 20)); // inside the header
        assertTrue(openFails(p).contains("runs past the end of the 20-byte file"), openFails(p));
    }

    @Test
    void hugeOrTinyHeaderLength() throws IOException {
        Path p = dir.resolve("h.safetensors");
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(200_000_000L).putLong(0);
        Files.write(p, b.array());
        assertTrue(openFails(p).endsWith("header length 200000000 is outside [2, 100000000] bytes"));
        b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).putLong(0);
        Files.write(p, b.array());
        assertTrue(openFails(p).endsWith("header length 18446744073709551615 is outside [2, 100000000] bytes"));
    }

    @Test
    void invalidJsonAndWrongStructure() throws IOException {
        assertTrue(openFails(craft("{\"w\":{\"dtype\":\"F32\",", 0)).contains("header is not valid JSON"));
        assertTrue(openFails(craft("[1,2]", 0)).contains("header must be a JSON object, got [1, 2]"));
        assertTrue(openFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8)).contains("duplicate key \"w\""));
        assertTrue(openFails(craft("{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4))
                .contains("tensor 'w' has unsupported dtype 'F33'"));
        assertTrue(openFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4))
                .contains("tensor 'w' shape [-1] has dimension -1; expected a non-negative integer"));
        assertTrue(openFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4))
                .contains("tensor 'w' needs data_offsets [begin, end] of integers, got [0]"));
        assertTrue(openFails(craft("{\"__metadata__\":{\"k\":1}}", 0)).contains("metadata value of 'k' must be a string, got 1"));
        byte[] bad = {'{', '"', (byte) 0xC3, '"', ':', '1', '}'};
        Path p = dir.resolve("utf.safetensors");
        ByteBuffer b = ByteBuffer.allocate(8 + bad.length).order(ByteOrder.LITTLE_ENDIAN).putLong(bad.length).put(bad);
        Files.write(p, b.array());
        assertTrue(openFails(p).contains("header is not valid UTF-8"));
    }

    @Test
    void offsetsMustBeOrderedInsideAndSized() throws IOException {
        assertTrue(openFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8))
                .contains("tensor 'w' data_offsets [8, 4]: need 0 <= begin <= end"));
        assertTrue(openFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1000,1004]}}", 8))
                .contains("tensor 'w' data_offsets [1000, 1004] run past the data area of 8 bytes"));
        assertTrue(openFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8))
                .contains("tensor 'w' holds 8 bytes but shape [3] of F32 needs 12"));
        assertTrue(openFails(craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8))
                .contains("has too many elements"));
    }

    @Test
    void overlappingTensors() throws IOException {
        String msg = openFails(craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12));
        assertTrue(msg.contains("tensor 'b' bytes [4, 12) overlap tensor 'a' bytes [0, 8)"), msg);
    }

    /** A header of {@code n} empty tensors: {"t0":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},...}. */
    private static String emptyTensors(int n) {
        StringBuilder h = new StringBuilder("{");
        for (int i = 0; i < n; i++) {
            h.append(i > 0 ? "," : "").append("\"t").append(i).append("\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}");
        }
        return h.append('}').toString();
    }

    @Test
    void headerEntryCountAndStringLengthAreCappedAsTheyAreRead() throws IOException {
        // Small caps, same code path: 12 values hold the top object and one tensor entry (name, object, 3 keys,
        // dtype, shape [0] and offsets [0,0]: 11); "data_offsets" is the longest string, 12 characters.
        Safetensors.Limits small = new Safetensors.Limits(Safetensors.MAX_HEADER_BYTES, 12, 12);
        Safetensors.open(craft(emptyTensors(1), 0), small).close();
        Path p = craft(emptyTensors(1000), 0);
        String msg = assertThrows(IOException.class, () -> Safetensors.open(p, small).close()).getMessage();
        assertTrue(msg.startsWith(p + ": header is not valid JSON: ") && msg.endsWith("more than 12 values"), msg);
        Path q = craft("{\"__metadata__\":{\"k\":\"1234567890123\"}}", 0);
        msg = assertThrows(IOException.class, () -> Safetensors.open(q, small).close()).getMessage();
        assertTrue(msg.endsWith("a string longer than 12 characters") && !msg.contains("\n"), msg);
    }

    @Test
    void theDefaultCapsRefuseAMillionEmptyTensorsAndAHugeMetadataString() throws IOException {
        // about 96,000 entries (11 values each): past MAX_HEADER_VALUES; a 99 MB header of 1.6M stops at the same point
        int n = (int) (Safetensors.MAX_HEADER_VALUES / 11) + 1000;
        String msg = openFails(craft(emptyTensors(n), 0));
        assertTrue(msg.endsWith("more than " + Safetensors.MAX_HEADER_VALUES + " values"), msg);
        msg = openFails(craft("{\"__metadata__\":{\"k\":\"" + "x".repeat(Safetensors.MAX_STRING_CHARS + 1) + "\"}}", 0));
        assertTrue(msg.endsWith("a string longer than " + Safetensors.MAX_STRING_CHARS + " characters"), msg);
        assertTrue(msg.length() < 300, msg.length() + " characters"); // the string itself is not echoed
    }

    @Test
    void aMissingFileOrADirectoryIsNamed() throws IOException {
        Path missing = dir.resolve("nope.safetensors");
        String msg = openFails(missing);
        assertTrue(msg.contains(missing.toString()) && msg.contains("no such file; expected a safetensors file"), msg);
        msg = openFails(dir);
        assertEquals(dir + " is a directory; expected a safetensors file", msg);
    }

    @Test
    void aFailedWriteNamesTheFileAndLeavesNoTemporaryFile() throws IOException {
        Path p = dir.resolve("full.safetensors");
        Safetensors.Entry diskFull = new Safetensors.Entry("w", Safetensors.Dtype.F32, new long[] {1}, out -> {
            throw new IOException("No space left on device"); // what a full disk says, without a file name
        });
        String msg = assertThrows(IOException.class, () -> Safetensors.write(p, List.of(diskFull), null)).getMessage();
        assertEquals("cannot write " + p + ": No space left on device", msg);
        try (var files = Files.list(dir)) {
            assertEquals(List.of(), files.toList());
        }
    }

    @Test
    void jsonParserBasics() {
        assertEquals(Map.of("a", List.of(1L, -2.5, true, "x\n\u00e9")), Json.parse(" {\"a\":[1,-2.5e0,true,\"x\\n\\u00e9\"]} "));
        assertEquals(Json.NULL, Json.parse("null"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("01"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\":1,}"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("[".repeat(100) + "]".repeat(100)));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{} x"));
    }
}
