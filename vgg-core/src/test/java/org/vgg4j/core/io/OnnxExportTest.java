package org.vgg4j.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Flatten;
import org.vgg4j.core.layers.GlobalAvgPool;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.LocalResponseNorm;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * Exported models run in ONNX Runtime (CPU) on the same random input as our forward on the reference backend, in
 * evaluation mode, at two batch sizes from one session (the batch dimension is dynamic). Relative error is
 * normalised by the largest logit: max_i |ort_i - ours_i| / max_i |ours_i| over the whole batch, at most 1e-5.
 */
class OnnxExportTest {
    private static final double TOLERANCE = 1e-5;
    private static Backend backend;
    private static OrtEnvironment env;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        backend = Backends.create("reference");
        env = OrtEnvironment.getEnvironment();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    /** Width 1/8 (8..64 channels), FC 32, 10 classes, 32x32, dropout 0.5 (left out of the export). */
    private static VggSpec narrow(VggConfig config, boolean bn) {
        return new VggSpec(config, bn, 10, 32, 1.0 / 8, 32, 0.5, 0);
    }

    /**
     * Every tensor drawn here: conv and FC weights from He-uniform U(-a, a), a = sqrt(6 / fanIn), so activations
     * keep their scale through 16 layers (Glorot's shrink towards zero in a narrow VGG-16); biases U(-0.1, 0.1);
     * BatchNorm away from the identity, so gamma, beta and the running statistics all matter.
     */
    private static Network network(VggSpec spec, long seed) {
        return randomised(Vgg.build(backend, DType.FLOAT32, spec), seed);
    }

    private static Network randomised(Network net, long seed) {
        for (ParamStore.Entry e : net.params().entries()) {
            Shape shape = e.value().shape();
            int n = Math.toIntExact(e.value().size());
            long s = seed * 1_000_003L + e.key().hashCode();
            String key = e.key();
            double[] v;
            if (isBn(net, key)) {
                v = key.endsWith(".running_var") || key.endsWith(".weight")
                        ? TestTensors.uniform(s, n, 0.5, 2.0) : TestTensors.uniform(s, n, -0.3, 0.3);
            } else if (key.endsWith(".weight")) {
                double a = Math.sqrt(6.0 / (n / shape.dim(0)));
                v = TestTensors.uniform(s, n, -a, a);
            } else {
                v = TestTensors.uniform(s, n, -0.1, 0.1);
            }
            backend.copyIn(v, 0, e.value());
        }
        return net;
    }

    private static boolean isBn(Network net, String key) {
        return net.params().get(key.substring(0, key.lastIndexOf('.')) + ".running_var") != null;
    }

    private static float[] ours(Network net, float[] x, int batch) {
        Tensor in = backend.allocate(DType.FLOAT32, Shape.of(batch, 3, 32, 32));
        try {
            backend.copyIn(x, 0, in);
            Tensor logits = net.forward(in, false);
            float[] out = new float[Math.toIntExact(logits.size())];
            backend.copyOut(logits, out, 0);
            return out;
        } finally {
            backend.free(in);
        }
    }

    private static float[] ort(OrtSession session, float[] x, int batch) throws OrtException {
        try (OnnxTensor in = OnnxTensor.createTensor(env, FloatBuffer.wrap(x), new long[] {batch, 3, 32, 32});
             OrtSession.Result r = session.run(Map.of("input", in))) {
            float[][] logits = (float[][]) r.get("logits").orElseThrow().getValue();
            assertEquals(batch, logits.length);
            float[] flat = new float[batch * logits[0].length];
            for (int i = 0; i < batch; i++) {
                System.arraycopy(logits[i], 0, flat, i * logits[i].length, logits[i].length);
            }
            return flat;
        }
    }

