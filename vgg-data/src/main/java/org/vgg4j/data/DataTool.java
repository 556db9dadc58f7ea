package org.vgg4j.data;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.FileVisitOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

/**
 * vgg-data's command line (it prints to stdout; the library never does):
 * <pre>
 *   scan  DIR [--threads N]                   list every file under DIR that cannot be decoded, with the reason
 *   pack  DATASET_DIR OUT_DIR [--format jpg|ppm] [--max-side 512] [--quality 0.9] [--per-shard 1000]
 *                             [--threads N] [--prefix train]      image folder (e.g. ImageNet train) to shards
 *   stats DATASET_DIR [--max-images N] [--seed S] [--threads N]   mean RGB and RGB PCA for Normalization/ColourPca
 *   bench DIR [--shards] [--s 256 | --smin 256 --smax 512] [--seconds 10] [--repeat 3] [--decode-only]
 *                                              single-thread decode + augment images/s (docs/benchmarks.md)
 * </pre>
 * Run with {@code java -cp <vgg-data classes + dependencies> org.vgg4j.data.DataTool ...}. A mistake (an unknown
 * command or option, a missing argument, a value out of range, a directory that is not there) is one line on
 * stderr naming the value and what was expected, exit code 2; a failure while working is one line, exit code 1;
 * {@code --verbose} adds the stack trace.
 */
public final class DataTool {
    /** Largest file {@code scan} reads; larger ones are reported, not read (a Java array holds under 2 GiB). */
    static final long MAX_SCAN_FILE_BYTES = 1L << 30;

    private static final String USAGE = "usage: DataTool scan|pack|stats|bench ... [--verbose] (see the class javadoc)";
    /** The options each command takes; those in FLAGS take no value. */
    private static final Map<String, List<String>> OPTIONS = Map.of(
            "scan", List.of("threads"),
            "pack", List.of("format", "max-side", "quality", "per-shard", "threads", "prefix"),
            "stats", List.of("max-images", "seed", "threads"),
            "bench", List.of("shards", "s", "smin", "smax", "seconds", "repeat", "decode-only"));
    private static final List<String> FLAGS = List.of("shards", "decode-only", "verbose");
    private static final Map<String, Integer> ARGUMENTS = Map.of("scan", 1, "pack", 2, "stats", 1, "bench", 1);

    private DataTool() {
    }

    public static void main(String[] args) {
        int code = run(args, System.out, System.err);
        if (code != 0) {
            System.exit(code);
        }
    }

