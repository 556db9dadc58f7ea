package org.vgg4j.data;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A dataset read from packed shards (see {@link ShardPacker} and docs/data.md): WebDataset-style tar files in
 * which sample {@code key} is the entries {@code key.jpg} or {@code key.ppm} (the image) and {@code key.cls}
 * (the class index in decimal). Opening scans the tar headers once into an in-memory index; {@link #load} then
 * reads one image with a positional read (thread-safe, random access, so the pipeline shuffles globally).
 * Class names come from {@code classes.txt} beside the shards when present.
 */
public final class ShardDataset implements ImageDataset, AutoCloseable {
    public static final String CLASSES_FILE = "classes.txt";

    private final List<FileChannel> channels = new ArrayList<>();
    private final List<String> shardNames = new ArrayList<>();
    private final int[] shard;    // (n) which channel
    private final long[] offset;  // (n) image data offset
    private final int[] length;   // (n) image data length
    private final boolean[] ppm;  // (n) raw PPM rather than an encoded image
    private final String[] keys;  // (n)
    private final int[] labels;   // (n)
    private final List<String> classes;
    private final ImageDecoder decoder;

    private ShardDataset(List<Path> tars, List<String> classNames, ImageDecoder decoder) throws IOException {
        this.decoder = decoder;
        List<int[]> loc = new ArrayList<>();
        List<long[]> off = new ArrayList<>();
        List<String> keyList = new ArrayList<>();
        List<Integer> labelList = new ArrayList<>();
        List<Boolean> ppmList = new ArrayList<>();
        int maxLabel = -1;
        try {
            for (Path tar : tars) {
                FileChannel ch = FileChannel.open(tar, StandardOpenOption.READ);
                channels.add(ch);
                shardNames.add(tar.toString());
                int s = channels.size() - 1;
                Map<String, Tar.Entry> image = new LinkedHashMap<>();
                Map<String, Tar.Entry> cls = new HashMap<>();
                for (Tar.Entry e : Tar.scan(ch, tar.toString())) {
                    int dot = e.name().indexOf('.', e.name().lastIndexOf('/') + 1);
                    if (dot < 0) {
                        continue;
                    }
                    String key = e.name().substring(0, dot);
                    String ext = e.name().substring(dot + 1);
                    switch (ext) {
                        case "jpg", "jpeg", "png", "ppm" -> image.put(key, e);
                        case "cls" -> cls.put(key, e);
                        default -> { } // other fields (metadata) are ignored
                    }
                }
                for (Map.Entry<String, Tar.Entry> e : image.entrySet()) {
                    Tar.Entry c = cls.get(e.getKey());
                    if (c == null) {
                        throw new IOException(tar + ": sample " + e.getKey() + " has no .cls entry");
                    }
                    ByteBuffer b = ByteBuffer.allocate(c.size());
                    Tar.readFully(ch, b, c.offset());
                    int label;
                    try {
                        label = Integer.parseInt(new String(b.array(), StandardCharsets.US_ASCII).strip());
                    } catch (NumberFormatException ex) {
                        throw new IOException(tar + ": sample " + e.getKey() + " has a non-numeric class", ex);
                    }
                    if (label < 0) {
                        throw new IOException(tar + ": sample " + e.getKey() + " has class " + label);
                    }
                    maxLabel = Math.max(maxLabel, label);
                    loc.add(new int[] {s, e.getValue().size()});
                    off.add(new long[] {e.getValue().offset()});
                    keyList.add(e.getKey());
                    labelList.add(label);
                    ppmList.add(e.getValue().name().endsWith(".ppm"));
                }
            }
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
        int n = keyList.size();
        shard = new int[n];
        offset = new long[n];
        length = new int[n];
        ppm = new boolean[n];
        labels = new int[n];
        keys = keyList.toArray(new String[0]);
        for (int i = 0; i < n; i++) {
            shard[i] = loc.get(i)[0];
            length[i] = loc.get(i)[1];
            offset[i] = off.get(i)[0];
            ppm[i] = ppmList.get(i);
            labels[i] = labelList.get(i);
        }
        if (classNames != null) {
            if (maxLabel >= classNames.size()) {
                close();
                throw new IOException("shards hold class " + maxLabel + " but " + CLASSES_FILE + " lists "
                        + classNames.size() + " classes");
            }
            classes = List.copyOf(classNames);
        } else {
            List<String> c = new ArrayList<>();
            for (int k = 0; k <= maxLabel; k++) {
                c.add(Integer.toString(k));
            }
            classes = c;
        }
    }

    /** All {@code *.tar} files of {@code dir} in name order, with {@code dir/classes.txt} if present. */
    public static ShardDataset open(Path dir, ImageDecoder decoder) throws IOException {
        List<Path> tars;
        try (Stream<Path> s = Files.list(dir)) {
            tars = s.filter(p -> p.getFileName().toString().endsWith(".tar")).sorted().toList();
        }
        if (tars.isEmpty()) {
            throw new IOException(dir + " holds no .tar shards");
        }
        Path cls = dir.resolve(CLASSES_FILE);
        List<String> names = Files.isRegularFile(cls) ? Files.readAllLines(cls, StandardCharsets.UTF_8).stream()
                .filter(l -> !l.isBlank()).toList() : null;
        return new ShardDataset(tars, names, decoder);
    }

    /** The given shard files; classes named by index. */
    public static ShardDataset open(List<Path> tars, ImageDecoder decoder) throws IOException {
        return new ShardDataset(tars, null, decoder);
    }

    @Override
    public int size() {
        return keys.length;
    }

    @Override
    public int label(int i) {
        return labels[i];
    }

    @Override
    public List<String> classes() {
        return classes;
    }

    @Override
    public String source(int i) {
        return shardNames.get(shard[i]) + ":" + keys[i];
    }

    /** The stored image bytes of sample i. */
    public byte[] readBytes(int i) throws BadImageException {
        ByteBuffer b = ByteBuffer.allocate(length[i]);
        try {
            Tar.readFully(channels.get(shard[i]), b, offset[i]);
        } catch (IOException e) {
            throw new BadImageException(source(i), "unreadable: " + e, e);
        }
        return b.array();
    }

    @Override
    public RgbImage load(int i) throws BadImageException {
        byte[] bytes = readBytes(i);
        return ppm[i] ? Ppm.decode(bytes, source(i), ImageDecoder.DEFAULT_MAX_PIXELS) : decoder.decode(bytes, source(i));
    }

    @Override
    public RgbImage load(int i, ImageDecoder.RegionNeeded needed) throws BadImageException {
        byte[] bytes = readBytes(i);
        return ppm[i] ? Ppm.decode(bytes, source(i), ImageDecoder.DEFAULT_MAX_PIXELS)
                : decoder.decode(bytes, source(i), needed);
    }

    @Override
    public void close() {
        for (FileChannel c : channels) {
            try {
                c.close();
            } catch (IOException ignored) {
                // closing a read-only channel: nothing to recover
            }
        }
    }
}