    /** max |a - b| / max |b|. */
    private static double relativeError(float[] a, float[] b) {
        assertEquals(b.length, a.length);
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < a.length; i++) {
            diff = Math.max(diff, Math.abs((double) a[i] - b[i]));
            scale = Math.max(scale, Math.abs((double) b[i]));
        }
        assertTrue(scale > 1e-3, "logits all near zero (" + scale + "): the comparison would prove nothing");
        return diff / scale;
    }

    private void matchesOnnxRuntime(VggSpec spec, long seed) throws IOException, OrtException {
        matchesOnnxRuntime(network(spec, seed), seed);
    }

    /** Runs (and closes) {@code net}, input (3,32,32), 10 outputs. */
    private void matchesOnnxRuntime(Network net, long seed) throws IOException, OrtException {
        Path file = dir.resolve(net.name() + ".onnx");
        try (net) {
            OnnxExport.write(net, file);
            try (OrtSession.SessionOptions so = new OrtSession.SessionOptions();
                 OrtSession session = env.createSession(file.toString(), so)) {
                TensorInfo in = (TensorInfo) session.getInputInfo().get("input").getInfo();
                assertArrayEquals(new long[] {-1, 3, 32, 32}, in.getShape(), "input (N,3,H,W), N dynamic");
                NodeInfo out = session.getOutputInfo().get("logits");
                assertArrayEquals(new long[] {-1, 10}, ((TensorInfo) out.getInfo()).getShape());
                for (int batch : new int[] {1, 3}) {
                    float[] x = new float[batch * 3 * 32 * 32];
                    double[] u = TestTensors.uniform(seed * 31 + batch, x.length, -1, 1);
                    for (int i = 0; i < x.length; i++) {
                        x[i] = (float) u[i];
                    }
                    float[] expected = ours(net, x, batch);
                    float[] actual = ort(session, x, batch);
                    double err = relativeError(actual, expected);
                    assertTrue(err <= TOLERANCE, net.name() + " batch " + batch + ": relative error " + err);
                }
            }
        }
    }

    @Test
    void vgg11MatchesOnnxRuntime() throws Exception {
        matchesOnnxRuntime(narrow(VggConfig.A, false), 1);
    }

    @Test
    void vgg11BnMatchesOnnxRuntimeOnRunningStatistics() throws Exception {
        matchesOnnxRuntime(narrow(VggConfig.A, true), 2);
    }

    @Test
    void vgg16MatchesOnnxRuntime() throws Exception {
        matchesOnnxRuntime(narrow(VggConfig.D, false), 3);
    }

    @Test
    void aLrnMatchesOnnxRuntime() throws Exception {
        matchesOnnxRuntime(narrow(VggConfig.A_LRN, false), 4);
    }

    /**
     * A-LRN's LRN (alpha 1e-4, k 2) hardly changes its input, so this also checks the window with a strong LRN:
     * channel c's window must be c-1..c+1 (size 3) and c-2..c+2 (size 5) in both, or the logits differ.
     */
    @Test
    void strongLrnWindowsMatchOnnxRuntime() throws Exception {
        for (int size : new int[] {3, 5}) {
            Network net = new Network("lrn" + size, backend, DType.FLOAT32, Shape.of(3, 32, 32), List.of(
                    new NamedLayer("conv", new Conv2d(backend, 3, 7, 1, 0)),
                    new NamedLayer("lrn", new LocalResponseNorm(backend, size, 3.0, 0.75, 1.0)),
                    new NamedLayer("flatten", new Flatten()),
                    new NamedLayer("fc", new Linear(backend, 7 * 32 * 32, 10))));
            matchesOnnxRuntime(randomised(net, 7 + size), 7 + size);
        }
    }

    @Test
    void configurationCWithItsOneByOneConvolutionsMatches() throws Exception {
        matchesOnnxRuntime(narrow(VggConfig.C, true), 5);
    }

    @Test
    void headerNamesIrVersionProducerAndOpset() throws IOException {
        try (Network net = network(narrow(VggConfig.A, false), 6)) {
            Path file = dir.resolve("a.onnx");
            OnnxExport.write(net, file, OnnxExport.Options.defaults().withOpset(17));
            byte[] b = Files.readAllBytes(file);
            // ir_version = 7 (field 1 varint), producer_name = "VGG4J" (field 2)
            assertArrayEquals(new byte[] {0x08, 0x07, 0x12, 0x05, 'V', 'G', 'G', '4', 'J'}, java.util.Arrays.copyOf(b, 9));
            // the file ends with opset_import {domain "", version 17}: field 8, length 4, 0A 00, 10 11
            assertArrayEquals(new byte[] {0x42, 0x04, 0x0A, 0x00, 0x10, 0x11}, java.util.Arrays.copyOfRange(b, b.length - 6, b.length));
            assertEquals(OnnxExport.model(net, OnnxExport.Options.defaults()).size(), b.length);
        }
    }

    @Test
    void refusesWhatOnnxCannotExpressExactly() {
        // an even LRN window sits one channel off ONNX's
        try (Network even = new Network("even-lrn", backend, DType.FLOAT32, Shape.of(4, 2, 2), List.of(
                new NamedLayer("lrn", new LocalResponseNorm(backend, 4, 1e-4, 0.75, 2.0)),
                new NamedLayer("flatten", new Flatten()),
                new NamedLayer("fc", new Linear(backend, 16, 2))))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> OnnxExport.write(even, dir.resolve("even.onnx")));
            assertTrue(e.getMessage().contains("layer lrn: LRN size 4"), e.getMessage());
            assertFalse(Files.exists(dir.resolve("even.onnx")), "nothing written on refusal");
        }
        try (Network gap = new Network("gap", backend, DType.FLOAT32, Shape.of(4, 2, 2), List.of(
                new NamedLayer("conv", new Conv2d(backend, 4, 3, 1, 0)),
                new NamedLayer("score", new GlobalAvgPool(backend))))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> OnnxExport.write(gap, dir.resolve("gap.onnx")));
            assertTrue(e.getMessage().contains("layer score"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new OnnxExport.Options(12, "N"));
        assertTrue(e.getMessage().contains("opset 12"), e.getMessage());
    }
}
