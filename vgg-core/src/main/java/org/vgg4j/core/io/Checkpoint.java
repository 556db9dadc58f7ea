package org.vgg4j.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * A {@link Network}'s parameters and state as a safetensors file under torchvision's state-dict names
 * ("features.0.weight", "classifier.6.bias", "features.1.running_mean", ...), so the file loads into
 * torchvision with {@code load_state_dict(strict=True)} and torchvision's files load here. Each BatchNorm also
 * gets torchvision's {@code num_batches_tracked}, an I64 scalar (shape []), which our layers do not use.
 *
 * <p>Loading is strict: every key the network expects must be present with its exact shape and (unless
 * conversion is asked for) dtype, and every key in the file must be expected; all problems are collected and
 * reported together. Nothing is written into the network until the whole file has been checked.
 * Not here: optimiser state and training progress (the trainer's checkpoint adds those under its own names).
 */
public final class Checkpoint {
    private static final Logger LOG = LoggerFactory.getLogger(Checkpoint.class);
    private static final String BATCHES_TRACKED = "num_batches_tracked";
    private static final int CHUNK = 1 << 20; // elements per host chunk

    /**
     * How strictly to load.
     *
     * @param convertDtype accept any floating dtype (F64, F32, F16, BF16) and convert to the network's
     * @param ignore       keys in the file to skip silently (e.g. golden files carrying inputs and outputs)
     */
    public record Options(boolean convertDtype, Predicate<String> ignore) {
        public static final Options STRICT = new Options(false, k -> false);
    }

    /** What a load found besides the tensors: the file's metadata and BatchNorm's batch counter (or 0). */
    public record Loaded(Map<String, String> metadata, long batchesTracked, List<String> keys) {
    }

    private Checkpoint() {
    }

    /** The torchvision keys of {@code net}, in state-dict order, with their shapes (num_batches_tracked: []). */
    public static Map<String, long[]> expectedKeys(Network net) {
        Map<String, long[]> keys = new LinkedHashMap<>();
        for (NamedLayer nl : net.layers()) {
            for (ParamStore.Entry e : net.params().entries()) {
                if (e.key().startsWith(nl.name() + ".")) {
                    keys.put(e.key(), longs(e.spec().shape()));
                }
            }
            if (nl.layer() instanceof BatchNorm2d) {
                keys.put(nl.name() + "." + BATCHES_TRACKED, new long[0]);
            }
        }
        return keys;
    }

    /** Saves in the network's dtype with num_batches_tracked = 0. */
    public static void save(Network net, Path path, Map<String, String> metadata) throws IOException {
        save(net, path, metadata, 0);
    }

    /** Saves every parameter and state tensor atomically; {@code batchesTracked} fills num_batches_tracked. */
    public static void save(Network net, Path path, Map<String, String> metadata, long batchesTracked) throws IOException {
        Safetensors.Dtype dt = net.dtype() == DType.FLOAT64 ? Safetensors.Dtype.F64 : Safetensors.Dtype.F32;
        List<Safetensors.Entry> entries = new ArrayList<>();
        for (Map.Entry<String, long[]> k : expectedKeys(net).entrySet()) {
            if (k.getKey().endsWith("." + BATCHES_TRACKED)) {
                entries.add(Safetensors.ofLongs(k.getKey(), new long[0], new long[] {batchesTracked}));
                continue;
            }
            Tensor t = net.params().get(k.getKey()).value();
            entries.add(new Safetensors.Entry(k.getKey(), dt, k.getValue(), out -> writeTensor(t, out)));
        }
        Safetensors.write(path, entries, metadata);
        LOG.info("saved {} tensors of network {} to {}", entries.size(), net.name(), path);
    }

    /**
     * Writes the values of {@code t} as little-endian safetensors data of its own dtype, copying out through the
     * backend in bounded host chunks (no host copy of a whole 400 MB FC weight).
     */
    public static void writeTensor(Tensor t, java.io.OutputStream out) throws IOException {
        Tensor flat = t.reshape(Math.toIntExact(t.size()));
        long n = t.size();
        int chunk = (int) Math.min(n, CHUNK);
        ByteBuffer b = ByteBuffer.allocate(chunk * t.dtype().bytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] hf = t.dtype() == DType.FLOAT32 ? new float[chunk] : null;
        double[] hd = t.dtype() == DType.FLOAT32 ? null : new double[chunk];
        for (long off = 0; off < n; off += chunk) {
            int len = (int) Math.min(chunk, n - off);
            Tensor v = flat.view(off, Shape.of(len));
            b.clear();
            if (hf != null) {
                t.backend().copyOut(v, hf, 0);
                for (int i = 0; i < len; i++) {
                    b.putFloat(hf[i]);
                }
            } else {
                t.backend().copyOut(v, hd, 0);
                for (int i = 0; i < len; i++) {
                    b.putDouble(hd[i]);
                }
            }
            out.write(b.array(), 0, b.position());
        }
    }

    /** Strict load of {@code path} into {@code net}. */
    public static Loaded load(Network net, Path path) throws IOException {
        try (Safetensors.Reader r = Safetensors.open(path)) {
            return load(net, r, Options.STRICT);
        }
    }

    /**
     * Loads the weights of a safetensors file or of a PyTorch {@code torch.save} state dict (torchvision's
     * {@code .pth}, zip or legacy; chosen by content, see {@link StateDicts}) into {@code net}: names and shapes
     * strictly, any floating dtype converted to the network's.
     */
    public static Loaded loadWeights(Network net, Path path) throws IOException {
        return StateDicts.load(net, path, new Options(true, k -> false));
    }

    /** Loads an open, header-validated file into {@code net}, checking names, shapes and dtypes first. */
    public static Loaded load(Network net, Safetensors.Reader file, Options options) throws IOException {
        Map<String, long[]> expected = expectedKeys(net);
        Map<String, Safetensors.TensorInfo> present = file.tensors();
        Safetensors.Dtype want = net.dtype() == DType.FLOAT64 ? Safetensors.Dtype.F64 : Safetensors.Dtype.F32;
        List<String> problems = new ArrayList<>();
        Set<String> missing = new LinkedHashSet<>();
        for (String k : expected.keySet()) {
            if (!present.containsKey(k)) {
                missing.add(k);
            }
        }
        Set<String> unexpected = new LinkedHashSet<>();
        for (String k : present.keySet()) {
            if (!expected.containsKey(k) && !options.ignore().test(k)) {
                unexpected.add(k);
            }
        }
        if (!missing.isEmpty()) {
            problems.add("missing keys " + sample(missing));
        }
        if (!unexpected.isEmpty()) {
            problems.add("unexpected keys " + sample(unexpected));
        }
        for (Map.Entry<String, long[]> k : expected.entrySet()) {
            Safetensors.TensorInfo t = present.get(k.getKey());
            if (t == null) {
                continue;
            }
            boolean counter = k.getKey().endsWith("." + BATCHES_TRACKED);
            if (counter) {
                if (t.dtype() != Safetensors.Dtype.I64) {
                    problems.add("tensor '" + t.name() + "' has dtype " + t.dtype() + "; expected I64");
                }
            } else if (t.dtype() != want && !(options.convertDtype() && t.dtype().isFloat())) {
                problems.add("tensor '" + t.name() + "' has dtype " + t.dtype() + "; expected " + want
                        + " (the network's dtype)");
            }
            if (!Arrays.equals(t.shape(), k.getValue())) {
                problems.add("tensor '" + t.name() + "' has shape " + t.shapeString() + "; expected "
                        + Arrays.toString(k.getValue()));
            }
        }
        if (!problems.isEmpty()) {
            throw new IOException(file.path() + " does not fit network '" + net.name() + "': " + String.join("; ", problems));
        }
        long batches = 0;
        List<String> loaded = new ArrayList<>();
        for (String key : expected.keySet()) {
            Safetensors.TensorInfo t = present.get(key);
            if (key.endsWith("." + BATCHES_TRACKED)) {
                batches = Math.max(batches, file.readLongs(key)[0]);
            } else {
                readTensor(file, t, net.params().get(key).value());
            }
            loaded.add(key);
        }
        return new Loaded(file.metadata(), batches, Collections.unmodifiableList(loaded));
    }

    /** Reads tensor {@code info} of {@code file} into {@code dst} (same element count) in bounded host chunks. */
    public static void readTensor(Safetensors.Reader file, Safetensors.TensorInfo info, Tensor dst) throws IOException {
        Tensor flat = dst.reshape(Math.toIntExact(dst.size()));
        long n = dst.size();
        int chunk = (int) Math.min(n, CHUNK);
        boolean floats = dst.dtype() == DType.FLOAT32 && info.dtype() == Safetensors.Dtype.F32;
        float[] hf = floats ? new float[chunk] : null;
        double[] hd = floats ? null : new double[chunk];
        for (long off = 0; off < n; off += chunk) {
            int len = (int) Math.min(chunk, n - off);
            Tensor v = flat.view(off, Shape.of(len));
            if (floats) {
                file.readFloats(info, off, len, hf, 0);
                dst.backend().copyIn(hf, 0, v);
            } else {
                file.readDoubles(info, off, len, hd, 0);
                dst.backend().copyIn(hd, 0, v);
            }
        }
    }

    private static String sample(Set<String> keys) {
        List<String> l = new ArrayList<>(keys);
        return l.size() <= 8 ? l.toString() : l.subList(0, 8) + " and " + (l.size() - 8) + " more";
    }

    private static long[] longs(Shape s) {
        long[] d = new long[s.rank()];
        for (int i = 0; i < d.length; i++) {
            d[i] = s.dim(i);
        }
        return d;
    }
}
