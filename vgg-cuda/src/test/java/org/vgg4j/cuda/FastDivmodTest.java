package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * FastDivmod (kernel_common.cuh), the multiply-shift division the conv kernels' im2col gathers use, against Java's
 * integer division on the emulated device (test kernel src/test/cuda/fastdiv_check.cu): every divisor 1..300, VGG's
 * geometry products and large divisors up to 2^31 - 1, with numerators 0..4999, multiples of each divisor and their
 * neighbours, random values and 2^31 - 1.
 */
@Tag(Parity.EMULATOR_TAG)
class FastDivmodTest {
    @BeforeAll
    static void emulator() {
        Parity.assumeEmulator();
    }

    @Test
    void quotientsAndRemaindersEqualIntegerDivision() {
        int[] extra = {50176, 12544, 3136, 784, 196, 224 * 224 * 64, 65535, 65536, 65537, (1 << 20) + 1,
                1 << 30, (1 << 30) + 3, Integer.MAX_VALUE - 1, Integer.MAX_VALUE};
        int[] divisors = new int[300 + extra.length];
        for (int d = 1; d <= 300; d++) {
            divisors[d - 1] = d;
        }
        System.arraycopy(extra, 0, divisors, 300, extra.length);
        SplittableRandom rnd = new SplittableRandom(5);
        int[] nums = new int[5000 + 3 * extra.length + 2000 + 1];
        int k = 0;
        for (int n = 0; n < 5000; n++) {
            nums[k++] = n;
        }
        for (int d : extra) {
            long m = (long) d * (Integer.MAX_VALUE / d);
            nums[k++] = (int) m;
            nums[k++] = (int) (m - 1);
            nums[k++] = d - 1;
        }
        for (int i = 0; i < 2000; i++) {
            nums[k++] = rnd.nextInt(Integer.MAX_VALUE);
        }
        nums[k++] = Integer.MAX_VALUE;

        try (EmulatedDriver d = EmulatedDriver.open(0)) {
            long dn = d.malloc(4L * nums.length);
            long dd = d.malloc(4L * divisors.length);
            long total = (long) nums.length * divisors.length;
            long dq = d.malloc(4 * total);
            long dr = d.malloc(4 * total);
            d.copyIn(nums, 0, dn, nums.length);
            d.copyIn(divisors, 0, dd, divisors.length);
            d.launch(d.function("fastdiv_check", "fastdiv_check"), 1024, 1, 1, 256,
                    KernelArgs.of().ptr(dn).i32(nums.length).ptr(dd).i32(divisors.length).ptr(dq).ptr(dr));
            float[] q = new float[(int) total];
            float[] r = new float[(int) total];
            d.copyOut(dq, q, 0, q.length); // int bits carried in a float array: compared as raw bits below
            d.copyOut(dr, r, 0, r.length);
            for (int j = 0; j < divisors.length; j++) {
                for (int i = 0; i < nums.length; i++) {
                    int e = j * nums.length + i;
                    int gotQ = Float.floatToRawIntBits(q[e]);
                    int gotR = Float.floatToRawIntBits(r[e]);
                    if (gotQ != nums[i] / divisors[j] || gotR != nums[i] % divisors[j]) {
                        assertEquals(nums[i] / divisors[j] + " r " + nums[i] % divisors[j], gotQ + " r " + gotR,
                                nums[i] + " / " + divisors[j]);
                    }
                }
            }
        }
    }
}
