package org.vgg4j.train;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vgg4j.data.Batch;
import org.vgg4j.data.DataPipeline;

/**
 * The training loop: a {@link Recipe} applied to {@link Replicas} fed by a {@link DataPipeline}, with validation
 * after each epoch, checkpoints, guardrails and listeners. {@link #run()} reads top to bottom in one method: restore
 * or initialise, then epochs of steps (learning rate from the schedule, forward/backward with accumulation and
 * all-reduce, finiteness check, SGD step, checkpoint), then validation, the plateau rule and the epoch checkpoint.
 *
 * <p>Resumability: all that a step depends on is the tensors, the {@link TrainState} and randomness keyed by it (the
 * data pipeline's by epoch and batch, the Dropout masks by step), all of which a checkpoint holds, so a run resumed
 * after kill -9 continues bit for bit (on a deterministic backend).
 *
 * <p>Several processes (the replicas' all-reduce spans a process group; {@code vgg train} under torchrun, Slurm,
 * ...): every rank runs this same loop on its shard of each global batch; rank 0 alone restores, validates and
 * writes checkpoints, and {@link RankSync} hands its state to the others at the start, after a rollback and after
 * each validation, so every decision (schedule, guardrails, plateau) is taken identically everywhere. Not here: the network's architecture, evaluation protocols (see {@link Evaluator}),
 * progress display (listeners).
 */