    /** Runs one command; returns the exit code (0 ok, 1 failure, 2 bad usage). */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        boolean verbose = List.of(args).contains("--verbose");
        try {
            run(args, out);
            return 0;
        } catch (IllegalArgumentException e) {
            err.println("error: " + e.getMessage());
            if (verbose) {
                e.printStackTrace(err);
            }
            return 2;
        } catch (Exception | Error e) {
            Throwable t = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            err.println("error: " + describe(t) + (verbose ? "" : " (--verbose for the stack trace)"));
            if (verbose) {
                t.printStackTrace(err);
            }
            return 1;
        }
    }

    private static void run(String[] args, PrintStream out) throws Exception {
        if (args.length == 0) {
            throw new IllegalArgumentException("no command; " + USAGE);
        }
        String cmd = args[0];
        if (!OPTIONS.containsKey(cmd)) {
            throw new IllegalArgumentException("unknown command '" + cmd + "'; expected scan, pack, stats or bench");
        }
        Map<String, String> opt = new HashMap<>();
        List<String> pos = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            if (!args[i].startsWith("--")) {
                pos.add(args[i]);
                continue;
            }
            String name = args[i].substring(2);
            if (!FLAGS.contains(name) && !OPTIONS.get(cmd).contains(name)) {
                throw new IllegalArgumentException("unknown option " + args[i] + " for " + cmd + "; expected "
                        + (OPTIONS.get(cmd).stream().map(o -> "--" + o).toList()) + " or --verbose");
            }
            if (FLAGS.contains(name)) {
                opt.put(name, "true");
            } else if (i + 1 >= args.length || args[i + 1].startsWith("--")) {
                throw new IllegalArgumentException(args[i] + " needs a value");
            } else {
                opt.put(name, args[++i]);
            }
        }
        int want = ARGUMENTS.get(cmd);
        if (pos.size() > want) {
            throw new IllegalArgumentException("unexpected argument '" + pos.get(want) + "' for " + cmd + "; " + USAGE);
        }
        int threads = intOption(opt, "threads", Runtime.getRuntime().availableProcessors(), 1);
        switch (cmd) {
            case "scan" -> scan(directory(pos, 0, "DIR"), threads, out);
            case "pack" -> pack(directory(pos, 0, "DATASET_DIR"), Path.of(need(pos, 1, "OUT_DIR")), opt, threads, out);
            case "stats" -> stats(directory(pos, 0, "DATASET_DIR"), opt, threads, out);
            default -> bench(directory(pos, 0, "DIR"), opt, out);
        }
    }

    private static String need(List<String> pos, int i, String what) {
        if (pos.size() <= i) {
            throw new IllegalArgumentException("missing argument " + what + "; " + USAGE);
        }
        return pos.get(i);
    }

    private static Path directory(List<String> pos, int i, String what) {
        Path p = Path.of(need(pos, i, what));
        if (!Files.isDirectory(p)) {
            throw new IllegalArgumentException(what + " '" + p + "': " + (Files.exists(p) ? "not a directory" : "no such directory"));
        }
        return p;
    }

    /** Option {@code name} as an integer >= {@code min}, or {@code dflt} when absent. */
    static int intOption(Map<String, String> opt, String name, int dflt, int min) {
        String v = opt.get(name);
        if (v == null) {
            return dflt;
        }
        try {
            int n = Integer.parseInt(v);
            if (n >= min) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("--" + name + " '" + v + "': expected an integer >= " + min);
    }

    private static double doubleOption(Map<String, String> opt, String name, double dflt, double min, double max) {
        String v = opt.get(name);
        if (v == null) {
            return dflt;
        }
        try {
            double d = Double.parseDouble(v);
            if (d >= min && d <= max) {
                return d;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("--" + name + " '" + v + "': expected a number in [" + min + ", " + max + "]");
    }

    /** A failure in words: the message, or the exception's name when it has none; I/O errors name their file. */
    static String describe(Throwable t) {
        if (t instanceof java.nio.file.FileSystemException f) {
            String why = f.getReason() != null ? f.getReason()
                    : t instanceof java.nio.file.NoSuchFileException ? "no such file or directory"
                    : t instanceof java.nio.file.AccessDeniedException ? "permission denied" : t.getClass().getSimpleName();
            return f.getFile() + ": " + why;
        }
        if (t instanceof java.io.UncheckedIOException u && u.getCause() != null) {
            return describe(u.getCause());
        }
        String m = t.getMessage();
        return t instanceof IOException || t instanceof IllegalStateException ? (m != null ? m : t.getClass().getSimpleName())
                : t.getClass().getSimpleName() + (m != null ? ": " + m : "");
    }

    static void scan(Path dir, int threads, PrintStream out) throws Exception {
        List<Path> files; // everything named like an image: a dangling link, a directory or a FIFO is reported too
        try (Stream<Path> s = Files.walk(dir)) {
            files = s.filter(p -> !p.equals(dir)).filter(ImageFolders::isImageName).sorted().toList();
        }
        ImageDecoder decoder = new ImageDecoder();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<String>> results = new ArrayList<>();
            for (Path f : files) {
                results.add(pool.submit(() -> scanOne(decoder, f)));
            }
            int bad = 0;
            for (int i = 0; i < files.size(); i++) {
                String reason = results.get(i).get();
                if (reason != null) {
                    bad++;
                    out.println("BAD\t" + files.get(i) + "\t" + reason);
                }
            }
            out.println("scanned " + files.size() + " image files under " + dir + ": " + bad + " bad");
        } finally {
            pool.shutdownNow();
        }
    }

    /** Why one file cannot be used, or null; never throws, so one file cannot end the report of the others. */
    private static String scanOne(ImageDecoder decoder, Path f) {
        if (!Files.isRegularFile(f)) { // never opened: reading a FIFO would block
            return FileImageDataset.notAFile(f);
        }
        try {
            long size = Files.size(f);
            if (size > MAX_SCAN_FILE_BYTES) { // checked before reading: never allocate what the file claims
                return String.format(Locale.ROOT, "too large: %,d bytes; an image file is read only up to %,d bytes",
                        size, MAX_SCAN_FILE_BYTES);
            }
            decoder.decode(Files.readAllBytes(f), f.toString());
            return null;
        } catch (BadImageException e) {
            return e.reason();
        } catch (IOException e) {
            return "unreadable: " + describe(e);
        } catch (RuntimeException | OutOfMemoryError e) {
            return "failed: " + describe(e);
        }
    }

    static void pack(Path in, Path out, Map<String, String> opt, int threads, PrintStream console) throws IOException {
        String format = opt.getOrDefault("format", "jpg");
        if (!format.equals("jpg") && !format.equals("ppm")) {
            throw new IllegalArgumentException("--format '" + format + "': expected jpg or ppm");
        }
        int maxSide = intOption(opt, "max-side", 512, 1);
        float quality = (float) doubleOption(opt, "quality", 0.9, 0, 1);
        int perShard = intOption(opt, "per-shard", 1000, 1);
        FileImageDataset ds = ImageFolders.imageFolder(in, new ImageDecoder());
        ShardPacker packer = new ShardPacker(maxSide, ShardPacker.Format.valueOf(format.toUpperCase(Locale.ROOT)),
                quality, perShard, threads);
        long t0 = System.nanoTime();
        ShardPacker.Report r = packer.pack(ds, out, opt.getOrDefault("prefix", "train"));
        for (BadImageException e : r.bad()) {
            console.println("BAD\t" + e.source() + "\t" + e.reason());
        }
        console.printf(Locale.ROOT, "packed %d of %d samples into %d shards in %s (%d bad skipped) in %.1f s%n",
                r.written(), ds.size(), r.shards(), out, r.bad().size(), (System.nanoTime() - t0) / 1e9);
    }

    static void stats(Path in, Map<String, String> opt, int threads, PrintStream out) throws Exception {
        int max = intOption(opt, "max-images", 10000, 1);
        long seed;
        try {
            seed = Long.parseLong(opt.getOrDefault("seed", "0"));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--seed '" + opt.get("seed") + "': expected an integer");
        }
        FileImageDataset ds = ImageFolders.imageFolder(in, new ImageDecoder());
        int[] order = new int[ds.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = order.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        int n = Math.min(max, order.length);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        ColourStats total = new ColourStats();
        try {
            List<Future<ColourStats>> parts = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int me = t;
                parts.add(pool.submit(() -> {
                    ColourStats s = new ColourStats();
                    for (int k = me; k < n; k += threads) {
                        try {
                            s.add(ds.load(order[k]));
                        } catch (BadImageException e) {
                            // skipped; scan lists them
                        }
                    }
                    return s;
                }));
            }
            for (Future<ColourStats> f : parts) {
                total.merge(f.get());
            }
        } finally {
            pool.shutdownNow();
        }
        double[] m = total.mean();
        ColourPca p = total.pca();
        out.printf(Locale.ROOT, "images %d, pixels %d%n", n, total.pixels());
        out.printf(Locale.ROOT, "mean RGB (0..255): Normalization.meanRgb(%.3f, %.3f, %.3f)%n",
                255 * m[0], 255 * m[1], 255 * m[2]);
        double[] v = p.eigenvectors();
        out.printf(Locale.ROOT, "PCA ([0,1] scale): new ColourPca(new double[] {%.4f, %.4f, %.4f},%n"
                + "    new double[] {%.4f, %.4f, %.4f, %.4f, %.4f, %.4f, %.4f, %.4f, %.4f})%n",
                p.eigenvalues()[0], p.eigenvalues()[1], p.eigenvalues()[2], v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
    }

    /** Single-threaded images/s: load (read + decode) + TrainTransform into a reused buffer, over all files. */
    static void bench(Path dir, Map<String, String> opt, PrintStream console) throws Exception {
        int s = intOption(opt, "s", 256, 224);
        int sMin = intOption(opt, "smin", s, 224);
        int sMax = intOption(opt, "smax", sMin, sMin);
        double seconds = doubleOption(opt, "seconds", 10, 0.001, 1e6);
        int repeat = intOption(opt, "repeat", 3, 1);
        ImageDecoder decoder = new ImageDecoder();
        ImageDataset ds = opt.containsKey("shards") ? ShardDataset.open(dir, decoder) : flatOrFolders(dir, decoder);
        // Same work as the torchvision peer: Resize(S) + RandomCrop(224) + flip + normalise (no PCA shift).
        TrainTransform t = new TrainTransform(sMin, sMax, 224, true, 0, ColourPca.IMAGENET, Normalization.TORCHVISION);
        boolean decodeOnly = opt.containsKey("decode-only");
        Resampler r = new Resampler();
        float[] out = new float[t.outputSize()];
        console.println("jpeg: " + JpegLibrary.describe());
        // Process CPU time (all threads: JIT and GC included) as well as wall time: on a shared machine the
        // images per CPU-second is the per-core rate, and it is far less disturbed by other processes.
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        for (int rep = -1; rep < repeat; rep++) { // rep -1 warms the JIT up
            long t0 = System.nanoTime();
            long cpu0 = os.getProcessCpuTime();
            long deadline = t0 + (long) ((rep < 0 ? Math.min(seconds, 5) : seconds) * 1e9);
            int done = 0;
            int bad = 0;
            for (int i = 0; System.nanoTime() < deadline; i = (i + 1) % ds.size()) {
                try {
                    if (decodeOnly) {
                        ds.load(i);
                    } else { // as DataPipeline does: only the source window the crop reads is decoded
                        int n = done;
                        int rp = rep;
                        RgbImage im = ds.load(i,
                                (w, h) -> t.regionNeeded(w, h, SampleRandom.of(1, rp, SampleRandom.AUGMENT, n)));
                        t.apply(im, SampleRandom.of(1, rep, SampleRandom.AUGMENT, done), r, out, 0);
                    }
                    done++;
                } catch (BadImageException e) {
                    bad++;
                }
            }
            double el = (System.nanoTime() - t0) / 1e9;
            double cpu = (os.getProcessCpuTime() - cpu0) / 1e9;
            if (rep >= 0) {
                console.printf(Locale.ROOT, "java %s S=[%d,%d] run %d: %.1f img/cpu-s, %.1f img/s wall (%d images,"
                        + " %d bad, %.1f s, %.1f cpu-s)%n", decodeOnly ? "decode-only" : "decode+augment", sMin, sMax, rep,
                        done / cpu, done / el, done, bad, el, cpu);
            }
        }
        if (ds instanceof ShardDataset sd) {
            sd.close();
        }
    }

    static ImageDataset flatOrFolders(Path dir, ImageDecoder decoder) throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.walk(dir, FileVisitOption.FOLLOW_LINKS)) { // a linked folder is common here
            files = s.filter(Files::isRegularFile).filter(ImageFolders::isImageName).sorted().toList();
        }
        if (files.isEmpty()) {
            throw new IllegalArgumentException("no image files (" + ImageFolders.class.getSimpleName()
                    + " extensions) under " + dir);
        }
        return new FileImageDataset(files, new int[files.size()], List.of("all"), decoder);
    }
}
