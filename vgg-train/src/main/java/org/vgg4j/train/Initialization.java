package org.vgg4j.train;

import java.io.IOException;
import java.nio.file.Path;

import org.vgg4j.core.io.Checkpoint;
import org.vgg4j.core.io.Safetensors;
import org.vgg4j.core.io.StateDicts;
import org.vgg4j.core.io.TorchStateDict;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.TransferLearning;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.model.WarmStart;

/**
 * How a fresh run's parameters start (a resumed run takes them from its checkpoint instead), as the
 * {@link Recipe}'s {@link Recipe.Init} says: the paper's N(0, 10^-2), Glorot, the warm start from a trained A, or
 * every tensor from a checkpoint of the same architecture (trainer checkpoints and plain vgg-core/torchvision
 * files both load; the momentum is not carried over: fine-tuning starts a new solver, as Caffe's --weights), or
 * every tensor but the classifier head's, which starts fresh for the network's classes ({@link Recipe#newHead}).
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
            case FROM_CHECKPOINT -> recipe.newHead()
                    ? net -> loadWithNewHead(net, spec, recipe.initFrom(), recipe.initSeed())
                    : net -> loadWeights(net, recipe.initFrom());
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

    /**
     * Transfer learning's start: every tensor of {@code file} but the classifier head's goes into {@code net} (a
     * network of {@code spec}), strictly by name and shape; the head starts fresh (Glorot with {@code seed}), so the
     * file's head may have any number of classes. The file is loaded strictly into a network of {@code spec} with
     * the file's classes first (parameters held twice for a moment), then copied over
     * ({@link TransferLearning#copyAllButHead}).
     *
     * @throws IOException naming the file and the first tensor that does not fit
     */
    static void loadWithNewHead(Network net, VggSpec spec, Path file, long seed) throws IOException {
        String headWeight = TransferLearning.head(net) + ".weight";
        int classes = classesOf(file, headWeight);
        VggSpec fileSpec = new VggSpec(spec.config(), spec.batchNorm(), classes, spec.inputSize(), spec.widthMultiplier(),
                spec.hiddenFeatures(), spec.dropout(), spec.seed());
        try (Network pretrained = Vgg.build(net.backend(), net.dtype(), fileSpec)) {
            loadWeights(pretrained, file);
            TransferLearning.copyAllButHead(pretrained, net, Initializers.Scheme.GLOROT_UNIFORM, seed);
        }
    }

    /**
     * The number of classes of the weights file {@code file} (safetensors or torch.save): the rows of its tensor
     * {@code headWeight} ("classifier.6.weight").
     *
     * @throws IOException when the file has no such tensor or it is not a matrix
     */
    public static int classesOf(Path file, String headWeight) throws IOException {
        long[] shape;
        if (StateDicts.detect(file) == StateDicts.Format.SAFETENSORS) {
            try (Safetensors.Reader r = Safetensors.open(file)) {
                Safetensors.TensorInfo t = r.tensors().get(headWeight);
                shape = t == null ? null : t.shape();
            }
        } else {
            try (TorchStateDict sd = TorchStateDict.open(file)) {
                TorchStateDict.TensorInfo t = sd.tensors().get(headWeight);
                shape = t == null ? null : t.shape();
            }
        }
        if (shape == null || shape.length != 2) {
            throw new IOException(file + ": " + (shape == null ? "has no tensor " + headWeight
                    : "tensor " + headWeight + " has shape " + java.util.Arrays.toString(shape))
                    + "; expected the classifier head's weight (classes, features)");
        }
        return Math.toIntExact(shape[0]);
    }
}
