package org.vgg4j.cuda.check;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.CudaBackend;
import org.vgg4j.cuda.MathMode;
import org.vgg4j.cuda.PtxSignatures;
import org.vgg4j.cuda.RingAllReduce;

/**
 * Stage c of scripts/gpu-check.sh, the program compute-sanitizer runs: every kernel launched at least once, on
 * small odd shapes (nothing a multiple of a tile), through the backend's own ops in all three math modes -- both
 * split-K paths, the sliced and one-block-per-channel reductions, BF16's tensor-core convolutions (the ReLU fused
 * into the forward; with a convolution memo, x kept from forward to backward) and fully connected GEMMs (split-K
 * included) -- and the ring all-reduce's kernels on two replicas with each wire format. It prints which kernels ran
 * and exits 1 if a kernel of the built PTX was never launched (the sweep must grow with the kernels). Is not: a
 * parity test (the suite is); results are discarded.
 */
public final class KernelSweep {
    private KernelSweep() {
    }

    public static void main(String[] args) throws IOException {
        boolean emulated = Devices.emulated(args);
        Set<String> launched = new TreeSet<>();
        for (MathMode math : MathMode.values()) {
            // BF16 twice: on the tensor-core kernels (every conv shape now) and on the v1 kernels they replace
            for (boolean tensorCores : math == MathMode.BF16 ? new boolean[] {true, false} : new boolean[] {false}) {
                try (CudaBackend be = counted(Devices.open(emulated, 0, math), launched, tensorCores)) {
                    convAndGemm(be);
                    if (math == MathMode.FP32) {
                        everythingElse(be);
                    }
                    be.synchronize();
                }
            }
        }
        ring(emulated, launched);
        Set<String> built = builtKernels();
        Set<String> missing = new TreeSet<>(built);
        missing.removeAll(launched);
        System.out.println("launched " + launched.size() + " kernels: " + launched);
        if (built.isEmpty()) {
            System.out.println("SWEEP OK (no PTX in this build to compare with: emulator library only)");
            return;
        }
        if (!missing.isEmpty()) {
            System.out.println("SWEEP INCOMPLETE: never launched: " + missing);
            System.exit(1);
        }
        System.out.println("SWEEP OK: every one of the " + built.size() + " kernels in the built PTX was launched");
    }

    private static CudaBackend counted(CudaBackend be, Set<String> launched) {
        return counted(be, launched, false);
    }

    private static CudaBackend counted(CudaBackend be, Set<String> launched, boolean tensorCores) {
        // a second backend over the same driver, counting: the first is only a holder for the driver
        return new CudaBackend(be.name(), new CountingDriver(be.driver(), launched), be.math(), tensorCores);
    }

