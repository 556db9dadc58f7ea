package org.vgg4j.train;

import java.io.IOException;
import java.nio.file.Path;

import org.vgg4j.core.io.Checkpoint;
import org.vgg4j.core.io.StateDicts;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.model.WarmStart;

/**
 * How a fresh run's parameters start (a resumed run takes them from its checkpoint instead), as the
 * {@link Recipe}'s {@link Recipe.Init} says: the paper's N(0, 10^-2), Glorot, the warm start from a trained A, or
 * every tensor from a checkpoint of the same architecture (trainer checkpoints and plain vgg-core/torchvision
 * files both load; the momentum is not carried over: fine-tuning starts a new solver, as Caffe's --weights).
 */
@FunctionalInterface
public interface Initialization {

    /** Sets the parameters and state of {@code net} (replica 0; the trainer broadcasts to the others). */
    void apply(Network net) throws IOException;

    /** The initialisation {@code recipe} asks for, for networks of {@code spec}. */
    static Initialization forRecipe(Recipe recipe, VggSpec spec) {
        return switch (recipe.init()) {
            case PAPER_NORMAL -> net -> Initializers.initialize(net, Initializers.Scheme.PAPER_NORMAL, recipe.initSeed());
            case GLOROT -> net -> Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, recipe.initSeed());
            case FROM_CHECKPOINT -> net -> loadWeights(net, recipe.initFrom());
            case WARM_START_A -> net -> {
                VggSpec aSpec = new VggSpec(VggConfig.A, spec.batchNorm(), spec.numClasses(),
                        spec.inputSize(), spec.widthMultiplier(), spec.hiddenFeatures(), spec.dropout(), spec.seed());
                try (Network a = Vgg.build(net.backend(), net.dtype(), aSpec)) {
                    loadWeights(a, recipe.initFrom());
                    WarmStart.fromA(a, net, Initializers.Scheme.GLOROT_UNIFORM, recipe.initSeed());
                }
            };
        };
    }

    /**
     * Loads the network tensors of {@code file} (any float dtype), ignoring a trainer checkpoint's momentum: a
     * safetensors file or a torchvision {@code .pth} state dict, told apart by content ({@link StateDicts}).
     */
    static void loadWeights(Network net, Path file) throws IOException {
        StateDicts.load(net, file, new Checkpoint.Options(true, k -> k.startsWith("optimizer.")));
    }
}
