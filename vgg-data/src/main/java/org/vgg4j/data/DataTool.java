package org.vgg4j.data;

import java.io.IOException;
import java.nio.file.FileVisitOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
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
 * Run with {@code java -cp <vgg-data classes + dependencies> org.vgg4j.data.DataTool ...}.
 */
public final class DataTool {
    private DataTool() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            usage();
            return;
        }
        Map<String, String> opt = new HashMap<>();
        List<String> pos = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            if (args[i].startsWith("--")) {
                boolean flag = i + 1 >= args.length || args[i + 1].startsWith("--");
                opt.put(args[i].substring(2), flag ? "true" : args[++i]);
            } else {
                pos.add(args[i]);
            }
        }
        int threads = Integer.parseInt(opt.getOrDefault("threads", Integer.toString(Runtime.getRuntime().availableProcessors())));
        switch (args[0]) {
            case "scan" -> scan(Path.of(need(pos, 0, "DIR")), threads);
            case "pack" -> pack(Path.of(need(pos, 0, "DATASET_DIR")), Path.of(need(pos, 1, "OUT_DIR")), opt, threads);
            case "stats" -> stats(Path.of(need(pos, 0, "DATASET_DIR")), opt, threads);
            case "bench" -> bench(Path.of(need(pos, 0, "DIR")), opt);
            default -> usage();
        }
    }

    private static String need(List<String> pos, int i, String what) {
        if (pos.size() <= i) {
            throw new IllegalArgumentException("missing argument " + what);
        }
        return pos.get(i);
    }

    private static void usage() {
        System.out.println("usage: DataTool scan|pack|stats|bench ... (see the class javadoc)");
    }

    static void scan(Path dir, int threads) throws Exception {
        List<Path> files;
        try (Stream<Path> s = Files.walk(dir)) {
            files = s.filter(Files::isRegularFile).filter(ImageFolders::isImageName).sorted().toList();
        }
        ImageDecoder decoder = new ImageDecoder();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<String>> results = new ArrayList<>();
            for (Path f : files) {
                results.add(pool.submit(() -> {
                    try {
                        decoder.decode(Files.readAllBytes(f), f.toString());
                        return null;
                    } catch (BadImageException e) {
                        return e.reason();
                    } catch (IOException e) {
                        return "unreadable: " + e;
                    }
                }));
            }
            int bad = 0;
            for (int i = 0; i < files.size(); i++) {
                String reason = results.get(i).get();
                if (reason != null) {
                    bad++;
                    System.out.println("BAD\t" + files.get(i) + "\t" + reason);
                }
            }
            System.out.println("scanned " + files.size() + " image files under " + dir + ": " + bad + " bad");
        } finally {
            pool.shutdownNow();
        }
    }

    static void pack(Path in, Path out, Map<String, String> opt, int threads) throws IOException {
        FileImageDataset ds = ImageFolders.imageFolder(in, new ImageDecoder());
        ShardPacker packer = new ShardPacker(Integer.parseInt(opt.getOrDefault("max-side", "512")),
                ShardPacker.Format.valueOf(opt.getOrDefault("format", "jpg").toUpperCase(Locale.ROOT)),
                Float.parseFloat(opt.getOrDefault("quality", "0.9")),
                Integer.parseInt(opt.getOrDefault("per-shard", "1000")), threads);
        long t0 = System.nanoTime();
        ShardPacker.Report r = packer.pack(ds, out, opt.getOrDefault("prefix", "train"));
        for (BadImageException e : r.bad()) {
            System.out.println("BAD\t" + e.source() + "\t" + e.reason());
        }
        System.out.printf(Locale.ROOT, "packed %d of %d samples into %d shards in %s (%d bad skipped) in %.1f s%n",
                r.written(), ds.size(), r.shards(), out, r.bad().size(), (System.nanoTime() - t0) / 1e9);
    }

    static void stats(Path in, Map<String, String> opt, int threads) throws Exception {
        FileImageDataset ds = ImageFolders.imageFolder(in, new ImageDecoder());
        int max = Integer.parseInt(opt.getOrDefault("max-images", "10000"));
        int[] order = new int[ds.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        SplittableRandom rng = new SplittableRandom(Long.parseLong(opt.getOrDefault("seed", "0")));
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
        System.out.printf(Locale.ROOT, "images %d, pixels %d%n", n, total.pixels());
        System.out.printf(Locale.ROOT, "mean RGB (0..255): Normalization.meanRgb(%.3f, %.3f, %.3f)%n",
                255 * m[0], 255 * m[1], 255 * m[2]);
        double[] v = p.eigenvectors();
        System.out.printf(Locale.ROOT, "PCA ([0,1] scale): new ColourPca(new double[] {%.4f, %.4f, %.4f},%n"
                + "    new double[] {%.4f, %.4f, %.4f, %.4f, %.4f, %.4f, %.4f, %.4f, %.4f})%n",
                p.eigenvalues()[0], p.eigenvalues()[1], p.eigenvalues()[2], v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
    }

    /** Single-threaded images/s: load (read + decode) + TrainTransform into a reused buffer, over all files. */
    static void bench(Path dir, Map<String, String> opt) throws Exception {
        ImageDecoder decoder = new ImageDecoder();
        ImageDataset ds = opt.containsKey("shards") ? ShardDataset.open(dir, decoder) : flatOrFolders(dir, decoder);
        int s = Integer.parseInt(opt.getOrDefault("s", "256"));
        int sMin = Integer.parseInt(opt.getOrDefault("smin", Integer.toString(s)));
        int sMax = Integer.parseInt(opt.getOrDefault("smax", Integer.toString(sMin)));
        // Same work as the torchvision peer: Resize(S) + RandomCrop(224) + flip + normalise (no PCA shift).
        TrainTransform t = new TrainTransform(sMin, sMax, 224, true, 0, ColourPca.IMAGENET, Normalization.TORCHVISION);
        double seconds = Double.parseDouble(opt.getOrDefault("seconds", "10"));
        int repeat = Integer.parseInt(opt.getOrDefault("repeat", "3"));
        boolean decodeOnly = opt.containsKey("decode-only");
        Resampler r = new Resampler();
        float[] out = new float[t.outputSize()];
        System.out.println("jpeg: " + JpegLibrary.describe());
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
                System.out.printf(Locale.ROOT, "java %s S=[%d,%d] run %d: %.1f img/cpu-s, %.1f img/s wall (%d images,"
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
