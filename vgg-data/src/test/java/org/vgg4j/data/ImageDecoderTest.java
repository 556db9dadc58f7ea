package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.WritableRaster;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageDecoderTest {
    private final ImageDecoder decoder = new ImageDecoder();

    private static void assertPixel(RgbImage im, int y, int x, int r, int g, int b, int tol) {
        String at = "pixel (" + y + "," + x + ") = " + im.get(y, x, 0) + "," + im.get(y, x, 1) + "," + im.get(y, x, 2);
        assertEquals(r, im.get(y, x, 0), tol, at);
        assertEquals(g, im.get(y, x, 1), tol, at);
        assertEquals(b, im.get(y, x, 2), tol, at);
    }

    private static void assertQuadrants(RgbImage im, int tol) {
        assertEquals(64, im.width());
        assertEquals(48, im.height());
        assertPixel(im, 8, 8, 255, 0, 0, tol);
        assertPixel(im, 8, 56, 0, 255, 0, tol);
        assertPixel(im, 40, 8, 0, 0, 255, tol);
        assertPixel(im, 40, 56, 200, 200, 200, tol);
    }

    @Test
    void baselineAndProgressiveJpeg() throws Exception {
        BufferedImage q = TestImages.quadrants(64, 48);
        assertQuadrants(decoder.decode(TestImages.jpeg(q, null, false), "base.JPEG"), 6);
        byte[] progressive = TestImages.jpeg(q, null, true);
        boolean sof2 = false;
        for (int i = 0; i + 1 < progressive.length; i++) {
            sof2 |= (progressive[i] & 0xFF) == 0xFF && (progressive[i + 1] & 0xFF) == 0xC2;
        }
        assertTrue(sof2, "the writer produced a progressive (SOF2) JPEG");
        assertQuadrants(decoder.decode(progressive, "prog.JPEG"), 6);
    }

    @Test
    void fastYCbCrPathMatchesTheJdkRgbDecode() throws Exception {
        // A busy pattern so chroma and rounding matter; compared with the JDK's own RGB decode (libjpeg's colour
        // conversion), which the fast path replaces by its own.
        BufferedImage im = new BufferedImage(67, 45, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 45; y++) {
            for (int x = 0; x < 67; x++) {
                im.setRGB(x, y, ((x * 37 + y * 11) % 256) << 16 | ((x * y) % 256) << 8 | ((255 - 5 * y) & 0xFF));
            }
        }
        for (boolean progressive : new boolean[] {false, true}) {
            byte[] jpeg = TestImages.jpeg(im, null, progressive);
            RgbImage ours = decoder.decode(jpeg, "busy.JPEG");
            assertTrue(ours.isYCbCr(), "took the raw YCbCr path");
            BufferedImage jdk = javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(jpeg));
            int worst = 0;
            for (int y = 0; y < 45; y++) {
                for (int x = 0; x < 67; x++) {
                    int rgb = jdk.getRGB(x, y);
                    worst = Math.max(worst, Math.abs(ours.get(y, x, 0) - ((rgb >> 16) & 0xFF)));
                    worst = Math.max(worst, Math.abs(ours.get(y, x, 1) - ((rgb >> 8) & 0xFF)));
                    worst = Math.max(worst, Math.abs(ours.get(y, x, 2) - (rgb & 0xFF)));
                }
            }
            assertTrue(worst <= 1, "largest difference from the JDK's RGB decode: " + worst);
        }
    }

    @Test
    void pngExactAndPngUnderJpegName() throws Exception {
        byte[] png = TestImages.png(TestImages.quadrants(64, 48));
        assertQuadrants(decoder.decode(png, "n01440764_1.JPEG"), 0);
    }

    @Test
    void grayscaleJpegKeepsRawValuesNotGammaBrightened() throws Exception {
        BufferedImage g = new BufferedImage(32, 32, BufferedImage.TYPE_BYTE_GRAY);
        WritableRaster r = g.getRaster();
        for (int y = 0; y < 32; y++) {
            for (int x = 0; x < 32; x++) {
                r.setSample(x, y, 0, 162);
            }
        }
        RgbImage im = decoder.decode(TestImages.jpeg(g, null, false), "gray.JPEG");
        assertPixel(im, 10, 10, 162, 162, 162, 1); // getRGB would give ~209
    }

    @Test
    void cmykAndYcckJpegsConvertedToTheirColours() throws Exception {
        // Stored values are inverted (Adobe): stored 255 = no ink. Tiles: cyan ink, no ink (white), full black.
        byte[] cmyk = TestImages.adobeJpeg(new int[][] {{0, 255, 255, 255}, {255, 255, 255, 255}, {255, 255, 255, 0}}, 0);
        RgbImage im = decoder.decode(cmyk, "cmyk.JPEG");
        assertEquals(48, im.width());
        assertPixel(im, 8, 8, 0, 255, 255, 8);
        assertPixel(im, 8, 24, 255, 255, 255, 8);
        assertPixel(im, 8, 40, 0, 0, 0, 8);
        // YCCK: the C, M, Y ink values are stored as if they were R, G, B, in YCbCr (libjpeg's YCCK), K inverted.
        // Tiles: cyan+yellow ink (green), cyan+magenta ink (blue), no ink (white).
        int[] m = TestImages.ycc(255, 0, 255);
        int[] yl = TestImages.ycc(255, 255, 0);
        int[] w = TestImages.ycc(0, 0, 0);
        byte[] ycck = TestImages.adobeJpeg(new int[][] {{m[0], m[1], m[2], 255}, {yl[0], yl[1], yl[2], 255},
            {w[0], w[1], w[2], 255}}, 2);
        RgbImage y = decoder.decode(ycck, "ycck.JPEG");
        assertPixel(y, 8, 8, 0, 255, 0, 10);
        assertPixel(y, 8, 24, 0, 0, 255, 10);
        assertPixel(y, 8, 40, 255, 255, 255, 10);
    }

    @Test
    void paletteAndSixteenBitPngs() throws Exception {
        byte[] reds = {10, (byte) 200, 0, 77};
        byte[] greens = {20, 0, (byte) 250, 77};
        byte[] blues = {30, 0, 5, 77};
        IndexColorModel icm = new IndexColorModel(2, 4, reds, greens, blues);
        BufferedImage pal = new BufferedImage(8, 4, BufferedImage.TYPE_BYTE_BINARY, icm);
        for (int x = 0; x < 8; x++) {
            pal.getRaster().setSample(x, 1, 0, x % 4);
        }
        RgbImage p = decoder.decode(TestImages.png(pal), "palette.png");
        assertPixel(p, 1, 0, 10, 20, 30, 0);
        assertPixel(p, 1, 1, 200, 0, 0, 0);
        assertPixel(p, 1, 6, 0, 250, 5, 0);
        assertPixel(p, 1, 7, 77, 77, 77, 0);

        BufferedImage g16 = new BufferedImage(4, 2, BufferedImage.TYPE_USHORT_GRAY);
        int[] v16 = {0, 65535, 32896, 257, 128, 129, 40000, 1000};
        for (int i = 0; i < 8; i++) {
            g16.getRaster().setSample(i % 4, i / 4, 0, v16[i]);
        }
        RgbImage g = decoder.decode(TestImages.png(g16), "gray16.png");
        for (int i = 0; i < 8; i++) {
            int expect = (int) Math.round(v16[i] * 255.0 / 65535.0);
            assertPixel(g, i / 4, i % 4, expect, expect, expect, 0);
        }
        // 16-bit RGB with alpha: alpha dropped, colours scaled.
        java.awt.image.ComponentColorModel cm16 = new java.awt.image.ComponentColorModel(
                java.awt.color.ColorSpace.getInstance(java.awt.color.ColorSpace.CS_sRGB), true, false,
                java.awt.Transparency.TRANSLUCENT, DataBuffer.TYPE_USHORT);
        WritableRaster wr = cm16.createCompatibleWritableRaster(2, 1);
        wr.setPixel(0, 0, new int[] {65535, 0, 25700, 0});
        wr.setPixel(1, 0, new int[] {514, 60000, 65535, 65535});
        RgbImage c = decoder.decode(TestImages.png(new BufferedImage(cm16, wr, false, null)), "rgba16.png");
        assertPixel(c, 0, 0, 255, 0, 100, 0);
        assertPixel(c, 0, 1, 2, 233, 255, 0);
    }

    @Test
    void badFilesAreRejectedWithAReason() {
        byte[] jpeg = TestImages.jpeg(TestImages.quadrants(64, 48), null, false);
        BadImageException e = assertThrows(BadImageException.class,
                () -> decoder.decode(Arrays.copyOf(jpeg, jpeg.length * 6 / 10), "cut.JPEG"));
        assertEquals("cut.JPEG", e.source());
        assertTrue(e.reason().contains("truncated") || e.reason().contains("corrupt"), e.reason());

        assertTrue(assertThrows(BadImageException.class, () -> decoder.decode(new byte[0], "empty.JPEG"))
                .reason().contains("zero-byte"));
        assertTrue(assertThrows(BadImageException.class,
                () -> decoder.decode("<html>404 not found</html>".getBytes(), "html.JPEG")).reason().contains("not an image"));
        byte[] png = TestImages.png(TestImages.quadrants(64, 48));
        assertThrows(BadImageException.class, () -> decoder.decode(Arrays.copyOf(png, png.length / 2), "cut.png"));

        // Decompression bombs: headers claiming 100000x100000 (PNG IHDR) and 65500x65500 (JPEG SOF0).
        byte[] bomb = png.clone();
        writeBigEndian(bomb, 16, 100_000, 4);
        writeBigEndian(bomb, 20, 100_000, 4);
        assertTrue(assertThrows(BadImageException.class, () -> decoder.decode(bomb, "bomb.png"))
                .reason().contains("100000x100000"));
        byte[] jbomb = jpeg.clone();
        int sof = indexOfMarker(jbomb, 0xC0);
        writeBigEndian(jbomb, sof + 5, 65500, 2);
        writeBigEndian(jbomb, sof + 7, 65500, 2);
        assertTrue(assertThrows(BadImageException.class, () -> decoder.decode(jbomb, "bomb.JPEG"))
                .reason().contains("65500x65500"));
    }

    @Test
    void binaryPpmRoundTripsAndTruncatedPpmIsRejected() throws Exception {
        RgbImage im = new RgbImage(2, 1, new byte[] {1, 2, 3, (byte) 250, 5, 6});
        byte[] ppm = Ppm.encode(im);
        RgbImage back = decoder.decode(ppm, "x.ppm");
        assertPixel(back, 0, 1, 250, 5, 6, 0);
        assertTrue(assertThrows(BadImageException.class, () -> decoder.decode(Arrays.copyOf(ppm, ppm.length - 1), "x.ppm"))
                .reason().contains("truncated"));
    }

    @Test
    void badImageLogReportsEachSourceOnce() {
        BadImageLog log = new BadImageLog();
        assertTrue(log.report(new BadImageException("a.JPEG", "zero-byte file")));
        assertTrue(!log.report(new BadImageException("a.JPEG", "zero-byte file")));
        assertTrue(log.report(new BadImageException("b.JPEG", "truncated")));
        assertEquals(2, log.size());
        assertEquals("truncated", log.snapshot().get("b.JPEG"));
    }

    private static void writeBigEndian(byte[] b, int at, int v, int n) {
        for (int i = 0; i < n; i++) {
            b[at + i] = (byte) (v >>> (8 * (n - 1 - i)));
        }
    }

    private static int indexOfMarker(byte[] b, int marker) {
        for (int i = 0; i + 1 < b.length; i++) {
            if ((b[i] & 0xFF) == 0xFF && (b[i + 1] & 0xFF) == marker) {
                return i;
            }
        }
        throw new AssertionError("no marker " + Integer.toHexString(marker));
    }

    @Test
    void aTruncatedGifIsLabelledTruncatedNotAnIoError() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        assertTrue(ImageIO.write(TestImages.quadrants(64, 48), "gif", out));
        byte[] gif = out.toByteArray();
        assertEquals(64, decoder.decode(gif, "whole.gif").width());
        BadImageException e = assertThrows(BadImageException.class,
                () -> decoder.decode(Arrays.copyOf(gif, gif.length / 2), "cut.gif"));
        assertTrue(e.reason().startsWith("truncated or corrupt gif: the file ends before the image does ("), e.reason());
        assertTrue(!e.reason().contains("IIOException") && !e.reason().contains("corrupt other"), e.reason());
    }

    @Test
    void aBadImageListWithAFileAppendsEachSourceOnceAndIsReadBack(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("run").resolve(BadImageLog.FILE);
        BadImageLog log = new BadImageLog(file);
        assertEquals(file, log.file());
        assertTrue(log.report(new BadImageException("a.JPEG", "zero-byte file")));
        assertTrue(!log.report(new BadImageException("a.JPEG", "zero-byte file")));
        assertTrue(log.report(new BadImageException("b\tc.JPEG", "corrupt jpeg:\\nline two")));
        assertEquals(List.of("a.JPEG\tzero-byte file", "b c.JPEG\tcorrupt jpeg:\\nline two"), Files.readAllLines(file));
        BadImageLog resumed = new BadImageLog(file);
        assertEquals(2, resumed.size());
        assertTrue(!resumed.report(new BadImageException("a.JPEG", "zero-byte file")));
        assertTrue(resumed.report(new BadImageException("d.JPEG", "truncated")));
        assertEquals(3, Files.readAllLines(file).size());
        assertEquals(null, new BadImageLog().file());
    }
}
