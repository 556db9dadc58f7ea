package org.vgg4j.data;

/**
 * A decoded 8-bit RGB image in host memory: the common currency between decoders, datasets and transforms.
 * Not a general image class: always three interleaved channels, no alpha, no colour space (sRGB by convention).
 * Legend: H height, W width; {@code pixels} is (H, W, 3) row-major, channel order R, G, B.
 */
public final class RgbImage {
    private final int width;
    private final int height;
    private final byte[] pixels; // (H,W,3)

    public RgbImage(int width, int height, byte[] pixels) {
        if (width < 1 || height < 1) {
            throw new IllegalArgumentException("image " + width + "x" + height + ": width and height must be >= 1");
        }
        if (pixels.length != 3L * width * height) {
            throw new IllegalArgumentException("image " + width + "x" + height + " needs " + 3L * width * height
                    + " RGB bytes, got " + pixels.length);
        }
        this.width = width;
        this.height = height;
        this.pixels = pixels;
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    /** The backing (H,W,3) array, shared, not copied. */
    public byte[] pixels() {
        return pixels;
    }

    /** Channel {@code c} (0 R, 1 G, 2 B) of pixel (row y, column x) in [0, 255]. */
    public int get(int y, int x, int c) {
        return pixels[(y * width + x) * 3 + c] & 0xFF;
    }

    public int shorterSide() {
        return Math.min(width, height);
    }

    @Override
    public String toString() {
        return "RgbImage " + width + "x" + height;
    }
}
