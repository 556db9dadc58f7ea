package org.vgg4j.core.layers;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.backend.CpuPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.core.testing.TestTensors;

/**
 * {@link Conv2d}'s use of the backend's convolution memo ({@link Backend#newConvMemo}): training forwards pass it,
 * an inference forward passes none and closes what a training forward kept, so that evaluation holds no copies and a
 * backward after an inference forward cannot take an older x kept at the same address. Legend: N batch, C in, K out.
 */
final class Conv2dMemoTest {
    private static final Backend CPU = Backends.cpu(CpuPrecision.FP32);
    private static final Shape X = Shape.of(2, 16, 8, 8);    // (N,C,H,W): 16 channels, so that oneDNN reorders x and the memo keeps it
    private static final Shape W = Shape.of(4, 16, 3, 3);    // (K,C,3,3)

    @AfterAll
    static void close() {
        CPU.close();
    }

    /** A layer on {@code backend} with seeded weights and bias, and zeroed gradient buffers. */
    private static Conv2d layer(Backend backend, List<Tensor> grads) {
        Conv2d conv = new Conv2d(backend, 16, 4, 3, 1);
        Map<String, Tensor> values = new HashMap<>();
        Map<String, Tensor> g = new HashMap<>();
        values.put("weight", tensor(W, TestTensors.uniform(1, (int) W.size(), -0.5, 0.5)));
        values.put("bias", tensor(Shape.of(4), TestTensors.uniform(2, 4, -0.1, 0.1)));
        g.put("weight", tensor(W, new double[(int) W.size()]));
        g.put("bias", tensor(Shape.of(4), new double[4]));
        conv.bind(values, g);
        grads.add(g.get("weight"));
        grads.add(g.get("bias"));
        return conv;
    }

    private static Tensor tensor(Shape s, double[] v) {
        Tensor t = CPU.allocate(DType.FLOAT32, s);
        CPU.copyIn(v, 0, t);
        return t;
    }


    @Test
    void aBackwardAfterAnInferenceForwardTakesThatForwardsInput() {
        double[] x1 = TestTensors.uniform(3, (int) X.size(), -1, 1);
        double[] x2 = TestTensors.uniform(4, (int) X.size(), -1, 1);
        Tensor dy = tensor(Shape.of(2, 4, 8, 8), TestTensors.uniform(5, 2 * 4 * 8 * 8, -1, 1));

        // a training forward keeps x1 (blocked); new values at the same address, an inference forward, a backward
        List<Tensor> got = new ArrayList<>();
        Conv2d conv = layer(CPU, got);
        Tensor x = tensor(X, x1);
        conv.forward(x, true);
        CPU.copyIn(x2, 0, x);
        conv.forward(x, false);
        float[] dx = TestTensors.floats(conv.backward(dy));

        // the same layer that only ever saw x2
        List<Tensor> want = new ArrayList<>();
        Conv2d fresh = layer(CPU, want);
        fresh.forward(tensor(X, x2), false);
        float[] dxWant = TestTensors.floats(fresh.backward(dy));

        assertArrayEquals(TestTensors.floats(want.get(0)), TestTensors.floats(got.get(0)), "dL/dw after an inference forward");
        assertArrayEquals(TestTensors.floats(want.get(1)), TestTensors.floats(got.get(1)), "dL/db after an inference forward");
        assertArrayEquals(dxWant, dx, "dL/dx after an inference forward");
        conv.release();
        fresh.release();
    }

    @Test
    void trainingForwardsPassAMemoAndAnInferenceForwardClosesIt() {
        List<Backend.ConvMemo> passed = new ArrayList<>();
        int[] madeAndClosed = new int[2];
        Backend recording = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(),
                new Class<?>[] {Backend.class}, (proxy, m, args) -> {
                    if (m.getName().equals("newConvMemo")) {
                        Backend.ConvMemo real = CPU.newConvMemo();
                        madeAndClosed[0]++;
                        return (Backend.ConvMemo) () -> {
                            madeAndClosed[1]++;
                            real.close();
                        };
                    }
                    if (m.getName().equals("conv2dForward") && args.length == 7) {
                        passed.add((Backend.ConvMemo) args[6]);
                        args[6] = null; // the recording memo is not the cpu backend's own
                    }
                    try {
                        return m.invoke(CPU, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        Conv2d conv = layer(recording, new ArrayList<>());
        Tensor x = tensor(X, TestTensors.uniform(6, (int) X.size(), -1, 1));
        conv.forward(x, true);
        conv.forward(x, true);
        conv.forward(x, false);
        conv.forwardRelu(x, false);
        conv.forward(x, true);
        assertEquals(5, passed.size(), "every forward is one backend call");
        assertNotNull(passed.get(0), "a training forward passes the memo");
        assertEquals(passed.get(0), passed.get(1), "the layer keeps one memo across training forwards");
        assertNull(passed.get(2), "an inference forward passes no memo");
        assertNull(passed.get(3), "an inference forward with the fused ReLU passes no memo");
        assertNotNull(passed.get(4), "training again makes a new memo");
        assertEquals(2, madeAndClosed[0], "memos made");
        assertEquals(1, madeAndClosed[1], "memos closed by the inference forward");
        conv.release();
        assertEquals(2, madeAndClosed[1], "release closes the last memo");
    }
}
