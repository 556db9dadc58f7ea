package org.vgg4j.data;

/**
 * A reusable host buffer for one batch: images as float NCHW and integer labels, ready for
 * {@code Backend.copyIn}. Filled in place batch after batch; no per-image objects.
 * Legend: N batch (capacity), C channels, H height, W width.
 */
public final class Batch {
    private final int capacity;
    private final int channels;
    private final int height;
    private final int width;
    private final float[] hostImages; // (N,C,H,W)
    private final int[] labels;       // (N)
    private int size;

    public Batch(int capacity, int channels, int height, int width) {
        if (capacity < 1 || channels < 1 || height < 1 || width < 1) {
            throw new IllegalArgumentException("batch " + capacity + "x" + channels + "x" + height + "x" + width
                    + ": every dimension must be >= 1");
        }
        long n = (long) capacity * channels * height * width;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("batch of " + n + " floats exceeds a Java array; use a smaller batch");
        }
        this.capacity = capacity;
        this.channels = channels;
        this.height = height;
        this.width = width;
        this.hostImages = new float[(int) n];
        this.labels = new int[capacity];
    }

    public int capacity() {
        return capacity;
    }

    public int channels() {
        return channels;
    }

    public int height() {
        return height;
    }

    public int width() {
        return width;
    }

    /** Examples currently held (the last batch of an epoch may be smaller than the capacity). */
    public int size() {
        return size;
    }

    public void setSize(int size) {
        if (size < 0 || size > capacity) {
            throw new IllegalArgumentException("batch size " + size + " outside [0, " + capacity + "]");
        }
        this.size = size;
    }

    /** The image buffer (capacity,C,H,W); only the first size*C*H*W values are valid. */
    public float[] hostImages() {
        return hostImages;
    }

    /** The label buffer; only the first {@link #size()} entries are valid. */
    public int[] labels() {
        return labels;
    }

    /** Floats per example: C*H*W. */
    public int exampleSize() {
        return channels * height * width;
    }
}
