package org.vgg4j.train;

import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checks that keep a long run honest:
 * <ul>
 *   <li>{@link #nonFinite}: a NaN or infinity in the loss or in the gradient buffer, reported with the step and
 *       a parameter that is not finite, or else the non-finite gradient nearest the output, so the layer is named;</li>
 *   <li>{@link #lossExploded}: a finite loss far above the chance level, divergence as surely as a NaN: the rule is
 *       <b>loss &gt; {@value #EXPLODED_TIMES_CHANCE} x ln(classes)</b> (at least {@value #EXPLODED_TIMES_CHANCE}
 *       nats), checked every step. ln(classes) is the loss of uniform guessing, where every initialisation of the
 *       library starts; a mean loss 100 times that gives the true class a probability below classes^-100, which
 *       only weights that have blown up produce (a healthy run, spikes included, stays within a few multiples of
 *       it). An exploding loss crosses the line on its way up, orders of magnitude before it overflows to a NaN;</li>
 *   <li>{@link StuckLoss}: the loss staying near ln(classes) — the network predicts uniform probabilities and
 *       is not learning, the failure of deep VGGs without BN from a poor initialisation (why the paper
 *       warm-starts B..E from A).</li>
 * </ul>
 * Not here: what to do about it (the {@link Trainer} stops or rolls back as the {@link Recipe} says, for a non-finite
 * value and an exploded loss alike).
 */
public final class Guardrails {
    private static final Logger LOG = LoggerFactory.getLogger(Guardrails.class);

    private Guardrails() {
    }

    /**
     * Null when the loss and every gradient of {@code net} are finite; otherwise a message naming the step and
     * the layer. One sumOfSquares over the whole buffer on the happy path (and a bound from the factors of the
     * gradients held as factors); per-tensor only when it is not finite.
     */
    public static String nonFinite(long step, double loss, Network net) {
        ParamStore p = net.params();
        if (Double.isFinite(loss) && p.gradsSurelyFinite()) {
            return null;
        }
        p.densifyGrads(); // the exact search below reads every gradient element by element
        // A parameter that is itself not finite is the cause.
        for (ParamStore.Entry e : p.entries()) {
            if (!Double.isFinite(net.backend().sumOfSquares(e.value()))) {
                return "step " + step + ": loss " + loss + ", parameter " + e.key() + " is not finite (layer "
                        + layerOf(e.key()) + ")";
            }
        }
        // Backward runs from the output to the input, so the non-finite gradient nearest the output is where it
        // first appeared: scan in reverse network order.
        for (int i = p.entries().size() - 1; i >= 0; i--) {
            ParamStore.Entry e = p.entries().get(i);
            if (e.grad() != null && !Double.isFinite(net.backend().sumOfSquares(e.grad()))) {
                return "step " + step + ": loss " + loss + ", gradient of " + e.key() + " is not finite (layer "
                        + layerOf(e.key()) + ")";
            }
        }
        return "step " + step + ": loss " + loss + " is not finite (every gradient is finite: the forward pass overflowed)";
    }

    /** How many times ln(classes) a finite loss may reach before it counts as divergence (see the class comment). */
    public static final double EXPLODED_TIMES_CHANCE = 100;

    /** The loss above which {@link #lossExploded} reports divergence: 100 x ln(classes), at least 100. */
    public static double explodedLimit(int classes) {
        return EXPLODED_TIMES_CHANCE * Math.max(1, Math.log(classes));
    }

    /**
     * Null unless {@code loss} is above {@link #explodedLimit}; then a message naming the step, the loss and the
     * limit. A NaN is not reported here ({@link #nonFinite} names its layer); an infinite loss is.
     */
    public static String lossExploded(long step, double loss, int classes) {
        double limit = explodedLimit(classes);
        if (!(loss > limit)) {
            return null;
        }
        return String.format(java.util.Locale.ROOT, "step %d: loss %.4g is above %.0f x ln(%d) = %.1f, far above the "
                + "chance level ln(%d) = %.4f: the loss exploded (a learning rate too high for this network?)", step,
                loss, EXPLODED_TIMES_CHANCE, classes, limit, classes, Math.log(classes));
    }

    private static String layerOf(String key) {
        return key.substring(0, key.lastIndexOf('.'));
    }

    /** Counts consecutive steps whose loss is within 2 % of ln(classes); warns once per stuck stretch. */
    public static final class StuckLoss {
        private final double chance;
        private final int window;
        private int run;
        private boolean warned;

        public StuckLoss(int classes, int window) {
            this.chance = Math.log(classes);
            this.window = window;
        }

        /** Returns a warning the first time the loss has been stuck for {@code window} steps, else null. */
        public String observe(long step, double loss) {
            if (window <= 0 || classes() < 2) {
                return null;
            }
            if (Math.abs(loss - chance) <= 0.02 * chance) {
                run++;
            } else {
                run = 0;
                warned = false;
            }
            if (run >= window && !warned) {
                warned = true;
                String m = String.format(java.util.Locale.ROOT,
                        "step %d: the loss has stayed near ln(%d) = %.4f for %d steps: the network predicts uniform "
                                + "probabilities and is not learning (deep VGGs without BatchNorm need a warm start "
                                + "from A or Glorot initialisation, or a smaller learning rate)", step, classes(), chance, run);
                LOG.warn(m);
                return m;
            }
            return null;
        }

        private int classes() {
            return (int) Math.round(Math.exp(chance));
        }
    }
}
