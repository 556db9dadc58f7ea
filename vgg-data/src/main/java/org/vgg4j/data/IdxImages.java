package org.vgg4j.data;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * A labelled set of 8-bit grayscale images read from a pair of IDX files (the MNIST / Fashion-MNIST format:
 * big-endian magic 0x00000803 for images N x rows x cols, 0x00000801 for labels N), plain or gzip. Not a general
 * image dataset: this holds everything in memory (60,000 images of 28x28 are 47 MB).
 *
 * @param pixels N*rows*cols bytes, image-major, row-major inside an image
 * @param labels N labels
 */
public record IdxImages(int count, int rows, int cols, byte[] pixels, byte[] labels) {
    static final int IMAGES_MAGIC = 0x00000803;
    static final int LABELS_MAGIC = 0x00000801;
    /** The largest Java array: a corrupt header cannot ask for more. */
    static final long MAX_PIXELS = Integer.MAX_VALUE - 8;

    public IdxImages {
        if (pixels.length != (long) count * rows * cols || labels.length != count) {
            throw new IllegalArgumentException("IDX set of " + count + " images " + rows + "x" + cols + " needs "
                    + (long) count * rows * cols + " pixel bytes and " + count + " labels, got " + pixels.length
                    + " and " + labels.length);
        }
    }

    /** Label of image {@code i} as an int in [0, 255]. */
    public int label(int i) {
        return labels[i] & 0xFF;
    }

    /** Pixel (row r, column c) of image i in [0, 255]. */
    public int pixel(int i, int r, int c) {
        return pixels[(i * rows + r) * cols + c] & 0xFF;
    }

    /** Reads an images file and a labels file (each plain or .gz) and checks they agree. */
    public static IdxImages read(Path imagesFile, Path labelsFile) throws IOException {
        try (InputStream im = Files.newInputStream(imagesFile); InputStream lb = Files.newInputStream(labelsFile)) {
            return read(imagesFile.toString(), im, labelsFile.toString(), lb);
        }
    }

    /** As {@link #read(Path, Path)} from streams; the names appear in error messages. */
    public static IdxImages read(String imagesName, InputStream images, String labelsName, InputStream labels)
            throws IOException {
        DataInputStream im = open(images);
        DataInputStream lb = open(labels);
        int magic = im.readInt();
        if (magic != IMAGES_MAGIC) {
            throw new IOException(imagesName + ": IDX magic 0x" + Integer.toHexString(magic)
                    + " is not 0x803 (unsigned bytes, 3 dimensions)");
        }
        int n = im.readInt();
        int rows = im.readInt();
        int cols = im.readInt();
        long total = (long) n * rows * cols;
        if (n < 0 || rows <= 0 || cols <= 0 || total > MAX_PIXELS) {
            throw new IOException(imagesName + ": implausible IDX dimensions " + n + "x" + rows + "x" + cols);
        }
        int labelMagic = lb.readInt();
        if (labelMagic != LABELS_MAGIC) {
            throw new IOException(labelsName + ": IDX magic 0x" + Integer.toHexString(labelMagic)
                    + " is not 0x801 (unsigned bytes, 1 dimension)");
        }
        int nLabels = lb.readInt();
        if (nLabels != n) {
            throw new IOException(labelsName + " holds " + nLabels + " labels but " + imagesName + " holds " + n + " images");
        }
        byte[] pixels = readFully(im, (int) total, imagesName);
        byte[] lab = readFully(lb, n, labelsName);
        return new IdxImages(n, rows, cols, pixels, lab);
    }

    private static DataInputStream open(InputStream raw) throws IOException {
        BufferedInputStream in = new BufferedInputStream(raw);
        in.mark(2);
        int b0 = in.read();
        int b1 = in.read();
        in.reset();
        boolean gzip = b0 == 0x1f && b1 == 0x8b;
        return new DataInputStream(gzip ? new BufferedInputStream(new GZIPInputStream(in, 1 << 16)) : in);
    }

    private static byte[] readFully(DataInputStream in, int n, String name) throws IOException {
        byte[] out = new byte[n];
        try {
            in.readFully(out);
        } catch (EOFException e) {
            throw new IOException(name + " is truncated: expected " + n + " bytes of data", e);
        }
        if (in.read() != -1) {
            throw new IOException(name + " has data after the " + n + " bytes its header announces");
        }
        return out;
    }
}
