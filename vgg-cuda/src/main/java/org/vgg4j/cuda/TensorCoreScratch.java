package org.vgg4j.cuda;

/**
 * The four {@link Scratch} buffers of the tensor-core path, shared by its convolutions ({@link TensorCoreConv}) and
 * its fully connected GEMMs ({@link TensorCoreGemm}): one pass runs at a time on the compute stream, so the buffers
 * are sized by the largest layer, not the sum of them.
 * <pre>
 *   first    the first converted operand (x of a forward or backward-filter, dy of a backward-data)
 *   second   the second converted operand (dy of a backward-filter)
 *   weights  packed or flipped bf16 weights
 *   output   the f32 result before its conversion back (or its alpha/beta epilogue)
 * </pre>
 */
final class TensorCoreScratch {
    final Scratch first;
    final Scratch second;
    final Scratch weights;
    final Scratch output;

    TensorCoreScratch(DeviceAllocator allocator, Driver driver) {
        first = new Scratch(allocator, driver);
        second = new Scratch(allocator, driver);
        weights = new Scratch(allocator, driver);
        output = new Scratch(allocator, driver);
    }

    /** Hands every buffer back (after the compute stream drained); true when one was held. */
    boolean release() {
        boolean any = false;
        for (Scratch s : new Scratch[] {first, second, weights, output}) {
            any |= s.release();
        }
        return any;
    }

    /** Bytes held by the four buffers. */
    long bytes() {
        return first.bytes() + second.bytes() + weights.bytes() + output.bytes();
    }
}
