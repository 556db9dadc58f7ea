package org.vgg4j.cuda;

import java.util.Arrays;

/**
 * The arguments of one kernel launch, in order, each in one 8-byte slot with its type: the layout of
 * cuLaunchKernel's kernelParams (a pointer per argument to its value).
 *
 * <p>Is: what both drivers understand: JCuda wraps each slot in a typed Pointer, the emulator passes the slots
 * themselves (the value sits in the low bytes of its slot, little-endian). Is not: checked against the kernel's
 * signature; the backend is the only caller and mirrors each kernel's parameter list.
 */
public final class KernelArgs {
    /** Type of a slot: a device pointer, a 32-bit int, a float, a double or a 64-bit integer. */
    public enum Kind { PTR, INT, FLOAT, DOUBLE, LONG }

    private long[] slots = new long[12];
    private Kind[] kinds = new Kind[12];
    private int count;

    public static KernelArgs of() {
        return new KernelArgs();
    }

    private KernelArgs add(Kind kind, long bits) {
        if (count == slots.length) {
            slots = Arrays.copyOf(slots, count * 2);
            kinds = Arrays.copyOf(kinds, count * 2);
        }
        slots[count] = bits;
        kinds[count++] = kind;
        return this;
    }

    public KernelArgs ptr(long devPtr) {
        return add(Kind.PTR, devPtr);
    }

    public KernelArgs i32(int v) {
        return add(Kind.INT, v & 0xffffffffL);
    }

    public KernelArgs f32(float v) {
        return add(Kind.FLOAT, Float.floatToRawIntBits(v) & 0xffffffffL);
    }

    public KernelArgs f64(double v) {
        return add(Kind.DOUBLE, Double.doubleToRawLongBits(v));
    }

    public KernelArgs i64(long v) {
        return add(Kind.LONG, v);
    }

    public int count() {
        return count;
    }

    public long slot(int i) {
        return slots[i];
    }

    public Kind kind(int i) {
        return kinds[i];
    }

    /** The raw slots, as the emulator takes them. */
    long[] slots() {
        return Arrays.copyOf(slots, count);
    }
}
