package org.vgg4j.core.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Dropout;
import org.vgg4j.core.layers.Flatten;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.LocalResponseNorm;
import org.vgg4j.core.layers.LowRankGradient;
import org.vgg4j.core.layers.ParamSpec;
import org.vgg4j.core.layers.ReLU;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;

/**
 * What a VGG costs, computed from its {@link VggSpec} alone (no backend, no parameter memory, so the paper's full
 * 138 M-parameter D is cheap to describe): trained parameters, forward multiply-accumulates per image and the
 * memory of a training step, per layer and in total. It is an estimate of OUR implementation's buffers (in-place
 * ReLU, flatten as a view, dropout buffers only when p &gt; 0), not a measurement.
 *
 * <p>Legend: N batch; shapes are (N,C,H,W) or (N,F).
 *
 * @param spec              the architecture described
 * @param batch             N used for the memory figures
 * @param dtype             element type used for the memory figures
 * @param layers            one row per layer, in network order
 * @param parameters        trained parameters (what torchvision's {@code sum(p.numel())} counts)
 * @param stateElements     non-trained state (BatchNorm running mean and variance)
 * @param macsPerImage      multiply-accumulates of one forward pass of one image
 * @param activationBytes   bytes of layer outputs (and masks, LRN scales) kept from forward for backward, for N
 * @param trainingBytes     estimate of one training step: activations + activation gradients + parameters,
 *                          their gradients and the momentum buffer (3 copies) + state
 * @param factoredTrainingBytes the same where the FC layers' weight gradients are held as factors, as one replica
 *                          on a backend that pays for it does ({@link Network#deferLinearWeightGradients}: the
 *                          {@code cpu} backend): each such weight's dense gradient (out*in) replaced by the batch's
 *                          factors N*(out+in); equal to trainingBytes where no layer qualifies at this batch
 */
