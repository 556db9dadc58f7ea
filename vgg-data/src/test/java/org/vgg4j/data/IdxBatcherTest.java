package org.vgg4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class IdxBatcherTest {

    @Test
    void padsCentresNormalisesAndReplicatesChannels() {
        // two 2x2 images: [[0,255],[51,102]] and [[255,255],[0,0]], labels 3 and 4
        byte[] px = {0, (byte) 255, 51, 102, (byte) 255, (byte) 255, 0, 0};
        IdxImages set = new IdxImages(2, 2, 2, px, new byte[] {3, 4});
        IdxBatcher batcher = new IdxBatcher(set, 4, 3, 0.5, 0.25);
        Batch b = batcher.newBatch(2);
        batcher.fill(b, new int[] {1, 0}, 1, 1); // take image 0 only
        assertEquals(1, b.size());
        assertEquals(3, b.labels()[0]);
        float[] x = b.hostImages();
        float pad = (0f - 0.5f) / 0.25f;
        for (int ch = 0; ch < 3; ch++) {
            int o = ch * 16;
            assertEquals(pad, x[o], 0f);                       // corner: padding
            assertEquals((0f - 0.5f) / 0.25f, x[o + 5], 1e-6f);  // (1,1) = pixel (0,0)
            assertEquals((1f - 0.5f) / 0.25f, x[o + 6], 1e-6f);  // (1,2) = pixel (0,1)
            assertEquals((0.2f - 0.5f) / 0.25f, x[o + 9], 1e-6f); // (2,1) = pixel (1,0) = 51/255
            assertEquals((0.4f - 0.5f) / 0.25f, x[o + 10], 1e-6f);
            assertEquals(pad, x[o + 15], 0f);
        }
    }

    @Test
    void rejectsTooSmallTargetAndOverfullBatch() {
        IdxImages set = new IdxImages(1, 2, 2, new byte[4], new byte[1]);
        assertThrows(IllegalArgumentException.class, () -> new IdxBatcher(set, 1, 3, 0, 1));
        IdxBatcher batcher = new IdxBatcher(set, 2, 1, 0, 1);
        assertThrows(IllegalArgumentException.class, () -> batcher.fill(batcher.newBatch(1), new int[] {0, 0}, 0, 2));
    }
}
