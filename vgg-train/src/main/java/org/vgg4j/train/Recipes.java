package org.vgg4j.train;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The paper's training recipes (§3.1) as named presets, plus the small-image recipe of the Fashion-MNIST demo.
 * Each is one call here and one {@code --recipe NAME} on the command line. Presets fix the solver; the network
 * (configuration, width, BN) is chosen separately.
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

    private Recipes() {
    }

    /** Train configuration A from N(0, 10^-2), the paper's first network. */
    public static Recipe paperA() {
        return new Recipe("paper-a", 256, 0, 1e-2, 0.9, 5e-4, Schedule.Plateau.PAPER, 74, 370_000,
                Recipe.Init.PAPER_NORMAL, null, 1, 1, 256, 256, 5000, 3, Recipe.NonFinitePolicy.STOP, 2000);
    }

    /** Deeper configurations B..E warm-started from a trained A (checkpoint {@code trainedA}). */
    public static Recipe paperWarmStart(Path trainedA) {
        return paperA().withInit(Recipe.Init.WARM_START_A, trainedA).withName("paper-warm");
    }

    /** S = 384 initialised from the S = 256 model with the smaller rate 10^-3. */
    public static Recipe paperS384(Path fromS256) {
        return paperA().withInit(Recipe.Init.FROM_CHECKPOINT, fromS256).withLr(1e-3).withScales(384, 384)
                .withName("paper-s384");
    }

    /** Multi-scale S ~ U[256, 512], all layers fine-tuned from the S = 384 model. */
    public static Recipe paperMultiScale(Path fromS384) {
        return paperA().withInit(Recipe.Init.FROM_CHECKPOINT, fromS384).withLr(1e-3).withScales(256, 512)
                .withName("paper-multiscale");
    }

    /** Glorot initialisation from scratch: the paper's later finding that no warm start is needed. */
    public static Recipe glorot() {
        return paperA().withInit(Recipe.Init.GLOROT, null).withName("glorot");
    }

    /**
     * Fashion-MNIST at 32x32: Glorot, batch 128, lr 0.05 with a 100-step warm-up (at most a tenth of the run) and
     * cosine decay, momentum 0.9, weight decay 5e-4, 12 epochs. Meant for BN networks: the acceptance run of
     * docs/benchmarks.md (92.85 %) and, with fewer epochs, the demo.
     */
    public static Recipe fashion() {
        return new Recipe("fashion", 128, 0, 0.05, 0.9, 5e-4, new Schedule.Cosine(100, 0), 12, 0, Recipe.Init.GLOROT,
                null, 1, 1, 32, 32, 0, 2, Recipe.NonFinitePolicy.STOP, 300);
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
            case "paper-a" -> paperA();
            case "paper-warm" -> paperWarmStart(from);
            case "paper-s384" -> paperS384(from);
            case "paper-multiscale" -> paperMultiScale(from);
            case "glorot" -> glorot();
            case "fashion" -> fashion();
            default -> throw new IllegalArgumentException("unknown recipe '" + name + "'; expected one of " + NAMES);
        };
    }
}
