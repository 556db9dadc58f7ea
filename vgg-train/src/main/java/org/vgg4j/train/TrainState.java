package org.vgg4j.train;

/**
 * Where a run is, besides the tensors: everything a checkpoint must hold so a resumed run continues bit for bit.
 * The data pipeline's randomness is keyed by (seed, epoch, batch), so (epoch, position) is its whole state; the
 * Dropout layers' call counters are the only other random state. Immutable.
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
 * @param dropoutCalls   per replica, per Dropout layer: forward calls so far
 */
public record TrainState(int epoch, int position, long step, Schedule.Plateau.State plateau, double lrScale,
                         double epochLossSum, long epochExamples, double bestError, int rollbacks,
                         long[][] dropoutCalls) {

    /** The same state with the replicas' current dropout counters (taken when saving). */
    public TrainState withDropoutCalls(long[][] calls) {
        return new TrainState(epoch, position, step, plateau, lrScale, epochLossSum, epochExamples, bestError, rollbacks,
                calls);
    }

    public static TrainState initial(long[][] dropoutCalls) {
        return new TrainState(0, 0, 0, Schedule.Plateau.State.INITIAL, 1.0, 0, 0, 1.0, 0, dropoutCalls);
    }
}
