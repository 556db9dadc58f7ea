package org.vgg4j.core.io;

import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors file format (Hugging Face): an 8-byte little-endian header length n, n bytes of UTF-8 JSON
 * {@code {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}}, then the raw
 * little-endian tensor data; offsets are relative to the start of the data area.
 *
 * <p>Reading is defensive: a file may be truncated, corrupt or hostile, so every header field is checked (header
 * length bounded and inside the file, valid UTF-8 JSON, known dtypes, non-negative shapes, begin &lt;= end, offsets
 * inside the data area, byte size = elements x dtype size, no two tensors overlapping) and each violation is an
 * {@link IOException} naming the file, the tensor and the value. What a header may cost is bounded before it is
 * paid: the declared header length is checked against {@link #MAX_HEADER_BYTES} and the file's size before its
 * bytes are allocated, the JSON is parsed with at most {@link #MAX_HEADER_VALUES} values and no string (tensor name
 * or metadata value) longer than {@link #MAX_STRING_CHARS} characters, both checked as it is read. So a header
 * costs at most a few times its length plus a bounded number of small objects, and a hostile one (a million empty
 * tensors, a 99 MB metadata string) fails with one line instead of exhausting the heap. Data is read on demand
 * with positional reads, never all at once, and every tensor's extent is checked against the file. Writing is atomic: a temporary file in the same directory, fsync, rename.
 *
 * <p>This class knows nothing of networks ({@link Checkpoint} maps them to names). No Java serialisation is used.
 */
public final class Safetensors {
    /** Largest header accepted: 100 MB (a VGG's header is a few KB). */
    public static final long MAX_HEADER_BYTES = 100L * 1000 * 1000;
    /**
     * Most JSON values a header may hold (every key, object, array, string and number counts one; a tensor entry
     * is about 11): about 95,000 tensors, far above any network's few hundred.
     */
    public static final long MAX_HEADER_VALUES = 1L << 20;
    /** Longest string in a header (a tensor name, a metadata key or value), in characters: 1 Mi. */
    public static final int MAX_STRING_CHARS = 1 << 20;
    public static final String METADATA_KEY = "__metadata__";

    /** Element types of the format that this library reads (F16/BF16 are read-only conversions). */
    public enum Dtype {
        F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1);

        public final int bytes;

        Dtype(int bytes) {
            this.bytes = bytes;
        }

        public boolean isFloat() {
            return this == F64 || this == F32 || this == F16 || this == BF16;
        }

        static Dtype parse(String s) {
            for (Dtype d : values()) {
                if (d.name().equals(s)) {
                    return d;
                }
            }
            return null;
        }
    }

    /** One tensor's header entry; {@code begin}/{@code end} are byte offsets in the data area. */
    public record TensorInfo(String name, Dtype dtype, long[] shape, long begin, long end) {
        public TensorInfo {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        public long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        public String shapeString() {
            return Arrays.toString(shape);
        }
    }

    private Safetensors() {
    }

    // ================================================================= reading

    /** An open safetensors file whose header has been fully validated. */
    public static final class Reader implements Closeable {
        private final Path path;
        private final FileChannel channel;
        private final long dataStart;
        private final Map<String, TensorInfo> tensors;
        private final Map<String, String> metadata;

        private Reader(Path path, FileChannel channel, long dataStart, Map<String, TensorInfo> tensors,
                       Map<String, String> metadata) {
            this.path = path;
            this.channel = channel;
            this.dataStart = dataStart;
            this.tensors = tensors;
            this.metadata = metadata;
        }

        public Path path() {
            return path;
        }

        /** Every tensor, in header order. */
        public Map<String, TensorInfo> tensors() {
            return tensors;
        }

        public TensorInfo info(String name) throws IOException {
            TensorInfo t = tensors.get(name);
            if (t == null) {
                throw new IOException(path + ": no tensor named '" + name + "'");
            }
            return t;
        }

        public Map<String, String> metadata() {
            return metadata;
        }

        /**
         * Reads {@code count} elements starting at element {@code first} of a float tensor (F64, F32, F16, BF16) as
         * doubles into {@code dst[dstOffset...]}; F32 to double is exact.
         */
        public void readDoubles(TensorInfo t, long first, int count, double[] dst, int dstOffset) throws IOException {
            ByteBuffer b = readRaw(t, first, count);
            for (int i = 0; i < count; i++) {
                dst[dstOffset + i] = switch (t.dtype()) {
                    case F64 -> b.getDouble();
                    case F32 -> b.getFloat();
                    case F16 -> halfToFloat(b.getShort());
                    case BF16 -> Float.intBitsToFloat((b.getShort() & 0xFFFF) << 16);
                    default -> throw new IOException(path + ": tensor '" + t.name() + "' has dtype " + t.dtype()
                            + "; expected a floating-point dtype (F64, F32, F16, BF16)");
                };
            }
        }

        /** As {@link #readDoubles} but for F32 only, bit for bit. */
        public void readFloats(TensorInfo t, long first, int count, float[] dst, int dstOffset) throws IOException {
            if (t.dtype() != Dtype.F32) {
                throw new IOException(path + ": tensor '" + t.name() + "' has dtype " + t.dtype() + "; expected F32");
            }
            ByteBuffer b = readRaw(t, first, count);
            for (int i = 0; i < count; i++) {
                dst[dstOffset + i] = b.getFloat();
            }
        }

        /** A whole small float tensor as doubles. */
        public double[] readDoubles(String name) throws IOException {
            TensorInfo t = info(name);
            double[] d = new double[Math.toIntExact(t.elements())];
            readDoubles(t, 0, d.length, d, 0);
            return d;
        }

        /** A whole small integer tensor (I64, I32, I16, I8, U8) as longs. */
        public long[] readLongs(String name) throws IOException {
            TensorInfo t = info(name);
            int n = Math.toIntExact(t.elements());
            ByteBuffer b = readRaw(t, 0, n);
            long[] out = new long[n];
            for (int i = 0; i < n; i++) {
                out[i] = switch (t.dtype()) {
                    case I64 -> b.getLong();
                    case I32 -> b.getInt();
                    case I16 -> b.getShort();
                    case I8 -> b.get();
                    case U8 -> b.get() & 0xFF;
                    default -> throw new IOException(path + ": tensor '" + name + "' has dtype " + t.dtype()
                            + "; expected an integer dtype");
                };
            }
            return out;
        }

        private ByteBuffer readRaw(TensorInfo t, long first, int count) throws IOException {
            if (first < 0 || count < 0 || first + count > t.elements()) {
                throw new IllegalArgumentException("elements [" + first + ", " + (first + count) + ") of tensor '"
                        + t.name() + "' are outside its " + t.elements() + " elements");
            }
            ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(count, t.dtype().bytes)).order(ByteOrder.LITTLE_ENDIAN);
            long at = dataStart + t.begin() + first * t.dtype().bytes;
            while (b.hasRemaining()) {
                int r = channel.read(b, at + b.position());
                if (r < 0) {
                    throw new IOException(path + ": file ended while reading tensor '" + t.name() + "'");
                }
            }
            b.flip();
            return b;
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    /** What reading a header may cost; {@link #DEFAULT} are the public constants (tests use small ones). */
    record Limits(long headerBytes, long values, int stringChars) {
        static final Limits DEFAULT = new Limits(MAX_HEADER_BYTES, MAX_HEADER_VALUES, MAX_STRING_CHARS);
    }

    /** Opens {@code path} and validates its whole header (not the data values). */
    public static Reader open(Path path) throws IOException {
        return open(path, Limits.DEFAULT);
    }

    static Reader open(Path path, Limits limits) throws IOException {
        if (Files.isDirectory(path)) {
            throw new IOException(path + " is a directory; expected a safetensors file");
        }
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString(), null, "no such file; expected a safetensors file");
        }
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        try {
            return validate(path, ch, limits);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    private static Reader validate(Path path, FileChannel ch, Limits limits) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw new IOException(path + ": file is " + size + " bytes; a safetensors file starts with an 8-byte header length");
        }
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        while (len.hasRemaining()) {
            if (ch.read(len, len.position()) < 0) {
                throw new IOException(path + ": file ended inside the header length");
            }
        }
        long n = len.getLong(0);
        if (n < 2 || n > limits.headerBytes()) {
            throw new IOException(path + ": header length " + Long.toUnsignedString(n) + " is outside [2, "
                    + limits.headerBytes() + "] bytes");
        }
        if (8 + n > size) {
            throw new IOException(path + ": header length " + n + " runs past the end of the " + size
                    + "-byte file (truncated?)");
        }
        ByteBuffer hb = ByteBuffer.allocate((int) n);
        while (hb.hasRemaining()) {
            if (ch.read(hb, 8 + hb.position()) < 0) {
                throw new IOException(path + ": file ended inside the header");
            }
        }
        hb.flip();
        checkUtf8(path, hb);
        String text = new String(hb.array(), 0, (int) n, StandardCharsets.UTF_8); // n bytes (2n if not ASCII)
        hb = null; // the bytes are not needed while parsing
        Object root;
        try {
            root = Json.parse(text, limits.values(), limits.stringChars());
        } catch (IllegalArgumentException e) {
            throw new IOException(path + ": header is not valid JSON: " + e.getMessage(), e);
        }
        if (!(root instanceof Map<?, ?> top)) {
            throw new IOException(path + ": header must be a JSON object, got " + describe(root));
        }
        long dataSize = size - 8 - n;
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : top.entrySet()) {
            String name = (String) e.getKey();
            if (name.equals(METADATA_KEY)) {
                if (!(e.getValue() instanceof Map<?, ?> m)) {
                    throw new IOException(path + ": " + METADATA_KEY + " must be an object of strings, got " + describe(e.getValue()));
                }
                for (Map.Entry<?, ?> me : m.entrySet()) {
                    if (!(me.getValue() instanceof String v)) {
                        throw new IOException(path + ": metadata value of '" + me.getKey() + "' must be a string, got "
                                + describe(me.getValue()));
                    }
                    metadata.put((String) me.getKey(), v);
                }
                continue;
            }
            tensors.put(name, tensorInfo(path, name, e.getValue(), dataSize));
        }
        List<TensorInfo> byBegin = new ArrayList<>(tensors.values());
        byBegin.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        TensorInfo prev = null;
        for (TensorInfo t : byBegin) {
            // Empty tensors occupy no bytes and cannot overlap anything.
            if (t.begin() == t.end()) {
                continue;
            }
            if (prev != null && t.begin() < prev.end()) {
                throw new IOException(path + ": tensor '" + t.name() + "' bytes [" + t.begin() + ", " + t.end()
                        + ") overlap tensor '" + prev.name() + "' bytes [" + prev.begin() + ", " + prev.end() + ")");
            }
            prev = t;
        }
        return new Reader(path, ch, 8 + n, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    /** Strict UTF-8 check through a small window (decoding it whole would cost twice the header in chars). */
    private static void checkUtf8(Path path, ByteBuffer bytes) throws IOException {
        CharsetDecoder d = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = bytes.duplicate();
        CharBuffer window = CharBuffer.allocate(8192);
        while (true) {
            CoderResult r = d.decode(in, window, true);
            if (r.isError()) {
                throw new IOException(path + ": header is not valid UTF-8 (at byte " + (8 + in.position()) + ")");
            }
            window.clear();
            if (r.isUnderflow()) {
                break;
            }
        }
        if (d.flush(window).isError()) {
            throw new IOException(path + ": header is not valid UTF-8 (at its end)");
        }
    }

    private static TensorInfo tensorInfo(Path path, String name, Object v, long dataSize) throws IOException {
        String where = path + ": tensor '" + name + "'";
        if (!(v instanceof Map<?, ?> m)) {
            throw new IOException(where + " must be an object {dtype, shape, data_offsets}, got " + describe(v));
        }
        for (Object k : m.keySet()) {
            if (!k.equals("dtype") && !k.equals("shape") && !k.equals("data_offsets")) {
                throw new IOException(where + " has an unknown field '" + k + "'");
            }
        }
        if (!(m.get("dtype") instanceof String ds)) {
            throw new IOException(where + " needs a string dtype, got " + describe(m.get("dtype")));
        }
        Dtype dtype = Dtype.parse(ds);
        if (dtype == null) {
            throw new IOException(where + " has unsupported dtype '" + ds + "'; expected one of "
                    + Arrays.toString(Dtype.values()));
        }
        if (!(m.get("shape") instanceof List<?> sl)) {
            throw new IOException(where + " needs a shape array, got " + describe(m.get("shape")));
        }
        long[] shape = new long[sl.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            if (!(sl.get(i) instanceof Long d) || d < 0) {
                throw new IOException(where + " shape " + sl + " has dimension " + sl.get(i)
                        + "; expected a non-negative integer");
            }
            shape[i] = d;
            try {
                elements = Math.multiplyExact(elements, d);
            } catch (ArithmeticException ex) {
                throw new IOException(where + " shape " + sl + " has too many elements");
            }
        }
        if (!(m.get("data_offsets") instanceof List<?> ol) || ol.size() != 2
                || !(ol.get(0) instanceof Long begin) || !(ol.get(1) instanceof Long end)) {
            throw new IOException(where + " needs data_offsets [begin, end] of integers, got " + describe(m.get("data_offsets")));
        }
        if (begin < 0 || begin > end) {
            throw new IOException(where + " data_offsets [" + begin + ", " + end + "]: need 0 <= begin <= end");
        }
        if (end > dataSize) {
            throw new IOException(where + " data_offsets [" + begin + ", " + end + "] run past the data area of "
                    + dataSize + " bytes (truncated file?)");
        }
        long expected;
        try {
            expected = Math.multiplyExact(elements, dtype.bytes);
        } catch (ArithmeticException ex) {
            throw new IOException(where + " shape " + sl + " is too large");
        }
        if (end - begin != expected) {
            throw new IOException(where + " holds " + (end - begin) + " bytes but shape " + sl + " of " + dtype
                    + " needs " + expected);
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static String describe(Object v) {
        if (v == null) {
            return "nothing";
        }
        String s = String.valueOf(v);
        return s.length() > 80 ? s.substring(0, 80) + "..." : s;
    }

    /** IEEE half to float (Java 17 has no Float.float16ToFloat). */
    static float halfToFloat(short h) {
        int bits = h & 0xFFFF;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1F;
        int mant = bits & 0x3FF;
        if (exp == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13)); // inf / NaN
        }
        if (exp == 0) {
            float f = mant * 0x1.0p-24f; // subnormal or zero, exact
            return sign != 0 ? -f : f;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    // ================================================================= writing

    /** Writes a tensor's raw little-endian bytes to the stream; it must write exactly elements x dtype bytes. */
    @FunctionalInterface
    public interface Data {
        void writeTo(OutputStream out) throws IOException;
    }

    /** One tensor to write. */
    public record Entry(String name, Dtype dtype, long[] shape, Data data) {
        public Entry {
            shape = shape.clone();
        }

        public long bytes() {
            long n = dtype.bytes;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }
    }

    /** An entry holding doubles already in memory, written as F64 (or F32, rounded). */
    public static Entry ofDoubles(String name, Dtype dtype, long[] shape, double[] values) {
        if (dtype != Dtype.F64 && dtype != Dtype.F32) {
            throw new IllegalArgumentException("tensor '" + name + "': doubles are written as F64 or F32, not " + dtype);
        }
        return new Entry(name, dtype, shape, out -> {
            ByteBuffer b = ByteBuffer.allocate(values.length * dtype.bytes).order(ByteOrder.LITTLE_ENDIAN);
            for (double v : values) {
                if (dtype == Dtype.F64) {
                    b.putDouble(v);
                } else {
                    b.putFloat((float) v);
                }
            }
            out.write(b.array());
        });
    }

    /** An entry of longs written as I64. */
    public static Entry ofLongs(String name, long[] shape, long[] values) {
        return new Entry(name, Dtype.I64, shape, out -> {
            ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
            for (long v : values) {
                b.putLong(v);
            }
            out.write(b.array());
        });
    }

    /**
     * Writes {@code entries} (in this order, packed without gaps) and {@code metadata} to {@code path} atomically:
     * into a temporary file in the same directory, forced to disk, then renamed over {@code path}, so a crash
     * leaves either the old file or the new one, never half of one.
     */
    public static void write(Path path, List<Entry> entries, Map<String, String> metadata) throws IOException {
        try {
            writeAtomically(path, entries, metadata);
        } catch (IOException e) { // a full disk says only "No space left on device": name the file
            throw new IOException("cannot write " + path + ": " + reason(e), e);
        }
    }

    /** Why an I/O operation failed, in words (a file system exception's message is often just a path). */
    private static String reason(IOException e) {
        if (e instanceof FileSystemException f) {
            String why = f.getReason() != null ? f.getReason()
                    : e instanceof AccessDeniedException ? "permission denied"
                    : e instanceof NoSuchFileException ? "no such file or directory"
                    : e.getClass().getSimpleName();
            return f.getFile() != null && !f.getFile().isEmpty() ? why + " (" + f.getFile() + ")" : why;
        }
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    private static void writeAtomically(Path path, List<Entry> entries, Map<String, String> metadata) throws IOException {
        StringBuilder h = new StringBuilder("{");
        boolean first = true;
        if (metadata != null && !metadata.isEmpty()) {
            Json.quote(h, METADATA_KEY);
            h.append(":{");
            boolean f = true;
            for (Map.Entry<String, String> m : metadata.entrySet()) {
                if (!f) {
                    h.append(',');
                }
                Json.quote(h, m.getKey());
                h.append(':');
                Json.quote(h, m.getValue());
                f = false;
            }
            h.append('}');
            first = false;
        }
        long offset = 0;
        java.util.Set<String> seen = new java.util.HashSet<>();
        for (Entry e : entries) {
            if (e.name().equals(METADATA_KEY) || !seen.add(e.name())) {
                throw new IllegalArgumentException("tensor name '" + e.name() + "' is reserved or appears twice");
            }
            if (!first) {
                h.append(',');
            }
            first = false;
            Json.quote(h, e.name());
            h.append(":{\"dtype\":\"").append(e.dtype().name()).append("\",\"shape\":[");
            long[] s = e.shape();
            for (int i = 0; i < s.length; i++) {
                h.append(i > 0 ? "," : "").append(s[i]);
            }
            long end = offset + e.bytes();
            h.append("],\"data_offsets\":[").append(offset).append(',').append(end).append("]}");
            offset = end;
        }
        h.append('}');
        // Pad with spaces so the data area starts 8-byte aligned, as the reference implementation does.
        while ((h.toString().getBytes(StandardCharsets.UTF_8).length) % 8 != 0) {
            h.append(' ');
        }
        byte[] header = h.toString().getBytes(StandardCharsets.UTF_8);

        Path dir = path.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, "." + path.getFileName() + ".", ".tmp");
        boolean done = false;
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            CountingOutputStream out = new CountingOutputStream(new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16), true);
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length);
            out.write(len.array());
            out.write(header);
            for (Entry e : entries) {
                long before = out.count();
                e.data().writeTo(out);
                if (out.count() - before != e.bytes()) {
                    throw new IllegalStateException("tensor '" + e.name() + "' wrote " + (out.count() - before)
                            + " bytes; its shape " + Arrays.toString(e.shape()) + " of " + e.dtype() + " needs " + e.bytes());
                }
            }
            out.flush();
            ch.force(true);
            done = true;
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
        try {
            Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true); // make the rename itself durable
        } catch (IOException ignored) {
            // some file systems cannot open or sync a directory; the data itself is already on disk
        }
    }
}
