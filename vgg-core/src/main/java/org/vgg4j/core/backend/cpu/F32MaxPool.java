package org.vgg4j.core.backend.cpu;

import java.nio.IntBuffer;
import java.util.Arrays;

/**
 * Float32 fast path of the {@code cpu} backend's 2x2/2 max pooling, forward and backward, for {@link BufLoops}. x and
 * dx are {@code planes} planes (H, W), y and dy planes (H/2, W/2), at the given offsets of {@link CpuStorage#bits}
 * views: the float32 memory read and written as raw int bits, so values are moved bit for bit and the order keys
 * are computed in int loops, which the JIT vectorises (it does not vectorise {@code Float.floatToRawIntBits}).
 * With H or W odd the last row or column is ignored (the backward writes 0 there), as in the reference.
 *
 * <p>Pieces: a piece is as many whole planes as fit in {@link #PIECE} elements (at least one), or, for a plane
 * larger than PIECE, a run of as many row pairs as fit in PIECE (at least one; the last run of a plane of odd H also
 * holds the ignored last row). Each piece moves in one bulk copy per tensor each way, so the small planes of the
 * last layers (8x8 down to 2x2) do not pay a copy per row pair. In a piece, the order keys of all its elements are
 * computed in one loop; then each window is resolved on its four keys (scalar, written without jumps). Pieces are
 * split over threads ({@link Parallel}); every output is computed by one thread with the same arithmetic, so
 * results are the same bits whatever the thread count.
 */
final class F32MaxPool {
    /**
     * Elements of x per piece, at most (but a run holds at least one pair of rows, and the last run of a plane of odd
     * H its last row too): enough that a bulk copy's fixed cost is small against the piece's work, few enough that
     * its three arrays stay in the L1 cache and that the next piece's load follows the last one closely.
     */
    static final int PIECE = 1024;

    /** At least this many elements of x per thread: below that a hand-over to a worker costs more than it saves. */
    private static final int GRAIN_ELEMENTS = 1 << 15;

    private final int planes;
    private final int h;
    private final int w;
    private final int p;          // H/2 rows of windows
    private final int q;          // W/2 columns of windows
    private final int group;      // whole planes per piece; 0 when planes are split into runs of row pairs
    private final int pairs;      // row pairs per run (planes larger than PIECE)
    private final int runs;       // runs per plane (planes larger than PIECE)
    private final int pieces;
    private final int longest;    // elements of x in the largest piece

    private F32MaxPool(int planes, int h, int w) {
        this.planes = planes;
        this.h = h;
        this.w = w;
        this.p = h / 2;
        this.q = w / 2;
        long hw = (long) h * w;
        if (hw <= PIECE) {
            group = (int) (PIECE / Math.max(1, hw));
            pairs = 0;
            runs = 0;
            pieces = (planes + group - 1) / group;
            longest = (int) (Math.min(group, planes) * hw);
        } else {
            group = 0;
            pairs = Math.max(1, PIECE / (2 * w));
            runs = Math.max(1, (p + pairs - 1) / pairs); // H = 1: one run of the single (ignored) row
            pieces = planes * runs;
            longest = (2 * Math.min(pairs, p) + h % 2) * w;
        }
    }

    /**
     * y = the element {@link #firstMax} picks in each 2x2 window of x, bit for bit (a NaN in first place, -0 before
     * +0), over at most {@code threads} threads.
     */
    static void forward(IntBuffer x, int xo, IntBuffer y, int yo, int planes, int h, int w, int threads) {
        int q = w / 2;
        new F32MaxPool(planes, h, w).run(threads, (piece, xs, keys, out) -> {
            piece.x(x, xo).get(xs, 0, piece.len);
            orderKeys(xs, keys, piece.len);
            int o = 0;
            int rowsW = piece.rows * w;
            for (int k = 0; k < piece.planes; k++) {
                for (int i = 0; i < piece.pairs; i++) {
                    int a = k * rowsW + 2 * i * w;
                    for (int j = 0; j < q; j++) {
                        int at = a + 2 * j;
                        out[o + j] = xs[at + firstMax(keys, at, w)];
                    }
                    o += q;
                }
            }
            piece.y(y, yo).put(out, 0, o);
        });
    }

    /**
     * Gradient of {@link #forward}: dx is 0 except at the element {@link #firstMax} picks in each window, which takes
     * that window's dy. Like the reference, the winner is found again from x (y is not read), so a NaN or a signed
     * zero picks the element the forward took. With {@code relu}, x is a ReLU's output and that ReLU's backward
     * comes in the same pass: the winner takes dy only where it is &gt; 0 ({@link F32Loops#positiveMask} of its key,
     * which is its bits for every number &gt;= 0, and negative for a NaN).
     */
    static void backward(IntBuffer x, int xo, IntBuffer dy, int go, IntBuffer dx, int dOff, int planes, int h, int w,
                         int threads, boolean relu) {
        int all = -1; // without relu every window's dy passes
        int q = w / 2;
        new F32MaxPool(planes, h, w).run(threads, (piece, keys, gs, out) -> {
            piece.x(x, xo).get(keys, 0, piece.len);
            orderKeys(keys, keys, piece.len);
            piece.y(dy, go).get(gs, 0, piece.yLen);
            Arrays.fill(out, 0, piece.len, 0);
            int o = 0;
            int rowsW = piece.rows * w;
            for (int k = 0; k < piece.planes; k++) {
                for (int i = 0; i < piece.pairs; i++) {
                    int a = k * rowsW + 2 * i * w;
                    for (int j = 0; j < q; j++) {
                        int at = a + 2 * j + firstMax(keys, a + 2 * j, w);
                        // with relu, dy passes where the maximum is > 0: its key in [1, 0x7F800000] as its bits are
                        out[at] = gs[o + j] & (relu ? F32Loops.positiveMask(keys[at]) : all);
                    }
                    o += q;
                }
            }
            piece.x(dx, dOff).put(out, 0, piece.len);
        });
    }

