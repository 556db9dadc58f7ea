package org.vgg4j.core.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.MaxPool2d;

/**
 * The paper's warm start (§3.1): a deeper configuration begins with "the first four convolutional layers and the
 * last three fully-connected layers" of a trained configuration A; every other layer is initialised fresh.
 *
 * <p>Layers are matched by Caffe's names (the paper used Caffe): conv&lt;block&gt;_&lt;i&gt; counts convs inside
 * each block between poolings, fc6/fc7/fc8 are the classifier. A's first four convs are conv1_1, conv2_1, conv3_1
 * and conv3_2, and B to E have layers of those names with the same shapes, so copying by name is exact. A
 * BatchNorm directly after a conv belongs to it ("conv1_1_bn") and is copied with it when both networks have one.
 * This class does not train A, and does not guess when shapes differ: it fails naming the layer and both shapes.
 */
public final class WarmStart {

    /** The paper's transferred layers, in Caffe's names. */
    public static final List<String> PAPER_LAYERS = List.of("conv1_1", "conv2_1", "conv3_1", "conv3_2", "fc6", "fc7", "fc8");

    private WarmStart() {
    }

    /**
     * Caffe layer name to torchvision module path for every conv, its BatchNorm and FC layer of {@code net}, in
     * network order: "conv1_1" to "features.0", "fc6" to "classifier.0", ...
     */
    public static Map<String, String> caffeNames(Network net) {
        Map<String, String> names = new LinkedHashMap<>();
        int block = 1;
        int conv = 0;
        int fc = 6;
        String lastConv = null;
        for (NamedLayer nl : net.layers()) {
            Layer l = nl.layer();
            if (l instanceof Conv2d) {
                lastConv = "conv" + block + "_" + ++conv;
                names.put(lastConv, nl.name());
                continue;
            }
            if (l instanceof BatchNorm2d && lastConv != null) {
                names.put(lastConv + "_bn", nl.name());
            } else if (l instanceof MaxPool2d) {
                block++;
                conv = 0;
            } else if (l instanceof Linear) {
                names.put("fc" + fc++, nl.name());
            }
            lastConv = null;
        }
        return names;
    }

    /**
     * Initialises {@code target} fresh with {@code scheme} and {@code seed}, then copies the paper's seven layers
     * from {@code trainedA}. Returns the torchvision keys copied (weights, biases and any BatchNorm tensors).
     *
     * @throws IllegalArgumentException naming the layer when a name is missing or a shape differs
     */
    public static List<String> fromA(Network trainedA, Network target, Initializers.Scheme scheme, long seed) {
        Map<String, String> src = caffeNames(trainedA);
        Map<String, String> dst = caffeNames(target);
        // Check everything before touching the target, so a failed warm start leaves it as it was.
        List<String[]> pairs = new ArrayList<>();
        for (String caffe : PAPER_LAYERS) {
            String s = src.get(caffe);
            String d = dst.get(caffe);
            if (s == null || d == null) {
                throw new IllegalArgumentException("warm start: layer " + caffe + " is missing from the "
                        + (s == null ? "source '" + trainedA.name() : "target '" + target.name()) + "' network");
            }
            pairs.add(new String[] {caffe, s, d});
            String sb = src.get(caffe + "_bn");
            String db = dst.get(caffe + "_bn");
            if ((sb == null) != (db == null)) {
                throw new IllegalArgumentException("warm start: layer " + caffe + " has a batchnorm in the "
                        + (sb != null ? "source" : "target") + " network only; both must have one or neither");
            }
            if (sb != null) {
                pairs.add(new String[] {caffe + "_bn", sb, db});
            }
        }
        List<ParamStore.Entry[]> copies = new ArrayList<>();
        for (String[] p : pairs) {
            for (ParamStore.Entry se : trainedA.params().entries()) {
                if (!se.key().startsWith(p[1] + ".")) {
                    continue;
                }
                String local = se.key().substring(p[1].length() + 1);
                ParamStore.Entry de = target.params().get(p[2] + "." + local);
                if (de == null) {
                    throw new IllegalArgumentException("warm start: layer " + p[0] + " has no " + local + " in the target ("
                            + p[2] + "." + local + ")");
                }
                if (!se.spec().shape().equals(de.spec().shape())) {
                    throw new IllegalArgumentException("warm start: layer " + p[0] + " " + local + " has shape "
                            + se.spec().shape() + " in the source (" + se.key() + ") but " + de.spec().shape()
                            + " in the target (" + de.key() + "); width, input size and classes must match");
                }
                copies.add(new ParamStore.Entry[] {se, de});
            }
        }
        Initializers.initialize(target, scheme, seed);
        List<String> copied = new ArrayList<>();
        for (ParamStore.Entry[] c : copies) {
            TensorCopy.copy(c[0].value(), c[1].value());
            copied.add(c[1].key());
        }
        return Collections.unmodifiableList(copied);
    }
}
