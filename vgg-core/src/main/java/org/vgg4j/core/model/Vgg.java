package org.vgg4j.core.model;

import java.util.ArrayList;
import java.util.List;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.DropoutRng;
import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Dropout;
import org.vgg4j.core.layers.Flatten;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.LocalResponseNorm;
import org.vgg4j.core.layers.MaxPool2d;
import org.vgg4j.core.layers.ReLU;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;

/**
 * Builds a VGG network from the {@link VggConfig} table, as torchvision's {@code make_layers}: module paths
 * "features.i" count every conv, BN, ReLU, LRN and pool; "classifier.0/3/6" are the FC layers, so parameter
 * names equal torchvision's state-dict keys for A, B, D, E and their BN variants. Parameters start at zero:
 * initialise them with {@code Initializers}.
 *
 * <p>Between features and classifier torchvision has an AdaptiveAvgPool2d(7x7), the identity at 224x224; we
 * flatten the final map directly, so for other input sizes FC6 takes 512 x (size/32)^2 inputs.
 */
public final class Vgg {
    private Vgg() {
    }

    public static Network build(Backend backend, DType dtype, VggSpec spec) {
        return new Network(spec.name(), backend, dtype, Shape.of(3, spec.inputSize(), spec.inputSize()), layers(backend, spec));
    }

    /**
     * The named layers of {@code spec} without a network around them (no parameter memory is allocated), e.g. for
     * {@link ModelInfo} to count parameters and MACs of a full-size model cheaply.
     */
    public static List<NamedLayer> layers(Backend backend, VggSpec spec) {
        List<NamedLayer> layers = new ArrayList<>();
        int channels = 3;
        int index = 0;
        for (String token : spec.config().layers()) {
            if (token.equals("M")) {
                layers.add(new NamedLayer("features." + index++, new MaxPool2d(backend)));
            } else if (token.equals("LRN")) {
                layers.add(new NamedLayer("features." + index++, new LocalResponseNorm(backend)));
            } else {
                boolean oneByOne = token.startsWith("c1-");
                int out = spec.channels(Integer.parseInt(oneByOne ? token.substring(3) : token));
                int kernel = oneByOne ? 1 : 3;
                layers.add(new NamedLayer("features." + index++, new Conv2d(backend, channels, out, kernel, kernel / 2)));
                if (spec.batchNorm()) {
                    layers.add(new NamedLayer("features." + index++, new BatchNorm2d(backend, out)));
                }
                layers.add(new NamedLayer("features." + index++, new ReLU(backend)));
                channels = out;
            }
        }
        int side = spec.inputSize() >> VggConfig.POOLINGS;
        int flat = channels * side * side;
        int hidden = spec.hiddenFeatures();
        layers.add(new NamedLayer("flatten", new Flatten()));
        layers.add(new NamedLayer("classifier.0", new Linear(backend, flat, hidden)));
        layers.add(new NamedLayer("classifier.1", new ReLU(backend)));
        layers.add(new NamedLayer("classifier.2", new Dropout(backend, spec.dropout(), DropoutRng.mix64(spec.seed() + 1))));
        layers.add(new NamedLayer("classifier.3", new Linear(backend, hidden, hidden)));
        layers.add(new NamedLayer("classifier.4", new ReLU(backend)));
        layers.add(new NamedLayer("classifier.5", new Dropout(backend, spec.dropout(), DropoutRng.mix64(spec.seed() + 2))));
        layers.add(new NamedLayer("classifier.6", new Linear(backend, hidden, spec.numClasses())));
        return layers;
    }
}
