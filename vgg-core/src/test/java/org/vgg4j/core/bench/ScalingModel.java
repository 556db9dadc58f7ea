package org.vgg4j.core.bench;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.reference.ReferenceBackend;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.ParamSpec;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.Shape;

/**
 * A model (NOT a measurement) of synchronous data-parallel training speed on N GPUs: compute per step against the
 * bytes a ring all-reduce moves over the links, with or without overlapping them with backward, as vgg-cuda's
 * {@code RingAllReduce} does it. docs/benchmarks.md ("Multi-GPU scaling (model)") prints its table:
 *
 * <pre>
 *   java -cp vgg-core/target/test-classes:vgg-core/target/classes:$(cat cp.txt) org.vgg4j.core.bench.ScalingModel   (or scripts/bench-scaling.sh --model)
 * </pre>
 *
 * <p>The model. One GPU computes a step of b images in T_c = 3 * 2 * MACs/image * b / R (forward, and a backward of
 * twice its MACs; R the sustained FLOP/s). Backward runs the layers last to first, each taking 2 * 2 * its MACs * b
 * / R, and a layer's gradients are final when its backward ends. The gradient buffer is laid out as ParamStore lays
 * it (every weight in layer order, then every bias) and cut into buckets of at most L elements that never cross the
 * weights/biases boundary (what Replicas asks of the ring); a bucket is ready when its earliest layer is done. A
 * ring all-reduce of s elements of w bytes keeps each GPU's link busy for 2 (N-1)/N * s * w / B (B per direction;
 * every GPU sends and receives at once). Buckets go over the link one after the other, in the order they become
 * ready. Without overlap a step takes T_c + all the transfers; with overlap it ends when both the compute and the
 * last transfer have ended. Speed-up = N * T_c / T_step (N times the images per step, against one GPU that sends
 * nothing). Not modelled: per-message latency (tens of microseconds per ring step: small against buckets of 16 MiB),
 * links shared behind one PCIe switch, the SGD update (the same on 1 and N GPUs), data loading.
 *
 * <p>Legend: N GPUs, b images per GPU, P parameters, L elements per bucket, w bytes per gradient element on the wire,
 * B link bytes/s per direction, R sustained FLOP/s of one GPU.
 */
public final class ScalingModel {

    /** One layer with parameters, in network order: its weight and bias counts and forward MACs per image. */
    public record LayerCost(String name, long weights, long biases, long macsPerImage, boolean fullyConnected) {
    }

    /** A predicted step: compute seconds, transfer seconds (sum over buckets), step seconds, speed-up. */
    public record Prediction(double computeSeconds, double transferSeconds, double stepSeconds, double speedup,
                             double bytesPerGpu) {
    }

    private final List<LayerCost> layers;
    private final long macsPerImage; // forward, all layers (parameterless ones included)

    public ScalingModel(List<LayerCost> layers, long macsPerImage) {
        this.layers = List.copyOf(layers);
        this.macsPerImage = macsPerImage;
    }

    /** The layers of {@code spec} (built on the reference backend, which allocates nothing for this). */
    public static ScalingModel of(VggSpec spec) {
        List<LayerCost> out = new ArrayList<>();
        long macs = 0;
        try (Backend b = new ReferenceBackend()) {
            Shape in = Shape.of(1, 3, spec.inputSize(), spec.inputSize());
            for (NamedLayer nl : Vgg.layers(b, spec)) {
                Layer layer = nl.layer();
                long m = layer.macs(in);
                macs += m;
                long w = 0;
                long bias = 0;
                for (ParamSpec p : layer.params()) {
                    if (p.role() == ParamSpec.Role.WEIGHT) {
                        w += p.shape().size();
                    } else if (p.role() == ParamSpec.Role.NO_DECAY) {
                        bias += p.shape().size();
                    }
                }
                if (w + bias > 0) {
                    out.add(new LayerCost(nl.name(), w, bias, m, nl.name().startsWith("classifier")));
                }
                in = layer.outputShape(in);
            }
        }
        return new ScalingModel(out, macs);
    }

    public List<LayerCost> layers() {
        return layers;
    }

    public long parameters() {
        return layers.stream().mapToLong(l -> l.weights() + l.biases()).sum();
    }

    /** Parameters of the fully connected layers (VGG's classifier: fc6, fc7, fc8). */
    public long fullyConnectedParameters() {
        return layers.stream().filter(LayerCost::fullyConnected).mapToLong(l -> l.weights() + l.biases()).sum();
    }

    /** Training FLOPs per image: 3 x 2 x forward MACs. */
    public double flopsPerImage() {
        return 6.0 * macsPerImage;
    }

