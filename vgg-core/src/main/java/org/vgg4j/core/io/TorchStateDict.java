package org.vgg4j.core.io;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * A state dict saved by PyTorch's {@code torch.save} (a torchvision {@code .pth} file), read without running
 * Python's unpickler: {@link Unpickler} accepts only what a state dict needs and executes nothing. Both formats of
 * {@code torch.save} are read:
 * <ul>
 *   <li>zip (the default since PyTorch 1.6): {@code <name>/data.pkl} is the pickled dict, each storage is the
 *       raw entry {@code <name>/data/<key>}, and {@code <name>/byteorder} (if present) says "little" or "big";</li>
 *   <li>legacy ({@code _use_new_zipfile_serialization=False}): five pickles in a row (magic number, protocol
 *       1001, system info, the dict, the list of storage keys) then, per key in that order, an 8-byte element
 *       count and the storage's raw bytes.</li>
 * </ul>
 * Tensors must be contiguous views of their storage (torchvision's are); each is checked against the storage it
 * views, and each storage's declared size against the bytes the file holds, when the file is opened, so a
 * hostile file fails before any tensor-sized allocation. Data is streamed on demand ({@link #writeRaw}).
 *
 * <p>The result is the same map of name to (dtype, shape, data) as a safetensors file gives; {@link #toSafetensors}
 * writes it as one, and {@link StateDicts} loads either kind into a network.
 */
public final class TorchStateDict implements Closeable {
    /** Largest pickle accepted (a VGG's data.pkl is about 10 KB). */
    public static final long MAX_PICKLE_BYTES = 64L << 20;
    /** torch.save's legacy magic number, the first pickle of a legacy file. */
    private static final BigInteger LEGACY_MAGIC = new BigInteger("1950a86a20f9469cfc6c", 16);
    private static final long LEGACY_PROTOCOL = 1001;
    private static final int COPY_CHUNK = 1 << 20;

    /** One tensor: its dtype and shape (the data is read by {@link #writeRaw}). */
    public record TensorInfo(String name, Safetensors.Dtype dtype, long[] shape) {
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
    }

    /** Where a storage's bytes are: a zip entry or a region of the legacy file. */
    private interface Storages extends Closeable {
        /** The stream of storage {@code key}'s bytes from byte {@code skip}. */
        InputStream open(String key, long skip) throws IOException;
    }

    private final Path path;
    private final StateDicts.Format format;
    private final Storages storages;
    private final ByteOrder order;
    private final Map<String, Unpickler.TensorRef> refs;
    private final Map<String, TensorInfo> tensors;

    private TorchStateDict(Path path, StateDicts.Format format, Storages storages, ByteOrder order,
                           Map<String, Unpickler.TensorRef> refs) {
        this.path = path;
        this.format = format;
        this.storages = storages;
        this.order = order;
        this.refs = refs;
        Map<String, TensorInfo> t = new LinkedHashMap<>();
        refs.forEach((k, r) -> t.put(k, new TensorInfo(k, r.storage().dtype(), r.shape())));
        this.tensors = Collections.unmodifiableMap(t);
    }

    public Path path() {
        return path;
    }

    /** {@link StateDicts.Format#TORCH_ZIP} or {@link StateDicts.Format#TORCH_LEGACY}. */
    public StateDicts.Format format() {
        return format;
    }

    /** Every tensor, in the state dict's order. */
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

    // ================================================================= opening

    /** Opens a {@code torch.save} file of either format and checks every tensor against the data it holds. */
    public static TorchStateDict open(Path path) throws IOException {
        StateDicts.Format f = StateDicts.detect(path);
        return switch (f) {
            case TORCH_ZIP -> openZip(path);
            case TORCH_LEGACY -> openLegacy(path);
            case SAFETENSORS -> throw new IOException(path + " is a safetensors file, not a torch.save file; "
                    + "read it with Safetensors.open");
        };
    }

    private static TorchStateDict openZip(Path path) throws IOException {
        ZipFile zip;
        try {
            zip = new ZipFile(path.toFile());
        } catch (ZipException e) {
            throw new IOException(path + ": not a readable zip archive (" + e.getMessage() + "); truncated file?", e);
        }
        try {
            String prefix = zipPrefix(path, zip);
            ByteOrder order = ByteOrder.LITTLE_ENDIAN;
            ZipEntry bo = zip.getEntry(prefix + "byteorder");
            if (bo != null) {
                String s = new String(readSmall(zip, bo, 16, path), StandardCharsets.US_ASCII).trim();
                order = switch (s) {
                    case "little" -> ByteOrder.LITTLE_ENDIAN;
                    case "big" -> ByteOrder.BIG_ENDIAN;
                    default -> throw new IOException(path + ": byteorder is '" + s + "'; expected 'little' or 'big'");
                };
            }
            ZipEntry pkl = zip.getEntry(prefix + "data.pkl");
            ByteBuffer pickle = ByteBuffer.wrap(readSmall(zip, pkl, MAX_PICKLE_BYTES, path));
            Map<String, Unpickler.StorageRef> declared = new HashMap<>();
            Object root = Unpickler.load(pickle, path + ": " + pkl.getName(), pid -> {
                Unpickler.StorageRef s = storageRef(pid, 5, path);
                ZipEntry e = zip.getEntry(prefix + "data/" + s.key());
                if (e == null) {
                    throw new IOException(path + ": storage '" + s.key() + "' has no entry " + prefix + "data/" + s.key());
                }
                checkStorageBytes(path, s, e.getSize());
                return remember(declared, s, path);
            });
            Storages st = new Storages() {
                @Override
                public InputStream open(String key, long skip) throws IOException {
                    InputStream in = zip.getInputStream(zip.getEntry(prefix + "data/" + key));
                    in.skipNBytes(skip);
                    return in;
                }

                @Override
                public void close() throws IOException {
                    zip.close();
                }
            };
            return new TorchStateDict(path, StateDicts.Format.TORCH_ZIP, st, order, stateDict(root, path));
        } catch (IOException | RuntimeException e) {
            zip.close();
            throw e;
        }
    }

    /** The archive's one top-level folder holding data.pkl ("archive/", or the saved file's stem). */
    private static String zipPrefix(Path path, ZipFile zip) throws IOException {
        List<String> found = new ArrayList<>();
        for (ZipEntry e : Collections.list(zip.entries())) {
            String n = e.getName();
            if (n.endsWith("/data.pkl") && n.indexOf('/') == n.length() - "/data.pkl".length()) {
                found.add(n.substring(0, n.length() - "data.pkl".length()));
            }
        }
        if (found.size() != 1) {
            throw new IOException(path + ": a torch.save archive has exactly one <name>/data.pkl; found "
                    + found.size() + (found.isEmpty() ? " (not a torch.save file?)" : " " + found));
        }
        return found.get(0);
    }

    private static byte[] readSmall(ZipFile zip, ZipEntry e, long max, Path path) throws IOException {
        if (e.getSize() > max) {
            throw new IOException(path + ": " + e.getName() + " is " + e.getSize() + " bytes; at most " + max
                    + " are accepted");
        }
        try (InputStream in = zip.getInputStream(e)) {
            byte[] b = in.readNBytes((int) Math.min(max + 1, Integer.MAX_VALUE - 8));
            if (b.length > max) {
                throw new IOException(path + ": " + e.getName() + " is longer than the " + max + " bytes accepted");
            }
            return b;
        }
    }

    private static TorchStateDict openLegacy(Path path) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        try {
            long size = ch.size();
            // A view of the file (not a copy): the pickles are read from it, the storages by position.
            MappedByteBuffer file = ch.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(size, Integer.MAX_VALUE));
            String where = path + " (legacy torch.save)";
            Object magic = Unpickler.load(file, where + ": magic number", Unpickler::refusePersistent);
            if (!LEGACY_MAGIC.equals(magic)) {
                throw new IOException(where + ": magic number " + magic + " is not torch.save's");
            }
            Object protocol = Unpickler.load(file, where + ": protocol", Unpickler::refusePersistent);
            if (!Long.valueOf(LEGACY_PROTOCOL).equals(protocol)) {
                throw new IOException(where + ": protocol " + protocol + "; expected " + LEGACY_PROTOCOL);
            }
            Object sysInfo = Unpickler.load(file, where + ": system info", Unpickler::refusePersistent);
            ByteOrder order = legacyOrder(sysInfo, where);
            Map<String, Unpickler.StorageRef> declared = new HashMap<>();
            Object root = Unpickler.load(file, where + ": state dict",
                    pid -> remember(declared, storageRef(pid, 6, path), path));
            Object keys = Unpickler.load(file, where + ": storage keys", Unpickler::refusePersistent);
            if (!(keys instanceof List<?> keyList)) {
                throw new IOException(where + ": storage keys are " + Unpickler.describe(keys) + "; expected a list");
            }
            Map<String, Long> starts = new HashMap<>();
            long pos = file.position();
            ByteBuffer count = ByteBuffer.allocate(8);
            for (Object k : keyList) {
                Unpickler.StorageRef s = declared.get(k);
                if (s == null) {
                    throw new IOException(where + ": storage key " + Unpickler.describe(k)
                            + " is listed but no tensor uses it");
                }
                count.clear();
                readFully(ch, count, pos, where + ": file ended in the size of storage '" + s.key() + "' (truncated?)");
                long n = count.flip().order(order).getLong();
                if (n != s.elements()) {
                    throw new IOException(where + ": storage '" + s.key() + "' holds " + n + " elements; its tensors "
                            + "declared " + s.elements());
                }
                pos += 8;
                long bytes = storageBytes(path, s);
                if (bytes > size - pos) {
                    throw new IOException(where + ": storage '" + s.key() + "' needs " + bytes + " bytes but only "
                            + (size - pos) + " remain (truncated file?)");
                }
                starts.put(s.key(), pos);
                pos += bytes;
            }
            if (starts.size() != declared.size()) {
                throw new IOException(where + ": " + (declared.size() - starts.size())
                        + " storages used by tensors are missing from the storage key list");
            }
            Storages st = new Storages() {
                @Override
                public InputStream open(String key, long skip) {
                    return new ChannelInput(ch, starts.get(key) + skip);
                }

                @Override
                public void close() throws IOException {
                    ch.close();
                }
            };
            return new TorchStateDict(path, StateDicts.Format.TORCH_LEGACY, st, order, stateDict(root, path));
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    private static ByteOrder legacyOrder(Object sysInfo, String where) throws IOException {
        if (!(sysInfo instanceof Map<?, ?> m) || !(m.get("little_endian") instanceof Boolean little)) {
            throw new IOException(where + ": system info is " + Unpickler.describe(sysInfo)
                    + "; expected a dict with 'little_endian'");
        }
        return little ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN;
    }

    /**
     * A storage's persistent id: ("storage", torch.FloatStorage, key, location, elements) in the zip format, with
     * a sixth item (view metadata, None) in the legacy one.
     */
    private static Unpickler.StorageRef storageRef(Object pid, int arity, Path path) throws IOException {
        if (!(pid instanceof Unpickler.Tuple t) || t.items().size() != arity || !"storage".equals(t.items().get(0))) {
            throw new IOException(path + ": persistent id " + Unpickler.describe(pid) + " is not a storage "
                    + "reference (\"storage\", type, key, location, size" + (arity == 6 ? ", view" : "") + ")");
        }
        List<Object> a = t.items();
        if (!(a.get(1) instanceof Unpickler.Global g) || g.storageDtype() == null) {
            throw new IOException(path + ": storage type " + Unpickler.describe(a.get(1)) + " is not a typed storage");
        }
        if (!(a.get(2) instanceof String key) || !(a.get(4) instanceof Long n) || n < 0) {
            throw new IOException(path + ": storage reference has key " + Unpickler.describe(a.get(2)) + " and size "
                    + Unpickler.describe(a.get(4)) + "; expected a string and a non-negative integer");
        }
        if (arity == 6 && a.get(5) != null) {
            throw new IOException(path + ": storage '" + key + "' is a view of another storage (old PyTorch); "
                    + "re-save the state dict with a current torch.save");
        }
        return new Unpickler.StorageRef(key, g.storageDtype(), n);
    }

    /** The first reference to a key defines it; later ones must agree (tensors sharing one storage). */
    private static Unpickler.StorageRef remember(Map<String, Unpickler.StorageRef> declared, Unpickler.StorageRef s,
                                                 Path path) throws IOException {
        Unpickler.StorageRef prev = declared.putIfAbsent(s.key(), s);
        if (prev != null && !prev.equals(s)) {
            throw new IOException(path + ": storage '" + s.key() + "' is declared twice, as " + prev + " and " + s);
        }
        return s;
    }

    private static long storageBytes(Path path, Unpickler.StorageRef s) throws IOException {
        try {
            return Math.multiplyExact(s.elements(), s.dtype().bytes);
        } catch (ArithmeticException e) {
            throw new IOException(path + ": storage '" + s.key() + "' declares " + s.elements() + " elements");
        }
    }

    private static void checkStorageBytes(Path path, Unpickler.StorageRef s, long actual) throws IOException {
        long bytes = storageBytes(path, s);
        if (actual != bytes) {
            throw new IOException(path + ": storage '" + s.key() + "' declares " + s.elements() + " " + s.dtype()
                    + " elements (" + bytes + " bytes) but its entry holds " + actual + " bytes (truncated or corrupt?)");
        }
    }

    /** The unpickled root must be a dict of name to tensor. */
    private static Map<String, Unpickler.TensorRef> stateDict(Object root, Path path) throws IOException {
        if (!(root instanceof Map<?, ?> m)) {
            throw new IOException(path + ": holds " + Unpickler.describe(root) + "; expected a state dict "
                    + "(an OrderedDict of name to tensor)");
        }
        Map<String, Unpickler.TensorRef> refs = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getKey() instanceof String k) || !(e.getValue() instanceof Unpickler.TensorRef t)) {
                throw new IOException(path + ": entry " + Unpickler.describe(e.getKey()) + " holds "
                        + Unpickler.describe(e.getValue()) + "; a state dict maps names to tensors only");
            }
            refs.put(k, t);
        }
        return refs;
    }

    // ================================================================= reading

    /**
     * Writes tensor {@code name}'s elements as little-endian bytes of its own dtype (as a safetensors file holds
     * them), streamed in bounded chunks.
     */
    public void writeRaw(String name, OutputStream out) throws IOException {
        info(name);
        Unpickler.TensorRef t = refs.get(name);
        int width = t.storage().dtype().bytes;
        long left = t.elements() * width;
        byte[] buf = new byte[(int) Math.min(COPY_CHUNK, Math.max(left, 1))];
        try (InputStream in = storages.open(t.storage().key(), t.offset() * width)) {
            while (left > 0) {
                int n = in.readNBytes(buf, 0, (int) Math.min(buf.length, left));
                if (n == 0) {
                    throw new IOException(path + ": file ended while reading tensor '" + name + "' (truncated?)");
                }
                if (order == ByteOrder.BIG_ENDIAN) {
                    swap(buf, n, width);
                }
                out.write(buf, 0, n);
                left -= n;
            }
        }
    }

    /** A whole small float tensor (F64, F32, F16, BF16) as doubles; F32, F16 and BF16 to double are exact. */
    public double[] readDoubles(String name) throws IOException {
        TensorInfo t = info(name);
        ByteBuffer b = raw(t);
        double[] d = new double[Math.toIntExact(t.elements())];
        for (int i = 0; i < d.length; i++) {
            d[i] = switch (t.dtype()) {
                case F64 -> b.getDouble();
                case F32 -> b.getFloat();
                case F16 -> Safetensors.halfToFloat(b.getShort());
                case BF16 -> Float.intBitsToFloat((b.getShort() & 0xFFFF) << 16);
                default -> throw new IOException(path + ": tensor '" + name + "' has dtype " + t.dtype()
                        + "; expected a floating-point dtype (F64, F32, F16, BF16)");
            };
        }
        return d;
    }

    /** A whole small integer or bool tensor as longs. */
    public long[] readLongs(String name) throws IOException {
        TensorInfo t = info(name);
        ByteBuffer b = raw(t);
        long[] out = new long[Math.toIntExact(t.elements())];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (t.dtype()) {
                case I64 -> b.getLong();
                case I32 -> b.getInt();
                case I16 -> b.getShort();
                case I8 -> b.get();
                case U8, BOOL -> b.get() & 0xFF;
                default -> throw new IOException(path + ": tensor '" + name + "' has dtype " + t.dtype()
                        + "; expected an integer dtype");
            };
        }
        return out;
    }

    private ByteBuffer raw(TensorInfo t) throws IOException {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        writeRaw(t.name(), bytes);
        return ByteBuffer.wrap(bytes.toByteArray()).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Writes every tensor, in the state dict's order and dtype, to a safetensors file at {@code out} (atomically,
     * streamed: no tensor is held in memory whole).
     */
    public void toSafetensors(Path out, Map<String, String> metadata) throws IOException {
        List<Safetensors.Entry> entries = new ArrayList<>();
        for (TensorInfo t : tensors.values()) {
            entries.add(new Safetensors.Entry(t.name(), t.dtype(), t.shape(), o -> writeRaw(t.name(), o)));
        }
        Safetensors.write(out, entries, metadata);
    }

    @Override
    public void close() throws IOException {
        storages.close();
    }

    // ================================================================= helpers

    private static void swap(byte[] b, int n, int width) {
        for (int i = 0; i + width <= n; i += width) {
            for (int j = 0; j < width / 2; j++) {
                byte x = b[i + j];
                b[i + j] = b[i + width - 1 - j];
                b[i + width - 1 - j] = x;
            }
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long at, String eofMessage) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b, at + b.position()) < 0) {
                throw new IOException(eofMessage);
            }
        }
    }

    /** An input stream of positional reads from a file channel (the channel's own position is not used). */
    private static final class ChannelInput extends InputStream {
        private final FileChannel ch;
        private long pos;

        ChannelInput(FileChannel ch, long pos) {
            this.ch = ch;
            this.pos = pos;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = ch.read(ByteBuffer.wrap(b, off, len), pos);
            if (n > 0) {
                pos += n;
            }
            return n;
        }
    }
}
