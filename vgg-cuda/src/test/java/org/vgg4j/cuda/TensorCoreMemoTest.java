package org.vgg4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vgg4j.cuda.Parity.floats;
import static org.vgg4j.cuda.Parity.t;

import java.util.List;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;
import org.vgg4j.cuda.ConvKernelTest.Case;
import org.vgg4j.cuda.TensorCorePathTest.Launches;

/**
 * The cuda backend's convolution memo on the tensor-core path ({@link CudaBackend#newConvMemo},
 * {@link TensorCoreMemo}): the forward converts x into the memo, and the backward with the same memo and x reads it
 * there instead of converting x again -- one nchw_to_nhwc_bf16 (dy's) where there were two -- with dx, dw and db
 * bit for bit those without the memo. Each forward replaces what the memo held (the last forward wins); a backward
 * with another x converts it; close() hands the buffer back to the allocator; with the tensor cores off, or in FP32,
 * there is no memo. Legend: N batch, C in, K out, H/W in.
 */
@Tag(Parity.DEVICE_TAG)
class TensorCoreMemoTest {
    /** conv1_1's C = 3 (padded to 8), a split-K backward-filter (N*P*Q = 648), a 1x1 layer. */
    static Stream<Case> cases() {
        return Stream.of(new Case(2, 3, 6, 6, 8, 3, 3, 1), new Case(2, 8, 18, 18, 16, 3, 3, 1),
                new Case(2, 16, 5, 5, 24, 1, 1, 0));
    }

    @BeforeAll
    static void device() {
        Parity.assumeDevice();
    }

    /** A layer's tensors on one backend: x, w, b, y, dy and the gradients. */
    private record Layer(Case c, Tensor x, Tensor w, Tensor b, Tensor y, Tensor dy, Tensor dx, Tensor dw,
                         Tensor db) {
        static Layer of(Backend be, Case c, long seed) {
            int nx = Parity.size(c.x()), nw = Parity.size(c.wt()), ny = Parity.size(c.y());
            return new Layer(c, t(be, c.x(), floats(seed + 1, nx, -1, 1)), t(be, c.wt(), floats(seed + 2, nw, -1, 1)),
                    t(be, Shape.of(c.k()), floats(seed + 3, c.k(), -1, 1)), be.allocate(DType.FLOAT32, c.y()),
                    t(be, c.y(), floats(seed + 4, ny, -1, 1)), be.allocate(DType.FLOAT32, c.x()),
                    t(be, c.wt(), floats(seed + 5, nw, -1, 1)), t(be, Shape.of(c.k()), floats(seed + 6, c.k(), -1, 1)));
        }

        void forward(Backend be, Backend.ConvMemo memo) {
            be.conv2dForward(x, w, b, y, c.pad(), true, memo);
        }

        void backward(Backend be, Backend.ConvMemo memo, boolean wantDx) {
            be.conv2dBackward(x, w, dy, wantDx ? dx : null, dw, db, c.pad(), memo);
        }

        /** y, dx, dw, db on the host. */
        double[][] outputs() {
            return new double[][] {TestTensors.toArray(y), TestTensors.toArray(dx), TestTensors.toArray(dw),
                    TestTensors.toArray(db)};
        }
    }

    private static void assertBitwise(double[][] want, double[][] got, String what) {
        String[] names = {"y", "dx", "dw", "db"};
        for (int i = 0; i < want.length; i++) {
            for (int j = 0; j < want[i].length; j++) {
                assertEquals(Double.doubleToRawLongBits(want[i][j]), Double.doubleToRawLongBits(got[i][j]),
                        what + ": " + names[i] + " element " + j + " is " + got[i][j] + " with the memo, "
                                + want[i][j] + " without");
            }
        }
    }

    private static long conversions(List<String> launched) {
        return launched.stream().filter("nchw_to_nhwc_bf16"::equals).count();
    }