public record ModelInfo(VggSpec spec, int batch, DType dtype, List<LayerInfo> layers, long parameters,
                        long stateElements, long macsPerImage, long activationBytes, long trainingBytes,
                        long factoredTrainingBytes) {

    /**
     * One layer's row.
     *
     * @param name          torchvision module path ("features.0", "classifier.6", "flatten")
     * @param kind          {@link Layer#describe()}
     * @param output        output shape for the batch (N,...)
     * @param parameters    trained parameters of this layer
     * @param macsPerImage  forward MACs for one image
     * @param activationBytes bytes this layer's forward allocates and keeps for backward (batch N)
     * @param gradientBytes bytes of the input-gradient buffer its backward writes (batch N)
     */
    public record LayerInfo(String name, String kind, Shape output, long parameters, long macsPerImage,
                            long activationBytes, long gradientBytes) {
    }

    public ModelInfo {
        layers = Collections.unmodifiableList(new ArrayList<>(layers));
    }

    /** Describes {@code spec} for a batch of {@code batch} images in float32. */
    public static ModelInfo of(VggSpec spec, int batch) {
        return of(spec, batch, DType.FLOAT32);
    }

    public static ModelInfo of(VggSpec spec, int batch, DType dtype) {
        if (spec == null) {
            throw new IllegalArgumentException("spec must not be null");
        }
        if (batch < 1) {
            throw new IllegalArgumentException("batch size " + batch + " must be >= 1");
        }
        // The layers are only asked for shapes, parameter specs and MACs: none of that touches a backend.
        List<NamedLayer> named = Vgg.layers(null, spec);
        List<LayerInfo> rows = new ArrayList<>();
        Shape in = Shape.of(batch, 3, spec.inputSize(), spec.inputSize());
        Shape one = Shape.of(1, 3, spec.inputSize(), spec.inputSize());
        long params = 0;
        long state = 0;
        long macs = 0;
        long act = 0;
        long grad = 0;
        long factoredSaving = 0; // elements
        boolean first = true;
        for (NamedLayer nl : named) {
            Layer layer = nl.layer();
            Shape out = layer.outputShape(in);
            long p = 0;
            for (ParamSpec s : layer.params()) {
                if (s.role() == ParamSpec.Role.STATE) {
                    state += s.shape().size();
                } else {
                    p += s.shape().size();
                }
            }
            long m = layer.macs(one);
            long a = keptElements(layer, in, out, spec.dropout()) * dtype.bytes;
            long g = (first || !writesInputGradient(layer, spec.dropout()) ? 0 : in.size()) * dtype.bytes;
            rows.add(new LayerInfo(nl.name(), layer.describe(), out, p, m, a, g));
            if (layer instanceof Linear fc) {
                factoredSaving += factoredSaving(fc.outFeatures(), fc.inFeatures(), batch);
            }
            params += p;
            macs += m;
            act += a;
            grad += g;
            in = out;
            one = layer.outputShape(one);
            first = false;
        }
        long training = act + grad + (3 * params + state) * dtype.bytes;
        return new ModelInfo(spec, batch, dtype, rows, params, state, macs, act, training,
                training - factoredSaving * dtype.bytes);
    }

    /**
     * Elements an (out,in) weight's gradient saves as the factors of a batch of n: out*in - n*(out+in) where
     * {@link Network#deferLinearWeightGradients} takes the layer and a step's n examples fit
     * ({@link LowRankGradient#maxRows}), else 0 (the gradient stays, or turns, dense).
     */
    static long factoredSaving(int out, int in, int n) {
        int maxRows = LowRankGradient.maxRows(out, in);
        if (maxRows < Network.MIN_LOW_RANK_ROWS || n > maxRows) {
            return 0;
        }
        return (long) out * in - (long) n * (out + in);
    }

    /** Elements a layer's training forward allocates and keeps; mirrors the layers' own buffers. */
    private static long keptElements(Layer layer, Shape in, Shape out, double dropout) {
        if (layer instanceof ReLU || layer instanceof Flatten) {
            return 0; // in place / a view
        }
        if (layer instanceof Dropout) {
            return dropout > 0 ? 2 * out.size() : 0; // output + mask; identity when p = 0
        }
        if (layer instanceof LocalResponseNorm) {
            return 2 * out.size(); // output + scale
        }
        if (layer instanceof BatchNorm2d) {
            return out.size() + 2L * out.dim(1); // output + saved mean and 1/std
        }
        return out.size();
    }

    private static boolean writesInputGradient(Layer layer, double dropout) {
        if (layer instanceof ReLU || layer instanceof Flatten) {
            return false; // overwrites dy in place / a view
        }
        return !(layer instanceof Dropout) || dropout > 0;
    }

    /** Convenience: forward GMACs per image. */
    public double gigaMacs() {
        return macsPerImage / 1e9;
    }

    /** Parameters of the conv layers only (sanity figure; FC layers hold most of VGG's parameters). */
    public long convParameters() {
        long n = 0;
        for (LayerInfo r : layers) {
            if (r.kind().startsWith("conv")) {
                n += r.parameters();
            }
        }
        return n;
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "VGG %s, input 3x%dx%d, %d classes, batch %d, %s%n", spec.name(),
                spec.inputSize(), spec.inputSize(), spec.numClasses(), batch, dtype));
        b.append(String.format(Locale.ROOT, "%-14s %-12s %-20s %14s %14s %12s%n", "layer", "kind", "output",
                "params", "MACs/image", "kept MiB"));
        for (LayerInfo r : layers) {
            b.append(String.format(Locale.ROOT, "%-14s %-12s %-20s %,14d %,14d %12.2f%n", r.name(), r.kind(),
                    r.output(), r.parameters(), r.macsPerImage(), r.activationBytes() / 1048576.0));
        }
        b.append(String.format(Locale.ROOT, "total: %,d parameters (+%,d state), %.3f GMACs per image, "
                        + "activations kept %.1f MiB, training step ~%.1f MiB (~%.1f MiB with the FC weight gradients"
                        + " as factors, one cpu replica)%n", parameters, stateElements,
                gigaMacs(), activationBytes / 1048576.0, trainingBytes / 1048576.0, factoredTrainingBytes / 1048576.0));
        return b.toString();
    }
}
