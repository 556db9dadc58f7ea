package org.vgg4j.core.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.CpuPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;
import org.vgg4j.core.testing.Approx;

/**
 * The cpu backend's convolution memo ({@link Backend#newConvMemo}, {@link DnnlConv.Kept}): backward-weights takes x
 * in its blocked layout from the forward instead of converting it again. Counted with
 * {@link DnnlConv#reorderCount()}: one reorder fewer per slice of a training step (on the build machine every
 * VGG layer but the first, whose x oneDNN reads plain, has the same x layout in forward and backward-weights), and
 * the gradients bit for bit those without the memo. Where the memo cannot hold (a larger x than
 * {@link DnnlConv#KEEP_MAX_BYTES}, another x, an engine closed since the forward), backward converts x as before.
 * Legend: N batch, C in, K out, H/W in.
 */
final class ConvMemoTest {
    private static final List<CpuBackend> BACKENDS = new ArrayList<>();

    @AfterAll
    static void close() {
        BACKENDS.forEach(CpuBackend::close);
    }

    private static CpuBackend cpu(CpuBackend.Options o) {
        CpuBackend b = new CpuBackend(o);
        BACKENDS.add(b);
        return b;
    }

    /** What one forward + backward leaves: y, dx, dw, db on the host, and the reorders it ran. */
    private record Step(float[] y, float[] dx, float[] dw, float[] db, long reorders) {
    }


    private static Step step(CpuBackend b, int[] s, boolean bias, boolean needDx, Backend.ConvMemo memo,
                             boolean otherXInBackward) {
        int n = s[0], c = s[1], h = s[2], k = s[3];
        Tensor x = TestTensors.random(b, DType.FLOAT32, Shape.of(n, c, h, h), 31, -1, 1);
        Tensor w = TestTensors.random(b, DType.FLOAT32, Shape.of(k, c, 3, 3), 32, -0.3, 0.3);
        Tensor bt = bias ? TestTensors.random(b, DType.FLOAT32, Shape.of(k), 33, -0.2, 0.2) : null;
        Tensor dy = TestTensors.random(b, DType.FLOAT32, Shape.of(n, k, h, h), 34, -1, 1);
        Tensor y = b.allocate(DType.FLOAT32, Shape.of(n, k, h, h));
        Tensor dx = needDx ? b.allocate(DType.FLOAT32, Shape.of(n, c, h, h)) : null;
        Tensor dw = TestTensors.random(b, DType.FLOAT32, Shape.of(k, c, 3, 3), 35, -0.1, 0.1); // += onto this
        Tensor db = bias ? b.allocate(DType.FLOAT32, Shape.of(k)) : null;
        long r0 = b.dnnl().reorderCount();
        b.conv2dForward(x, w, bt, y, 1, true, memo);
        Tensor xb = x;
        if (otherXInBackward) { // the same values at another address: the memo must not be taken for it
            xb = b.allocate(DType.FLOAT32, x.shape());
            b.copy(x, xb);
        }
        b.conv2dBackward(xb, w, dy, dx, dw, db, 1, memo);
        long reorders = b.dnnl().reorderCount() - r0;
        return new Step(TestTensors.floats(y), dx == null ? null : TestTensors.floats(dx), TestTensors.floats(dw), bias ? TestTensors.floats(db) : null, reorders);
    }


