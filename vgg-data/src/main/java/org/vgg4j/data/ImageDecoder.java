package org.vgg4j.data;

import java.awt.Rectangle;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.ComponentSampleModel;
import java.awt.image.DataBuffer;
import java.awt.image.DataBufferByte;
import java.awt.image.DataBufferUShort;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.event.IIOReadWarningListener;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * Turns the bytes of an image file into an {@link RgbImage}, or rejects them with a {@link BadImageException}:
 * never a silently wrong image. Thread-safe (readers are cached per thread).
 *
 * <p>What it guards against (each a silent trap of a plain {@code ImageIO.read}):
 * <ul>
 * <li>the format is sniffed from the bytes, not the name (ImageNet has PNG content under a .JPEG name);</li>
 * <li>dimensions are read from the header before any pixel is decoded, so a decompression bomb is refused
 *     without allocating it;</li>
 * <li>reads go through an {@link ImageReader} with a warning listener: the JDK's JPEG reader reports a truncated
 *     file only as a warning and fills the missing part with grey;</li>
 * <li>4-component (CMYK / YCCK, Adobe) JPEGs go to TwelveMonkeys' reader, which converts them correctly; ordinary
 *     JPEGs go to the JDK's reader, measured faster (docs/benchmarks.md);</li>
 * <li>pixels are taken from the raster, never through {@code getRGB}, which gamma-brightens grayscale JPEGs;
 *     grayscale is replicated, palettes looked up, 16-bit samples scaled to 8 bits with rounding, alpha
 *     dropped (as PIL's {@code convert("RGB")} does).</li>
 * </ul>
 * Not a colour-managed decoder: embedded ICC profiles of 3-channel images are not applied (as in PIL/torchvision).
 */
public final class ImageDecoder {
    /** Default refusal threshold: 2^27 pixels (ImageNet's largest training image is about 2^24). */
    public static final long DEFAULT_MAX_PIXELS = 1L << 27;

    private static final String JDK_JPEG = "com.sun.imageio.plugins.jpeg.";
    private static final String TWELVEMONKEYS_JPEG = "com.twelvemonkeys.imageio.plugins.jpeg.";

    private final long maxPixels;
    private final ThreadLocal<Map<String, ImageReader>> readers = ThreadLocal.withInitial(HashMap::new);

    public ImageDecoder() {
        this(DEFAULT_MAX_PIXELS);
    }

    public ImageDecoder(long maxPixels) {
        if (maxPixels < 1) {
            throw new IllegalArgumentException("maxPixels " + maxPixels + " must be >= 1");
        }
        this.maxPixels = maxPixels;
    }

    /**
     * A window of an image, in source pixels: columns [x, x + width), rows [y, y + height). A training crop needs
     * only the source pixels under its (rescaled) window, so only those need decoding.
     */
    public record Region(int x, int y, int width, int height) {
        public Region {
            if (x < 0 || y < 0 || width < 1 || height < 1) {
                throw new IllegalArgumentException("region " + width + "x" + height + " at (" + x + "," + y
                        + "): need x, y >= 0 and width, height >= 1");
            }
        }

        /** The whole of a width x height image. */
        public static Region whole(int width, int height) {
            return new Region(0, 0, width, height);
        }

        /** This region clipped to a width x height image (the whole image when it does not overlap). */
        Region clip(int imageWidth, int imageHeight) {
            int x1 = Math.min(imageWidth, x + width);
            int y1 = Math.min(imageHeight, y + height);
            if (x >= x1 || y >= y1) {
                return whole(imageWidth, imageHeight);
            }
            return new Region(x, y, x1 - x, y1 - y);
        }

        boolean isWhole(int imageWidth, int imageHeight) {
            return x == 0 && y == 0 && width == imageWidth && height == imageHeight;
        }
    }

    /**
     * Which window of a width x height image the caller will read (null: all of it). The decoder may decode
     * just that: libjpeg decodes top to bottom, so it stops after the window's last row, and the JDK's reader
     * copies only the window's columns of each row into Java (a smaller array, less copying; for a 500x375 photo
     * at S = 256 it also stays under G1's humongous-object threshold with 1 MiB regions).
     */
    @FunctionalInterface
    public interface RegionNeeded {
        Region region(int width, int height);
    }

    /** Decodes {@code bytes}; {@code source} (a path or name) appears in the rejection. */
    public RgbImage decode(byte[] bytes, String source) throws BadImageException {
        return decode(bytes, source, null);
    }

    /**
     * Decodes {@code bytes}, only the window {@code needed.region(width, height)} where the format allows
     * (ordinary JPEGs that end with their end-of-image marker; a null {@code needed} means all). The samples of
     * the window are byte for byte those of a full decode (libjpeg decodes whole rows whatever the region; the
     * JDK's reader copies the window out of them), but a window is only for {@link Resampler}: see
     * {@link RgbImage#window}. Other formats are decoded whole.
     */
    public RgbImage decode(byte[] bytes, String source, RegionNeeded needed) throws BadImageException {
        if (bytes.length == 0) {
            throw new BadImageException(source, "zero-byte file");
        }
        if (Ppm.isPpm(bytes)) {
            return Ppm.decode(bytes, source, maxPixels); // binary PPM: the shards' raw format; ImageIO has no reader
        }
        Format format = Format.sniff(bytes);
        long[] dims = format.headerSize(bytes); // {width, height, components} or null when unknown yet
        if (format == Format.JPEG && dims == null) {
            throw new BadImageException(source, "JPEG without a frame header (truncated or corrupt)");
        }
        ImageReader reader = readerFor(format, dims, bytes, source);
        List<String> warnings = new ArrayList<>();
        IIOReadWarningListener listener = (r, w) -> warnings.add(w);
        reader.addIIOReadWarningListener(listener);
        try (ImageInputStream in = new BytesImageInputStream(bytes)) {
            reader.setInput(in, true, true);
            long w = reader.getWidth(0);
            long h = reader.getHeight(0);
            checkSize(source, w, h);
            if (format == Format.JPEG && (dims[2] == 1 || dims[3] == 1) && reader.getOriginatingProvider()
                    .getClass().getName().startsWith(JDK_JPEG)) {
                // Fast path, faster than read() (docs/benchmarks.md, "Data pipeline"): the JDK's raw raster (no
                // colour conversion, no per-row copy into a BGR image); YCbCr is converted later, only where a crop
                // needs it.
                Region want = needed == null ? null : needed.region((int) w, (int) h);
                Region region = want == null ? Region.whole((int) w, (int) h) : want.clip((int) w, (int) h);
                ImageReadParam param = null;
                if (!region.isWhole((int) w, (int) h) && endsWithEoi(bytes)) {
                    // The JDK reader stops reading scanlines after the region's last row (the decode costs roughly
                    // in proportion to the rows read) and copies only its columns into the raster.
                    param = reader.getDefaultReadParam();
                    param.setSourceRegion(new Rectangle(region.x(), region.y(), region.width(), region.height()));
                } else {
                    region = Region.whole((int) w, (int) h);
                }
                Raster raster = reader.readRaster(0, param);
                checkWarnings(warnings, source);
                return fromRaw(raster, dims[2] == 1, (int) w, (int) h, region, source);
            }
            BufferedImage image = reader.read(0);
            checkWarnings(warnings, source);
            return toRgb(image, source);
        } catch (IOException | RuntimeException e) {
            // Readers throw IIOException for corrupt data and, on some malformed files, runtime exceptions too.
            readers.get().values().remove(reader); // a reader that failed may hold broken state; disposed below
            throw new BadImageException(source, readFailure(formatName(bytes), cutShort(bytes), e), e);
        } finally {
            reader.removeIIOReadWarningListener(listener);
            reader.setInput(null);
            if (!readers.get().containsValue(reader)) {
                reader.dispose(); // uncached: a rare format, or a reader that failed
            }
        }
    }

    /**
     * Why a reader failed, in words. The JDK's readers wrap what went wrong ("I/O error reading image!" around an
     * EOFException or an LZW error for a cut GIF): a file without its format's end marker ({@code cutShort}) or an
     * end of data anywhere in the chain makes it "truncated or corrupt", and the detail is the chain's messages,
     * not exception class names.
     */
    static String readFailure(String format, boolean cutShort, Throwable e) {
        StringBuilder detail = new StringBuilder();
        boolean ended = cutShort;
        for (Throwable t = e; t != null && t.getCause() != t; t = t.getCause()) {
            String m = t.getMessage();
            ended |= t instanceof java.io.EOFException || (m != null && isFatal(m));
            String part = m != null && !m.isBlank() ? m.strip() : t instanceof java.io.EOFException ? "end of file"
                    : t.getClass().getSimpleName();
            if (detail.indexOf(part) < 0) {
                detail.append(detail.length() == 0 ? "" : ": ").append(part);
            }
        }
        return ended ? "truncated or corrupt " + format + ": the file ends before the image does (" + detail + ")"
                : "corrupt " + format + ": " + detail;
    }

    /**
     * Whether the file lacks its format's end marker (trailing zero padding allowed): JPEG's end-of-image, PNG's
     * IEND chunk, GIF's trailer. False for formats without one (or not recognised).
     */
    static boolean cutShort(byte[] b) {
        int n = b.length;
        while (n > 1 && b[n - 1] == 0) {
            n--;
        }
        return switch (formatName(b)) {
            case "jpeg" -> !endsWithEoi(b);
            case "png" -> n < 12 || !(b[n - 8] == 'I' && b[n - 7] == 'E' && b[n - 6] == 'N' && b[n - 5] == 'D');
            case "gif" -> b[n - 1] != 0x3B;
            default -> false;
        };
    }

    /** The format's name from its signature, for messages: jpeg, png, gif, bmp, tiff, webp, or "image". */
    static String formatName(byte[] b) {
        Format f = Format.sniff(b);
        if (f != Format.OTHER) {
            return f.name().toLowerCase(Locale.ROOT);
        }
        if (b.length >= 4 && b[0] == 'G' && b[1] == 'I' && b[2] == 'F' && b[3] == '8') {
            return "gif";
        }
        if (b.length >= 2 && b[0] == 'B' && b[1] == 'M') {
            return "bmp";
        }
        if (b.length >= 4 && ((b[0] == 'I' && b[1] == 'I' && b[2] == 42 && b[3] == 0)
                || (b[0] == 'M' && b[1] == 'M' && b[2] == 0 && b[3] == 42))) {
            return "tiff";
        }
        if (b.length >= 12 && b[0] == 'R' && b[1] == 'I' && b[2] == 'F' && b[3] == 'F' && b[8] == 'W' && b[9] == 'E'
                && b[10] == 'B' && b[11] == 'P') {
            return "webp";
        }
        return "image";
    }

    /**
     * Whether the file ends with JPEG's end-of-image marker (trailing zero padding allowed). Only then does an
     * early stop skip nothing but pixels: a truncated file is reported by the reader when it reaches the end,
     * so it is decoded whole and rejected exactly as before.
     */
    private static boolean endsWithEoi(byte[] b) {
        int n = b.length;
        while (n > 2 && b[n - 1] == 0) {
            n--;
        }
        return n >= 4 && (b[n - 2] & 0xFF) == 0xFF && (b[n - 1] & 0xFF) == 0xD9;
    }

    private static void checkWarnings(List<String> warnings, String source) throws BadImageException {
        for (String warning : warnings) {
            if (isFatal(warning)) {
                throw new BadImageException(source, "truncated or corrupt: " + warning);
            }
        }
    }

    /**
     * A raw JPEG raster: 1 band gray (replicated) or 3 bands YCbCr (kept as such, zero-copy when packed); the
     * raster holds the window {@code region} of an image fullWidth x fullHeight.
     */
    private static RgbImage fromRaw(Raster raster, boolean gray, int fullWidth, int fullHeight, Region region,
                                    String source)
            throws BadImageException {
        int w = raster.getWidth();
        int h = raster.getHeight(); // rows held
        if (w != region.width() || h != region.height()) {
            throw new BadImageException(source, "JPEG reader returned " + w + "x" + h + " for the region " + region);
        }
        if (raster.getNumBands() != (gray ? 1 : 3) || !(raster.getDataBuffer() instanceof DataBufferByte db)
                || !(raster.getSampleModel() instanceof ComponentSampleModel sm)) {
            throw new BadImageException(source, "unexpected raw JPEG raster with " + raster.getNumBands() + " bands");
        }
        byte[] src = db.getData();
        int[] off = sm.getBandOffsets();
        int ps = sm.getPixelStride();
        int ss = sm.getScanlineStride();
        int base = db.getOffset() - raster.getSampleModelTranslateY() * ss - raster.getSampleModelTranslateX() * ps;
        if (!gray && base == 0 && ps == 3 && ss == 3 * w && off[0] == 0 && off[1] == 1 && off[2] == 2
                && src.length == 3 * w * h && db.getNumBanks() == 1) {
            return RgbImage.window(fullWidth, fullHeight, region, src, true);
        }
        byte[] out = new byte[3 * w * h];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int s = base + y * ss + x * ps;
                int o = (y * w + x) * 3;
                if (gray) {
                    out[o] = src[s + off[0]];
                    out[o + 1] = src[s + off[0]];
                    out[o + 2] = src[s + off[0]];
                } else {
                    out[o] = src[s + off[0]];
                    out[o + 1] = src[s + off[1]];
                    out[o + 2] = src[s + off[2]];
                }
            }
        }
        return RgbImage.window(fullWidth, fullHeight, region, out, !gray);
    }

    private void checkSize(String source, long w, long h) throws BadImageException {
        if (w < 1 || h < 1 || w * h > maxPixels) {
            throw new BadImageException(source, "dimensions " + w + "x" + h + " outside 1.." + maxPixels
                    + " pixels (decompression bomb or corrupt header)");
        }
    }

    /** libjpeg's "extraneous bytes before marker" is harmless (PIL ignores it too); data loss is not. */
    private static boolean isFatal(String warning) {
        String w = warning.toLowerCase(Locale.ROOT);
        return !w.contains("extraneous bytes") && (w.contains("premature") || w.contains("corrupt")
                || w.contains("truncat") || w.contains("end of file") || w.contains("eof"));
    }

    private ImageReader readerFor(Format format, long[] dims, byte[] bytes, String source) throws BadImageException {
        if (dims != null) {
            checkSize(source, dims[0], dims[1]);
        }
        // JPEG and PNG readers are looked up once per thread by provider (creating a JPEG reader costs); other
        // formats (GIF, BMP, ...) are rare in ImageNet and asked of ImageIO each time.
        String key = switch (format) {
            case JPEG -> dims[2] == 4 ? TWELVEMONKEYS_JPEG : JDK_JPEG;
            case PNG -> "png";
            case OTHER -> null;
        };
        Map<String, ImageReader> cache = readers.get();
        if (key != null && cache.containsKey(key)) {
            return cache.get(key);
        }
        Iterator<ImageReader> it = key == null
                ? ImageIO.getImageReaders(new MemoryCacheImageInputStream(new ByteArrayInputStream(bytes)))
                : ImageIO.getImageReadersByFormatName(format == Format.PNG ? "png" : "jpeg");
        while (it.hasNext()) {
            ImageReader candidate = it.next();
            String provider = candidate.getOriginatingProvider().getClass().getName();
            if (key == null || key.equals("png") || provider.startsWith(key)) {
                if (key != null) {
                    cache.put(key, candidate);
                }
                if (JDK_JPEG.equals(key)) {
                    JpegLibrary.logOnce(); // once per JVM: which libjpeg decodes is the main factor in JPEG speed
                }
                return candidate;
            }
            candidate.dispose();
        }
        if (format == Format.JPEG && dims[2] == 4) {
            throw new BadImageException(source, "CMYK/YCCK JPEG but TwelveMonkeys' reader is not on the class path"
                    + " (refused rather than decoded to wrong colours)");
        }
        if (format == Format.JPEG) {
            throw new BadImageException(source, "no JDK JPEG reader in this runtime");
        }
        int n = Math.min(bytes.length, 8);
        StringBuilder head = new StringBuilder();
        for (int i = 0; i < n; i++) {
            head.append(String.format("%02x", bytes[i] & 0xFF));
        }
        throw new BadImageException(source, "not an image (no reader for content starting 0x" + head + ")");
    }

    /** Copies any decoded image into (H,W,3) RGB bytes from its raster. */
    static RgbImage toRgb(BufferedImage image, String source) throws BadImageException {
        int w = image.getWidth();
        int h = image.getHeight();
        Raster raster = image.getRaster();
        ColorModel cm = image.getColorModel();
        byte[] out = new byte[3 * w * h];
        int bands = raster.getNumBands();
        int csType = cm.getColorSpace().getType();
        boolean rgb = csType == java.awt.color.ColorSpace.TYPE_RGB && cm.getColorSpace().isCS_sRGB();
        boolean gray = csType == java.awt.color.ColorSpace.TYPE_GRAY;
        if (cm instanceof IndexColorModel icm) {
            int[] row = new int[w];
            for (int y = 0; y < h; y++) {
                raster.getSamples(0, y, w, 1, 0, row);
                for (int x = 0; x < w; x++) {
                    int argb = icm.getRGB(row[x]);
                    int o = (y * w + x) * 3;
                    out[o] = (byte) (argb >> 16);
                    out[o + 1] = (byte) (argb >> 8);
                    out[o + 2] = (byte) argb;
                }
            }
        } else if (cm instanceof ComponentColorModel && (rgb && bands >= 3 || gray && bands >= 1)
                && raster.getSampleModel() instanceof ComponentSampleModel sm
                && (raster.getDataBuffer() instanceof DataBufferByte || raster.getDataBuffer() instanceof DataBufferUShort)) {
            copyComponents(raster, sm, gray, w, h, out);
        } else {
            // Everything else (packed int RGB, non-sRGB colour spaces such as CMYK converted by the reader) goes
            // through the colour model, which converts correctly to sRGB for these types.
            int[] row = new int[w];
            for (int y = 0; y < h; y++) {
                image.getRGB(0, y, w, 1, row, 0, w);
                for (int x = 0; x < w; x++) {
                    int o = (y * w + x) * 3;
                    out[o] = (byte) (row[x] >> 16);
                    out[o + 1] = (byte) (row[x] >> 8);
                    out[o + 2] = (byte) row[x];
                }
            }
            if (cm.getColorSpace().getType() == java.awt.color.ColorSpace.TYPE_CMYK) {
                throw new BadImageException(source, "4-channel CMYK raster reached the generic path (unexpected reader)");
            }
        }
        return new RgbImage(w, h, out);
    }

    private static void copyComponents(Raster raster, ComponentSampleModel sm, boolean gray, int w, int h, byte[] out) {
        int[] offsets = sm.getBandOffsets();
        int pixelStride = sm.getPixelStride();
        int scanStride = sm.getScanlineStride();
        int base = raster.getDataBuffer().getOffset()
                - raster.getSampleModelTranslateY() * scanStride - raster.getSampleModelTranslateX() * pixelStride;
        int[] bankIdx = sm.getBankIndices();
        int r = offsets[0];
        int g = gray ? offsets[0] : offsets[1];
        int b = gray ? offsets[0] : offsets[2];
        if (raster.getDataBuffer() instanceof DataBufferByte db) {
            if (bankIdx[0] != 0 || (!gray && (bankIdx[1] != 0 || bankIdx[2] != 0))) {
                copyBanked(raster, gray, w, h, out, 0);
                return;
            }
            byte[] src = db.getData();
            for (int y = 0; y < h; y++) {
                int s = base + y * scanStride;
                int o = y * w * 3;
                for (int x = 0; x < w; x++, s += pixelStride, o += 3) {
                    out[o] = src[s + r];
                    out[o + 1] = src[s + g];
                    out[o + 2] = src[s + b];
                }
            }
        } else {
            copyBanked(raster, gray, w, h, out, 16);
        }
    }

    /** Slow general path: samples through the raster API; {@code bits} 16 scales 0..65535 to 0..255 rounded. */
    private static void copyBanked(Raster raster, boolean gray, int w, int h, byte[] out, int bits) {
        int[] row = new int[w];
        for (int c = 0; c < 3; c++) {
            int band = gray ? 0 : c;
            for (int y = 0; y < h; y++) {
                raster.getSamples(0, y, w, 1, band, row);
                for (int x = 0; x < w; x++) {
                    int v = bits == 16 ? (row[x] * 255 + 32767) / 65535 : row[x];
                    out[(y * w + x) * 3 + c] = (byte) v;
                }
            }
        }
    }

    /** Container formats told apart by their first bytes. */
    enum Format {
        JPEG, PNG, OTHER;

        static Format sniff(byte[] b) {
            if (b.length >= 3 && (b[0] & 0xFF) == 0xFF && (b[1] & 0xFF) == 0xD8 && (b[2] & 0xFF) == 0xFF) {
                return JPEG;
            }
            if (b.length >= 8 && (b[0] & 0xFF) == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') {
                return PNG;
            }
            return OTHER;
        }

        /**
         * {width, height, components, ycc} from the header without decoding, or null if not found. For a 3-component
         * JPEG, ycc is 1 when the samples are certainly YCbCr by libjpeg's rules (a JFIF marker; or an Adobe marker
         * with transform 1; or neither marker and component ids 1, 2, 3), else 0.
         */
        long[] headerSize(byte[] b) {
            if (this == PNG) {
                if (b.length < 24) {
                    return null;
                }
                return new long[] {u32(b, 16), u32(b, 20), 0, 0};
            }
            if (this != JPEG) {
                return null;
            }
            int p = 2;
            boolean jfif = false;
            int adobeTransform = -1;
            while (p + 4 <= b.length) {
                if ((b[p] & 0xFF) != 0xFF) {
                    return null;
                }
                int marker = b[p + 1] & 0xFF;
                if (marker == 0xFF) {
                    p++; // fill byte
                    continue;
                }
                if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
                    p += 2;
                    continue;
                }
                int len = ((b[p + 2] & 0xFF) << 8) | (b[p + 3] & 0xFF);
                boolean sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
                if (marker == 0xE0 && p + 9 <= b.length && b[p + 4] == 'J' && b[p + 5] == 'F' && b[p + 6] == 'I'
                        && b[p + 7] == 'F' && b[p + 8] == 0) {
                    jfif = true;
                }
                if (marker == 0xEE && len >= 12 && p + 16 <= b.length && b[p + 4] == 'A' && b[p + 5] == 'd'
                        && b[p + 6] == 'o' && b[p + 7] == 'b' && b[p + 8] == 'e') {
                    adobeTransform = b[p + 15] & 0xFF;
                }
                if (sof) {
                    if (p + 10 > b.length) {
                        return null;
                    }
                    long h = ((b[p + 5] & 0xFF) << 8) | (b[p + 6] & 0xFF);
                    long w = ((b[p + 7] & 0xFF) << 8) | (b[p + 8] & 0xFF);
                    int comps = b[p + 9] & 0xFF;
                    boolean ids123 = comps == 3 && p + 17 <= b.length && b[p + 10] == 1 && b[p + 13] == 2 && b[p + 16] == 3;
                    boolean ycc = comps == 3 && (jfif || adobeTransform == 1 || (adobeTransform < 0 && ids123));
                    return new long[] {w, h, comps, ycc ? 1 : 0};
                }
                if (marker == 0xDA || marker == 0xD9) {
                    return null;
                }
                p += 2 + len;
            }
            return null;
        }

        private static long u32(byte[] b, int o) {
            return ((long) (b[o] & 0xFF) << 24) | ((b[o + 1] & 0xFF) << 16) | ((b[o + 2] & 0xFF) << 8) | (b[o + 3] & 0xFF);
        }
    }
}
