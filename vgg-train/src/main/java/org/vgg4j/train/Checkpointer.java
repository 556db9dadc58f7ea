package org.vgg4j.train;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.zip.CRC32;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vgg4j.core.io.Checkpoint;
import org.vgg4j.core.io.Safetensors;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Tensor;

/**
 * Training checkpoints: one safetensors file per save, {@code step-0000001234.safetensors}, holding the network
 * under torchvision's names (it loads into torchvision as it is), the momentum buffer as
 * {@code optimizer.momentum}, and the {@link TrainState} plus a CRC-32 of the whole data area in the metadata.
 *
 * <p>Atomic: Safetensors writes a temporary file, fsyncs it and renames it over the target, so a kill -9 at any
 * moment leaves either the previous set of files or the new one, never a half file under a checkpoint's name.
 * Damage from elsewhere (a truncated copy, a bad disk) is caught by the header checks and the CRC, and a file saved
 * after the run diverged by a scan for NaN and infinity; {@link #restore} then warns and falls back to the previous
 * checkpoint, and stops, naming each file and its fault, when none is left; a checkpoint that does not fit the
 * network stops it at once. The last {@code keepLast} files up to the step just saved are kept (higher-numbered
 * files are not this run's and are never pruned), plus {@code best.safetensors}, a hard link (or copy) of the one
 * with the lowest validation error.
 *
 * <p>Not here: which step to save at (the {@link Trainer} decides), or evaluation-only loading
 * (vgg-core's {@link Checkpoint} loads the network part of these files, ignoring {@code optimizer.*}).
 */
public final class Checkpointer {
    private static final Logger LOG = LoggerFactory.getLogger(Checkpointer.class);
    public static final String MOMENTUM = "optimizer.momentum";
    public static final String BEST = "best.safetensors";
    private static final String PREFIX = "step-";
    private static final String SUFFIX = ".safetensors";

    /** Called between tensors while a file is written (for crash tests); a no-op normally. */
    @FunctionalInterface
    public interface WriteHook {
        void afterTensor(Path target, String tensor);
    }

    private final Path dir;
    private final int keepLast;
    private final WriteHook hook;
    private final Map<String, String> model;

    public Checkpointer(Path dir, int keepLast) {
        this(dir, keepLast, (p, t) -> { });
    }

    public Checkpointer(Path dir, int keepLast, WriteHook hook) {
        if (keepLast < 1) {
            throw new IllegalArgumentException("keep last " + keepLast + " checkpoints: must be >= 1");
        }
        this.dir = dir;
        this.keepLast = keepLast;
        this.hook = hook;
        this.model = Map.of();
    }

    private Checkpointer(Checkpointer c, Map<String, String> model) {
        this.dir = c.dir;
        this.keepLast = c.keepLast;
        this.hook = c.hook;
        this.model = Map.copyOf(model);
    }

    /**
     * This checkpointer, also writing {@code model} (what {@link org.vgg4j.core.io.ModelMetadata} makes of the
     * spec and the input normalisation) into every file's metadata, so eval, export and features need no model
     * options for it.
     */
    public Checkpointer describing(Map<String, String> model) {
        return new Checkpointer(this, model);
    }

    public Path directory() {
        return dir;
    }

    /** The file a save at {@code step} writes. */
    public Path pathFor(long step) {
        return dir.resolve(String.format("%s%010d%s", PREFIX, step, SUFFIX));
    }

