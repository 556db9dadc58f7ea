package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;

import org.junit.jupiter.api.Test;

class IdxImagesTest {

    private static byte[] idx(int magic, int[] dims, byte[] payload) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(magic);
        for (int d : dims) {
            out.writeInt(d);
        }
        out.write(payload);
        return bytes.toByteArray();
    }

    private static IdxImages read(byte[] images, byte[] labels) throws IOException {
        return IdxImages.read("img", new ByteArrayInputStream(images), "lab", new ByteArrayInputStream(labels));
    }

    @Test
    void readsPixelsAndLabelsInOrder() throws IOException {
        byte[] px = {0, 1, 2, 3, 4, 5, (byte) 200, 7, 8, 9, 10, (byte) 255};
        IdxImages set = read(idx(0x803, new int[] {2, 2, 3}, px), idx(0x801, new int[] {2}, new byte[] {7, 9}));
        assertEquals(2, set.count());
        assertEquals(200, set.pixel(1, 0, 0));
        assertEquals(255, set.pixel(1, 1, 2));
        assertEquals(5, set.pixel(0, 1, 2));
        assertEquals(9, set.label(1));
    }

    @Test
    void rejectsWrongMagicTruncationAndMismatchedCounts() throws IOException {
        byte[] labels = idx(0x801, new int[] {1}, new byte[] {1});
        IOException magic = assertThrows(IOException.class, () -> read(idx(0x802, new int[] {1, 1, 1}, new byte[] {0}), labels));
        assertTrue(magic.getMessage().contains("0x802"), magic.getMessage());
        IOException truncated = assertThrows(IOException.class, () -> read(idx(0x803, new int[] {1, 2, 2}, new byte[] {0, 1}), labels));
        assertTrue(truncated.getMessage().contains("truncated"), truncated.getMessage());
        IOException count = assertThrows(IOException.class,
                () -> read(idx(0x803, new int[] {2, 1, 1}, new byte[] {0, 1}), labels));
        assertTrue(count.getMessage().contains("1 labels but img holds 2 images"), count.getMessage());
        IOException trailing = assertThrows(IOException.class, () -> read(idx(0x803, new int[] {1, 1, 1}, new byte[] {0, 9}), labels));
        assertTrue(trailing.getMessage().contains("after the 1 bytes"), trailing.getMessage());
    }

    @Test
    void bundledSampleIsBalancedAndReal() {
        IdxImages train = FashionMnist.bundledSample(FashionMnist.Split.TRAIN);
        IdxImages test = FashionMnist.bundledSample(FashionMnist.Split.TEST);
        assertEquals(5000, train.count());
        assertEquals(1000, test.count());
        assertEquals(28, train.rows());
        int[] perClass = new int[10];
        for (int i = 0; i < train.count(); i++) {
            perClass[train.label(i)]++;
        }
        for (int c = 0; c < 10; c++) {
            assertEquals(500, perClass[c], "class " + c);
        }
        // Real photographs of clothing are neither blank nor noise: the mean intensity of Fashion-MNIST is ~72.9.
        long sum = 0;
        for (byte b : train.pixels()) {
            sum += b & 0xFF;
        }
        double mean = (double) sum / train.pixels().length;
        assertTrue(mean > 60 && mean < 85, "mean pixel " + mean);
    }
}
