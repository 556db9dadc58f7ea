package org.vgg4j.data;

/**
 * A decoded 8-bit RGB image in host memory: the common currency between decoders, datasets and transforms.
 * Not a general image class: always three interleaved channels, no alpha, no colour space (sRGB by convention).
 * Legend: H height, W width; {@code pixels} is (H, W, 3) row-major, channel order R, G, B.
 *
 * <p>Internally a JPEG may be held as its decoder's YCbCr samples ({@link #isYCbCr()}); {@link #pixels()} and
 * {@link #get} still answer in RGB (converted once, on first use), while {@link Resampler} converts only the
 * pixels a crop needs.
 *
 * <p>An image decoded for one training crop may hold only a window of itself (see {@link ImageDecoder.Region}):
 * {@link #width()} and {@link #height()} are still the whole image's, the samples cover columns
 * [{@link #x0()}, x0 + {@link #colsHeld()}) and rows [{@link #y0()}, y0 + {@link #rowsHeld()}); only
 * {@link Resampler} reads such an image (it checks the window covers what it needs).
 */
public final class RgbImage {
    private final int width;
    private final int height;
    private final int x0;           // the held window: columns [x0, x0 + cols), rows [y0, y0 + rows)
    private final int y0;
    private final int cols;
    private final int rows;
    private final byte[] data;      // (rows,cols,3) RGB, or YCbCr when ycc
    private final boolean ycc;
    private volatile byte[] rgb;    // (H,W,3) RGB once converted (whole images only)

    public RgbImage(int width, int height, byte[] pixels) {
        this(width, height, 0, 0, width, height, pixels, false);
    }

    /** An image held as interleaved JFIF YCbCr (H,W,3). */
    static RgbImage ofYCbCr(int width, int height, byte[] ycbcr) {
        return new RgbImage(width, height, 0, 0, width, height, ycbcr, true);
    }

    /**
     * A width x height image of which only the window {@code r} was decoded (a crop needs no more, see
     * {@link ImageDecoder.RegionNeeded}); {@code samples} is (r.height, r.width, 3).
     */
    static RgbImage window(int width, int height, ImageDecoder.Region r, byte[] samples, boolean ycbcr) {
        return new RgbImage(width, height, r.x(), r.y(), r.width(), r.height(), samples, ycbcr);
    }

    private RgbImage(int width, int height, int x0, int y0, int cols, int rows, byte[] pixels, boolean ycc) {
        if (width < 1 || height < 1 || cols < 1 || rows < 1 || x0 < 0 || y0 < 0 || x0 + cols > width
                || y0 + rows > height) {
            throw new IllegalArgumentException("image " + width + "x" + height + " holding " + cols + "x" + rows
                    + " at (" + x0 + "," + y0 + "): sizes must be >= 1 and the window inside the image");
        }
        if (pixels.length != 3L * cols * rows) {
            throw new IllegalArgumentException("image " + width + "x" + height + " holding " + cols + "x" + rows
                    + " needs " + 3L * cols * rows + " bytes, got " + pixels.length);
        }
        this.width = width;
        this.height = height;
        this.x0 = x0;
        this.y0 = y0;
        this.cols = cols;
        this.rows = rows;
        this.data = pixels;
        this.ycc = ycc;
        this.rgb = ycc ? null : pixels;
    }

    /** Whether the whole image is held (not just a window decoded for one crop). */
    boolean isWhole() {
        return cols == width && rows == height;
    }

    /** First column held. */
    int x0() {
        return x0;
    }

    /** First row held. */
    int y0() {
        return y0;
    }

    /** Columns held, from {@link #x0()}. */
    int colsHeld() {
        return cols;
    }

    /** Rows held, from {@link #y0()}. */
    int rowsHeld() {
        return rows;
    }

    /** Whether the held window covers columns [colLo, colHi) and rows [rowLo, rowHi). */
    boolean holds(int colLo, int colHi, int rowLo, int rowHi) {
        return colLo >= x0 && colHi <= x0 + cols && rowLo >= y0 && rowHi <= y0 + rows;
    }

    /** Whether the samples are held as YCbCr (see {@link #raw()}). */
    boolean isYCbCr() {
        return ycc;
    }

    /** The samples as held, (rows, cols, 3) over the window: RGB, or YCbCr when {@link #isYCbCr()}. */
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
        if (!isWhole()) {
            throw new IllegalStateException(this + " holds only a window (decoded for one crop)");
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
        return "RgbImage " + width + "x" + height + (isWhole() ? ""
                : " (holding " + cols + "x" + rows + " at " + x0 + "," + y0 + ")");
    }
}
