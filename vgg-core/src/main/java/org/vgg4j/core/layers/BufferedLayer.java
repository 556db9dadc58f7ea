package org.vgg4j.core.layers;

import java.util.ArrayList;
import java.util.List;

import org.vgg4j.core.backend.Backend;

/**
 * The plumbing every layer with buffers shares, so that a layer itself is only its shapes and its
 * forward/backward pair: the output buffer, the dL/dx buffer (its own, or the network's {@link GradientArena}
 * once {@link #shareGradientBuffers} is called), any further buffers backward needs ({@link #slot}), whether dL/dx
 * is wanted at all, and {@link #release} of all of them.
 */
abstract class BufferedLayer implements Layer {
    protected final Backend backend;
    protected final Slot output;     // y
    protected final Slot inputGrad;  // dL/dx, valid until the layer before has consumed it
    private final List<Slot> slots = new ArrayList<>(); // further buffers (masks, statistics), in creation order
    private boolean needsInputGradient = true;

    protected BufferedLayer(Backend backend) {
        this.backend = backend;
        this.output = new Slot(backend);
        this.inputGrad = new Slot(backend);
    }

    /** A further buffer of this layer, released with it. */
    protected final Slot slot() {
        Slot s = new Slot(backend);
        slots.add(s);
        return s;
    }

    /** False for the first layer of a network; only layers that can skip computing dL/dx ask. */
    protected final boolean needsInputGradient() {
        return needsInputGradient;
    }

    @Override
    public final void setNeedsInputGradient(boolean needed) {
        needsInputGradient = needed;
    }

    @Override
    public final void shareGradientBuffers(GradientArena arena) {
        inputGrad.shareWith(arena);
    }

    @Override
    public final void shareOutputBuffers(GradientArena arena) {
        output.shareWith(arena);
    }

    /** Frees the output, the further buffers and dL/dx; a layer that keeps tensors for backward also drops them. */
    @Override
    public void release() {
        output.release();
        for (Slot s : slots) {
            s.release();
        }
        inputGrad.release();
    }
}