    /** Work on one piece with this thread's three arrays (each at least as long as the piece). */
    private interface Body {
        void run(Piece piece, int[] a, int[] b, int[] c);
    }

    /** Runs body on every piece, the pieces split over at most {@code threads} threads. */
    private void run(int threads, Body body) {
        int grain = Math.max(1, GRAIN_ELEMENTS / Math.max(1, longest));
        Parallel.forRange(pieces, grain, threads, (from, to) -> {
            int[][] s = F32Loops.intScratch(longest);
            Piece piece = new Piece();
            for (int k = from; k < to; k++) {
                locate(k, piece);
                body.run(piece, s[0], s[1], s[2]);
            }
        });
    }

    /**
     * Where piece {@code k} lies: its first plane, its planes, its first row pair and its row pairs per plane, its
     * rows per plane (H for whole planes, twice the pairs for a run, plus the ignored last row of odd H in the
     * plane's last run), and so its elements of x (and dx) from {@code start}, and of y (and dy) from {@code yStart}.
     */
    private void locate(int k, Piece piece) {
        int plane;
        int firstPair;
        if (group > 0) {
            plane = k * group;
            piece.planes = Math.min(group, planes - plane);
            firstPair = 0;
            piece.pairs = p;
            piece.rows = h;
        } else {
            plane = k / runs;
            int run = k % runs;
            piece.planes = 1;
            firstPair = run * pairs;
            piece.pairs = Math.min(pairs, p - firstPair);
            piece.rows = 2 * piece.pairs + (run == runs - 1 ? h % 2 : 0);
        }
        piece.start = (plane * h + 2 * firstPair) * w;
        piece.len = piece.planes * piece.rows * w;
        piece.yStart = (plane * p + firstPair) * q;
        piece.yLen = piece.planes * piece.pairs * q;
    }

    /** One piece, see {@link #locate}; a thread reuses one for all its pieces. */
    private static final class Piece {
        int planes;
        int pairs;
        int rows;
        int start;
        int len;
        int yStart;
        int yLen;

        /** The piece's elements of an x-shaped tensor (x or dx) at offset {@code off} of its buffer. */
        IntBuffer x(IntBuffer b, int off) {
            return F32Loops.at(b, off + start, len);
        }

        /** The piece's elements of a y-shaped tensor (y or dy) at offset {@code off} of its buffer. */
        IntBuffer y(IntBuffer b, int off) {
            return F32Loops.at(b, off + yStart, yLen);
        }
    }

    /**
     * keys[i] = an int ordered as the float with bits {@code bits[i]} is by {@code >}: -0 and +0 both 0, negatives
     * -magnitude, -infinity lowest and +infinity highest of the numbers, and a NaN {@link Integer#MIN_VALUE} (below
     * every number: a NaN beats nothing, except in first place, which {@link #firstMax} handles). Only int
     * arithmetic without selects, so that the loop vectorises; keys may be bits.
     */
    static void orderKeys(int[] bits, int[] keys, int n) {
        for (int i = 0; i < n; i++) {
            int b = bits[i];
            int magnitude = b & 0x7FFFFFFF;
            int sign = b >> 31;                           // 0 or -1
            int nan = (0x7F800000 - magnitude) >> 31;     // -1 for a NaN (magnitude above infinity's), else 0
            keys[i] = (((magnitude ^ sign) - sign) & ~nan) | (nan & Integer.MIN_VALUE);
        }
    }

    /**
     * Where the maximum of the 2x2 window at {@code keys[a]} (rows {@code w} apart) lies, as an offset from a: 0, 1,
     * w or w + 1. The reference's rule: the first element in row-major order, replaced only by a later one that is
     * strictly greater; so ties go to the first (-0 and +0 tie), and a NaN wins only in first place (no comparison
     * with a NaN is true): the first key, when a NaN's, becomes {@link Integer#MAX_VALUE}. Computed as the same
     * rule in each row's pair, then the bottom pair's pick only when its maximum is strictly greater than the top
     * pair's (the sequential rule then ends in the bottom pair, at its first maximum), with int maxima and int
     * selects: no jumps, which the max's random position would mispredict.
     */
    static int firstMax(int[] keys, int a, int w) {
        int k0 = keys[a];
        int z = k0 ^ Integer.MIN_VALUE;               // 0 only for a NaN's key
        k0 ^= ~((z | -z) >> 31);                      // a NaN's MIN_VALUE flips to MAX_VALUE, any other key stays
        int k1 = keys[a + 1];
        int k2 = keys[a + w];
        int k3 = keys[a + w + 1];
        int top = k1 > k0 ? 1 : 0;
        int bottom = k3 > k2 ? w + 1 : w;
        return Math.max(k2, k3) > Math.max(k0, k1) ? bottom : top;
    }
}
