package org.vgg4j.train;

/**
 * Where a run is, besides the tensors: everything a checkpoint must hold so a resumed run continues bit for bit.
 * The data pipeline's randomness is keyed by (seed, epoch, batch), so (epoch, position) is its whole state, and the
 * Dropout masks are keyed by the step (see vgg-core's {@code Dropout}), so there is no other random state.
 * Immutable.
 *
 * @param epoch          current epoch, 0-based
 * @param position       index of the next batch in this epoch
 * @param step           optimiser steps done
 * @param plateau        the plateau schedule's memory of validation
 * @param lrScale        extra factor on the learning rate (each NaN rollback divides it by 10)
 * @param epochLossSum   sum over this epoch's examples so far of the training loss (for the epoch's mean)
 * @param epochExamples  examples of this epoch so far
 * @param bestError      best validation top-1 error so far (1.0 before any)
 * @param rollbacks      NaN/Inf rollbacks so far
 */
public record TrainState(int epoch, int position, long step, Schedule.Plateau.State plateau, double lrScale,
                         double epochLossSum, long epochExamples, double bestError, int rollbacks) {

    public static TrainState initial() {
        return new TrainState(0, 0, 0, Schedule.Plateau.State.INITIAL, 1.0, 0, 0, 1.0, 0);
    }
}
