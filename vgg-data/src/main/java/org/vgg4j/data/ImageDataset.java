package org.vgg4j.data;

import java.util.List;

/**
 * A labelled, indexed set of images: what the pipeline draws from. Implementations: {@link FileImageDataset}
 * (ImageNet layouts and any image folder), {@link ShardDataset} (packed tar shards), {@link IdxDataset}
 * (Fashion-MNIST). Implementations must allow {@link #load} from several threads at once.
 */
public interface ImageDataset {
    /** Number of samples. */
    int size();

    /** Class index of sample {@code i} in [0, classes().size()). */
    int label(int i);

    /** Class identifiers by index (for ImageNet the sorted wnids). */
    List<String> classes();

    /** Where sample {@code i} comes from (a path, or shard and key), for reports. */
    String source(int i);

    /** Reads and decodes sample {@code i}; a file that cannot become a correct image is a {@link BadImageException}. */
    RgbImage load(int i) throws BadImageException;

    /**
     * As {@link #load(int)}, but the decoder may decode only the window {@code needed.region(width, height)}
     * (the result then holds only that, for {@link Resampler}). The default decodes everything.
     */
    default RgbImage load(int i, ImageDecoder.RegionNeeded needed) throws BadImageException {
        return load(i);
    }
}