    /** Saves replica 0 of {@code replicas} with {@code state}; {@code best} also points best.safetensors at it. */
    public Path save(Replicas replicas, TrainState state, String recipe, boolean best) throws IOException {
        Network net = replicas.primary();
        Tensor momentum = replicas.optimizer(0).velocity();
        Safetensors.Dtype dt = net.dtype() == DType.FLOAT64 ? Safetensors.Dtype.F64 : Safetensors.Dtype.F32;
        List<Safetensors.Entry> entries = new ArrayList<>();
        for (Map.Entry<String, long[]> k : Checkpoint.expectedKeys(net).entrySet()) {
            if (net.params().get(k.getKey()) == null) { // BatchNorm's num_batches_tracked: torchvision's counter
                entries.add(Safetensors.ofLongs(k.getKey(), new long[0], new long[] {state.step()}));
            } else {
                Tensor t = net.params().get(k.getKey()).value();
                entries.add(new Safetensors.Entry(k.getKey(), dt, k.getValue(), out -> Checkpoint.writeTensor(t, out)));
            }
        }
        entries.add(new Safetensors.Entry(MOMENTUM, dt, new long[] {momentum.size()}, out -> Checkpoint.writeTensor(momentum, out)));

        // Pass 1: the CRC of the data area, which the header (written first) must carry.
        CRC32 crc = new CRC32();
        OutputStream crcOut = new OutputStream() {
            @Override
            public void write(int b) {
                crc.update(b);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                crc.update(b, off, len);
            }
        };
        for (Safetensors.Entry e : entries) {
            e.data().writeTo(crcOut);
        }
        Map<String, String> meta = TrainStateCodec.encode(state);
        meta.putAll(model);
        meta.put("recipe", recipe);
        meta.put("network", net.name());
        meta.put("crc32", Long.toHexString(crc.getValue()));
        // Pass 2: the file, with the hook between tensors.
        Path target = pathFor(state.step());
        List<Safetensors.Entry> hooked = new ArrayList<>();
        for (Safetensors.Entry e : entries) {
            hooked.add(new Safetensors.Entry(e.name(), e.dtype(), e.shape(), out -> {
                e.data().writeTo(out);
                hook.afterTensor(target, e.name());
            }));
        }
        Safetensors.write(target, hooked, meta);
        if (best) {
            linkBest(target);
        }
        prune(state.step());
        LOG.info("checkpoint {} (epoch {}, position {}, step {})", target, state.epoch(), state.position(), state.step());
        return target;
    }

