package org.vgg4j.cuda.check;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

import org.vgg4j.core.io.Checkpoint;
import org.vgg4j.core.io.Safetensors;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.CudaBackend;
import org.vgg4j.cuda.MathMode;

/**
 * Stage d of scripts/gpu-check.sh: VGG-16 on our kernels (FP32) against PyTorch on the same card. The file comes
 * from scripts/torch_parity.py: torchvision vgg16's state dict (torchvision names, seeded weights), the input, the
 * labels, PyTorch's logits and the gradient of every parameter after one training-mode forward/backward (dropout
 * off, TF32 off). We load the weights, run the same step, and require for the logits and every gradient a max
 * absolute error at most {@code --tol} (default 1e-4) of the tensor's largest element, and the same top-5 classes
 * for every sample. Prints one line per tensor and {@code PARITY OK} or {@code PARITY FAILED} (exit 1).
 * <pre>  TorchParity --in FILE [--tol 1e-4]</pre>
 */
public final class TorchParity {
    private TorchParity() {
    }

    public static void main(String[] args) throws IOException {
        Path in = Path.of(Devices.arg(args, "--in", "parity.safetensors"));
        double tol = Double.parseDouble(Devices.arg(args, "--tol", "1e-4"));
        boolean ok = true;
        try (Safetensors.Reader file = Safetensors.open(in);
             CudaBackend be = Devices.open(Devices.emulated(args), 0, MathMode.FP32)) {
            long[] inShape = file.info("input").shape();
            int n = (int) inShape[0];
            int side = (int) inShape[2];
            VggSpec spec = new VggSpec(VggConfig.D, false, 1000, side, 1.0, 4096, 0.0, 0);
            try (Network net = Vgg.build(be, DType.FLOAT32, spec)) {
                Checkpoint.load(net, file, new Checkpoint.Options(false, k -> k.equals("input") || k.equals("labels")
                        || k.equals("logits") || k.startsWith("grad.")));
                Tensor x = be.allocate(DType.FLOAT32, Shape.of(n, 3, side, side));
                be.copyIn(floats(file, "input"), 0, x);
                int[] labels = Arrays.stream(file.readLongs("labels")).mapToInt(Math::toIntExact).toArray();
                net.params().zeroGrads();
                Tensor logits = net.forward(x, true);
                float[] ours = host(logits);
                float[] theirs = floats(file, "logits");
                ok &= close("logits", theirs, ours, tol);
                int same = 0;
                for (int i = 0; i < n; i++) {
                    same += Arrays.equals(top5(theirs, i, 1000), top5(ours, i, 1000)) ? 1 : 0;
                }
                System.out.println("top-5 classes equal for " + same + " of " + n + " samples");
                ok &= same == n;
                SoftmaxCrossEntropy ce = new SoftmaxCrossEntropy(be);
                ce.forwardBackward(logits, labels);
                net.backward(ce.gradient());
                for (ParamStore.Entry e : net.params().entries()) {
                    if (e.grad() != null) {
                        ok &= close("grad " + e.key(), floats(file, "grad." + e.key()), host(e.grad()), tol);
                    }
                }
                ce.release();
            }
        }
        System.out.println(ok ? "PARITY OK" : "PARITY FAILED");
        System.exit(ok ? 0 : 1);
    }

    private static boolean close(String what, float[] expected, float[] actual, double tol) {
        double scale = 0;
        double err = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            err = Math.max(err, Math.abs((double) expected[i] - actual[i]));
        }
        boolean ok = expected.length == actual.length && scale > 0 && err <= tol * scale;
        System.out.printf(Locale.ROOT, "%s %s: max |error| %.3e = %.3e of max |expected| %.3e%n", ok ? "ok  " : "FAIL",
                what, err, scale > 0 ? err / scale : Double.NaN, scale);
        return ok;
    }

    /** The 5 largest classes of row {@code row}, as a sorted set of indices. */
    private static int[] top5(float[] logits, int row, int classes) {
        Integer[] idx = new Integer[classes];
        for (int i = 0; i < classes; i++) {
            idx[i] = i;
        }
        Arrays.sort(idx, (a, b) -> Float.compare(logits[row * classes + b], logits[row * classes + a]));
        int[] top = new int[5];
        for (int i = 0; i < 5; i++) {
            top[i] = idx[i];
        }
        Arrays.sort(top);
        return top;
    }

    private static float[] floats(Safetensors.Reader file, String name) throws IOException {
        Safetensors.TensorInfo info = file.info(name);
        float[] v = new float[Math.toIntExact(info.elements())];
        file.readFloats(info, 0, v.length, v, 0);
        return v;
    }

    private static float[] host(Tensor t) {
        float[] v = new float[Math.toIntExact(t.size())];
        t.backend().copyOut(t, v, 0);
        return v;
    }
}
