package org.vgg4j.data;

import java.nio.charset.StandardCharsets;

/**
 * Binary PPM (P6, maxval 255): raw RGB with a text header. The shards' "decode-free" image format: reading one
 * is a copy, which is what makes training from shards cheaper than from JPEGs (at ~5-10x the disk space).
 */
final class Ppm {
    private Ppm() {
    }

    static byte[] encode(RgbImage im) {
        byte[] head = ("P6\n" + im.width() + " " + im.height() + "\n255\n").getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[head.length + im.pixels().length];
        System.arraycopy(head, 0, out, 0, head.length);
        System.arraycopy(im.pixels(), 0, out, head.length, im.pixels().length);
        return out;
    }

    static boolean isPpm(byte[] b) {
        return b.length > 2 && b[0] == 'P' && b[1] == '6';
    }

    static RgbImage decode(byte[] b, String source, long maxPixels) throws BadImageException {
        int[] pos = {2};
        long w = number(b, pos, source);
        long h = number(b, pos, source);
        long max = number(b, pos, source);
        if (max != 255) {
            throw new BadImageException(source, "PPM maxval " + max + ", only 255 is supported");
        }
        int start = pos[0] + 1; // exactly one whitespace byte after maxval
        if (w < 1 || h < 1 || w * h > maxPixels) {
            throw new BadImageException(source, "PPM dimensions " + w + "x" + h + " outside 1.." + maxPixels + " pixels");
        }
        if (b.length - start != 3 * w * h) {
            throw new BadImageException(source, "PPM " + w + "x" + h + " needs " + 3 * w * h + " bytes of pixels, has "
                    + (b.length - start) + " (truncated?)");
        }
        byte[] px = new byte[(int) (3 * w * h)];
        System.arraycopy(b, start, px, 0, px.length);
        return new RgbImage((int) w, (int) h, px);
    }

    private static long number(byte[] b, int[] pos, String source) throws BadImageException {
        int p = pos[0];
        while (p < b.length && (Character.isWhitespace(b[p]) || b[p] == '#')) {
            if (b[p] == '#') {
                while (p < b.length && b[p] != '\n') {
                    p++;
                }
            } else {
                p++;
            }
        }
        long v = 0;
        int digits = 0;
        while (p < b.length && b[p] >= '0' && b[p] <= '9' && digits < 10) {
            v = v * 10 + (b[p++] - '0');
            digits++;
        }
        if (digits == 0) {
            throw new BadImageException(source, "malformed PPM header");
        }
        pos[0] = p;
        return v;
    }
}