public final class Trainer {
    private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);
    /** NaN rollbacks allowed before the run stops anyway. */
    public static final int MAX_ROLLBACKS = 3;

    /** How a run ended. */
    public record Result(TrainState state, List<EpochMetrics> epochs, String stopReason) {
    }

    private final Replicas replicas;
    private final DataPipeline train;
    private final Validation validation;   // may be null: no validation, no plateau rule, no best checkpoint
    private final Recipe recipe;
    private final Checkpointer checkpointer; // may be null: no checkpoints, no resume, no rollback
    private final Initialization init;
    private final List<TrainingListener> listeners;
    private final RankSync ranks;

    public Trainer(Replicas replicas, DataPipeline train, Validation validation, Recipe recipe, Checkpointer checkpointer,
                   Initialization init, List<TrainingListener> listeners) {
        int dataRanks = train.config().worldSize();
        if (train.config().batchSize() * dataRanks != recipe.batchSize()) {
            throw new IllegalArgumentException("data pipeline batch " + train.config().batchSize()
                    + (dataRanks > 1 ? " per rank x " + dataRanks + " ranks" : "")
                    + " differs from the recipe's effective batch " + recipe.batchSize());
        }
        if (dataRanks != replicas.group().size() || train.config().rank() != replicas.group().rank()) {
            throw new IllegalArgumentException("data pipeline sharded for rank " + train.config().rank() + " of "
                    + dataRanks + ", but the replicas' process group is rank " + replicas.group().rank() + " of "
                    + replicas.group().size());
        }
        if (recipe.schedule() instanceof Schedule.Plateau && validation == null) {
            throw new IllegalArgumentException("the plateau schedule needs a validation set");
        }
        this.replicas = replicas;
        this.train = train;
        this.validation = validation;
        this.recipe = recipe;
        this.checkpointer = checkpointer;
        this.init = init;
        this.listeners = List.copyOf(listeners);
        this.ranks = new RankSync(replicas.group());
    }

    /** Steps the run takes at most: the epoch limit in steps, capped by the iteration limit. */
    public long totalSteps() {
        long byEpochs = (long) recipe.maxEpochs() * train.batchesPerEpoch();
        return recipe.maxIterations() > 0 ? Math.min(byEpochs, recipe.maxIterations()) : byEpochs;
    }

    /**
     * Trains until the epoch or iteration limit. Resumes from the newest intact checkpoint when there is one.
     *
     * @throws IllegalStateException when the loss or a gradient is not finite and the recipe says STOP (or the
     *                               rollbacks are used up); the message names the step and the layer
     */
    public Result run() throws IOException {
        // 1. Where to start: the newest intact checkpoint, or a fresh initialisation.
        //    (Several processes: rank 0 decides and RankSync hands its state to the others.)
        Optional<TrainState> restored = checkpointer == null || !ranks.leader() ? Optional.empty()
                : checkpointer.restore(replicas);
        TrainState s = null;
        if (restored.isPresent()) {
            s = restored.get();
        } else if (ranks.leader()) {
            init.apply(replicas.primary());
            replicas.broadcastFromPrimary();
            replicas.zeroGrads();
            s = TrainState.initial();
        }
        s = ranks.fromLeader(replicas, s);
        long totalSteps = totalSteps();
        int batches = train.batchesPerEpoch();
        int classes = replicas.primary().outputShape(1).dim(1);
        Guardrails.StuckLoss stuck = new Guardrails.StuckLoss(classes, recipe.stuckLossSteps());
        for (TrainingListener l : listeners) {
            l.onStart(new TrainingListener.Start(replicas.primary().name(), replicas.primary().params().trainedCount(),
                    replicas.size() * replicas.group().size(), batches, totalSteps, s.step()));
        }
        List<EpochMetrics> history = new ArrayList<>();
        String stop = null;
        double lr = 0;
        while (stop == null) {
            if (s.epoch() >= recipe.maxEpochs()) {
                stop = "reached " + recipe.maxEpochs() + " epochs";
                break;
            }
            if (s.step() >= totalSteps) {
                stop = "reached " + totalSteps + " iterations";
                break;
            }
            // 2. One epoch of steps, from the saved position.
            long epochStart = System.nanoTime();
            long trainNanos = 0;
            long examplesThisRun = 0;
            boolean rolledBack = false;
            try (DataPipeline.Epoch epoch = train.epoch(s.epoch(), s.position())) {
                while (epoch.hasNext() && s.step() < totalSteps) {
                    long t0 = System.nanoTime();
                    Batch batch = epoch.next();
                    lr = recipe.schedule().lr(recipe.baseLr(), s.step(), totalSteps, s.plateau()) * s.lrScale();
                    double loss = replicas.forwardBackward(batch, recipe.microBatch(), s.step());
                    String bad = Guardrails.nonFinite(s.step(), loss, replicas.primary());
                    if (bad != null) {
                        if (recipe.onNonFinite() == Recipe.NonFinitePolicy.STOP || checkpointer == null
                                || s.rollbacks() >= MAX_ROLLBACKS) {
                            throw new IllegalStateException("training diverged at " + bad);
                        }
                        s = rollback(s, bad);
                        rolledBack = true;
                        break;
                    }
                    replicas.step(lr);
                    int n = replicas.examplesLastStep(); // the global batch (every process's slice)
                    s = new TrainState(s.epoch(), epoch.position(), s.step() + 1, s.plateau(), s.lrScale(),
                            s.epochLossSum() + loss * n, s.epochExamples() + n, s.bestError(), s.rollbacks());
                    long dt = System.nanoTime() - t0;
                    trainNanos += dt;
                    examplesThisRun += n;
                    String warning = stuck.observe(s.step(), loss);
                    for (TrainingListener l : listeners) {
                        if (warning != null) {
                            l.onWarning(warning);
                        }
                        l.onStep(new TrainingListener.Step(s.epoch(), s.position(), batches, s.step(), totalSteps, loss,
                                s.epochLossSum() / s.epochExamples(), lr, n, dt / 1e9));
                    }
                    if (checkpointer != null && recipe.checkpointEvery() > 0 && s.step() % recipe.checkpointEvery() == 0
                            && s.position() < batches) { // the epoch-end save below covers the last batch
                        if (ranks.leader()) {
                            checkpointer.save(replicas, s, recipe.name(), false);
                        }
                    }
                }
            }
            if (rolledBack) {
                continue;
            }
            // 3. Epoch end: validation, the plateau rule, the epoch's checkpoint. When the iteration limit stopped
            //    the run inside the epoch, the validation is reported but the epoch is not over: the plateau rule
            //    waits for a whole epoch and the checkpoint keeps the position, so that a resumed run with a
            //    higher limit trains the rest of this epoch instead of skipping it.
            boolean midEpoch = s.position() < batches;
            Evaluator.Result v = validation == null ? null
                    : ranks.fromLeader(ranks.leader() ? validation.evaluate(replicas.primary()) : null);
            Schedule.Plateau.State plateau = v == null || midEpoch ? s.plateau()
                    : recipe.schedule().afterValidation(s.plateau(), v.top1Error());
            boolean best = v != null && v.top1Error() < s.bestError();
            if (plateau.drops() > s.plateau().drops()) {
                LOG.info("validation top-1 error stopped improving: learning rate divided ({} of {} drops)",
                        plateau.drops(), recipe.schedule() instanceof Schedule.Plateau p ? p.maxDrops() : 0);
            }
            // the rate of the epoch's last step (recomputed: a resumed run may not have taken a step this epoch)
            lr = recipe.schedule().lr(recipe.baseLr(), Math.max(0, s.step() - 1), totalSteps, s.plateau()) * s.lrScale();
            EpochMetrics m = new EpochMetrics(s.epoch() + 1, s.step(),
                    s.epochExamples() == 0 ? Double.NaN : s.epochLossSum() / s.epochExamples(),
                    v == null ? Double.NaN : v.top1Error(), v == null ? Double.NaN : v.top5Error(), lr,
                    (System.nanoTime() - epochStart) / 1e9, trainNanos == 0 ? 0 : examplesThisRun / (trainNanos / 1e9));
            double bestError = best ? v.top1Error() : s.bestError();
            s = midEpoch
                    ? new TrainState(s.epoch(), s.position(), s.step(), plateau, s.lrScale(), s.epochLossSum(),
                            s.epochExamples(), bestError, s.rollbacks())
                    : new TrainState(s.epoch() + 1, 0, s.step(), plateau, s.lrScale(), 0, 0, bestError, s.rollbacks());
            if (checkpointer != null && ranks.leader()) {
                checkpointer.save(replicas, s, recipe.name(), best);
            }
            history.add(m);
            for (TrainingListener l : listeners) {
                l.onEpoch(m);
            }
        }
        LOG.info("training stopped: {}", stop);
        return new Result(s, history, stop);
    }

    /** Reloads the newest checkpoint and divides the learning rate by 10. */
    private TrainState rollback(TrainState now, String why) throws IOException {
        Optional<TrainState> back = ranks.leader() ? checkpointer.restore(replicas) : Optional.empty();
        if (!ranks.fromLeader(back.isPresent())) {
            throw new IllegalStateException("training diverged at " + why + ", and there is no checkpoint to roll back to");
        }
        TrainState r = ranks.fromLeader(replicas, back.orElse(null));
        double scale = Math.min(r.lrScale(), now.lrScale()) / 10;
        String message = "rolled back to step " + r.step() + " with the learning rate divided by 10 (scale " + scale
                + ") after a non-finite value at " + why;
        LOG.warn(message);
        for (TrainingListener l : listeners) {
            l.onWarning(message);
        }
        return new TrainState(r.epoch(), r.position(), r.step(), r.plateau(), scale, r.epochLossSum(), r.epochExamples(),
                r.bestError(), now.rollbacks() + 1);
    }
}