    @ParameterizedTest
    @MethodSource("cases")
    void theBackwardReadsTheKeptXAndEqualsTheBackwardWithoutItBitwise(Case c) {
        Launches[] log = new Launches[1];
        try (Parity p = TensorCorePathTest.bf16(log)) {
            CudaBackend be = p.dev;
            for (boolean wantDx : new boolean[] {true, false}) {
                Layer plain = Layer.of(be, c, 10);
                plain.forward(be, null);
                log[0].take();
                plain.backward(be, null, wantDx);
                assertEquals(2, conversions(log[0].take()), "without a memo: x and dy");
                Layer kept = Layer.of(be, c, 10);
                try (Backend.ConvMemo memo = be.newConvMemo()) {
                    assertNotNull(memo, "BF16 on the tensor cores makes memos");
                    kept.forward(be, memo);
                    log[0].take();
                    kept.backward(be, memo, wantDx);
                    List<String> launched = log[0].take();
                    assertEquals(1, conversions(launched), "with the memo: dy only, " + launched);
                    assertTrue(launched.contains("conv_tc_wgrad_bf16"), launched.toString());
                }
                assertBitwise(plain.outputs(), kept.outputs(), c + (wantDx ? "" : " without dx"));
            }
        }
    }

    /**
     * Several forwards before one backward: the last one wins -- another x replaces the kept one, new values in the
     * same x are converted again -- and a backward with an x the memo does not hold converts it.
     */
    @Test
    void eachForwardReplacesTheMemoAndAnotherXIsConverted() {
        Case c = new Case(2, 8, 18, 18, 16, 3, 3, 1);
        Launches[] log = new Launches[1];
        try (Parity p = TensorCorePathTest.bf16(log); Backend.ConvMemo memo = p.dev.newConvMemo()) {
            CudaBackend be = p.dev;
            Layer first = Layer.of(be, c, 20);
            Layer second = Layer.of(be, c, 30);
            Layer plainSecond = Layer.of(be, c, 30);
            plainSecond.forward(be, null);
            plainSecond.backward(be, null, true);

            first.forward(be, memo);
            second.forward(be, memo); // the last forward: the memo holds second's x
            log[0].take();
            second.backward(be, memo, true);
            assertEquals(1, conversions(log[0].take()), "second's x from the memo");
            assertBitwise(plainSecond.outputs(), second.outputs(), "the last forward's x");

            Layer plainFirst = Layer.of(be, c, 20);
            plainFirst.forward(be, null);
            plainFirst.backward(be, null, true);
            log[0].take();
            first.backward(be, memo, true); // the memo holds second's x, not first's
            assertEquals(2, conversions(log[0].take()), "first's x converted");
            assertBitwise(plainFirst.outputs(), first.outputs(), "another x than the memo's");

            // the same x with new values, forwarded again: the memo holds the new conversion
            Layer renewed = Layer.of(be, c, 40);
            Layer plainRenewed = Layer.of(be, c, 50);
            renewed.forward(be, memo);
            Tensor[][] pairs = {{plainRenewed.x(), renewed.x()}, {plainRenewed.w(), renewed.w()},
                    {plainRenewed.b(), renewed.b()}, {plainRenewed.dy(), renewed.dy()},
                    {plainRenewed.dw(), renewed.dw()}, {plainRenewed.db(), renewed.db()}};
            for (Tensor[] pair : pairs) {
                be.copy(pair[0], pair[1]); // renewed now holds plainRenewed's values at its own addresses
            }
            renewed.forward(be, memo);
            plainRenewed.forward(be, null);
            plainRenewed.backward(be, null, true);
            log[0].take();
            renewed.backward(be, memo, true);
            assertEquals(1, conversions(log[0].take()), "the renewed x from the memo");
            assertBitwise(plainRenewed.outputs(), renewed.outputs(), "the same x with new values");
        }
    }

    /**
     * R = 3, S = 1: backward-filter on the tensor cores (x from the memo), backward-data on v1 after it; the bits of
     * the two separate calls without a memo.
     */
    @Test
    void aV1BackwardDataRunsAfterTheTensorCoreWeightGradient() {
        Case c = new Case(2, 8, 6, 6, 16, 3, 1, 0);
        Launches[] log = new Launches[1];
        try (Parity p = TensorCorePathTest.bf16(log); Backend.ConvMemo memo = p.dev.newConvMemo()) {
            CudaBackend be = p.dev;
            assertEquals(TensorCorePathTest.V1, be.convPath(CudaBackend.ConvPass.BACKWARD_DATA, c.x(), c.wt(), 0));
            Layer plain = Layer.of(be, c, 100);
            plain.forward(be, null);
            be.conv2dBackwardFilter(plain.x(), plain.dy(), plain.dw(), plain.db(), 0);
            be.conv2dBackwardData(plain.dy(), plain.w(), plain.dx(), 0);
            Layer kept = Layer.of(be, c, 100);
            kept.forward(be, memo);
            log[0].take();
            kept.backward(be, memo, true);
            List<String> launched = log[0].take();
            assertEquals(1, conversions(launched), "dy only: " + launched);
            assertTrue(launched.contains("conv_tc_wgrad_bf16") && launched.contains("conv_bwd_data_bf16"),
                    launched.toString());
            assertBitwise(plain.outputs(), kept.outputs(), "R = 3, S = 1");
        }
    }

