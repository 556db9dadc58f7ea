package org.vgg4j.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.ModelMetadata;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.BadImageLog;
import org.vgg4j.data.ImageDataset;
import org.vgg4j.data.Normalization;

/**
 * The fluent way to evaluate from Java: one of the paper's protocols ({@link Evaluator.View}) at test scales Q over a
 * dataset, for networks the caller holds or for checkpoints, which record their architecture and normalisation.
 * Each method sets one part of an {@link Evaluator.Protocol}; {@link #on} runs {@link Evaluator#evaluate}.
 *
 * <pre>{@code
 * Evaluator.Result r = Evaluation.of(best).protocol(Evaluator.View.DENSE_AND_MULTI_CROP).scales(256, 384, 512).on(val);
 * }</pre>
 *
 * Defaults: {@link Evaluator.View#DENSE}, a 5x5 multi-crop grid, flips, the checkpoint's normalisation.
 */
public final class Evaluation {
    private final List<Network> networks;
    private final List<Path> checkpoints;
    private Evaluator.View view = Evaluator.View.DENSE;
    private int[] scales;
    private int grid = 5;
    private boolean flips = true;
    private Normalization norm;
    private String backend;
    private BadImageLog bad = new BadImageLog();

    private Evaluation(List<Network> networks, List<Path> checkpoints) {
        this.networks = networks;
        this.checkpoints = checkpoints;
    }

    /** These networks, an ensemble when several (softmax averaged); they stay the caller's, open. */
    public static Evaluation of(Network... ensemble) {
        if (ensemble.length == 0) {
            throw new IllegalArgumentException("no network given: expected at least one");
        }
        return new Evaluation(List.of(ensemble), List.of());
    }

    /**
     * Checkpoints written by a training run (an ensemble when several): each is built from the architecture it
     * records, on {@link #backend}, and closed after {@link #on}.
     */
    public static Evaluation of(Path... checkpoints) {
        if (checkpoints.length == 0) {
            throw new IllegalArgumentException("no checkpoint given: expected at least one");
        }
        for (Path p : checkpoints) {
            if (!Files.isRegularFile(p)) {
                throw new IllegalArgumentException("checkpoint " + p + ": no such file; expected a safetensors checkpoint");
            }
        }
        return new Evaluation(List.of(), List.of(checkpoints));
    }

    /** Which views: CENTRE, DENSE (default), MULTI_CROP or DENSE_AND_MULTI_CROP. */
    public Evaluation protocol(Evaluator.View v) {
        this.view = v;
        return this;
    }

    /** The test scales Q (shorter side), e.g. 256, 384, 512. Required. */
    public Evaluation scales(int... q) {
        this.scales = q.clone();
        return this;
    }

    /** The multi-crop lattice side (default 5: 5x5x2 = 50 crops with flips). */
    public Evaluation grid(int g) {
        this.grid = g;
        return this;
    }

    /** Mirrored views too (default true). */
    public Evaluation flips(boolean f) {
        this.flips = f;
        return this;
    }

    /** The input normalisation of training; a checkpoint's recorded one is the default. */
    public Evaluation normalization(Normalization n) {
        this.norm = n;
        return this;
    }

    /** The backend checkpoints are built on (default: cpu when present, reference otherwise). */
    public Evaluation backend(String name) {
        this.backend = name;
        return this;
    }

    /** Where unreadable images are listed with their reasons (default: a log of its own, in memory). */
    public Evaluation badImages(BadImageLog log) {
        this.bad = log;
        return this;
    }

    /**
     * Evaluates the networks on {@code data}.
     *
     * @throws IllegalArgumentException naming a missing part (scales, normalisation) or a checkpoint that records no
     *                                  architecture
     */
    public Evaluator.Result on(ImageDataset data) throws IOException {
        if (scales == null) {
            throw new IllegalArgumentException("scales not set: expected scales(Q...), e.g. scales(256, 384, 512)");
        }
        if (!networks.isEmpty()) {
            return Evaluator.evaluate(networks, data, protocol(norm), bad);
        }
        List<VggSpec> specs = new ArrayList<>();
        Normalization n = norm;
        for (Path p : checkpoints) { // every checkpoint is checked before any network is built
            var meta = ModelMetadata.read(p);
            specs.add(ModelMetadata.spec(meta, p).orElseThrow(() -> new IllegalArgumentException("checkpoint " + p
                    + " records no architecture; expected a checkpoint written by a training run, or build the network"
                    + " and use Evaluation.of(network)")));
            if (n == null) {
                n = ModelMetadata.normalization(meta, p).map(m -> new Normalization(m.mean(), m.std())).orElse(null);
            }
        }
        Evaluator.Protocol p = protocol(n);
        try (Backend b = Backends.create(backend != null ? backend
                : Backends.names().contains("cpu") ? "cpu" : "reference")) {
            List<Network> nets = new ArrayList<>();
            try {
                for (int i = 0; i < checkpoints.size(); i++) {
                    Network net = Vgg.build(b, DType.FLOAT32, specs.get(i));
                    nets.add(net);
                    Initialization.loadWeights(net, checkpoints.get(i));
                }
                return Evaluator.evaluate(nets, data, p, bad);
            } finally {
                nets.forEach(Network::close);
            }
        }
    }

    private Evaluator.Protocol protocol(Normalization n) {
        if (n == null) {
            throw new IllegalArgumentException("normalization not set and not recorded in the checkpoint: expected"
                    + " normalization(...), e.g. Normalization.IMAGENET_MEAN_RGB (the paper's) or TORCHVISION");
        }
        return new Evaluator.Protocol(view, scales, grid, flips, n);
    }
}