    /** Checkpoint files, newest (highest step) first. */
    public List<Path> list() throws IOException {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, PREFIX + "*" + SUFFIX)) {
            for (Path p : ds) {
                out.add(p);
            }
        }
        out.sort(Comparator.comparing((Path p) -> p.getFileName().toString()).reversed());
        return out;
    }

    /**
     * Loads the newest intact checkpoint into every replica (parameters, BatchNorm state, momentum) and returns its
     * state. A damaged file (truncated, failing its CRC, holding a NaN or an infinity) is skipped with a warning
     * naming it and why, and the previous one tried. Empty only when the folder holds no checkpoint at all.
     *
     * <p>A resume that cannot resume stops, before anything is written: an intact checkpoint that does not fit the
     * replicas' network (another width, configuration or number of classes) throws at once, without trying the older
     * files (the same run wrote them), and a folder whose every checkpoint is damaged throws too, naming each file
     * and its fault. The replicas' parameters are untouched in both cases.
     *
     * @throws IllegalArgumentException when the newest intact checkpoint does not fit the network of the replicas
     * @throws IOException              when checkpoints exist but every one of them is damaged
     */
    public Optional<TrainState> restore(Replicas replicas) throws IOException {
        return restore(replicas, Long.MAX_VALUE);
    }

    /**
     * As {@link #restore(Replicas)} among the checkpoints of steps below {@code before} only: a rollback after
     * training diverged at step {@code before} skips the checkpoint of that step, which holds the very parameters
     * that diverged.
     */
    public Optional<TrainState> restore(Replicas replicas, long before) throws IOException {
        List<Path> files = new ArrayList<>();
        for (Path p : list()) {
            if (stepOf(p) < before) {
                files.add(p);
            }
        }
        List<String> faults = new ArrayList<>();
        for (Path p : files) {
            try {
                TrainState s = load(p, replicas);
                LOG.info("resumed from {} (epoch {}, position {}, step {})", p, s.epoch(), s.position(), s.step());
                return Optional.of(s);
            } catch (Unfit e) {
                throw new IllegalArgumentException("cannot resume: " + e.getMessage() + "; resume with the network and"
                        + " recipe of the run that wrote it, or choose another output folder", e);
            } catch (IOException | RuntimeException e) {
                LOG.warn("checkpoint {} is unusable ({}); trying the previous one", p, e.getMessage());
                faults.add(e.getMessage());
            }
        }
        if (!files.isEmpty()) {
            throw new IOException("cannot resume from " + dir + ": none of its " + files.size() + " checkpoint"
                    + (files.size() == 1 ? " is" : "s is") + " usable (" + String.join("; ", faults) + ")");
        }
        return Optional.empty();
    }

    /** An intact checkpoint that does not fit the network it is loaded into: a misfit, not damage. */
    private static final class Unfit extends IOException {
        Unfit(String message) {
            super(message);
        }
    }

    /**
     * Loads one checkpoint file into the replicas after checking its CRC, that every float in it is finite and that
     * it fits their network; the replicas are untouched unless all of these hold.
     *
     * @throws IOException naming the file and its fault (for a misfit, every tensor that differs)
     */
    public static TrainState load(Path path, Replicas replicas) throws IOException {
        try (Safetensors.Reader r = Safetensors.open(path)) {
            String want = r.metadata().get("crc32");
            if (want == null) {
                throw new IOException(path + " has no crc32 in its metadata: not a trainer checkpoint");
            }
            long got = dataCrc(path);
            if (Long.parseLong(want, 16) != got) {
                throw new IOException(path + " fails its checksum (crc32 " + Long.toHexString(got) + ", header says "
                        + want + "): the file is corrupt");
            }
            TrainState s = TrainStateCodec.decode(r.metadata(), path); // before any tensor is touched
            Network net = replicas.primary();
            Tensor velocity = replicas.optimizer(0).velocity();
            Safetensors.TensorInfo m = r.tensors().get(MOMENTUM);
            if (m == null) {
                throw new IOException(path + " has no " + MOMENTUM + ": not a trainer checkpoint");
            }
            requireFinite(path, r);
            try {
                Checkpoint.load(net, r, new Checkpoint.Options(false, k -> k.equals(MOMENTUM))); // checks all first
            } catch (IOException e) { // the file is intact (CRC above): what Checkpoint refuses is a misfit
                throw new Unfit(e.getMessage());
            }
            if (m.elements() != velocity.size()) { // the network fits, so only a hand-made file gets here
                throw new Unfit(path + " does not fit network '" + net.name() + "': " + MOMENTUM + " has "
                        + m.elements() + " elements; expected " + velocity.size());
            }
            Checkpoint.readTensor(r, m, velocity);
            replicas.broadcastFromPrimary();
            replicas.zeroGrads();
            return s;
        }
    }

    /** Throws naming the first tensor of {@code r} that holds a NaN or an infinity, and the element. */
    private static void requireFinite(Path path, Safetensors.Reader r) throws IOException {
        double[] chunk = new double[1 << 16];
        for (Safetensors.TensorInfo t : r.tensors().values()) {
            if (!t.dtype().isFloat()) {
                continue;
            }
            for (long off = 0; off < t.elements(); off += chunk.length) {
                int len = (int) Math.min(chunk.length, t.elements() - off);
                r.readDoubles(t, off, len, chunk, 0);
                for (int i = 0; i < len; i++) {
                    if (!Double.isFinite(chunk[i])) {
                        throw new IOException(path + ": tensor '" + t.name() + "' holds " + chunk[i] + " at element "
                                + (off + i) + "; expected finite values only");
                    }
                }
            }
        }
    }

    /** CRC-32 of everything after the header. */
    static long dataCrc(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            while (len.hasRemaining() && ch.read(len) >= 0) {
                // read the 8-byte header length
            }
            long start = 8 + len.flip().getLong();
            ch.position(start);
            CRC32 crc = new CRC32();
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            while (ch.read(buf) > 0) {
                buf.flip();
                crc.update(buf);
                buf.clear();
            }
            return crc.getValue();
        }
    }

    private void linkBest(Path target) throws IOException {
        Path tmp = dir.resolve("." + BEST + ".tmp");
        Files.deleteIfExists(tmp);
        try {
            Files.createLink(tmp, target);
        } catch (IOException | UnsupportedOperationException e) {
            Files.copy(target, tmp, StandardCopyOption.REPLACE_EXISTING);
        }
        try {
            Files.move(tmp, dir.resolve(BEST), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, dir.resolve(BEST), StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /**
     * Keeps the {@code keepLast} newest checkpoints up to {@code saved}, the step just written. Files numbered above
     * it are not this run's past (a damaged newer file that a resume skipped) and are left alone: ranking them first
     * would delete what this run just wrote; the run replaces each of them when it reaches its step.
     */
    private void prune(long saved) throws IOException {
        List<Path> mine = new ArrayList<>();
        for (Path p : list()) {
            if (stepOf(p) <= saved) {
                mine.add(p);
            }
        }
        for (int i = keepLast; i < mine.size(); i++) {
            Files.deleteIfExists(mine.get(i)); // best.safetensors is a separate link and survives
        }
        // Temporary files of writes killed mid-way ("." + name + ".*.tmp") are garbage once a newer save landed.
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "." + PREFIX + "*.tmp")) {
            for (Path p : ds) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** The step in a checkpoint's name; Long.MAX_VALUE (never pruned) for a name that is not a step number. */
    static long stepOf(Path file) {
        String n = file.getFileName().toString();
        try {
            return Long.parseLong(n.substring(PREFIX.length(), n.length() - SUFFIX.length()));
        } catch (NumberFormatException | IndexOutOfBoundsException e) {
            return Long.MAX_VALUE;
        }
    }

    /** TrainState to and from safetensors metadata (strings); doubles as exact hex bit patterns. */
    static final class TrainStateCodec {
        private TrainStateCodec() {
        }

        static Map<String, String> encode(TrainState s) {
            Map<String, String> m = new LinkedHashMap<>();
            m.put("format", "vgg4j-train-1");
            m.put("epoch", Integer.toString(s.epoch()));
            m.put("position", Integer.toString(s.position()));
            m.put("step", Long.toString(s.step()));
            m.put("plateau.drops", Integer.toString(s.plateau().drops()));
            m.put("plateau.best", bits(s.plateau().bestError()));
            m.put("plateau.since", Integer.toString(s.plateau().sinceBest()));
            m.put("lr.scale", bits(s.lrScale()));
            m.put("epoch.loss_sum", bits(s.epochLossSum()));
            m.put("epoch.examples", Long.toString(s.epochExamples()));
            m.put("best.error", bits(s.bestError()));
            m.put("rollbacks", Integer.toString(s.rollbacks()));
            return m;
        }

        /**
         * The state in {@code m}. Checkpoints written before the Dropout masks were keyed by the step also carry
         * {@code dropout.calls} (the layers' forward counters): not needed any more, it is ignored.
         */
        static TrainState decode(Map<String, String> m, Path path) throws IOException {
            try {
                if (!"vgg4j-train-1".equals(m.get("format"))) {
                    throw new IOException(path + ": metadata format '" + m.get("format") + "'; expected vgg4j-train-1");
                }
                return new TrainState(Integer.parseInt(m.get("epoch")), Integer.parseInt(m.get("position")),
                        Long.parseLong(m.get("step")),
                        new Schedule.Plateau.State(Integer.parseInt(m.get("plateau.drops")), unbits(m.get("plateau.best")),
                                Integer.parseInt(m.get("plateau.since"))),
                        unbits(m.get("lr.scale")), unbits(m.get("epoch.loss_sum")), Long.parseLong(m.get("epoch.examples")),
                        unbits(m.get("best.error")), Integer.parseInt(m.get("rollbacks")));
            } catch (NullPointerException | NumberFormatException e) {
                throw new IOException(path + ": trainer metadata incomplete or malformed (" + e + ")", e);
            }
        }

        private static String bits(double v) {
            return Long.toHexString(Double.doubleToRawLongBits(v));
        }

        private static double unbits(String s) {
            return Double.longBitsToDouble(Long.parseUnsignedLong(s, 16));
        }
    }
}
