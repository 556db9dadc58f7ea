package org.vgg4j.train;

/**
 * Where a run is, besides the tensors: everything a checkpoint must hold so a resumed run continues bit for bit.
 * The data pipeline's randomness is keyed by (seed, epoch, batch), so (epoch, position) is its whole state, and the
 * Dropout masks are keyed by the step (see vgg-core's {@code Dropout}), so there is no other random state.
 * Immutable; the {@link Trainer} moves it with the named transitions below.
 *
 * @param epoch          current epoch, 0-based
 * @param position       index of the next batch in this epoch
 * @param step           optimiser steps done
 * @param plateau        the plateau schedule's memory of validation
 * @param lrScale        extra factor on the learning rate (each rollback after divergence divides it by 10)
 * @param epochLossSum   sum over this epoch's examples so far of the training loss (for the epoch's mean)
 * @param epochExamples  examples of this epoch so far
 * @param bestError      best validation top-1 error so far (1.0 before any)
 * @param rollbacks      rollbacks after divergence (NaN, infinity or an exploded loss) so far
 */
public record TrainState(int epoch, int position, long step, Schedule.Plateau.State plateau, double lrScale,
                         double epochLossSum, long epochExamples, double bestError, int rollbacks) {

    /** A fresh run: epoch 0, nothing learnt, no validation yet. */
    public static final TrainState INITIAL = new TrainState(0, 0, 0, Schedule.Plateau.State.INITIAL, 1.0, 0, 0, 1.0, 0);

    /** After one step over {@code examples} examples of mean loss {@code loss}; {@code next} is the next batch. */
    public TrainState afterStep(int next, double loss, int examples) {
        return new TrainState(epoch, next, step + 1, plateau, lrScale, epochLossSum + loss * examples,
                epochExamples + examples, bestError, rollbacks);
    }

    /** The epoch is over (validated): the next one starts at its first batch with its loss sums cleared. */
    public TrainState nextEpoch(Schedule.Plateau.State plateau, double bestError) {
        return new TrainState(epoch + 1, 0, step, plateau, lrScale, 0, 0, bestError, rollbacks);
    }

    /** Validated inside the epoch (the iteration limit stopped it there): the position and the sums stay. */
    public TrainState keepPosition(Schedule.Plateau.State plateau, double bestError) {
        return new TrainState(epoch, position, step, plateau, lrScale, epochLossSum, epochExamples, bestError,
                rollbacks);
    }

    /**
     * This state, restored from a checkpoint after training diverged in {@code diverged}: one more rollback, and
     * the learning rate scale a tenth of the smaller of the two (a second rollback to the same checkpoint goes lower).
     */
    public TrainState rolledBack(TrainState diverged) {
        return new TrainState(epoch, position, step, plateau, Math.min(lrScale, diverged.lrScale) / 10, epochLossSum,
                epochExamples, bestError, diverged.rollbacks + 1);
    }
}
