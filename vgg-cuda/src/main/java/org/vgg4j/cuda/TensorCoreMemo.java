package org.vgg4j.cuda;

import org.vgg4j.core.backend.Backend;

/**
 * The {@link Backend.ConvMemo} of {@link CudaBackend}'s tensor-core path (made by {@link CudaBackend#newConvMemo}
 * only where that path runs): x of its layer's last forward as that forward converted it for the kernels -- NHWC
 * bf16, C padded to Cp (N,H,W,Cp) -- in a device buffer of its own, which the layer's backward-filter reads instead
 * of converting x again ({@link TensorCoreConv#backward}).
 *
 * <p>It holds one x, named by its device address and shape (N,C,H,W): each forward replaces it (the last forward
 * wins), and a backward with another x converts that x as without a memo. The SPI's caller guarantees that x is not
 * written between the forward and the backward. A forward whose backward-filter runs on v1 keeps nothing. The
 * buffer comes from the backend's allocator, so it counts in {@link CudaBackend#deviceBytesInUse} and
 * {@link CudaBackend#peakDeviceBytes}; {@link #close} hands it back, and so do the backend's close and its
 * out-of-memory retry (the memo then holds nothing until the next forward). Is not: shared between layers,
 * usable after {@link #close}.
 */
final class TensorCoreMemo implements Backend.ConvMemo {
    /** The forward's x: its device address and shape (N,C,H,W). */
    record Key(long address, int n, int c, int h, int w) {
    }

    private final CudaBackend owner;
    private final Scratch xh;
    /** the x whose conversion xh holds; null: nothing */
    private Key held;
    private boolean closed;

    TensorCoreMemo(CudaBackend owner, Scratch xh) {
        this.owner = owner;
        this.xh = xh;
    }

    CudaBackend owner() {
        return owner;
    }

    boolean closed() {
        return closed;
    }

    /** The buffer a forward converts x into: it holds nothing until {@link #keep}. */
    Scratch forForward() {
        held = null;
        return xh;
    }

    /** After a forward converted x ({@code key}) into {@link #forForward}'s buffer. */
    void keep(Key key) {
        held = key;
    }

    /** Forgets what it holds (a forward that keeps nothing); keeps the buffer. */
    void forget() {
        held = null;
    }

    /** The device address of x converted, when this memo holds {@code key}'s; else 0. */
    long converted(Key key) {
        return key.equals(held) ? xh.pointer() : 0;
    }

    /** Bytes of the buffer (0 before the first forward that keeps x, and after {@link #release}). */
    long bytes() {
        return xh.bytes();
    }

    /** Hands the buffer back to the allocator (after the compute stream drained); false when none was held. */
    boolean release() {
        held = null;
        return xh.release();
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            release();
            owner.closed(this);
        }
    }

    @Override
    public String toString() {
        return "tensor-core convolution memo of " + owner.name() + (closed ? " (closed)" : "");
    }
}
