package org.vgg4j.data;

/**
 * A decoded 8-bit RGB image in host memory: the common currency between decoders, datasets and transforms.
 * Not a general image class: always three interleaved channels, no alpha, no colour space (sRGB by convention).
 * Legend: H height, W width; {@code pixels} is (H, W, 3) row-major, channel order R, G, B.
 *
 * <p>Internally a JPEG may be held as its decoder's YCbCr samples ({@link #isYCbCr()}); {@link #pixels()} and
 * {@link #get} still answer in RGB (converted once, on first use), while {@link Resampler} converts only the
 * pixels a crop needs.
 */
public final class RgbImage {
    private final int width;
    private final int height;
    private final byte[] data;      // (rows,W,3) RGB, or YCbCr when ycc
    private final boolean ycc;
    private final int rows;         // rows held from the top: H, or fewer when decoding stopped early
    private volatile byte[] rgb;    // (H,W,3) RGB once converted

    public RgbImage(int width, int height, byte[] pixels) {
        this(width, height, pixels, false);
    }

    /** An image held as interleaved JFIF YCbCr (H,W,3). */
    static RgbImage ofYCbCr(int width, int height, byte[] ycbcr) {
        return new RgbImage(width, height, height, ycbcr, true);
    }

    /**
     * A width x height image of which only the top {@code rows} rows were decoded (a crop needs no more, see
     * {@link ImageDecoder.RowsNeeded}); {@code samples} is (rows, W, 3). Only {@link Resampler} reads such an
     * image (it checks the rows it needs are held); {@link #pixels()} and {@link #get} refuse it.
     */
    static RgbImage top(int width, int height, int rows, byte[] samples, boolean ycbcr) {
        return new RgbImage(width, height, rows, samples, ycbcr);
    }

    private RgbImage(int width, int height, byte[] pixels, boolean ycc) {
        this(width, height, height, pixels, ycc);
    }

    private RgbImage(int width, int height, int rows, byte[] pixels, boolean ycc) {
        if (width < 1 || height < 1 || rows < 1 || rows > height) {
            throw new IllegalArgumentException("image " + width + "x" + height + " holding " + rows
                    + " rows: width and height must be >= 1, rows in [1, height]");
        }
        if (pixels.length != 3L * width * rows) {
            throw new IllegalArgumentException("image " + width + "x" + height + " holding " + rows + " rows needs "
                    + 3L * width * rows + " RGB bytes, got " + pixels.length);
        }
        this.width = width;
        this.height = height;
        this.rows = rows;
        this.data = pixels;
        this.ycc = ycc;
        this.rgb = ycc ? null : pixels;
    }

    /** Rows held, from the top: {@link #height()} unless decoding stopped at the last row a crop needs. */
    int rowsHeld() {
        return rows;
    }

    /** Whether the samples are held as YCbCr (see {@link #raw()}). */
    boolean isYCbCr() {
        return ycc;
    }

    /** The samples as held: RGB, or YCbCr when {@link #isYCbCr()}. */
    byte[] raw() {
        return data;
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    /** The (H,W,3) RGB array, shared, not copied (converted from YCbCr once if need be). */
    public byte[] pixels() {
        if (rows < height) {
            throw new IllegalStateException(this + " holds only its top " + rows + " rows (decoded for one crop)");
        }
        byte[] p = rgb;
        if (p == null) {
            p = YCbCr.toRgb(data);
            rgb = p; // a benign race: two threads would compute equal arrays
        }
        return p;
    }

    /** Channel {@code c} (0 R, 1 G, 2 B) of pixel (row y, column x) in [0, 255]. */
    public int get(int y, int x, int c) {
        return pixels()[(y * width + x) * 3 + c] & 0xFF;
    }

    public int shorterSide() {
        return Math.min(width, height);
    }

    @Override
    public String toString() {
        return "RgbImage " + width + "x" + height;
    }
}
