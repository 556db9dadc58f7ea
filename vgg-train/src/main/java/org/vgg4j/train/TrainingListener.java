package org.vgg4j.train;

/**
 * What a {@link Trainer} reports as it goes: the command line's progress bar, metric files and plots listen; the
 * library itself only logs. Callbacks run on the training thread and must be quick. Not a way to change the run.
 */
public interface TrainingListener {

    /** Once, before the first step (also on resume, with the restored step). */
    default void onStart(Start start) {
    }

    /** After every optimiser step. */
    default void onStep(Step step) {
    }

    /** After every epoch's validation. */
    default void onEpoch(EpochMetrics metrics) {
    }

    /** A guardrail's warning (stuck loss, rollback). */
    default void onWarning(String message) {
    }

    /**
     * @param network         the network's name
     * @param parameters      trained parameters
     * @param replicas        data-parallel replicas
     * @param batchesPerEpoch optimiser steps per epoch
     * @param totalSteps      steps the run will take at most
     * @param resumedAtStep   step restored from a checkpoint (0 for a fresh run)
     */
    record Start(String network, long parameters, int replicas, int batchesPerEpoch, long totalSteps, long resumedAtStep) {
    }

    /**
     * @param epoch        0-based epoch
     * @param batch        batches done in this epoch
     * @param batches      batches per epoch
     * @param step         optimiser steps done (global)
     * @param totalSteps   steps the run will take at most
     * @param loss         this step's mean training loss
     * @param epochLoss    mean training loss of the epoch so far
     * @param lr           learning rate used by this step
     * @param examples     examples in this step's batch
     * @param seconds      wall time of this step (forward, backward, all-reduce, update; data wait included)
     */
    record Step(int epoch, int batch, int batches, long step, long totalSteps, double loss, double epochLoss, double lr,
                int examples, double seconds) {
    }
}
