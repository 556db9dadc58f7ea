package org.vgg4j.core.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import org.vgg4j.core.layers.ParamSpec;

/**
 * Fine-tuning a trained network on another task: a new classifier head for N classes (the last layer with
 * parameters, {@code classifier.6} in VGG, initialised fresh; every other tensor kept), layers frozen up to a named
 * one, and learning-rate multipliers per group of layers (Caffe's {@code lr_mult}).
 *
 * <p>Freezing up to layer L: the parameters of L and of every layer before it get multiplier 0 (no update, no
 * weight decay; see {@link org.vgg4j.core.optim.Sgd}), and the first layer with parameters after L no longer
 * computes its input gradient, so backward stops there: the frozen layers' gradients are not even computed.
 * BatchNorm layers in the frozen part still update their running statistics in training forwards (as PyTorch's
 * {@code requires_grad=False} does); their gamma and beta stay as loaded.
 */
public final class TransferLearning {

    /** The classifier head of every VGG network (torchvision's name of FC8). */
    public static final String VGG_HEAD = "classifier.6";

    private TransferLearning() {
    }

    /** The name of the last layer with trained parameters: the classifier head ("classifier.6" in VGG). */
    public static String head(Network net) {
        List<NamedLayer> layers = net.layers();
        for (int i = layers.size() - 1; i >= 0; i--) {
            for (ParamSpec s : layers.get(i).layer().params()) {
                if (s.role() != ParamSpec.Role.STATE) {
                    return layers.get(i).name();
                }
            }
        }
        throw new IllegalArgumentException("network " + net.name() + " has no layer with trained parameters");
    }

    /**
     * A network of {@code spec} on {@code pretrained}'s backend and dtype holding every tensor of {@code pretrained}
     * but the head's, whose new layer (spec's classes) starts fresh with {@code scheme} and {@code seed}.
     * {@code pretrained} is left as it was; the caller closes both.
     *
     * @throws IllegalArgumentException when the spec's network differs from {@code pretrained} other than in the
     *                                  head's number of outputs, naming the first tensor that does not fit
     */
    public static Network withNewHead(Network pretrained, VggSpec spec, Initializers.Scheme scheme, long seed) {
        Network target = Vgg.build(pretrained.backend(), pretrained.dtype(), spec);
        try {
            copyAllButHead(pretrained, target, scheme, seed);
            return target;
        } catch (RuntimeException | Error e) {
            target.close();
            throw e;
        }
    }

    /**
     * Copies every parameter and state tensor of {@code source} into {@code target} except the head's (see
     * {@link #head}), which {@code target} initialises fresh with {@code scheme} and {@code seed} (the values a full
     * initialisation with that seed gives it). Both networks must have the same tensors with the same shapes, the
     * head's number of outputs (its weight's rows, its bias) aside; everything is checked before {@code target}
     * changes. Returns the keys copied.
     *
     * @throws IllegalArgumentException naming the first tensor missing from either network or of another shape
     */
    public static List<String> copyAllButHead(Network source, Network target, Initializers.Scheme scheme, long seed) {
        String head = head(target);
        if (!head.equals(head(source))) {
            throw new IllegalArgumentException("the head of network " + target.name() + " is " + head + " but the head of "
                    + source.name() + " is " + head(source) + "; expected the same architecture but for the classes");
        }
        List<ParamStore.Entry[]> copies = new ArrayList<>();
        for (ParamStore.Entry t : target.params().entries()) {
            ParamStore.Entry s = source.params().get(t.key());
            if (s == null) {
                throw new IllegalArgumentException("tensor " + t.key() + " of network " + target.name() + " is missing from "
                        + source.name() + "; expected the same architecture but for the head's classes");
            }
            int[] sd = s.spec().shape().dims();
            int[] td = t.spec().shape().dims();
            boolean headTensor = t.key().startsWith(head + ".");
            // the head may differ in its outputs only: dimension 0 of its weight and bias
            boolean fits = headTensor ? sd.length == td.length && Arrays.equals(Arrays.copyOfRange(sd, 1, sd.length),
                    Arrays.copyOfRange(td, 1, td.length)) : Arrays.equals(sd, td);
            if (!fits) {
                throw new IllegalArgumentException("tensor " + t.key() + " has shape " + s.spec().shape() + " in "
                        + source.name() + " but " + t.spec().shape() + " in " + target.name() + "; expected "
                        + (headTensor ? "the same but for dimension 0 (the classes)" : "the same shape"));
            }
            if (!headTensor) {
                copies.add(new ParamStore.Entry[] {s, t});
            }
        }
        for (ParamStore.Entry s : source.params().entries()) {
            if (target.params().get(s.key()) == null) {
                throw new IllegalArgumentException("tensor " + s.key() + " of network " + source.name()
                        + " has no place in " + target.name() + "; expected the same architecture but for the head's classes");
            }
        }
        Initializers.initialize(target, scheme, seed, k -> k.startsWith(head + "."));
        List<String> copied = new ArrayList<>();
        for (ParamStore.Entry[] c : copies) {
            TensorCopy.copy(c[0].value(), c[1].value());
            copied.add(c[1].key());
        }
        return Collections.unmodifiableList(copied);
    }

