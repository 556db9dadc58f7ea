package org.vgg4j.data;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import java.awt.image.BufferedImage;
import java.awt.image.DataBufferByte;

/**
 * Converts an image dataset into shards (docs/data.md, "Shard format") in one cleaning pass: every sample is
 * decoded (bad files are skipped and listed), shrunk so its shorter side is at most {@code maxSide} (512, the
 * largest training S), and stored as a baseline RGB JPEG (ordinary JPEGs that need no shrinking are copied
 * byte for byte) or as raw PPM. Output: {@code <prefix>-000000.tar}, ... and {@code classes.txt}. Deterministic:
 * the same input gives byte-identical shards.
 */
public final class ShardPacker {
    /** Stored image encoding. */
    public enum Format {
        JPG, PPM
    }

    /** What a packing run did. */
    public record Report(int written, int shards, List<BadImageException> bad) {
    }

    private final int maxSide;
    private final Format format;
    private final float quality;
    private final int perShard;
    private final int threads;
    private final ImageDecoder decoder = new ImageDecoder();

    public ShardPacker(int maxSide, Format format, float quality, int perShard, int threads) {
        if (maxSide < 1 || perShard < 1 || threads < 1 || !(quality > 0 && quality <= 1)) {
            throw new IllegalArgumentException("maxSide " + maxSide + ", perShard " + perShard + ", threads " + threads
                    + " must be >= 1 and quality " + quality + " in (0, 1]");
        }
        this.maxSide = maxSide;
        this.format = format;
        this.quality = quality;
        this.perShard = perShard;
        this.threads = threads;
    }

    public Report pack(FileImageDataset ds, Path outDir, String prefix) throws IOException {
        Files.createDirectories(outDir);
        Files.write(outDir.resolve(ShardDataset.CLASSES_FILE), ds.classes(), StandardCharsets.UTF_8);
        List<BadImageException> bad = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        int written = 0;
        int shards = 0;
        OutputStream out = null;
        try {
            int chunk = 64 * threads; // convert a chunk in parallel, write it in order
            for (int from = 0; from < ds.size(); from += chunk) {
                List<Future<Object>> futures = new ArrayList<>();
                for (int i = from; i < Math.min(from + chunk, ds.size()); i++) {
                    int idx = i;
                    futures.add(pool.submit(() -> convert(ds, idx)));
                }
                Iterator<Future<Object>> it = futures.iterator();
                for (int i = from; it.hasNext(); i++) {
                    Object r = it.next().get();
                    if (r instanceof BadImageException e) {
                        bad.add(e);
                        continue;
                    }
                    if (written % perShard == 0) {
                        if (out != null) {
                            Tar.writeEnd(out);
                            out.close();
                        }
                        Path shard = outDir.resolve(String.format(Locale.ROOT, "%s-%06d.tar", prefix, shards++));
                        out = new BufferedOutputStream(Files.newOutputStream(shard), 1 << 20);
                    }
                    String key = String.format(Locale.ROOT, "%09d", i);
                    Tar.writeEntry(out, key + (format == Format.JPG ? ".jpg" : ".ppm"), (byte[]) r);
                    Tar.writeEntry(out, key + ".cls", Integer.toString(ds.label(i)).getBytes(StandardCharsets.US_ASCII));
                    written++;
                }
            }
            if (out != null) {
                Tar.writeEnd(out);
                out.close();
                out = null;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while packing", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IOException("packing failed: " + e.getCause(), e.getCause());
        } finally {
            pool.shutdownNow();
            if (out != null) {
                out.close();
            }
        }
        return new Report(written, shards, bad);
    }

    /** The stored bytes for sample i, or the reason it is bad. */
    private Object convert(FileImageDataset ds, int i) {
        try {
            byte[] raw = ds.readBytes(i);
            RgbImage im = decoder.decode(raw, ds.source(i));
            boolean shrink = im.shorterSide() > maxSide;
            if (shrink) {
                int[] size = Resampler.shorterSideTo(im.width(), im.height(), maxSide);
                im = new Resampler().resize(im, size[0], size[1]);
            }
            if (format == Format.PPM) {
                return Ppm.encode(im);
            }
            long[] dims = ImageDecoder.Format.sniff(raw) == ImageDecoder.Format.JPEG
                    ? ImageDecoder.Format.JPEG.headerSize(raw) : null;
            if (!shrink && dims != null && dims[2] == 3) {
                return raw; // an ordinary colour JPEG already small enough: no second generation of loss
            }
            return jpeg(im, quality);
        } catch (BadImageException e) {
            return e;
        }
    }

    /** Baseline RGB JPEG (JFIF, YCbCr 4:2:0) through the JDK's writer. */
    static byte[] jpeg(RgbImage im, float quality) {
        BufferedImage bi = new BufferedImage(im.width(), im.height(), BufferedImage.TYPE_3BYTE_BGR);
        byte[] dst = ((DataBufferByte) bi.getRaster().getDataBuffer()).getData();
        byte[] src = im.pixels();
        for (int p = 0; p < src.length; p += 3) {
            dst[p] = src[p + 2];
            dst[p + 1] = src[p + 1];
            dst[p + 2] = src[p];
        }
        ImageWriter writer = null;
        for (Iterator<ImageWriter> it = ImageIO.getImageWritersByFormatName("jpeg"); it.hasNext();) {
            ImageWriter w = it.next();
            if (writer == null || w.getClass().getName().startsWith("com.sun.")) {
                writer = w;
            }
        }
        try {
            ByteArrayOutputStream bo = new ByteArrayOutputStream();
            try (ImageOutputStream os = ImageIO.createImageOutputStream(bo)) {
                writer.setOutput(os);
                ImageWriteParam p = writer.getDefaultWriteParam();
                p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
                p.setCompressionQuality(quality);
                writer.write(null, new IIOImage(bi, null, null), p);
            }
            return bo.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            writer.dispose();
        }
    }
}
