package org.vgg4j.train;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The paper's training recipes (§3.1) as named presets, plus the small-image recipe of the Fashion-MNIST demo.
 * Each is one constant (or, for those that start from a checkpoint, one call) here and one {@code --recipe NAME} on
 * the command line; {@link Recipe#toBuilder()} changes any value of one (recipes are immutable, so the constants are
 * shared safely). Presets fix the solver; the network (configuration, width, BN) is chosen separately.
 *
 * <pre>
 *   paper-a           configuration A from N(0, 10^-2), fixed S = 256, batch 256, lr 10^-2 / 10 on plateau (3x),
 *                     momentum 0.9, weight decay 5e-4, 74 epochs / 370K iterations
 *   paper-warm        B..E: first 4 convs + 3 FC from a trained A (initFrom), the rest fresh; otherwise as paper-a
 *   paper-s384        S = 384 initialised from the S = 256 model (initFrom), lr 10^-3
 *   paper-multiscale  S ~ U[256, 512] fine-tuned from the S = 384 model (initFrom), lr 10^-3 (the paper does not
 *                     state this rate; 10^-3 follows its S = 384 fine-tuning)
 *   glorot            any configuration from scratch with Glorot initialisation (the paper's footnote), fixed S = 256
 *   fashion           small 32x32 inputs (Fashion-MNIST): batch 128, lr 0.05, 100-step warm-up, cosine decay, 12 epochs
 * </pre>
 */
public final class Recipes {
    /** Names accepted by {@link #named}. */
    public static final List<String> NAMES = List.of("paper-a", "paper-warm", "paper-s384", "paper-multiscale", "glorot",
            "fashion");

    /** Train configuration A from N(0, 10^-2), the paper's first network. */
    public static final Recipe PAPER_A = Recipe.builder().name("paper-a").batchSize(256).microBatch(0).baseLr(1e-2)
            .momentum(0.9).weightDecay(5e-4).schedule(Schedule.Plateau.PAPER).maxEpochs(74).maxIterations(370_000)
            .init(Recipe.Init.PAPER_NORMAL).initSeed(1).dataSeed(1).scale(256).checkpointEvery(5000).keepLast(3)
            .onNonFinite(Recipe.NonFinitePolicy.STOP).stuckLossSteps(2000).build();

    /** Glorot initialisation from scratch: the paper's later finding that no warm start is needed. */
    public static final Recipe GLOROT = PAPER_A.toBuilder().name("glorot").init(Recipe.Init.GLOROT).build();

    /**
     * Fashion-MNIST at 32x32: Glorot, batch 128, lr 0.05 with a 100-step warm-up (at most a tenth of the run) and
     * cosine decay, momentum 0.9, weight decay 5e-4, 12 epochs. Meant for BN networks: the acceptance run of
     * docs/benchmarks.md (92.85 %) and, with batch 64 and 10 epochs, the demo (examples' TrainFashionMnist, and
     * {@code vgg train} without {@code --data} and {@code --recipe}).
     */
    public static final Recipe FASHION = Recipe.builder().name("fashion").batchSize(128).microBatch(0).baseLr(0.05)
            .momentum(0.9).weightDecay(5e-4).schedule(new Schedule.Cosine(100, 0)).maxEpochs(12).maxIterations(0)
            .init(Recipe.Init.GLOROT).initSeed(1).dataSeed(1).scale(32).checkpointEvery(0).keepLast(2)
            .onNonFinite(Recipe.NonFinitePolicy.STOP).stuckLossSteps(300).build();

    private Recipes() {
    }

    /** {@link #PAPER_A}. */
    public static Recipe paperA() {
        return PAPER_A;
    }

    /** Deeper configurations B..E warm-started from a trained A (checkpoint {@code trainedA}). */
    public static Recipe paperWarmStart(Path trainedA) {
        return PAPER_A.toBuilder().name("paper-warm").init(Recipe.Init.WARM_START_A).initFrom(trainedA).build();
    }

    /** S = 384 initialised from the S = 256 model with the smaller rate 10^-3. */
    public static Recipe paperS384(Path fromS256) {
        return PAPER_A.toBuilder().name("paper-s384").init(Recipe.Init.FROM_CHECKPOINT).initFrom(fromS256).baseLr(1e-3)
                .scale(384).build();
    }

    /** Multi-scale S ~ U[256, 512], all layers fine-tuned from the S = 384 model. */
    public static Recipe paperMultiScale(Path fromS384) {
        return PAPER_A.toBuilder().name("paper-multiscale").init(Recipe.Init.FROM_CHECKPOINT).initFrom(fromS384)
                .baseLr(1e-3).scales(256, 512).build();
    }

    /** {@link #GLOROT}. */
    public static Recipe glorot() {
        return GLOROT;
    }

    /** {@link #FASHION}. */
    public static Recipe fashion() {
        return FASHION;
    }

    /**
     * A preset by name; {@code from} is the checkpoint the warm-start and fine-tuning presets start from.
     *
     * @throws IllegalArgumentException naming the value and the accepted names, or the missing checkpoint
     */
    public static Recipe named(String name, Path from) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        boolean needsFrom = n.equals("paper-warm") || n.equals("paper-s384") || n.equals("paper-multiscale");
        if (needsFrom && from == null) {
            throw new IllegalArgumentException("recipe '" + name + "' starts from a trained checkpoint: give one (--init-from)");
        }
        return switch (n) {
            case "paper-a" -> PAPER_A;
            case "paper-warm" -> paperWarmStart(from);
            case "paper-s384" -> paperS384(from);
            case "paper-multiscale" -> paperMultiScale(from);
            case "glorot" -> GLOROT;
            case "fashion" -> FASHION;
            default -> throw new IllegalArgumentException("unknown recipe '" + name + "'; expected one of " + NAMES);
        };
    }
}