    private static void convAndGemm(Backend b) {
        // conv 3x3 pad 1, N=2 C=3 H=W=65 -> K=5: 27-deep filter, N*P*Q = 8450: backward-filter splits K
        Tensor x = rnd(b, Shape.of(2, 3, 65, 65), 1);
        Tensor w = rnd(b, Shape.of(5, 3, 3, 3), 2);
        Tensor bias = rnd(b, Shape.of(5), 3);
        Tensor y = b.allocate(DType.FLOAT32, Shape.of(2, 5, 65, 65));
        b.conv2dForward(x, w, bias, y, 1);
        Tensor dx = b.allocate(DType.FLOAT32, Shape.of(2, 3, 65, 65));
        b.conv2dBackwardData(y, w, dx, 1);
        Tensor dw = b.allocate(DType.FLOAT32, Shape.of(5, 3, 3, 3));
        Tensor db = b.allocate(DType.FLOAT32, Shape.of(5));
        b.conv2dBackwardFilter(x, y, dw, db, 1);
        // conv 1x1 with many channels: no split (enough tiles on 4 emulated SMs), odd sizes
        Tensor x2 = rnd(b, Shape.of(3, 67, 7, 9), 4);
        Tensor w2 = rnd(b, Shape.of(70, 67, 1, 1), 5);
        Tensor y2 = b.allocate(DType.FLOAT32, Shape.of(3, 70, 7, 9));
        b.conv2dForward(x2, w2, null, y2, 0);
        Tensor dw2 = b.allocate(DType.FLOAT32, Shape.of(70, 67, 1, 1));
        b.conv2dBackwardFilter(x2, y2, dw2, null, 0);
        // channels that are multiples of 8: in BF16 every pass on the tensor-core kernels of conv_tc.cu (odd H, W)
        Tensor x3 = rnd(b, Shape.of(2, 16, 9, 7), 30);
        Tensor w3 = rnd(b, Shape.of(24, 16, 3, 3), 31);
        Tensor y3 = b.allocate(DType.FLOAT32, Shape.of(2, 24, 9, 7));
        b.conv2dForward(x3, w3, rnd(b, Shape.of(24), 32), y3, 1);
        b.conv2dBackwardData(y3, w3, b.allocate(DType.FLOAT32, Shape.of(2, 16, 9, 7)), 1);
        b.conv2dBackwardFilter(x3, y3, b.allocate(DType.FLOAT32, Shape.of(24, 16, 3, 3)), null, 1);
        // its forward with the ReLU (BF16 on the tensor cores: conv_tc_fwd_bf16's bias + ReLU epilogue; else relu_fwd)
        b.conv2dForwardRelu(x3, w3, rnd(b, Shape.of(24), 35), y3, 1);
        // the same layer through a convolution memo (BF16 on the tensor cores keeps x converted; elsewhere null)
        try (Backend.ConvMemo memo = b.newConvMemo()) {
            b.conv2dForward(x3, w3, null, y3, 1, true, memo);
            b.conv2dBackward(x3, w3, y3, b.allocate(DType.FLOAT32, Shape.of(2, 16, 9, 7)),
                    b.allocate(DType.FLOAT32, Shape.of(24, 16, 3, 3)), null, 1, memo);
        }
        // a Linear layer's three GEMMs, 16 x 1000 -> 136: in BF16 on the tensor cores, forward and backward-data
        // split into Kd chunks (2 output tiles: too few for the emulator's 4 nominal SMs and for a GPU's)
        Tensor fx = rnd(b, Shape.of(16, 1000), 33);
        Tensor fw = rnd(b, Shape.of(136, 1000), 34);
        Tensor fy = b.allocate(DType.FLOAT32, Shape.of(16, 136));
        b.gemm(false, true, 1.0, fx, fw, 0.0, fy);
        b.gemm(false, false, 1.0, fy, fw, 0.0, b.allocate(DType.FLOAT32, Shape.of(16, 1000)));
        b.gemm(true, false, 1.0, fy, fx, 1.0, b.allocate(DType.FLOAT32, Shape.of(136, 1000)));
        // GEMM: plain, transposed, and split-K (3 x 3001 . 3001 x 5)
        Tensor a = rnd(b, Shape.of(67, 45), 6);
        Tensor bb = rnd(b, Shape.of(45, 71), 7);
        Tensor c = b.allocate(DType.FLOAT32, Shape.of(67, 71));
        b.gemm(false, false, 1.0, a, bb, 0.0, c);
        b.gemm(true, true, 0.5, bb, a, 1.0, b.allocate(DType.FLOAT32, Shape.of(71, 67)));
        Tensor deepA = rnd(b, Shape.of(3, 3001), 8);
        Tensor deepB = rnd(b, Shape.of(3001, 5), 9);
        b.gemm(false, false, 1.0, deepA, deepB, 0.5, b.allocate(DType.FLOAT32, Shape.of(3, 5)));
    }

