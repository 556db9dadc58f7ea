package org.vgg4j.cuda.check;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.cuda.CudaBackend;
import org.vgg4j.cuda.MathMode;
import org.vgg4j.cuda.RingAllReduce;

/**
 * Stage g of scripts/gpu-check.sh: two replicas of a narrow VGG-A (width 1/8, 32 x 32, no dropout) averaging their
 * gradients through {@link RingAllReduce} -- on a GPU both on the one card, each with its own driver, compute and
 * communication streams, events and pinned staging buffers (same device: the staged path); with --emulated on
 * emulated devices 0 and 1. Overlapped ({@code begin} / {@code ready} after each replica's backward / {@code finish}).
 * <ol>
 *   <li>both replicas on the SAME batch: the mean of two equal gradients is that gradient, so each replica must hold
 *       exactly -- bit for bit -- what one replica computed alone: this checks the transport (every copy, stream
 *       order and event) exactly;</li>
 *   <li>each replica on HALF of the batch: the replicas must agree bit for bit with each other, and with one
 *       replica on the whole batch to float32 rounding (the sums are associated differently; relative error printed,
 *       at most 1e-5 of the gradient's largest element).</li>
 * </ol>
 * Prints {@code REPLICAS OK} or what differed, exit 1 then.
 */
public final class TwoReplicas {
    private static final VggSpec SPEC = new VggSpec(VggConfig.A, false, 10, 32, 0.125, 32, 0.0, 1);
    private static final int BATCH = 4;

    private TwoReplicas() {
    }

    public static void main(String[] args) {
        boolean emulated = Devices.emulated(args);
        float[] input = new float[BATCH * 3 * 32 * 32];
        SplittableRandom r = new SplittableRandom(11);
        for (int i = 0; i < input.length; i++) {
            input[i] = (float) (r.nextDouble() * 2 - 1);
        }
        int[] labels = {3, 7, 1, 9};
        List<CudaBackend> bes = new ArrayList<>();
        List<Network> nets = new ArrayList<>();
        boolean ok = true;
        try (RingAllReduce ring = new RingAllReduce(new RingAllReduce.Options(GradPrecision.FP32, 5000, true, false))) {
            for (int rank = 0; rank < 2; rank++) {
                CudaBackend be = Devices.open(emulated, rank, MathMode.FP32);
                bes.add(be);
                Network net = Vgg.build(be, DType.FLOAT32, SPEC);
                Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, 7);
                nets.add(net);
            }
            System.out.println("replicas: " + bes.get(0).describe() + " | " + bes.get(1).describe());
            float[] alone = gradient(nets.get(0), input, 0, BATCH, labels);

            // 1. the same batch on both replicas
            float[][] same = reduced(ring, nets, new int[][] {{0, BATCH}, {0, BATCH}}, input, labels);
            for (int rank = 0; rank < 2; rank++) {
                int diff = firstDifference(alone, same[rank]);
                System.out.println("same batch, replica " + rank + " vs one replica: "
                        + (diff < 0 ? "bit for bit equal (" + alone.length + " gradients)" : "DIFFERS at element "
                        + diff + ": " + alone[diff] + " vs " + same[rank][diff]));
                ok &= diff < 0;
            }

            // 2. half of the batch each
            float[][] halves = reduced(ring, nets, new int[][] {{0, BATCH / 2}, {BATCH / 2, BATCH}}, input, labels);
            int diff = firstDifference(halves[0], halves[1]);
            System.out.println("halves, replica 0 vs replica 1: " + (diff < 0 ? "bit for bit equal"
                    : "DIFFERS at element " + diff));
            ok &= diff < 0;
            double scale = 0;
            double err = 0;
            for (int i = 0; i < alone.length; i++) {
                scale = Math.max(scale, Math.abs(alone[i]));
                err = Math.max(err, Math.abs(alone[i] - halves[0][i]));
            }
            System.out.printf(Locale.ROOT, "halves vs one replica on the whole batch: max |difference| %.3e = %.3e of"
                    + " the largest gradient (bound 1e-5)%n", err, err / scale);
            ok &= err <= 1e-5 * scale;
        } finally {
            nets.forEach(Network::close);
            bes.forEach(CudaBackend::close);
        }
        System.out.println(ok ? "REPLICAS OK" : "REPLICAS FAILED");
        System.exit(ok ? 0 : 1);
    }

    /** Replica r runs forward/backward on samples [ranges[r][0], ranges[r][1]); the ring averages, overlapped. */
    private static float[][] reduced(RingAllReduce ring, List<Network> nets, int[][] ranges, float[] input,
                                     int[] labels) {
        List<Tensor> grads = new ArrayList<>();
        for (Network net : nets) {
            grads.add(net.params().grads());
        }
        for (Network net : nets) {
            net.params().zeroGrads();
        }
        AllReduce.InFlight inFlight = ring.begin(grads);
        for (int rank = 0; rank < nets.size(); rank++) {
            backward(nets.get(rank), input, ranges[rank][0], ranges[rank][1], labels);
            inFlight.ready(rank, 0, grads.get(rank).size());
        }
        inFlight.finish();
        float[][] out = new float[nets.size()][];
        for (int rank = 0; rank < nets.size(); rank++) {
            out[rank] = host(grads.get(rank));
        }
        return out;
    }

    private static float[] gradient(Network net, float[] input, int from, int to, int[] labels) {
        net.params().zeroGrads();
        backward(net, input, from, to, labels);
        return host(net.params().grads());
    }

    private static void backward(Network net, float[] input, int from, int to, int[] labels) {
        int per = 3 * 32 * 32;
        Tensor x = net.backend().allocate(DType.FLOAT32, Shape.of(to - from, 3, 32, 32));
        net.backend().copyIn(Arrays.copyOfRange(input, from * per, to * per), 0, x);
        SoftmaxCrossEntropy ce = new SoftmaxCrossEntropy(net.backend());
        ce.forwardBackward(net.forward(x, true), Arrays.copyOfRange(labels, from, to));
        net.backward(ce.gradient());
        ce.release();
        net.backend().free(x);
    }

    private static float[] host(Tensor t) {
        float[] v = new float[Math.toIntExact(t.size())];
        t.backend().copyOut(t, v, 0);
        return v;
    }

    private static int firstDifference(float[] a, float[] b) {
        for (int i = 0; i < a.length; i++) {
            if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                return i;
            }
        }
        return a.length == b.length ? -1 : a.length;
    }
}
