package org.vgg4j.core.bench;

import java.util.Locale;
import java.util.SplittableRandom;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Benchmark (NOT a test): the convolution layers of VGG-16 at 224x224, batch 4, float32, through the {@code cpu}
 * backend, forward and backward (filter then data, as Conv2d calls them), in GFLOP/s (W3: at 32x32, batch 64) (2 FLOPs per MAC; backward
 * counts both products). Which engine runs is chosen as users choose it:
 * <pre>
 *   java -cp ... [-Dvgg4j.cpu.conv=auto|dnnl|nd4j|gemm] [-Dvgg4j.cpu.dnnlBwdWeights=auto|direct] \
 *        [-Dorg.bytedeco.javacpp.platform.extension=...] \
 *        org.vgg4j.core.bench.ConvEngineBench [reps=3] [W1|W3]
 * </pre>
 * Legend: N batch, C in, K out, H = W side. Output: one "CONV ..." line per layer shape, best of reps.
 */
public final class ConvEngineBench {
    private ConvEngineBench() {
    }

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        boolean small = args.length > 1 && args[1].equals("W3");
        Backend be = Backends.create("cpu");
        int n = small ? 64 : 4;
        // (C, K, side): every distinct conv shape of VGG-16 at 224 (W1), or at 32 with batch 64 (W3)
        int[][] layers = small
                ? new int[][] {{3, 64, 32}, {64, 64, 32}, {64, 128, 16}, {128, 128, 16}, {128, 256, 8}, {256, 256, 8},
                    {256, 512, 4}, {512, 512, 4}, {512, 512, 2}}
                : new int[][] {{3, 64, 224}, {64, 64, 224}, {64, 128, 112}, {128, 128, 112}, {128, 256, 56},
                    {256, 256, 56}, {256, 512, 28}, {512, 512, 28}, {512, 512, 14}};
        String engine = be instanceof org.vgg4j.core.backend.cpu.CpuBackend cb ? cb.convolutionEngine() : be.name();
        for (int[] l : layers) {
            int c = l[0];
            int k = l[1];
            int side = l[2];
            Tensor x = random(be, Shape.of(n, c, side, side), 1);
            Tensor w = random(be, Shape.of(k, c, 3, 3), 2);
            Tensor b = random(be, Shape.of(k), 3);
            Tensor y = be.allocate(DType.FLOAT32, Shape.of(n, k, side, side));
            Tensor dy = random(be, Shape.of(n, k, side, side), 4);
            Tensor dx = be.allocate(DType.FLOAT32, Shape.of(n, c, side, side));
            Tensor dw = be.allocate(DType.FLOAT32, Shape.of(k, c, 3, 3));
            Tensor db = be.allocate(DType.FLOAT32, Shape.of(k));
            double flop = 2.0 * n * k * c * 9 * side * side;
            double fwd = Double.MAX_VALUE;
            double bwd = Double.MAX_VALUE;
            for (int r = 0; r < reps; r++) {
                long t = System.nanoTime();
                be.conv2dForward(x, w, b, y, 1);
                be.synchronize();
                fwd = Math.min(fwd, (System.nanoTime() - t) / 1e9);
                t = System.nanoTime();
                be.conv2dBackwardFilter(x, dy, dw, db, 1);
                if (c > 3) {
                    be.conv2dBackwardData(dy, w, dx, 1);
                }
                be.synchronize();
                bwd = Math.min(bwd, (System.nanoTime() - t) / 1e9);
            }
            System.out.printf(Locale.ROOT, "CONV engine=%s N%d %d->%d %dx%d fwd %.1f GFLOP/s (%.3f s) bwd %.1f GFLOP/s (%.3f s)%s%n",
                    engine, n, c, k, side, side, flop / fwd / 1e9, fwd, (c > 3 ? 2 : 1) * flop / bwd / 1e9, bwd,
                    c > 3 ? "" : " (filter only)");
            for (Tensor t : new Tensor[] {x, w, b, y, dy, dx, dw, db}) {
                be.free(t);
            }
        }
    }

    private static Tensor random(Backend be, Shape s, long seed) {
        Tensor t = be.allocate(DType.FLOAT32, s);
        float[] v = new float[Math.toIntExact(s.size())];
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rnd.nextDouble() - 0.5);
        }
        be.copyIn(v, 0, t);
        return t;
    }
}