    private static void everythingElse(Backend b) {
        Shape s = Shape.of(3, 5, 7, 9);
        Tensor x = rnd(b, s, 10);
        Tensor y = b.allocate(DType.FLOAT32, s);
        Tensor dy = rnd(b, s, 11);
        Tensor dx = b.allocate(DType.FLOAT32, s);
        b.copy(x, y);
        b.reluForward(x, y);
        b.reluBackward(y, dy, dx);
        b.multiply(x, dy, y);
        b.axpy(0.5, x, y);
        b.scale(y, 0.25);
        Tensor bias = rnd(b, Shape.of(5), 12);
        b.addBias(y, bias);
        b.biasBackward(dy, b.allocate(DType.FLOAT32, Shape.of(5)));
        Tensor mask = b.allocate(DType.FLOAT32, s);
        b.dropoutForward(x, y, mask, 0.5, 7);
        Tensor pooled = b.allocate(DType.FLOAT32, Shape.of(3, 5, 3, 4));
        b.maxPool2x2Forward(x, pooled);
        b.maxPool2x2Backward(x, pooled, rnd(b, Shape.of(3, 5, 3, 4), 13), dx);
        Tensor scale = b.allocate(DType.FLOAT32, s);
        b.lrnForward(x, y, scale, 5, 1e-4, 0.75, 2.0);
        b.lrnBackward(x, y, scale, dy, dx, 5, 1e-4, 0.75, 2.0);
        b.sumOfSquares(x);
        Tensor logits = rnd(b, Shape.of(3, 1003), 14);
        b.softmax(logits, b.allocate(DType.FLOAT32, Shape.of(3, 1003)));
        b.softmaxCrossEntropy(logits, new int[] {0, 500, 1002}, b.allocate(DType.FLOAT32, Shape.of(3, 1003)));
        Tensor param = rnd(b, Shape.of(1001), 15);
        b.sgdStep(param, rnd(b, Shape.of(1001), 16), b.allocate(DType.FLOAT32, Shape.of(1001)), 0.01, 0.9, 5e-4,
                1001);
        // batch norm: one block per channel (3,5,7,9), and sliced (few channels, 8450 values each)
        batchNorm(b, s);
        batchNorm(b, Shape.of(2, 3, 65, 65));
        // bias gradient sliced too
        b.biasBackward(rnd(b, Shape.of(2, 3, 65, 65), 17), b.allocate(DType.FLOAT32, Shape.of(3)));
    }

    private static void batchNorm(Backend b, Shape s) {
        int c = s.dim(1);
        Tensor x = rnd(b, s, 20);
        Tensor y = b.allocate(DType.FLOAT32, s);
        Tensor gamma = rnd(b, Shape.of(c), 21);
        Tensor beta = rnd(b, Shape.of(c), 22);
        Tensor runM = b.allocate(DType.FLOAT32, Shape.of(c));
        Tensor runV = b.allocate(DType.FLOAT32, Shape.of(c));
        b.fill(runV, 1.0);
        Tensor sm = b.allocate(DType.FLOAT32, Shape.of(c));
        Tensor si = b.allocate(DType.FLOAT32, Shape.of(c));
        b.batchNormForwardTraining(x, gamma, beta, y, runM, runV, sm, si, 0.1, 1e-5);
        b.batchNormForwardInference(x, gamma, beta, y, runM, runV, 1e-5);
        b.batchNormBackward(x, rnd(b, s, 23), gamma, sm, si, b.allocate(DType.FLOAT32, s),
                b.allocate(DType.FLOAT32, Shape.of(c)), b.allocate(DType.FLOAT32, Shape.of(c)));
    }

    /** Two replicas, 1003 elements in buckets of 300, through each wire format. */
    private static void ring(boolean emulated, Set<String> launched) {
        for (GradPrecision p : GradPrecision.values()) {
            List<CudaBackend> reps = new ArrayList<>();
            try (RingAllReduce ar = new RingAllReduce(new RingAllReduce.Options(p, 300, false, false))) {
                List<Tensor> bufs = new ArrayList<>();
                for (int r = 0; r < 2; r++) {
                    CudaBackend be = counted(Devices.open(emulated, r, MathMode.FP32), launched);
                    reps.add(be);
                    bufs.add(rnd(be, Shape.of(1003), 30 + r));
                }
                ar.average(bufs);
                for (CudaBackend be : reps) {
                    be.synchronize();
                }
            } finally {
                reps.forEach(CudaBackend::close);
            }
        }
    }

    /** The kernels of every module in the PTX this build made (empty when it was built without nvcc). */
    static Set<String> builtKernels() throws IOException {
        Set<String> out = new TreeSet<>();
        String manifest = resource("MANIFEST");
        if (manifest == null) {
            return out;
        }
        for (String line : manifest.split("\n")) {
            if (line.endsWith(".ptx")) {
                out.addAll(PtxSignatures.parse(resource(line)).keySet());
            }
        }
        return out;
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = KernelSweep.class.getResourceAsStream("/org/vgg4j/cuda/kernels/" + name)) {
            return in == null ? null : new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    static Tensor rnd(Backend b, Shape s, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[Math.toIntExact(s.size())];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextDouble() * 2 - 1);
        }
        Tensor t = b.allocate(DType.FLOAT32, s);
        b.copyIn(v, 0, t);
        return t;
    }
}
