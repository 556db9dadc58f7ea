package org.vgg4j.data;

import java.util.ArrayList;
import java.util.List;

/**
 * An {@link IdxImages} set (Fashion-MNIST) seen as an {@link ImageDataset}: each grayscale image becomes an RGB
 * image with the value replicated, so the same transforms and pipeline apply. Never a bad sample.
 */
public final class IdxDataset implements ImageDataset {
    private final IdxImages images;
    private final List<String> classes;

    public IdxDataset(IdxImages images, List<String> classes) {
        int max = 0;
        for (int i = 0; i < images.count(); i++) {
            max = Math.max(max, images.label(i));
        }
        if (max >= classes.size()) {
            throw new IllegalArgumentException("label " + max + " needs more than the " + classes.size() + " class names");
        }
        this.images = images;
        this.classes = List.copyOf(classes);
    }

    /** Class names "0" .. "k-1" for the largest label k-1 present. */
    public static IdxDataset of(IdxImages images) {
        int max = 0;
        for (int i = 0; i < images.count(); i++) {
            max = Math.max(max, images.label(i));
        }
        List<String> names = new ArrayList<>();
        for (int k = 0; k <= max; k++) {
            names.add(Integer.toString(k));
        }
        return new IdxDataset(images, names);
    }

    @Override
    public int size() {
        return images.count();
    }

    @Override
    public int label(int i) {
        return images.label(i);
    }

    @Override
    public List<String> classes() {
        return classes;
    }

    @Override
    public String source(int i) {
        return "idx#" + i;
    }

    @Override
    public RgbImage load(int i) {
        int n = images.rows() * images.cols();
        byte[] rgb = new byte[3 * n];
        byte[] px = images.pixels();
        int base = i * n;
        for (int p = 0; p < n; p++) {
            byte v = px[base + p];
            rgb[3 * p] = v;
            rgb[3 * p + 1] = v;
            rgb[3 * p + 2] = v;
        }
        return new RgbImage(images.cols(), images.rows(), rgb);
    }
}
