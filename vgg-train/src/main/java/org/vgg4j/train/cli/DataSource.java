package org.vgg4j.train.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.FileImageDataset;
import org.vgg4j.data.IdxBatcher;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.IdxImages;
import org.vgg4j.data.ImageDataset;
import org.vgg4j.data.ImageDecoder;
import org.vgg4j.data.ImageFolders;
import org.vgg4j.data.Normalization;
import org.vgg4j.data.PaperTransforms;
import org.vgg4j.data.SampleTransform;
import org.vgg4j.data.SmallImageTransform;

/**
 * What {@code --data} names, resolved to training and validation sets with their transforms:
 * <ul>
 *   <li>{@code fashion-mnist-sample}: the 5,000/1,000 sample bundled in vgg-data;</li>
 *   <li>{@code fashion-mnist}: Debian's 60k/10k set in /usr/share/datasets/fashion-mnist;</li>
 *   <li>a directory with the four Fashion-MNIST/MNIST IDX files;</li>
 *   <li>a directory with {@code train/} and {@code val/} class folders (ImageNet's train layout for both): the
 *       paper's augmentation at the recipe's scales, centre-crop validation at Q = (Smin + Smax) / 2
 *       (vgg-data's {@link PaperTransforms}).</li>
 * </ul>
 *
 * @param small  28x28-style images trained at 32x32 without resampling (Fashion-MNIST)
 * @param norm   the input normalisation both transforms apply, on the 0..255 scale: the training pixels' own mean
 *               and std for small images, the paper's mean subtraction for image folders (checkpoints record it)
 */
public record DataSource(String name, ImageDataset train, ImageDataset val, SampleTransform trainTransform,
                         SampleTransform valTransform, int classes, boolean small, Normalization norm) {

    public static final String ACCEPTED = "fashion-mnist-sample, fashion-mnist, a directory of IDX files, or a directory"
            + " with train/ and val/ class folders";
    /** The four files of an IDX directory (each may be gzipped). */
    static final java.util.List<String> IDX_FILES = java.util.List.of("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");

    /**
     * @param limit     use only the first N training images (0: all)
     * @param pad       random shift of small images, pixels
     * @param crop      training crop of image folders (the network's input size)
     */
    public static DataSource resolve(String data, int limit, int pad, int crop, int sMin, int sMax) throws IOException {
        if (data.equals("fashion-mnist-sample")) {
            return idx(data, FashionMnist.bundledSample(FashionMnist.Split.TRAIN),
                    FashionMnist.bundledSample(FashionMnist.Split.TEST), limit, pad);
        }
        Path dir = data.equals("fashion-mnist") ? FashionMnist.DEBIAN_DIR : Path.of(data);
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("--data '" + data + "': no such directory; expected " + ACCEPTED
                    + (data.equals("fashion-mnist") ? " (install Debian's dataset-fashion-mnist)" : ""));
        }
        boolean hasTrain = Files.isDirectory(dir.resolve("train"));
        boolean hasVal = Files.isDirectory(dir.resolve("val"));
        if (hasTrain != hasVal) {
            throw new IllegalArgumentException("--data '" + data + "' has " + (hasTrain ? "train/ but no val/" : "val/ but no train/")
                    + "; expected both class-folder directories (or the four IDX files)");
        }
        if (!hasTrain && IDX_FILES.stream().noneMatch(f -> Files.isRegularFile(dir.resolve(f)) || Files.isRegularFile(dir.resolve(f + ".gz")))) {
            throw new IllegalArgumentException("--data '" + data + "' holds neither train/ and val/ class folders nor any of the"
                    + " IDX files " + IDX_FILES + " (or .gz); expected " + ACCEPTED);
        }
        if (hasTrain) {
            ImageDecoder decoder = new ImageDecoder();
            FileImageDataset train = ImageFolders.imageFolder(dir.resolve("train"), decoder);
            FileImageDataset val = ImageFolders.imageFolder(dir.resolve("val"), decoder);
            return new DataSource(dir.toString(), limit > 0 ? new Prefix(train, limit) : train, val,
                    PaperTransforms.training(sMin, sMax, crop), PaperTransforms.validation(sMin, sMax, crop),
                    train.classes().size(), false, Normalization.IMAGENET_MEAN_RGB);
        }
        return idx(dir.toString(), FashionMnist.read(dir, FashionMnist.Split.TRAIN), FashionMnist.read(dir, FashionMnist.Split.TEST),
                limit, pad);
    }

    private static DataSource idx(String name, IdxImages train, IdxImages test, int limit, int pad) {
        if (limit > 0 && limit < train.count()) {
            int px = train.rows() * train.cols();
            train = new IdxImages(limit, train.rows(), train.cols(), Arrays.copyOf(train.pixels(), limit * px),
                    Arrays.copyOf(train.labels(), limit));
        }
        double[] stats = IdxBatcher.pixelStatistics(train); // mean, std of the training pixels in [0, 1]
        SmallImageTransform t = SmallImageTransform.grey(32, pad, true, stats[0], stats[1]);
        IdxDataset tr = new IdxDataset(train, FashionMnist.CLASS_NAMES);
        IdxDataset te = new IdxDataset(test, FashionMnist.CLASS_NAMES);
        return new DataSource(name, tr, te, t, t.testView(), FashionMnist.CLASS_NAMES.size(), true, onByteScale(t));
    }

    /** A small-image transform's normalisation, {@code (v/255 - m) / s}, as {@code (v - 255 m) / (255 s)}. */
    static Normalization onByteScale(SmallImageTransform t) {
        float[] m = t.mean().clone(); // records hand out their arrays: never change them in place
        float[] s = t.std().clone();
        for (int c = 0; c < 3; c++) {
            m[c] *= 255f;
            s[c] *= 255f;
        }
        return new Normalization(m, s);
    }

    /** The test view of small images under {@code norm} (0..255 scale) instead of the data's own statistics. */
    static SmallImageTransform smallTestView(int side, Normalization norm) {
        float[] m = norm.mean().clone();
        float[] s = norm.std().clone();
        for (int c = 0; c < 3; c++) {
            m[c] /= 255f;
            s[c] /= 255f;
        }
        return new SmallImageTransform(side, 0, false, m, s);
    }

    /** The first n samples of a dataset. */
    record Prefix(ImageDataset base, int n) implements ImageDataset {
        @Override
        public int size() {
            return Math.min(n, base.size());
        }

        @Override
        public int label(int i) {
            return base.label(i);
        }

        @Override
        public java.util.List<String> classes() {
            return base.classes();
        }

        @Override
        public String source(int i) {
            return base.source(i);
        }

        @Override
        public org.vgg4j.data.RgbImage load(int i) throws org.vgg4j.data.BadImageException {
            return base.load(i);
        }
    }
}
