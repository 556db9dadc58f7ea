package org.vgg4j.core.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A protocol-buffers message being built, for {@link OnnxExport}: its fields in the order added, encoded in the
 * protobuf wire format (a tag varint {@code field << 3 | wireType}, then a varint, a little-endian fixed32, or a
 * length varint and that many bytes). Only what ONNX's messages need: varints (wire type 0), 32-bit floats (5) and
 * length-delimited strings, bytes and nested messages (2). A message knows its encoded size before it is written,
 * so nested messages and large tensors stream to the output without being assembled in memory first.
 */
final class ProtoMessage {
    private static final int VARINT = 0;
    private static final int LENGTH_DELIMITED = 2;
    private static final int FIXED32 = 5;

    /** Writes exactly the number of bytes it was declared with. */
    @FunctionalInterface
    interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    private interface Field {
        long size();

        void writeTo(OutputStream out) throws IOException;
    }

    private final List<Field> fields = new ArrayList<>();

    /** An int32/int64/enum field (negative values take ten bytes, as protobuf's int64). */
    ProtoMessage varint(int field, long value) {
        byte[] encoded = concat(tag(field, VARINT), varint(value));
        fields.add(fixed(encoded));
        return this;
    }

    /** A float field: fixed32, IEEE 754 little-endian. */
    ProtoMessage float32(int field, float value) {
        int bits = Float.floatToRawIntBits(value);
        byte[] encoded = concat(tag(field, FIXED32),
                new byte[] {(byte) bits, (byte) (bits >>> 8), (byte) (bits >>> 16), (byte) (bits >>> 24)});
        fields.add(fixed(encoded));
        return this;
    }

    /** A string field, UTF-8. */
    ProtoMessage string(int field, String value) {
        byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
        fields.add(fixed(concat(concat(tag(field, LENGTH_DELIMITED), varint(utf8.length)), utf8)));
        return this;
    }

    /** A repeated int64 field, packed (one length-delimited run of varints). */
    ProtoMessage packedVarints(int field, long... values) {
        byte[] run = new byte[0];
        for (long v : values) {
            run = concat(run, varint(v));
        }
        fields.add(fixed(concat(concat(tag(field, LENGTH_DELIMITED), varint(run.length)), run)));
        return this;
    }

    /** A nested message field. */
    ProtoMessage message(int field, ProtoMessage value) {
        fields.add(delimited(field, value::size, value::writeTo));
        return this;
    }

    /** A bytes field of {@code length} bytes that {@code content} writes when the message is written. */
    ProtoMessage bytes(int field, long length, Content content) {
        if (length < 0) {
            throw new IllegalArgumentException("bytes field " + field + ": length " + length + " must be >= 0");
        }
        fields.add(delimited(field, () -> length, out -> {
            CountingOutputStream counted = new CountingOutputStream(out, false);
            content.writeTo(counted);
            if (counted.count() != length) {
                throw new IllegalStateException("bytes field " + field + " declared " + length + " bytes but "
                        + counted.count() + " were written");
            }
        }));
        return this;
    }

    /** The encoded size in bytes. */
    long size() {
        long n = 0;
        for (Field f : fields) {
            n += f.size();
        }
        return n;
    }

    void writeTo(OutputStream out) throws IOException {
        for (Field f : fields) {
            f.writeTo(out);
        }
    }

    /** The encoded message; for small messages (tests). */
    byte[] toByteArray() throws IOException {
        var out = new java.io.ByteArrayOutputStream(Math.toIntExact(size()));
        writeTo(out);
        return out.toByteArray();
    }

    /** Base-128 varint, least significant group first; a negative value as its 64-bit two's complement. */
    static byte[] varint(long value) {
        byte[] buf = new byte[10];
        int n = 0;
        long v = value;
        while ((v & ~0x7FL) != 0) {
            buf[n++] = (byte) ((v & 0x7F) | 0x80);
            v >>>= 7;
        }
        buf[n++] = (byte) v;
        byte[] out = new byte[n];
        System.arraycopy(buf, 0, out, 0, n);
        return out;
    }

    private static byte[] tag(int field, int wireType) {
        if (field < 1 || field > (1 << 29) - 1) {
            throw new IllegalArgumentException("protobuf field number " + field + " must be in 1..2^29-1");
        }
        return varint(((long) field << 3) | wireType);
    }

    private interface Size {
        long get();
    }

    private static Field delimited(int field, Size contentSize, Content content) {
        byte[] tag = tag(field, LENGTH_DELIMITED);
        return new Field() {
            @Override
            public long size() {
                long n = contentSize.get();
                return tag.length + varint(n).length + n;
            }

            @Override
            public void writeTo(OutputStream out) throws IOException {
                out.write(tag);
                out.write(varint(contentSize.get()));
                content.writeTo(out);
            }
        };
    }

    private static Field fixed(byte[] encoded) {
        return new Field() {
            @Override
            public long size() {
                return encoded.length;
            }

            @Override
            public void writeTo(OutputStream out) throws IOException {
                out.write(encoded);
            }
        };
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = new byte[a.length + b.length];
        System.arraycopy(a, 0, c, 0, a.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
