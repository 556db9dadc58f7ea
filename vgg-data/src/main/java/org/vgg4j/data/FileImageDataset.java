package org.vgg4j.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Images stored one per file, with a label per file: the dataset behind ImageNet's layouts and generic image
 * folders (built by {@link ImageFolders}). Reading and decoding happen in {@link #load}, on the caller's thread.
 */
public final class FileImageDataset implements ImageDataset {
    private final List<Path> files;   // (n)
    private final int[] labels;       // (n)
    private final List<String> classes;
    private final ImageDecoder decoder;

    public FileImageDataset(List<Path> files, int[] labels, List<String> classes, ImageDecoder decoder) {
        if (files.size() != labels.length) {
            throw new IllegalArgumentException(files.size() + " files but " + labels.length + " labels");
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes.size()) {
                throw new IllegalArgumentException("label " + labels[i] + " of " + files.get(i) + " outside [0, "
                        + classes.size() + ")");
            }
        }
        this.files = List.copyOf(files);
        this.labels = labels.clone();
        this.classes = List.copyOf(classes);
        this.decoder = decoder;
    }

    @Override
    public int size() {
        return files.size();
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
        return files.get(i).toString();
    }

    public Path file(int i) {
        return files.get(i);
    }

    /**
     * The raw bytes of sample {@code i} (for the shard packer, which may copy them unchanged).
     *
     * @throws BadImageException when it cannot be read, or is not a regular file: a dangling symbolic link, a
     *                           directory, or a FIFO, device or socket (never opened: reading a FIFO would block)
     */
    public byte[] readBytes(int i) throws BadImageException {
        Path f = files.get(i);
        if (!Files.isRegularFile(f)) {
            throw new BadImageException(source(i), notAFile(f));
        }
        try {
            return Files.readAllBytes(f);
        } catch (IOException | OutOfMemoryError e) {
            throw new BadImageException(source(i), "unreadable: " + e, e);
        }
    }

    /** Why {@code f}, which is not a regular file (following links), cannot be an image, in words. */
    static String notAFile(Path f) {
        if (Files.isSymbolicLink(f) && !Files.exists(f)) {
            String target;
            try {
                target = Files.readSymbolicLink(f).toString();
            } catch (IOException | UnsupportedOperationException e) {
                target = "?";
            }
            return "dangling symbolic link (to " + target + ", which does not exist)";
        }
        if (Files.isDirectory(f)) {
            return "a directory, not an image file";
        }
        if (!Files.exists(f)) {
            return "no longer exists";
        }
        return "not a regular file (a FIFO, device or socket): not read";
    }

    @Override
    public RgbImage load(int i) throws BadImageException {
        return decoder.decode(readBytes(i), source(i));
    }

    @Override
    public RgbImage load(int i, ImageDecoder.RegionNeeded needed) throws BadImageException {
        return decoder.decode(readBytes(i), source(i), needed);
    }
}
