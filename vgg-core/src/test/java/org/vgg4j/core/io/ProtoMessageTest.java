package org.vgg4j.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;

import org.junit.jupiter.api.Test;

/** The protobuf wire format of ProtoMessage, against bytes decoded by hand from the encoding rules. */
class ProtoMessageTest {
    private static byte[] bytes(int... b) {
        byte[] out = new byte[b.length];
        for (int i = 0; i < b.length; i++) {
            out[i] = (byte) b[i];
        }
        return out;
    }

    @Test
    void varintsAreBase128LeastSignificantGroupFirst() {
        assertArrayEquals(bytes(0x00), ProtoMessage.varint(0));
        assertArrayEquals(bytes(0x7F), ProtoMessage.varint(127));
        assertArrayEquals(bytes(0xAC, 0x02), ProtoMessage.varint(300));           // 300 = 0b10_0101100
        assertArrayEquals(bytes(0x80, 0x80, 0x01), ProtoMessage.varint(1 << 14));
        // -1 as int64: 64 one-bits, nine groups of 7 with the continuation bit, then the last bit
        assertArrayEquals(bytes(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01), ProtoMessage.varint(-1));
    }

    @Test
    void scalarFieldsCarryTagFieldShiftedThreeOrWireType() throws IOException {
        // field 1 varint: tag 0x08; field 2 fixed32: tag 0x15 with 1.0f = 0x3F800000 little-endian
        assertArrayEquals(bytes(0x08, 0xAC, 0x02), new ProtoMessage().varint(1, 300).toByteArray());
        assertArrayEquals(bytes(0x15, 0x00, 0x00, 0x80, 0x3F), new ProtoMessage().float32(2, 1.0f).toByteArray());
        // field 20 (ONNX AttributeProto.type): tag 20 << 3 = 160 = varint A0 01
        assertArrayEquals(bytes(0xA0, 0x01, 0x07), new ProtoMessage().varint(20, 7).toByteArray());
    }

    @Test
    void lengthDelimitedFieldsNestAndPack() throws IOException {
        assertArrayEquals(bytes(0x12, 0x02, 'h', 'i'), new ProtoMessage().string(2, "hi").toByteArray());
        // packed repeated int64 field 8: tag 0x42, length 3, varints 3 and 270 (8E 02)
        assertArrayEquals(bytes(0x42, 0x03, 0x03, 0x8E, 0x02), new ProtoMessage().packedVarints(8, 3, 270).toByteArray());
        ProtoMessage inner = new ProtoMessage().varint(1, 5).string(2, "N");
        ProtoMessage outer = new ProtoMessage().message(7, inner).varint(1, 7);
        byte[] expected = bytes(0x3A, 0x05, 0x08, 0x05, 0x12, 0x01, 'N', 0x08, 0x07);
        assertArrayEquals(expected, outer.toByteArray());
        assertEquals(expected.length, outer.size());
    }

    @Test
    void streamedBytesMustMatchTheirDeclaredLength() throws IOException {
        ProtoMessage ok = new ProtoMessage().bytes(9, 3, out -> out.write(new byte[] {1, 2, 3}));
        assertArrayEquals(bytes(0x4A, 0x03, 1, 2, 3), ok.toByteArray());
        ProtoMessage bad = new ProtoMessage().bytes(9, 4, out -> out.write(new byte[] {1, 2, 3}));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> bad.writeTo(new ByteArrayOutputStream()));
        assertTrue(e.getMessage().contains("declared 4 bytes but 3"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ProtoMessage().varint(0, 1));
    }
}