    private static void assertSameValues(Step without, Step with) {
        Approx.assertSameBits(without.y, with.y, "y");
        Approx.assertSameBits(without.dx, with.dx, "dx");
        Approx.assertSameBits(without.dw, with.dw, "dw");
        Approx.assertSameBits(without.db, with.db, "db");
    }

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        List<String> kinds = new ArrayList<>(List.of("f32", "f32-sliced"));
        if (Bf16Support.unavailableReason() == null) {
            kinds.add("bf16");
        }
        for (String kind : kinds) {
            a.add(Arguments.of(kind, new int[] {4, 16, 8, 32}, true, true));
            a.add(Arguments.of(kind, new int[] {4, 64, 4, 64}, false, true));
            a.add(Arguments.of(kind, new int[] {3, 32, 6, 16}, true, false)); // the first layer: no dx
        }
        return a.stream();
    }

    private static CpuBackend.Options options(String kind) {
        CpuBackend.Options d = CpuBackend.Options.defaults();
        return switch (kind) {
            case "f32" -> d;
            case "f32-sliced" -> d.withSliceElements(1); // one image per slice
            case "bf16" -> d.withPrecision(CpuPrecision.BF16);
            default -> throw new IllegalArgumentException(kind);
        };
    }

    @ParameterizedTest(name = "{0} {1} bias={2} dx={3}")
    @MethodSource("cases")
    void backwardTakesTheKeptXOnceReorderFewerPerSliceSameGradients(String kind, int[] s, boolean bias, boolean dx) {
        CpuBackend b = cpu(options(kind));
        Step without = step(b, s, bias, dx, null, false);
        try (Backend.ConvMemo memo = b.newConvMemo()) {
            assertNotNull(memo, "the direct engine makes memos");
            Step with = step(b, s, bias, dx, memo, false);
            assertSameValues(without, with);
            int slices = kind.equals("f32-sliced") ? s[0] : 1;
            assertEquals(without.reorders - slices, with.reorders,
                    "reorders of one training step without the memo: " + without.reorders);
            Step again = step(b, s, bias, dx, memo, false); // a memo serves every step, each forward replacing it
            assertSameValues(without, again);
            assertEquals(with.reorders, again.reorders);
        }
    }

    @Test
    void anotherXInBackwardIsConvertedAsWithoutTheMemo() {
        CpuBackend b = cpu(CpuBackend.Options.defaults());
        int[] s = {2, 16, 8, 16};
        assertTheMemoChangesNothing(b, s, true);
    }

    @Test
    void anXLargerThanTheCapIsNotKept() {
        CpuBackend b = cpu(CpuBackend.Options.defaults());
        int[] s = {33, 64, 32, 16}; // x: 33 x 64 x 32 x 32 floats = 8.25 MiB > KEEP_MAX_BYTES
        assertTrue(33L * 64 * 32 * 32 * 4 > DnnlConv.KEEP_MAX_BYTES);
        assertTheMemoChangesNothing(b, s, false);
    }

    /** A step (bias, dx) with a memo gives the values and the reorder count of the same step without one. */
    private static void assertTheMemoChangesNothing(CpuBackend b, int[] s, boolean anotherX) {
        Step without = step(b, s, true, true, null, anotherX);
        try (Backend.ConvMemo memo = b.newConvMemo()) {
            Step with = step(b, s, true, true, memo, anotherX);
            assertSameValues(without, with);
            assertEquals(without.reorders, with.reorders);
        }
    }

    /** close() frees the engine's primitives (and the layouts a memo names): a later backward must not use them. */
    @Test
    void aMemoFromBeforeTheEngineWasClosedIsNotTaken() {
        CpuBackend b = cpu(CpuBackend.Options.defaults());
        Tensor x = TestTensors.random(b, DType.FLOAT32, Shape.of(2, 16, 8, 8), 41, -1, 1);
        Tensor w = TestTensors.random(b, DType.FLOAT32, Shape.of(16, 16, 3, 3), 42, -0.3, 0.3);
        Tensor dy = TestTensors.random(b, DType.FLOAT32, Shape.of(2, 16, 8, 8), 43, -1, 1);
        Tensor y = b.allocate(DType.FLOAT32, Shape.of(2, 16, 8, 8));
        Tensor dwPlain = b.allocate(DType.FLOAT32, Shape.of(16, 16, 3, 3));
        Tensor dwMemo = b.allocate(DType.FLOAT32, Shape.of(16, 16, 3, 3));
        b.conv2dBackward(x, w, dy, null, dwPlain, null, 1);
        try (Backend.ConvMemo memo = b.newConvMemo()) {
            b.conv2dForward(x, w, null, y, 1, false, memo);
            b.close(); // frees the engine's primitives; it re-creates them when used
            long r0 = b.dnnl().reorderCount();
            b.conv2dBackward(x, w, dy, null, dwMemo, null, 1, memo);
            assertTrue(b.dnnl().reorderCount() - r0 >= 2, "x and dy converted again");
        }
        Approx.assertSameBits(TestTensors.floats(dwPlain), TestTensors.floats(dwMemo), "dw");
    }

    @Test
    void aMemoOfAnotherBackendIsRefused() {
        CpuBackend one = cpu(CpuBackend.Options.defaults());
        CpuBackend two = cpu(CpuBackend.Options.defaults());
        Tensor x = TestTensors.random(two, DType.FLOAT32, Shape.of(1, 4, 4, 4), 1, -1, 1);
        Tensor w = TestTensors.random(two, DType.FLOAT32, Shape.of(4, 4, 3, 3), 2, -1, 1);
        Tensor y = two.allocate(DType.FLOAT32, Shape.of(1, 4, 4, 4));
        try (Backend.ConvMemo memo = one.newConvMemo()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> two.conv2dForward(x, w, null, y, 1, false, memo));
            assertTrue(e.getMessage().contains("not made by this cpu backend"), e.getMessage());
        }
    }
}