    /**
     * @param gpus       N
     * @param batchPerGpu b
     * @param flops      R, sustained FLOP/s of one GPU
     * @param linkBytes  B, bytes/s per direction
     * @param wireBytes  w, 4 (fp32) or 2 (bf16)
     * @param bucket     L, elements per bucket
     * @param overlap    transfers start as buckets become ready (else after the whole backward)
     */
    public Prediction predict(int gpus, int batchPerGpu, double flops, double linkBytes, int wireBytes, long bucket,
                              boolean overlap) {
        double compute = flopsPerImage() * batchPerGpu / flops;
        if (gpus == 1) {
            return new Prediction(compute, 0, compute, 1, 0);
        }
        double perElement = 2.0 * (gpus - 1) / gpus * wireBytes / linkBytes; // link seconds per element
        // ready time of every layer's gradients: after the forward and the backward of it and all later layers
        int n = layers.size();
        double[] ready = new double[n];
        double t = 2.0 * macsPerImage * batchPerGpu / flops; // forward
        for (int i = n - 1; i >= 0; i--) {
            t += 4.0 * layers.get(i).macsPerImage() * batchPerGpu / flops;
            ready[i] = t;
        }
        // ParamStore's layout: weights in layer order, then biases; bucket = [start, end), ready with its first layer
        long weights = layers.stream().mapToLong(LayerCost::weights).sum();
        long total = parameters();
        long[] wEnd = new long[n];
        long[] bEnd = new long[n];
        long w = 0;
        long bsum = weights;
        for (int i = 0; i < n; i++) {
            w += layers.get(i).weights();
            bsum += layers.get(i).biases();
            wEnd[i] = w;
            bEnd[i] = bsum;
        }
        List<double[]> buckets = new ArrayList<>(); // {ready time, elements}
        for (long[] seg : new long[][] {{0, weights}, {weights, total}}) {
            long[] ends = seg[0] == 0 ? wEnd : bEnd;
            for (long s = seg[0]; s < seg[1]; s += bucket) {
                long e = Math.min(seg[1], s + bucket);
                int first = 0;
                while (ends[first] <= s) {
                    first++;
                }
                buckets.add(new double[] {ready[first], e - s});
            }
        }
        buckets.sort((x, y) -> Double.compare(x[0], y[0]));
        double transfer = 0;
        double linkFree = 0;
        for (double[] bk : buckets) {
            double dt = bk[1] * perElement;
            transfer += dt;
            linkFree = Math.max(linkFree, overlap ? bk[0] : compute) + dt;
        }
        double step = overlap ? Math.max(compute, linkFree) : compute + transfer;
        return new Prediction(compute, transfer, step, gpus * compute / step, total * (double) wireBytes
                * 2.0 * (gpus - 1) / gpus);
    }

    /** Prints docs/benchmarks.md's table for VGG-16. */
    public static void main(String[] args) {
        PrintStream out = System.out;
        ScalingModel m = of(VggSpec.paper(VggConfig.D));
        int b = 64;                   // the paper's 256 over its 4 GPUs
        long bucket = 1L << 22;       // RingAllReduce.DEFAULT_BUCKET
        out.printf(Locale.ROOT, "VGG-16: %,d parameters, of which fc6+fc7+fc8 %,d (%.1f %%); %.1f GFLOP per training"
                        + " image; %d images per GPU per step; buckets of %,d elements%n%n", m.parameters(),
                m.fullyConnectedParameters(), 100.0 * m.fullyConnectedParameters() / m.parameters(),
                m.flopsPerImage() / 1e9, b, bucket);
        double[] rates = {25e12, 200e12};
        String[] gpuNames = {"25 TFLOP/s (FP32 kernels)", "200 TFLOP/s (tensor cores)"};
        String[] linkNames = {"PCIe 4.0 x16 (25 GB/s)", "PCIe 5.0 x16 (50 GB/s)", "NVLink 4 (450 GB/s)"};
        double[] links = {25e9, 50e9, 450e9};
        out.println("| GPU rate R | link | N | step compute ms | transfer ms fp32 / bf16 | speed-up fp32, no overlap |"
                + " fp32, overlap | bf16, overlap |");
        out.println("|---|---|---|---|---|---|---|---|");
        for (int g = 0; g < rates.length; g++) {
            for (int l = 0; l < links.length; l++) {
                for (int n : new int[] {4, 8}) {
                    Prediction noOverlap = m.predict(n, b, rates[g], links[l], 4, bucket, false);
                    Prediction fp32 = m.predict(n, b, rates[g], links[l], 4, bucket, true);
                    Prediction bf16 = m.predict(n, b, rates[g], links[l], 2, bucket, true);
                    out.printf(Locale.ROOT, "| %s | %s | %d | %.1f | %.1f / %.1f | %.2f | %.2f | %.2f |%n", gpuNames[g],
                            linkNames[l], n, fp32.computeSeconds() * 1e3, fp32.transferSeconds() * 1e3,
                            bf16.transferSeconds() * 1e3, noOverlap.speedup(), fp32.speedup(), bf16.speedup());
                }
            }
        }
        out.println();
        out.println("Traffic per layer (fp32, ring, per GPU per step, N = 4):");
        out.println();
        out.println("| layer | parameters | share | MB sent per GPU |");
        out.println("|---|---|---|---|");
        for (LayerCost c : m.layers()) {
            long p = c.weights() + c.biases();
            if (c.fullyConnected() || p > 2_000_000) {
                out.printf(Locale.ROOT, "| %s | %,d | %.1f %% | %.1f |%n", c.name(), p, 100.0 * p / m.parameters(),
                        p * 4 * 1.5 / 1e6);
            }
        }
        long small = m.layers().stream().filter(c -> !c.fullyConnected() && c.weights() + c.biases() <= 2_000_000)
                .mapToLong(c -> c.weights() + c.biases()).sum();
        out.printf(Locale.ROOT, "| the other conv layers | %,d | %.1f %% | %.1f |%n", small, 100.0 * small / m.parameters(),
                small * 4 * 1.5 / 1e6);
        out.flush();
    }
}
