package org.vgg4j.data;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The small subset of POSIX ustar that WebDataset shards use: regular files with short names, written
 * sequentially, read back by scanning headers. Not a general tar library (no long names, links, pax headers
 * are skipped as opaque entries).
 */
final class Tar {
    static final int BLOCK = 512;

    private Tar() {
    }

    /** One regular-file entry: its name and where its data lies in the archive. */
    record Entry(String name, long offset, int size) {
    }

    /** Writes one regular-file entry (header, data, padding) to {@code out}; returns the bytes written. */
    static long writeEntry(OutputStream out, String name, byte[] data) throws IOException {
        byte[] nameBytes = name.getBytes(StandardCharsets.US_ASCII);
        if (nameBytes.length > 99) {
            throw new IllegalArgumentException("tar entry name '" + name + "' is longer than 99 characters");
        }
        byte[] h = new byte[BLOCK];
        System.arraycopy(nameBytes, 0, h, 0, nameBytes.length);
        octal(h, 100, 8, 0644);
        octal(h, 108, 8, 0);
        octal(h, 116, 8, 0);
        octal(h, 124, 12, data.length);
        octal(h, 136, 12, 0); // fixed mtime: packing twice gives identical shards
        h[156] = '0';
        System.arraycopy("ustar\0".getBytes(StandardCharsets.US_ASCII), 0, h, 257, 6);
        h[263] = '0';
        h[264] = '0';
        for (int i = 148; i < 156; i++) {
            h[i] = ' ';
        }
        long sum = 0;
        for (byte b : h) {
            sum += b & 0xFF;
        }
        octal(h, 148, 7, sum);
        h[155] = ' ';
        out.write(h);
        out.write(data);
        int pad = (BLOCK - data.length % BLOCK) % BLOCK;
        out.write(new byte[pad]);
        return BLOCK + data.length + pad;
    }

    /** Two zero blocks end an archive. */
    static void writeEnd(OutputStream out) throws IOException {
        out.write(new byte[2 * BLOCK]);
    }

    /** Lists the regular-file entries of an archive by walking its headers. */
    static List<Entry> scan(FileChannel ch, String name) throws IOException {
        List<Entry> entries = new ArrayList<>();
        ByteBuffer hb = ByteBuffer.allocate(BLOCK);
        long pos = 0;
        long size = ch.size();
        while (pos + BLOCK <= size) {
            hb.clear();
            readFully(ch, hb, pos);
            byte[] h = hb.array();
            if (isZero(h)) {
                break;
            }
            long sum = 0;
            for (int i = 0; i < BLOCK; i++) {
                sum += i >= 148 && i < 156 ? ' ' : h[i] & 0xFF;
            }
            long stored = parseOctal(h, 148, 8);
            if (stored != sum) {
                throw new IOException(name + ": bad tar header checksum at byte " + pos);
            }
            long len = parseOctal(h, 124, 12);
            if (len < 0 || len > Integer.MAX_VALUE || pos + BLOCK + len > size) {
                throw new IOException(name + ": tar entry at byte " + pos + " claims " + len + " bytes (truncated shard?)");
            }
            byte type = h[156];
            if (type == '0' || type == 0) {
                int end = 0;
                while (end < 100 && h[end] != 0) {
                    end++;
                }
                String prefix = h[345] != 0 ? cString(h, 345, 155) + "/" : "";
                entries.add(new Entry(prefix + new String(h, 0, end, StandardCharsets.US_ASCII), pos + BLOCK, (int) len));
            }
            pos += BLOCK + (len + BLOCK - 1) / BLOCK * BLOCK;
        }
        return entries;
    }

    static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int n = ch.read(b, pos + b.position());
            if (n < 0) {
                throw new IOException("unexpected end of file at byte " + (pos + b.position()));
            }
        }
    }

    private static String cString(byte[] h, int off, int max) {
        int end = off;
        while (end < off + max && h[end] != 0) {
            end++;
        }
        return new String(h, off, end - off, StandardCharsets.US_ASCII);
    }

    private static boolean isZero(byte[] h) {
        for (byte b : h) {
            if (b != 0) {
                return false;
            }
        }
        return true;
    }

    private static void octal(byte[] h, int off, int len, long v) {
        String s = Long.toOctalString(v);
        if (s.length() > len - 1) {
            throw new IllegalArgumentException("value " + v + " does not fit a " + len + "-byte tar field");
        }
        int pad = len - 1 - s.length();
        for (int i = 0; i < pad; i++) {
            h[off + i] = '0';
        }
        for (int i = 0; i < s.length(); i++) {
            h[off + pad + i] = (byte) s.charAt(i);
        }
        h[off + len - 1] = 0;
    }

    /** An octal field: optional leading spaces, digits, ended by NUL or space (or the field's end). */
    private static long parseOctal(byte[] h, int off, int len) {
        int i = off;
        int end = off + len;
        while (i < end && h[i] == ' ') {
            i++;
        }
        long v = 0;
        for (; i < end && h[i] != 0 && h[i] != ' '; i++) {
            if (h[i] < '0' || h[i] > '7') {
                return -1;
            }
            v = v * 8 + (h[i] - '0');
        }
        return v;
    }
}
