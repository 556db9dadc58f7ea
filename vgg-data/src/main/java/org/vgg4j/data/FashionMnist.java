package org.vgg4j.data;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Fashion-MNIST (Zalando, MIT licence): 10 classes of 28x28 grayscale clothing images. The full set comes from
 * Debian's {@code dataset-fashion-mnist} ({@link #DEBIAN_DIR}); a class-balanced sample of 5,000 training and
 * 1,000 test images is bundled in this jar for demos and tests.
 */
public final class FashionMnist {
    /** Where Debian's dataset-fashion-mnist package installs the full 60k/10k set. */
    public static final Path DEBIAN_DIR = Path.of("/usr/share/datasets/fashion-mnist");

    public static final List<String> CLASS_NAMES = List.of("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

    private static final String SAMPLE = "/org/vgg4j/data/fashion-mnist-sample/";

    private FashionMnist() {
    }

    public enum Split {
        TRAIN("train"), TEST("t10k");

        final String prefix;

        Split(String prefix) {
            this.prefix = prefix;
        }
    }

    /** The bundled sample: 5,000 training or 1,000 test images, 10 classes balanced. */
    public static IdxImages bundledSample(Split split) {
        String images = SAMPLE + split.prefix + "-images-idx3-ubyte.gz";
        String labels = SAMPLE + split.prefix + "-labels-idx1-ubyte.gz";
        try (InputStream im = FashionMnist.class.getResourceAsStream(images);
             InputStream lb = FashionMnist.class.getResourceAsStream(labels)) {
            if (im == null || lb == null) {
                throw new IllegalStateException("bundled Fashion-MNIST sample " + images + " is missing from the class path");
            }
            return IdxImages.read(images, im, labels, lb);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The full set from a directory holding the four original files (gzip or not), e.g. {@link #DEBIAN_DIR}. */
    public static IdxImages read(Path dir, Split split) throws IOException {
        return IdxImages.read(find(dir, split.prefix + "-images-idx3-ubyte"), find(dir, split.prefix + "-labels-idx1-ubyte"));
    }

    private static Path find(Path dir, String base) throws IOException {
        for (String name : new String[] {base + ".gz", base}) {
            Path p = dir.resolve(name);
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        throw new IOException("no " + base + "[.gz] in " + dir
                + (dir.equals(DEBIAN_DIR) ? " (apt-get install dataset-fashion-mnist)" : ""));
    }
}
