package org.vgg4j.cuda;

import java.util.Arrays;
import org.vgg4j.cuda.api.CudaException;

/**
 * The arguments of one kernel launch, in order, each in one 8-byte slot with its type: the layout of
 * cuLaunchKernel's kernelParams (a pointer per argument to its value).
 *
 * <p>Is: what both drivers understand: JCuda wraps each slot in a typed Pointer, the emulator passes the slots
 * themselves (the value sits in the low bytes of its slot, little-endian). Both drivers {@link #check} every launch
 * against the kernel's parameter widths: JCuda passes 4 bytes for an int, so an int where the kernel takes a
 * {@code long long} would read garbage on a GPU while the emulator's 8-byte slots hide it.
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

    /**
     * One letter per argument, by the width the kernel sees: 'q' an 8-byte integer or a device pointer (PTX .u64),
     * 'i' a 4-byte int (.u32/.s32), 'f' a float (.f32), 'd' a double (.f64).
     */
    public String signature() {
        StringBuilder b = new StringBuilder(count);
        for (int i = 0; i < count; i++) {
            b.append(code(kinds[i]));
        }
        return b.toString();
    }

    static char code(Kind k) {
        return switch (k) {
            case PTR, LONG -> 'q';
            case INT -> 'i';
            case FLOAT -> 'f';
            case DOUBLE -> 'd';
        };
    }

    /** Throws {@link CudaException} naming the first argument whose width or type differs from {@code f}'s. */
    void check(Driver.Function f) {
        String want = f.signature();
        String have = signature();
        if (want == null || want.equals(have)) {
            return;
        }
        if (want.length() != have.length()) {
            throw new CudaException("launch of " + f.name() + " with " + have.length() + " arguments (" + have
                    + "); the kernel takes " + want.length() + " (" + want + ")");
        }
        for (int i = 0; i < have.length(); i++) {
            if (want.charAt(i) != have.charAt(i)) {
                throw new CudaException("launch of " + f.name() + ": argument " + i + " is " + describe(have.charAt(i))
                        + " but the kernel takes " + describe(want.charAt(i)) + " (signature " + want + ", given "
                        + have + ")");
            }
        }
    }

    private static String describe(char code) {
        return switch (code) {
            case 'q' -> "an 8-byte integer or pointer";
            case 'i' -> "a 4-byte int";
            case 'f' -> "a float";
            case 'd' -> "a double";
            default -> "a parameter of unsupported type '" + code + "'";
        };
    }

    /** The raw slots, as the emulator takes them. */
    long[] slots() {
        return Arrays.copyOf(slots, count);
    }
}
