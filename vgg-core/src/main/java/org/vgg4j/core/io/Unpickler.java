package org.vgg4j.core.io;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A restricted reader of Python pickles (protocols 2 to 5), enough for the state dicts that {@code torch.save}
 * writes. It executes nothing: a pickle is a program for a stack machine, and this machine knows only the opcodes
 * that build plain data (None, bools, ints, floats, strings, bytes, tuples, lists, dicts), plus GLOBAL and REDUCE
 * for a fixed set of callables that it implements itself:
 * <ul>
 *   <li>{@code collections.OrderedDict()}: an empty {@link LinkedHashMap};</li>
 *   <li>{@code torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])}:
 *       a {@link TensorRef} (a view of a storage; no data is read here);</li>
 *   <li>{@code torch._utils._rebuild_tensor(storage, offset, size, stride)}: the same, as PyTorch before 0.4 wrote
 *       it (torchvision's oldest published weights are of that age);</li>
 *   <li>{@code torch._utils._rebuild_parameter(tensor, requires_grad, hooks)}: the tensor itself;</li>
 *   <li>{@code torch.FloatStorage} and the other typed storages: only as the dtype in a storage's persistent id.</li>
 * </ul>
 * Any other global is refused at the GLOBAL opcode, before anything could call it, with an error naming it
 * ("posix.system"). Every length in the pickle is checked against the bytes left before anything is allocated, so
 * a hostile or truncated pickle fails with an {@link IOException} rather than a large allocation.
 */
final class Unpickler {
    /** Storage dtypes by torch's typed-storage class name. */
    static final Map<String, Safetensors.Dtype> STORAGES = Map.of(
            "DoubleStorage", Safetensors.Dtype.F64, "FloatStorage", Safetensors.Dtype.F32,
            "HalfStorage", Safetensors.Dtype.F16, "BFloat16Storage", Safetensors.Dtype.BF16,
            "LongStorage", Safetensors.Dtype.I64, "IntStorage", Safetensors.Dtype.I32,
            "ShortStorage", Safetensors.Dtype.I16, "CharStorage", Safetensors.Dtype.I8,
            "ByteStorage", Safetensors.Dtype.U8, "BoolStorage", Safetensors.Dtype.BOOL);
    private static final String ORDERED_DICT = "collections.OrderedDict";
    private static final String REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2";
    private static final String REBUILD_TENSOR_V1 = "torch._utils._rebuild_tensor";
    private static final String REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
    private static final String ALLOWED = ORDERED_DICT + ", " + REBUILD_TENSOR + ", " + REBUILD_TENSOR_V1 + ", " + REBUILD_PARAMETER
            + " and torch's typed storages (" + String.join(", ", new java.util.TreeSet<>(STORAGES.keySet())) + ")";
    private static final int MAX_GLOBAL_NAME = 256;

    /** A Python tuple. */
    record Tuple(List<Object> items) {
        Tuple {
            items = Collections.unmodifiableList(new ArrayList<>(items));
        }
    }

    /** A global the machine accepted, e.g. "collections.OrderedDict"; a storage class carries its dtype. */
    record Global(String name, Safetensors.Dtype storageDtype) {
    }

    /** A storage as its persistent id declares it: key, dtype and element count (not yet checked against data). */
    record StorageRef(String key, Safetensors.Dtype dtype, long elements) {
    }

    /** A contiguous tensor: {@code shape} elements of {@code storage} from element {@code offset}. */
    record TensorRef(StorageRef storage, long offset, long[] shape) {
        long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d; // checked in rebuildTensor
            }
            return n;
        }
    }

    /** Turns a persistent id (here always a tuple starting with "storage") into a {@link StorageRef}. */
    @FunctionalInterface
    interface PersistentLoad {
        StorageRef load(Object pid) throws IOException;
    }

    /** For pickles that must not reference storages (the legacy file's header and key list). */
    static StorageRef refusePersistent(Object pid) throws IOException {
        throw new IOException("unexpected persistent id " + describe(pid) + " outside the state dict");
    }

    private final ByteBuffer in;
    private final String where;
    private final PersistentLoad persistentLoad;
    private final List<Object> stack = new ArrayList<>();
    private final Deque<Integer> marks = new ArrayDeque<>();
    private final Map<Long, Object> memo = new HashMap<>();

    private Unpickler(ByteBuffer in, String where, PersistentLoad persistentLoad) {
        this.in = in.order(ByteOrder.LITTLE_ENDIAN);
        this.where = where;
        this.persistentLoad = persistentLoad;
    }

    /**
     * Reads one pickle from {@code in}'s position up to and including its STOP opcode (the buffer is left just
     * after it) and returns its value.
     *
     * @param where names the pickle in error messages, e.g. "model.pth: archive/data.pkl"
     */
    static Object load(ByteBuffer in, String where, PersistentLoad persistentLoad) throws IOException {
        return new Unpickler(in, where, persistentLoad).run();
    }

    private Object run() throws IOException {
        while (true) {
            int at = in.position();
            int op = u8();
            switch (op) {
                case 0x80 -> { // PROTO
                    int proto = u8();
                    if (proto < 2 || proto > 5) {
                        throw error(at, "pickle protocol " + proto + " is not supported; expected 2 to 5");
                    }
                }
                case 0x95 -> bytes(8, "FRAME length"); // FRAME: a hint only
                case '.' -> { // STOP
                    if (stack.size() != 1 || !marks.isEmpty()) {
                        throw error(at, "pickle stops with " + stack.size() + " values on the stack; expected 1");
                    }
                    return stack.get(0);
                }
                case '(' -> marks.push(stack.size()); // MARK
                case '0' -> pop(at); // POP
                case '1' -> popMark(at); // POP_MARK
                case '2' -> push(peek(at)); // DUP
                case 'N' -> push(null);
                case 0x88 -> push(Boolean.TRUE);
                case 0x89 -> push(Boolean.FALSE);
                case 'J' -> push((long) in(4, at).getInt());
                case 'K' -> push((long) u8());
                case 'M' -> push((long) (in(2, at).getShort() & 0xFFFF));
                case 0x8a -> push(longN(u8(), at)); // LONG1
                case 0x8b -> push(longN(length(in(4, at).getInt() & 0xFFFFFFFFL, at), at)); // LONG4
                case 'G' -> push(in(8, at).order(ByteOrder.BIG_ENDIAN).getDouble()); // BINFLOAT is big-endian
                case 'X' -> push(utf8(length(in(4, at).getInt() & 0xFFFFFFFFL, at), at)); // BINUNICODE
                case 0x8c -> push(utf8(u8(), at)); // SHORT_BINUNICODE
                case 0x8d -> push(utf8(length(in(8, at).getLong(), at), at)); // BINUNICODE8
                case 'T' -> push(latin1(length(in(4, at).getInt() & 0xFFFFFFFFL, at), at)); // BINSTRING
                case 'U' -> push(latin1(u8(), at)); // SHORT_BINSTRING
                case 'B' -> push(bytes(length(in(4, at).getInt() & 0xFFFFFFFFL, at), "bytes")); // BINBYTES
                case 'C' -> push(bytes(u8(), "bytes")); // SHORT_BINBYTES
                case 0x8e -> push(bytes(length(in(8, at).getLong(), at), "bytes")); // BINBYTES8
                case ')' -> push(new Tuple(List.of())); // EMPTY_TUPLE
                case 't' -> push(new Tuple(popMark(at))); // TUPLE
                case 0x85 -> push(new Tuple(popN(1, at))); // TUPLE1
                case 0x86 -> push(new Tuple(popN(2, at))); // TUPLE2
                case 0x87 -> push(new Tuple(popN(3, at))); // TUPLE3
                case ']' -> push(new ArrayList<>()); // EMPTY_LIST
                case 'l' -> push(new ArrayList<>(popMark(at))); // LIST
                case 'a' -> list(peekBelow(0, at), at).add(pop(at)); // APPEND (value popped first)
                case 'e' -> { // APPENDS
                    List<Object> items = popMark(at);
                    list(peek(at), at).addAll(items);
                }
                case '}' -> push(new LinkedHashMap<>()); // EMPTY_DICT
                case 'd' -> { // DICT
                    Map<Object, Object> d = new LinkedHashMap<>();
                    putAll(d, popMark(at), at);
                    push(d);
                }
                case 's' -> { // SETITEM
                    Object v = pop(at);
                    Object k = pop(at);
                    dict(peek(at), at).put(k, v);
                }
                case 'u' -> { // SETITEMS
                    List<Object> kv = popMark(at);
                    putAll(dict(peek(at), at), kv, at);
                }
                case 'c' -> push(global(line(at), line(at), at)); // GLOBAL "module\nname\n"
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop(at);
                    Object module = pop(at);
                    if (!(module instanceof String m) || !(name instanceof String n)) {
                        throw error(at, "STACK_GLOBAL needs two strings, got " + describe(module) + " and " + describe(name));
                    }
                    push(global(m, n, at));
                }
                case 'R' -> { // REDUCE
                    Object args = pop(at);
                    Object callable = pop(at);
                    push(reduce(callable, args, at));
                }
                case 'b' -> { // BUILD: only an OrderedDict's attributes (a state dict's _metadata: module versions)
                    Object state = pop(at);
                    Object obj = peek(at);
                    if (!(obj instanceof LinkedHashMap<?, ?>) || !(state instanceof Map<?, ?>)) {
                        throw error(at, "BUILD of " + describe(obj) + " with " + describe(state)
                                + " is not supported; only an OrderedDict's attributes are");
                    }
                }
                case 'Q' -> push(persistentLoad.load(pop(at))); // BINPERSID
                case 'q' -> memo.put((long) u8(), peek(at)); // BINPUT
                case 'r' -> memo.put(in(4, at).getInt() & 0xFFFFFFFFL, peek(at)); // LONG_BINPUT
                case 0x94 -> memo.put((long) memo.size(), peek(at)); // MEMOIZE
                case 'h' -> push(memoGet(u8(), at)); // BINGET
                case 'j' -> push(memoGet(in(4, at).getInt() & 0xFFFFFFFFL, at)); // LONG_BINGET
                default -> throw error(at, String.format("opcode 0x%02x is not supported in a state dict "
                        + "(only plain data, tensors and storages are)", op));
            }
        }
    }

    // ---------------------------------------------------------------- globals and calls

    private Global global(String module, String name, int at) throws IOException {
        String full = module + "." + name;
        if (full.equals(ORDERED_DICT) || full.equals(REBUILD_TENSOR) || full.equals(REBUILD_TENSOR_V1)
                || full.equals(REBUILD_PARAMETER)) {
            return new Global(full, null);
        }
        if (module.equals("torch") && name.endsWith("Storage")) {
            Safetensors.Dtype dt = STORAGES.get(name);
            if (dt == null) {
                throw error(at, "unsupported dtype: storage class " + full + "; supported: "
                        + String.join(", ", new java.util.TreeSet<>(STORAGES.keySet())));
            }
            return new Global(full, dt);
        }
        throw error(at, "global '" + full + "' is not allowed in a state dict (nothing is executed; allowed: "
                + ALLOWED + ")");
    }

    private Object reduce(Object callable, Object args, int at) throws IOException {
        if (!(callable instanceof Global g)) {
            throw error(at, "REDUCE calls " + describe(callable) + "; only an allowed global can be called");
        }
        if (!(args instanceof Tuple t)) {
            throw error(at, "REDUCE of " + g.name() + " needs an argument tuple, got " + describe(args));
        }
        List<Object> a = t.items();
        switch (g.name()) {
            case ORDERED_DICT -> {
                if (!a.isEmpty()) {
                    throw error(at, ORDERED_DICT + " called with " + a.size() + " arguments; expected none");
                }
                return new LinkedHashMap<>();
            }
            case REBUILD_TENSOR -> {
                if (a.size() != 6 && a.size() != 7) {
                    throw error(at, REBUILD_TENSOR + " called with " + a.size() + " arguments; expected (storage, "
                            + "offset, size, stride, requires_grad, hooks[, metadata])");
                }
                return rebuildTensor(a, at);
            }
            case REBUILD_TENSOR_V1 -> {
                if (a.size() != 4) {
                    throw error(at, REBUILD_TENSOR_V1 + " called with " + a.size() + " arguments; expected (storage, "
                            + "offset, size, stride)");
                }
                return rebuildTensor(a, at);
            }
            case REBUILD_PARAMETER -> {
                if (a.size() != 3 || !(a.get(0) instanceof TensorRef tensor)) {
                    throw error(at, REBUILD_PARAMETER + " needs (tensor, requires_grad, hooks), got " + a.size()
                            + " arguments" + (a.isEmpty() ? "" : " starting with " + describe(a.get(0))));
                }
                return tensor;
            }
            default -> throw error(at, g.name() + " cannot be called here; a storage class is only a dtype");
        }
    }

    /** (storage, offset, size, stride, ...): a contiguous view of the storage, checked against its size. */
    private TensorRef rebuildTensor(List<Object> a, int at) throws IOException {
        if (!(a.get(0) instanceof StorageRef storage)) {
            throw error(at, "rebuilding a tensor: first argument is " + describe(a.get(0)) + "; expected a storage");
        }
        long offset = integer(a.get(1), "storage offset", at);
        long[] size = longs(a.get(2), "size", at);
        long[] stride = longs(a.get(3), "stride", at);
        if (size.length != stride.length) {
            throw error(at, "tensor size " + java.util.Arrays.toString(size) + " and stride "
                    + java.util.Arrays.toString(stride) + " have different ranks");
        }
        long n = 1;
        long expect = 1;
        for (int i = size.length - 1; i >= 0; i--) {
            if (size[i] < 0) {
                throw error(at, "tensor size " + java.util.Arrays.toString(size) + " has a negative dimension");
            }
            // a dimension of size 1 may carry any stride; every other must be the contiguous (row-major) one
            if (size[i] != 1 && stride[i] != expect) {
                throw error(at, "tensor of size " + java.util.Arrays.toString(size) + " has strides "
                        + java.util.Arrays.toString(stride) + "; only contiguous (row-major) tensors are supported, "
                        + "save tensor.contiguous() instead");
            }
            expect = mulExact(expect, size[i], at);
            n = expect;
        }
        if (offset < 0 || n > 0 && (offset > storage.elements() || n > storage.elements() - offset)) {
            throw error(at, "tensor of size " + java.util.Arrays.toString(size) + " at offset " + offset
                    + " runs past its storage '" + storage.key() + "' of " + storage.elements() + " elements");
        }
        return new TensorRef(storage, offset, size);
    }

    // ---------------------------------------------------------------- reading

    private int u8() throws IOException {
        return in(1, in.position()).get() & 0xFF;
    }

    /** {@code n} bytes of the input as a little-endian view, checked against what is left. */
    private ByteBuffer in(int n, int at) throws IOException {
        if (in.remaining() < n) {
            throw error(at, "pickle ends after " + in.remaining() + " more bytes where " + n
                    + " are needed (truncated file?)");
        }
        ByteBuffer b = in.slice(in.position(), n).order(ByteOrder.LITTLE_ENDIAN);
        in.position(in.position() + n);
        return b;
    }

    /** A declared length, checked against the bytes left before anything of that size is allocated. */
    private int length(long declared, int at) throws IOException {
        if (declared < 0 || declared > in.remaining()) {
            throw error(at, "declared length " + Long.toUnsignedString(declared) + " exceeds the "
                    + in.remaining() + " bytes left in the pickle (truncated or corrupt file?)");
        }
        return (int) declared;
    }

    private byte[] bytes(int n, String what) throws IOException {
        int at = in.position();
        byte[] b = new byte[length(n, at)];
        in.get(b);
        return b;
    }

    private String utf8(int n, int at) throws IOException {
        return new String(bytes(n, "string"), StandardCharsets.UTF_8);
    }

    private String latin1(int n, int at) throws IOException {
        return new String(bytes(n, "string"), StandardCharsets.ISO_8859_1);
    }

    private Object longN(int n, int at) throws IOException {
        if (n == 0) {
            return 0L;
        }
        byte[] le = bytes(n, "long");
        byte[] be = new byte[n];
        for (int i = 0; i < n; i++) {
            be[i] = le[n - 1 - i];
        }
        BigInteger v = new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private String line(int at) throws IOException {
        StringBuilder s = new StringBuilder();
        while (true) {
            int c = u8();
            if (c == '\n') {
                return s.toString();
            }
            if (s.length() == MAX_GLOBAL_NAME) {
                throw error(at, "GLOBAL name longer than " + MAX_GLOBAL_NAME + " characters");
            }
            s.append((char) c);
        }
    }

    // ---------------------------------------------------------------- stack and memo

    private void push(Object o) {
        stack.add(o);
    }

    private Object pop(int at) throws IOException {
        if (stack.size() <= (marks.isEmpty() ? 0 : marks.peek())) {
            throw error(at, "pickle pops from an empty stack");
        }
        return stack.remove(stack.size() - 1);
    }

    private Object peek(int at) throws IOException {
        return peekBelow(0, at);
    }

    private Object peekBelow(int depth, int at) throws IOException {
        int i = stack.size() - 1 - depth;
        if (i < (marks.isEmpty() ? 0 : marks.peek())) {
            throw error(at, "pickle reads past the bottom of the stack");
        }
        return stack.get(i);
    }

    private List<Object> popN(int n, int at) throws IOException {
        Object[] items = new Object[n];
        for (int i = n - 1; i >= 0; i--) {
            items[i] = pop(at);
        }
        return java.util.Arrays.asList(items);
    }

    private List<Object> popMark(int at) throws IOException {
        if (marks.isEmpty()) {
            throw error(at, "pickle uses a MARK that was never set");
        }
        int m = marks.pop();
        List<Object> items = new ArrayList<>(stack.subList(m, stack.size()));
        stack.subList(m, stack.size()).clear();
        return items;
    }

    private Object memoGet(long key, int at) throws IOException {
        if (!memo.containsKey(key)) {
            throw error(at, "pickle refers to memo entry " + key + " that was never stored");
        }
        return memo.get(key);
    }

    // ---------------------------------------------------------------- checks

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o, int at) throws IOException {
        if (!(o instanceof ArrayList<?>)) {
            throw error(at, "APPEND to " + describe(o) + "; expected a list");
        }
        return (List<Object>) o;
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dict(Object o, int at) throws IOException {
        if (!(o instanceof LinkedHashMap<?, ?>)) {
            throw error(at, "SETITEM on " + describe(o) + "; expected a dict");
        }
        return (Map<Object, Object>) o;
    }

    private void putAll(Map<Object, Object> d, List<Object> kv, int at) throws IOException {
        if (kv.size() % 2 != 0) {
            throw error(at, "dict items come in pairs, got " + kv.size() + " values");
        }
        for (int i = 0; i < kv.size(); i += 2) {
            d.put(kv.get(i), kv.get(i + 1));
        }
    }

    private long integer(Object o, String what, int at) throws IOException {
        if (!(o instanceof Long l)) {
            throw error(at, what + " is " + describe(o) + "; expected an integer");
        }
        return l;
    }

    private long[] longs(Object o, String what, int at) throws IOException {
        if (!(o instanceof Tuple t)) {
            throw error(at, "tensor " + what + " is " + describe(o) + "; expected a tuple of integers");
        }
        long[] r = new long[t.items().size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = integer(t.items().get(i), "tensor " + what + "[" + i + "]", at);
        }
        return r;
    }

    private long mulExact(long a, long b, int at) throws IOException {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw error(at, "tensor element count overflows a 64-bit integer");
        }
    }

    static String describe(Object o) {
        if (o == null) {
            return "None";
        }
        if (o instanceof Global g) {
            return g.name();
        }
        if (o instanceof String s) {
            return "the string '" + (s.length() > 40 ? s.substring(0, 40) + "..." : s) + "'";
        }
        return "a " + o.getClass().getSimpleName();
    }

    private IOException error(int at, String message) {
        return new IOException(where + " at byte " + at + ": " + message);
    }
}
