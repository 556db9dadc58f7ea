package org.vgg4j.data;

import java.awt.image.BufferedImage;
import java.awt.image.DataBuffer;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;

/** Test helper: writes awkward image files in memory with the JDK's writers plus byte surgery. */
final class TestImages {
    private TestImages() {
    }

    /** An RGB image of four solid quadrants (each w/2 x h/2): red, green / blue, grey(200). */
    static BufferedImage quadrants(int w, int h) {
        BufferedImage im = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int rgb = y < h / 2 ? (x < w / 2 ? 0xFF0000 : 0x00FF00) : (x < w / 2 ? 0x0000FF : 0xC8C8C8);
                im.setRGB(x, y, rgb);
            }
        }
        return im;
    }

    static byte[] png(BufferedImage im) {
        try {
            ByteArrayOutputStream bo = new ByteArrayOutputStream();
            if (!ImageIO.write(im, "png", bo)) {
                throw new IllegalStateException("no PNG writer");
            }
            return bo.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** JPEG through the JDK's writer (quality 0.95), baseline or progressive; an image or a bare raster. */
    static byte[] jpeg(BufferedImage im, Raster raster, boolean progressive) {
        ImageWriter writer = null;
        for (Iterator<ImageWriter> it = ImageIO.getImageWritersByFormatName("jpeg"); it.hasNext();) {
            ImageWriter w = it.next();
            if (w.getClass().getName().startsWith("com.sun.")) {
                writer = w;
            }
        }
        try {
            ByteArrayOutputStream bo = new ByteArrayOutputStream();
            try (ImageOutputStream os = ImageIO.createImageOutputStream(bo)) {
                writer.setOutput(os);
                ImageWriteParam p = writer.getDefaultWriteParam();
                p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
                p.setCompressionQuality(0.95f);
                if (progressive) {
                    p.setProgressiveMode(ImageWriteParam.MODE_DEFAULT);
                }
                writer.write(null, im != null ? new IIOImage(im, null, null) : new IIOImage(raster, null, null), p);
            }
            return bo.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            writer.dispose();
        }
    }

    /**
     * A 4-component JPEG as Photoshop writes it: an Adobe APP14 marker (transform 0 = CMYK, 2 = YCCK) and the
     * stored samples inverted. {@code samples} gives each 16x16 tile's four stored values, left to right.
     */
    static byte[] adobeJpeg(int[][] samples, int transform) {
        int tiles = samples.length;
        WritableRaster r = Raster.createInterleavedRaster(DataBuffer.TYPE_BYTE, 16 * tiles, 16, 4, null);
        for (int y = 0; y < 16; y++) {
            for (int x = 0; x < 16 * tiles; x++) {
                r.setPixel(x, y, samples[x / 16]);
            }
        }
        byte[] plain = jpeg(null, r, false); // the JDK writes 4 components untransformed, no APP14
        byte[] app14 = {(byte) 0xFF, (byte) 0xEE, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, (byte) transform};
        byte[] out = new byte[plain.length + app14.length];
        System.arraycopy(plain, 0, out, 0, 2);
        System.arraycopy(app14, 0, out, 2, app14.length);
        System.arraycopy(plain, 2, out, 2 + app14.length, plain.length - 2);
        return out;
    }

    /** The JFIF YCbCr of an RGB triple, rounded: what a YCCK file stores for the (inverted) CMY part. */
    static int[] ycc(double r, double g, double b) {
        return new int[] {(int) Math.round(0.299 * r + 0.587 * g + 0.114 * b),
            (int) Math.round(128 - 0.168736 * r - 0.331264 * g + 0.5 * b),
            (int) Math.round(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)};
    }
}
