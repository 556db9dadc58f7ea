package org.vgg4j.core.model;

import java.util.ArrayList;
import java.util.List;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
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
 * <p>Two ways in: {@link #build} puts a network on a backend the caller owns and leaves its parameters at zero;
 * the one-line models ({@link #vgg16()}, {@link #of}) create their own backend, initialise the parameters, and
 * close that backend when the network is closed.
 *
 * <p>What torchvision's {@code VGG} has that ours lacks or does differently:
 * <ul>
 *   <li>Between features and classifier torchvision has an AdaptiveAvgPool2d(7x7), the identity at 224x224; we
 *       flatten the final map directly, so for other input sizes FC6 takes 512 x (size/32)^2 inputs (torchvision's
 *       always takes 512 x 7 x 7), and torchvision's FC weights fit only a 224x224 network.</li>
 *   <li>Initialisation: torchvision draws conv weights from Kaiming-normal (fan-out, ReLU gain) and FC weights from
 *       N(0, 0.01^2); the one-line models use {@link Initializers.Scheme#GLOROT_UNIFORM} (or, with
 *       {@code PAPER_NORMAL}, the paper's normal draw of variance 10^-2), so equal seeds do not give torchvision's values.</li>
 *   <li>No {@code weights=} argument: pretrained weights are loaded into a built network from a safetensors file
 *       with {@code org.vgg4j.core.io.Checkpoint}.</li>
 *   <li>Our module list has a "flatten" entry (torchvision flattens inside {@code forward}); it has no
 *       parameters, so the state-dict keys are unchanged.</li>
 *   <li>Dropout masks come from our own counter-based generator, not from torch's RNG.</li>
 * </ul>
 * Configurations A-LRN and C, which torchvision lacks, are built the same way ({@link #of}).
 */
public final class Vgg {
    private Vgg() {
    }

    /** torchvision's vgg11 (configuration A) on a new {@code cpu} backend; see {@link #of}. */
    public static Network vgg11() {
        return of(VggConfig.A, VggOptions.torchvision());
    }

    /** torchvision's vgg11_bn (configuration A with BatchNorm) on a new {@code cpu} backend; see {@link #of}. */
    public static Network vgg11_bn() {
        return of(VggConfig.A, VggOptions.torchvision().batchNorm(true));
    }

    /** torchvision's vgg13 (configuration B) on a new {@code cpu} backend; see {@link #of}. */
    public static Network vgg13() {
        return of(VggConfig.B, VggOptions.torchvision());
    }

    /** torchvision's vgg13_bn (configuration B with BatchNorm) on a new {@code cpu} backend; see {@link #of}. */
    public static Network vgg13_bn() {
        return of(VggConfig.B, VggOptions.torchvision().batchNorm(true));
    }

    /** torchvision's vgg16 (configuration D) on a new {@code cpu} backend; see {@link #of}. */
    public static Network vgg16() {
        return of(VggConfig.D, VggOptions.torchvision());
    }

    /** torchvision's vgg16_bn (configuration D with BatchNorm) on a new {@code cpu} backend; see {@link #of}. */
    public static Network vgg16_bn() {
        return of(VggConfig.D, VggOptions.torchvision().batchNorm(true));
    }

    /** torchvision's vgg19 (configuration E) on a new {@code cpu} backend; see {@link #of}. */
    public static Network vgg19() {
        return of(VggConfig.E, VggOptions.torchvision());
    }

    /** torchvision's vgg19_bn (configuration E with BatchNorm) on a new {@code cpu} backend; see {@link #of}. */
    public static Network vgg19_bn() {
        return of(VggConfig.E, VggOptions.torchvision().batchNorm(true));
    }

    /**
     * A ready network: configuration {@code config} shaped by {@code options}, on a backend it creates for itself
     * ({@code options.backend()}, "cpu" unless set), with its parameters initialised ({@code options.init()},
     * {@code options.seed()}). The network owns that backend: {@link Network#close()} closes it after freeing
     * the parameters, so use it in try-with-resources and do not close {@code network.backend()} yourself.
     *
     * <p>No silent fallback: when the chosen backend cannot run here (e.g. the cpu backend's natives do not load
     * on this platform) this fails with the backend's reason; choose another with {@code options.backend(name)}.
     */
    public static Network of(VggConfig config, VggOptions options) {
        VggSpec spec = options.spec(config);
        Backend backend;
        try {
            backend = Backends.create(options.backend(), options.device());
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new IllegalStateException("cannot build VGG " + spec.name() + ": " + e.getMessage()
                    + "; choose another backend with VggOptions.backend(name), e.g. \"reference\" (plain Java, slow)", e);
        }
        Network net;
        try {
            net = build(backend, options.dtype(), spec);
        } catch (RuntimeException | Error e) {
            backend.close();
            throw e;
        }
        net.closingBackend();
        try {
            Initializers.initialize(net, options.init(), options.seed());
        } catch (RuntimeException | Error e) {
            net.close();
            throw e;
        }
        return net;
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