    /** The buffer counts as device memory in use while the memo holds it; close() hands it back. */
    @Test
    void theMemoCountsInDeviceMemoryAndCloseFreesIt() {
        Case c = new Case(2, 3, 6, 6, 8, 3, 3, 1);
        try (Parity p = new Parity(MathMode.BF16, true, UnaryOperator.identity())) {
            CudaBackend be = p.dev;
            Layer l = Layer.of(be, c, 60);
            l.forward(be, null); // the scratch buffers grow to this layer once
            l.backward(be, null, true);
            long before = be.deviceBytesInUse();
            Backend.ConvMemo memo = be.newConvMemo();
            assertEquals(0, be.convMemoBytes(), "nothing kept before a forward");
            l.forward(be, memo);
            long xh = 2L * 2 * 6 * 6 * 8; // N,H,W,Cp bf16
            assertEquals(xh, be.convMemoBytes());
            assertEquals(before + DeviceAllocator.roundUp(xh), be.deviceBytesInUse(), "the memo's buffer is in use");
            assertTrue(be.peakDeviceBytes() >= be.deviceBytesInUse());
            l.forward(be, memo);
            l.backward(be, memo, true);
            assertEquals(before + DeviceAllocator.roundUp(xh), be.deviceBytesInUse(), "one buffer, reused");
            memo.close();
            assertEquals(0, be.convMemoBytes());
            assertEquals(before, be.deviceBytesInUse(), "close() handed the buffer back");
            memo.close(); // twice is harmless
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> l.forward(be, memo));
            assertTrue(e.getMessage().contains("used after its close()"), e.getMessage());
        }
    }

    /** The backend's close releases the buffers of memos still open; their close afterwards does nothing. */
    @Test
    void closingTheBackendReleasesOpenMemos() {
        Case c = new Case(1, 8, 7, 7, 8, 3, 3, 1);
        Parity p = new Parity(MathMode.BF16, true, UnaryOperator.identity());
        Backend.ConvMemo memo;
        try (p) {
            memo = p.dev.newConvMemo();
            Layer.of(p.dev, c, 70).forward(p.dev, memo);
            assertTrue(p.dev.convMemoBytes() > 0);
        }
        memo.close();
        assertEquals(0, p.dev.convMemoBytes());
    }

    /** Where x is never converted, or its backward-filter runs on v1, nothing is kept; another backend's is refused. */
    @Test
    void noMemoOffTheTensorCoresAndNoneKeptForAV1BackwardFilter() {
        try (Parity p = new Parity(MathMode.BF16, false, UnaryOperator.identity())) {
            assertNull(p.dev.newConvMemo(), "tensor cores switched off");
        }
        for (MathMode m : new MathMode[] {MathMode.FP32, MathMode.TF32}) {
            try (Parity p = new Parity(m, true, UnaryOperator.identity())) {
                assertNull(p.dev.newConvMemo(), m.toString());
            }
        }
        Case k12 = new Case(2, 16, 6, 6, 12, 3, 3, 1); // K = 12: backward-filter on v1
        try (Parity p = new Parity(MathMode.BF16, true, UnaryOperator.identity());
             Parity other = new Parity(MathMode.BF16, true, UnaryOperator.identity());
             Backend.ConvMemo memo = p.dev.newConvMemo()) {
            Layer plain = Layer.of(p.dev, k12, 80);
            plain.forward(p.dev, null);
            plain.backward(p.dev, null, true);
            Layer kept = Layer.of(p.dev, k12, 80);
            kept.forward(p.dev, memo);
            assertEquals(0, p.dev.convMemoBytes(), "a v1 backward-filter reads x as it is: nothing kept");
            kept.backward(p.dev, memo, true);
            assertBitwise(plain.outputs(), kept.outputs(), "K = 12");

            Layer elsewhere = Layer.of(other.dev, new Case(1, 8, 4, 4, 8, 3, 3, 1), 90);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> elsewhere.forward(other.dev, memo));
            assertTrue(e.getMessage().contains("was not made by this"), e.getMessage());
        }
    }
}