    /** As {@link #configure} with no multipliers: freezes {@code layer} and every layer before it. */
    public static List<String> freezeUpTo(Network net, String layer) {
        return configure(net, layer, Map.of());
    }

    /**
     * Sets what {@code net} trains, from scratch (earlier settings are replaced): every trained tensor gets the
     * multiplier of the longest prefix of {@code lrMult} it falls under ("features" covers features.0.weight,
     * "classifier.6" its weight and bias; 1 when none), then the tensors of layer {@code freezeUpTo} and of every
     * layer before it get 0, and backward stops at the first layer with parameters after it. Returns the keys
     * frozen (empty without {@code freezeUpTo}).
     *
     * @param freezeUpTo a layer name ("features.16"), or null to freeze nothing
     * @param lrMult     layer-name prefix to learning-rate multiplier (finite, >= 0); may be empty
     * @throws IllegalArgumentException for a layer or prefix the network does not have (listing those it has), a
     *                                  multiplier out of range, or a freeze that leaves nothing to train
     */
    public static List<String> configure(Network net, String freezeUpTo, Map<String, Double> lrMult) {
        List<NamedLayer> layers = net.layers();
        List<String> names = new ArrayList<>();
        for (NamedLayer nl : layers) {
            names.add(nl.name());
        }
        int frozenTo = -1;
        if (freezeUpTo != null) {
            frozenTo = names.indexOf(freezeUpTo);
            if (frozenTo < 0) {
                throw new IllegalArgumentException("cannot freeze up to '" + freezeUpTo + "': network " + net.name()
                        + " has no such layer; its layers are " + names);
            }
        }
        int firstTrainable = -1;
        for (int i = frozenTo + 1; i < layers.size() && firstTrainable < 0; i++) {
            if (trained(layers.get(i))) {
                firstTrainable = i;
            }
        }
        if (firstTrainable < 0) {
            throw new IllegalArgumentException("freezing up to '" + freezeUpTo + "' leaves no layer of network " + net.name()
                    + " to train; expected a layer before the head " + head(net));
        }
        ParamStore params = net.params();
        for (Map.Entry<String, Double> m : lrMult.entrySet()) {
            boolean any = params.entries().stream().anyMatch(e -> e.grad() != null && e.key().startsWith(m.getKey() + "."));
            if (!any) {
                throw new IllegalArgumentException("learning-rate multiplier for '" + m.getKey() + "': no trained parameter"
                        + " of network " + net.name() + " lies under it; expected a layer or a prefix such as features,"
                        + " classifier, " + head(net));
            }
            double v = m.getValue();
            if (!(v >= 0) || Double.isInfinite(v)) {
                throw new IllegalArgumentException("learning-rate multiplier " + v + " for '" + m.getKey()
                        + "' must be finite and >= 0");
            }
        }
        List<String> frozen = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            String layer = layers.get(i).name();
            for (ParamSpec s : layers.get(i).layer().params()) {
                if (s.role() == ParamSpec.Role.STATE) {
                    continue;
                }
                String key = layer + "." + s.name();
                double mult = i <= frozenTo ? 0.0 : multiplier(key, lrMult);
                params.setLrMultiplier(key, mult);
                if (i <= frozenTo) {
                    frozen.add(key);
                }
            }
            // backward stops at the first layer trained after the frozen ones (the first layer never needs dL/dx)
            layers.get(i).layer().setNeedsInputGradient(i > 0 && !(frozenTo >= 0 && i == firstTrainable));
        }
        return Collections.unmodifiableList(frozen);
    }

    private static boolean trained(NamedLayer nl) {
        return nl.layer().params().stream().anyMatch(s -> s.role() != ParamSpec.Role.STATE);
    }

    /** The multiplier of the longest prefix {@code key} falls under, 1 when none. */
    private static double multiplier(String key, Map<String, Double> lrMult) {
        String best = null;
        for (String p : lrMult.keySet()) {
            if (key.startsWith(p + ".") && (best == null || p.length() > best.length())) {
                best = p;
            }
        }
        return best == null ? 1.0 : lrMult.get(best);
    }
}
