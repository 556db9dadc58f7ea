package org.vgg4j.data;

/**
 * Turns 8-bit grayscale IDX images into VGG input: each image is normalised ((v/255 - mean) / std), centred on
 * a zero-padded square of side {@code side} (28x28 Fashion-MNIST becomes 32x32, the smallest VGG input), and
 * copied into every one of {@code channels} channels (VGG's first conv takes RGB).
 */
public final class IdxBatcher {
    private final IdxImages images;
    private final int side;
    private final int channels;
    private final float mean;
    private final float std;

    public IdxBatcher(IdxImages images, int side, int channels, double mean, double std) {
        if (side < images.rows() || side < images.cols()) {
            throw new IllegalArgumentException("target side " + side + " is smaller than the images' "
                    + images.rows() + "x" + images.cols());
        }
        if (channels < 1 || !(std > 0)) {
            throw new IllegalArgumentException("channels " + channels + " must be >= 1 and std " + std + " > 0");
        }
        this.images = images;
        this.side = side;
        this.channels = channels;
        this.mean = (float) mean;
        this.std = (float) std;
    }

    /** Mean and standard deviation of all pixels, scaled to [0, 1]. */
    public static double[] pixelStatistics(IdxImages images) {
        double sum = 0;
        double sq = 0;
        for (byte b : images.pixels()) {
            double v = (b & 0xFF) / 255.0;
            sum += v;
            sq += v * v;
        }
        long n = images.pixels().length;
        double m = sum / n;
        return new double[] {m, Math.sqrt(Math.max(0, sq / n - m * m))};
    }

    public IdxImages images() {
        return images;
    }

    /** A batch buffer of the right shape for this batcher. */
    public Batch newBatch(int capacity) {
        return new Batch(capacity, channels, side, side);
    }

    /** Fills {@code batch} with the images {@code order[from .. from+count)}. */
    public void fill(Batch batch, int[] order, int from, int count) {
        if (batch.channels() != channels || batch.height() != side || batch.width() != side) {
            throw new IllegalArgumentException("batch " + batch.channels() + "x" + batch.height() + "x" + batch.width()
                    + " does not match this batcher's " + channels + "x" + side + "x" + side);
        }
        if (count > batch.capacity() || from < 0 || from + count > order.length) {
            throw new IllegalArgumentException("cannot take " + count + " images from position " + from + " of "
                    + order.length + " into a batch of capacity " + batch.capacity());
        }
        float[] out = batch.hostImages();
        int rows = images.rows();
        int cols = images.cols();
        int top = (side - rows) / 2;
        int left = (side - cols) / 2;
        float background = (0f - mean) / std; // the zero padding, normalised like a black pixel
        int plane = side * side;
        for (int k = 0; k < count; k++) {
            int img = order[from + k];
            int base = k * channels * plane;
            java.util.Arrays.fill(out, base, base + plane, background);
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    out[base + (top + r) * side + left + c] = (images.pixel(img, r, c) / 255f - mean) / std;
                }
            }
            for (int ch = 1; ch < channels; ch++) {
                System.arraycopy(out, base, out, base + ch * plane, plane);
            }
            batch.labels()[k] = images.label(img);
        }
        batch.setSize(count);
    }
}
