package org.vgg4j.train;

import java.util.Locale;

/**
 * Learning-rate schedules as pure functions: the rate is a function of the step number and of the validation
 * history's summary ({@link Plateau.State}), never of hidden mutable state, so a resumed run recomputes exactly
 * the rate the uninterrupted run used. Not here: the optimiser (vgg-core's Sgd) or when validation runs (Trainer).
 *
 * <ul>
 *   <li>{@link Plateau}: the paper's §3.1 rule, lr / 10 when validation top-1 error stops improving, at most 3 times;</li>
 *   <li>{@link StepDecay}: lr * gamma^(floor(step / every));</li>
 *   <li>{@link Cosine}: linear warm-up, then half a cosine from the base rate down to a floor over the run;</li>
 *   <li>{@link Constant}: the base rate.</li>
 * </ul>
 */
public sealed interface Schedule permits Schedule.Constant, Schedule.StepDecay, Schedule.Cosine, Schedule.Plateau {

    /**
     * The learning rate for optimiser step {@code step} (0-based) of a run of {@code totalSteps} steps, given the
     * plateau state (ignored by the step-based schedules).
     */
    double lr(double baseLr, long step, long totalSteps, Plateau.State plateau);

    /** The plateau state after a validation with top-1 error {@code top1Error}; unchanged for step-based schedules. */
    default Plateau.State afterValidation(Plateau.State s, double top1Error) {
        return s;
    }

    /** Short text form, e.g. "cosine(warmup=200,floor=0)"; {@link #parse} reads it back. */
    String describe();

    /** Constant rate. */
    record Constant() implements Schedule {
        @Override
        public double lr(double baseLr, long step, long totalSteps, Plateau.State plateau) {
            return baseLr;
        }

        @Override
        public String describe() {
            return "constant";
        }
    }

    /** lr = base * gamma^(floor(step / every)). */
    record StepDecay(long every, double gamma) implements Schedule {
        public StepDecay {
            if (every < 1) {
                throw new IllegalArgumentException("step schedule period " + every + " must be >= 1");
            }
            if (!(gamma > 0 && gamma <= 1)) {
                throw new IllegalArgumentException("step schedule factor " + gamma + " must be in (0, 1]");
            }
        }

        @Override
        public double lr(double baseLr, long step, long totalSteps, Plateau.State plateau) {
            return baseLr * Math.pow(gamma, step / every);
        }

        @Override
        public String describe() {
            return String.format(Locale.ROOT, "step(every=%d,gamma=%s)", every, gamma);
        }
    }

    /**
     * Linear warm-up from base/w to base over the first w = min(warmupSteps, totalSteps / 10) steps, then
     * floor + (base - floor) * (1 + cos(pi * t)) / 2 with t going from 0 to 1 over the remaining steps.
     */
    record Cosine(long warmupSteps, double floor) implements Schedule {
        public Cosine {
            if (warmupSteps < 0) {
                throw new IllegalArgumentException("cosine warm-up " + warmupSteps + " must be >= 0");
            }
            if (!(floor >= 0)) {
                throw new IllegalArgumentException("cosine floor " + floor + " must be >= 0");
            }
        }

        @Override
        public double lr(double baseLr, long step, long totalSteps, Plateau.State plateau) {
            // A short run (a demo, a test) must not spend itself warming up: at most a tenth of it.
            long warm = Math.min(warmupSteps, totalSteps / 10);
            if (step < warm) {
                return baseLr * (step + 1) / warm;
            }
            long span = Math.max(1, totalSteps - warm);
            double t = Math.min(1.0, (step - warm) / (double) span);
            return floor + (baseLr - floor) * 0.5 * (1 + Math.cos(Math.PI * t));
        }

        @Override
        public String describe() {
            return String.format(Locale.ROOT, "cosine(warmup=%d,floor=%s)", warmupSteps, floor);
        }
    }

    /**
     * The paper's rule (§3.1): "the learning rate was initially set to 10^-2, and then decreased by a factor of 10
     * when the validation set accuracy stopped improving ... decreased 3 times". An epoch improves when its error
     * is below the best so far by more than {@code threshold} (absolute); after {@code patience} epochs without
     * improvement the rate is divided by {@code 1/factor} and the count restarts.
     */
    record Plateau(int patience, double threshold, double factor, int maxDrops) implements Schedule {
        /** The paper's: divide by 10 after 1 epoch without improvement, at most 3 times. */
        public static final Plateau PAPER = new Plateau(1, 1e-4, 0.1, 3);

        public Plateau {
            if (patience < 1) {
                throw new IllegalArgumentException("plateau patience " + patience + " must be >= 1 epoch");
            }
            if (!(threshold >= 0)) {
                throw new IllegalArgumentException("plateau threshold " + threshold + " must be >= 0");
            }
            if (!(factor > 0 && factor < 1)) {
                throw new IllegalArgumentException("plateau factor " + factor + " must be in (0, 1)");
            }
            if (maxDrops < 0) {
                throw new IllegalArgumentException("plateau maximum drops " + maxDrops + " must be >= 0");
            }
        }

        /**
         * What the rule remembers of the validation history.
         *
         * @param drops       times the rate has been divided so far
         * @param bestError   lowest validation top-1 error seen (1.0 before any validation)
         * @param sinceBest   validations since the best one
         */
        public record State(int drops, double bestError, int sinceBest) {
            public static final State INITIAL = new State(0, 1.0, 0);
        }

        @Override
        public double lr(double baseLr, long step, long totalSteps, State plateau) {
            return baseLr * Math.pow(factor, plateau.drops());
        }

        @Override
        public State afterValidation(State s, double top1Error) {
            if (top1Error < s.bestError() - threshold) {
                return new State(s.drops(), top1Error, 0);
            }
            int since = s.sinceBest() + 1;
            if (since >= patience && s.drops() < maxDrops) {
                return new State(s.drops() + 1, Math.min(s.bestError(), top1Error), 0);
            }
            return new State(s.drops(), Math.min(s.bestError(), top1Error), since);
        }

        /** Whether every allowed drop has happened (the paper stops soon after the third). */
        public boolean exhausted(State s) {
            return s.drops() >= maxDrops;
        }

        @Override
        public String describe() {
            return String.format(Locale.ROOT, "plateau(patience=%d,threshold=%s,factor=%s,drops=%d)", patience, threshold,
                    factor, maxDrops);
        }
    }

    /**
     * Parses "constant", "plateau", "cosine", "cosine:WARMUP", "step:EVERY:GAMMA".
     *
     * @throws IllegalArgumentException naming the text and the accepted forms
     */
    static Schedule parse(String text) {
        String[] p = text.trim().toLowerCase(Locale.ROOT).split(":");
        try {
            switch (p[0]) {
                case "constant":
                    return new Constant();
                case "plateau":
                    return Plateau.PAPER;
                case "cosine":
                    return new Cosine(p.length > 1 ? Long.parseLong(p[1]) : 0, 0);
                case "step":
                    if (p.length == 3) {
                        return new StepDecay(Long.parseLong(p[1]), Double.parseDouble(p[2]));
                    }
                    break;
                default:
                    break;
            }
        } catch (NumberFormatException e) {
            // fall through to the message below
        }
        throw new IllegalArgumentException("schedule '" + text
                + "' not understood; expected plateau, cosine, cosine:WARMUP_STEPS, step:EVERY_STEPS:GAMMA or constant");
    }
}
