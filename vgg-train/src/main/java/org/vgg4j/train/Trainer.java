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
 * after each epoch, checkpoints, guardrails and listeners. {@link #run()} reads in one screen: {@code start} (restore
 * or initialise), then epochs of steps ({@code runEpoch}: learning rate from the schedule, forward/backward with
 * accumulation and all-reduce, divergence check, SGD step, checkpoint; {@code rollback} on a non-finite value or an
 * exploded loss, see {@link Guardrails}),
 * then {@code endOfEpoch} (validation, the plateau rule, the epoch checkpoint, the metrics).
 *
 * <p>Resumability: all that a step depends on is the tensors, the {@link TrainState} and randomness keyed by it (the
 * data pipeline's by epoch and batch, the Dropout masks by step), all of which a checkpoint holds, so a run resumed
 * after kill -9 continues bit for bit (on a deterministic backend).
 *
 * <p>Several processes (the replicas' all-reduce spans a process group; {@code vgg train} under torchrun, Slurm,
 * ...): every rank runs this same loop on its shard of each global batch; rank 0 alone restores, validates and
 * writes checkpoints, and {@link RankSync} hands its state to the others at the start, after a rollback and after
 * each validation, so every decision (schedule, guardrails, plateau) is taken identically everywhere. Not here: the
 * network's architecture, evaluation protocols (see {@link Evaluator}), progress display (listeners).
 */
public final class Trainer {
    private static final Logger LOG = LoggerFactory.getLogger(Trainer.class);
    /** Rollbacks after divergence (NaN, infinity or an exploded loss) allowed before the run stops anyway. */
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
    private final int classes;
    private int validateEvery = 1;

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
        this.replicas = replicas.labelSmoothing(recipe.labelSmoothing());
        this.train = train;
        this.validation = validation;
        this.recipe = recipe;
        this.checkpointer = checkpointer;
        this.init = init;
        this.listeners = List.copyOf(listeners);
        this.ranks = new RankSync(replicas.group());
        this.classes = Math.toIntExact(replicas.primary().outputShape(1).dim(1));
    }

    /**
     * Validate after every {@code epochs}-th epoch and after the run's last one (its epoch or iteration limit) instead
     * of after every epoch (1, the default): the epochs between have no validation figures (NaN in the metrics), no
     * best checkpoint and, with the plateau schedule, no decision, so the plateau schedule refuses more than 1.
     */
    public Trainer validateEvery(int epochs) {
        checkValidateEvery(epochs);
        if (epochs > 1 && recipe.schedule() instanceof Schedule.Plateau) {
            throw new IllegalArgumentException("validation every " + epochs + " epochs: the plateau schedule decides"
                    + " after every epoch's validation, so it needs validation every epoch (1)");
        }
        this.validateEvery = epochs;
        return this;
    }

    /** Refuses a validation interval below 1 epoch, naming it. */
    static void checkValidateEvery(int epochs) {
        if (epochs < 1) {
            throw new IllegalArgumentException("validation every " + epochs + " epochs: expected 1 or more");
        }
    }

    /** Steps the run takes at most: the epoch limit in steps, capped by the iteration limit. */
    public long totalSteps() {
        long byEpochs = (long) recipe.maxEpochs() * train.batchesPerEpoch();
        return recipe.maxIterations() > 0 ? Math.min(byEpochs, recipe.maxIterations()) : byEpochs;
    }

    /**
     * Trains until the epoch or iteration limit. Resumes from the newest intact checkpoint when there is one.
     *
     * @throws IllegalStateException    when training diverges (the loss or a gradient is not finite, or the loss
     *                                  exploded: {@link Guardrails}) and the recipe says STOP (or the rollbacks are
     *                                  used up); the message names the step and the layer or the loss
     * @throws IllegalArgumentException when the checkpoint to resume from does not fit the network (nothing written)
     * @throws IOException              when checkpoints exist but every one is damaged (nothing written)
     */
    public Result run() throws IOException {
        TrainState s = start();
        Guardrails.StuckLoss stuck = new Guardrails.StuckLoss(classes, recipe.stuckLossSteps());
        for (TrainingListener l : listeners) {
            l.onStart(new TrainingListener.Start(replicas.primary().name(), replicas.primary().params().trainedCount(),
                    replicas.size() * replicas.group().size(), train.batchesPerEpoch(), totalSteps(), s.step()));
        }
        List<EpochMetrics> history = new ArrayList<>();
        String stop;
        while ((stop = stopReason(s)) == null) {
            EpochPass pass = runEpoch(s, stuck);
            s = pass.rolledBack() ? pass.state() : endOfEpoch(pass, history);
        }
        LOG.info("training stopped: {}", stop);
        return new Result(s, history, stop);
    }

    /**
     * Where to start: the newest intact checkpoint, or a fresh initialisation when there is none at all (a folder
     * whose checkpoints cannot be resumed throws, see {@link Checkpointer#restore}: a fresh start there would
     * overwrite that run's metrics and best checkpoint). Several processes: rank 0 decides and {@link RankSync}
     * hands its state to the others.
     */
    private TrainState start() throws IOException {
        Optional<TrainState> restored = checkpointer == null || !ranks.leader() ? Optional.empty()
                : checkpointer.restore(replicas);
        TrainState s = restored.orElse(null);
        if (s == null && ranks.leader()) {
            init.apply(replicas.primary());
            replicas.broadcastFromPrimary();
            replicas.zeroGrads();
            s = TrainState.INITIAL;
        }
        return ranks.fromLeader(replicas, s);
    }

    /** Null while the run goes on, else why it stops. */
    private String stopReason(TrainState s) {
        if (s.epoch() >= recipe.maxEpochs()) {
            return "reached " + recipe.maxEpochs() + " epochs";
        }
        long totalSteps = totalSteps();
        return s.step() >= totalSteps ? "reached " + totalSteps + " iterations" : null;
    }

    /** What one epoch's steps left: the state, whether a rollback cut them short, and their timing. */
    private record EpochPass(TrainState state, boolean rolledBack, long startNanos, long trainNanos, long examples) {
    }

    /**
     * The epoch's steps from the saved position: learning rate from the schedule, forward/backward with
     * accumulation and all-reduce, divergence check (a rollback ends the pass), SGD step, listeners, checkpoint.
     */
    private EpochPass runEpoch(TrainState s, Guardrails.StuckLoss stuck) throws IOException {
        long epochStart = System.nanoTime();
        long trainNanos = 0;
        long examples = 0;
        try (DataPipeline.Epoch epoch = train.epoch(s.epoch(), s.position())) {
            while (epoch.hasNext() && s.step() < totalSteps()) {
                long t0 = System.nanoTime();
                Batch batch = epoch.next();
                double lr = lr(s, s.step());
                double loss = replicas.forwardBackward(batch, recipe.microBatch(), s.step());
                String bad = Guardrails.nonFinite(s.step(), loss, replicas.primary());
                if (bad == null) {
                    bad = Guardrails.lossExploded(s.step(), loss, classes); // the loss is the same on every rank
                }
                if (bad != null) {
                    return new EpochPass(rollback(s, bad), true, epochStart, trainNanos, examples);
                }
                replicas.step(lr);
                int n = replicas.examplesLastStep(); // the global batch (every process's slice)
                s = s.afterStep(epoch.position(), loss, n);
                long dt = System.nanoTime() - t0;
                trainNanos += dt;
                examples += n;
                reportStep(s, loss, lr, n, dt, stuck);
                if (recipe.checkpointEvery() > 0 && s.step() % recipe.checkpointEvery() == 0
                        && s.position() < train.batchesPerEpoch()) { // the epoch-end save covers the last batch
                    save(s, false);
                }
            }
        }
        return new EpochPass(s, false, epochStart, trainNanos, examples);
    }

    /** After each step: the stuck-loss guardrail, then each listener its warning (if any) and the step. */
    private void reportStep(TrainState s, double loss, double lr, int n, long nanos, Guardrails.StuckLoss stuck) {
        String warning = stuck.observe(s.step(), loss);
        for (TrainingListener l : listeners) {
            if (warning != null) {
                l.onWarning(warning);
            }
            l.onStep(new TrainingListener.Step(s.epoch(), s.position(), train.batchesPerEpoch(), s.step(), totalSteps(),
                    loss, s.epochLossSum() / s.epochExamples(), lr, n, nanos / 1e9));
        }
    }

    /**
     * Epoch end: validation, the plateau rule, the epoch's checkpoint, the metrics to the history and the listeners.
     * When the iteration limit stopped the run inside the epoch, the validation is reported but the epoch is not
     * over: the plateau rule waits for a whole epoch and the checkpoint keeps the position, so that a resumed run
     * with a higher limit trains the rest of this epoch instead of skipping it.
     */
    private TrainState endOfEpoch(EpochPass pass, List<EpochMetrics> history) throws IOException {
        TrainState s = pass.state();
        boolean midEpoch = s.position() < train.batchesPerEpoch();
        boolean due = (s.epoch() + 1) % validateEvery == 0 || s.epoch() + 1 >= recipe.maxEpochs()
                || s.step() >= totalSteps();
        Evaluator.Result v = validation == null || !due ? null
                : ranks.fromLeader(ranks.leader() ? validation.evaluate(replicas.primary()) : null);
        Schedule.Plateau.State plateau = v == null || midEpoch ? s.plateau()
                : recipe.schedule().afterValidation(s.plateau(), v.top1Error());
        boolean best = v != null && v.top1Error() < s.bestError();
        if (plateau.drops() > s.plateau().drops()) {
            LOG.info("validation top-1 error stopped improving: learning rate divided ({} of {} drops)",
                    plateau.drops(), recipe.schedule() instanceof Schedule.Plateau p ? p.maxDrops() : 0);
        }
        // the rate of the epoch's last step (recomputed: a resumed run may not have taken a step this epoch)
        double lr = lr(s, Math.max(0, s.step() - 1));
        EpochMetrics m = new EpochMetrics(s.epoch() + 1, s.step(),
                s.epochExamples() == 0 ? Double.NaN : s.epochLossSum() / s.epochExamples(),
                v == null ? Double.NaN : v.top1Error(), v == null ? Double.NaN : v.top5Error(), lr,
                (System.nanoTime() - pass.startNanos()) / 1e9,
                pass.trainNanos() == 0 ? 0 : pass.examples() / (pass.trainNanos() / 1e9),
                train.badImages().size()); // the run's bad-image list (TrainingRun gives validation the same one)
        double bestError = best ? v.top1Error() : s.bestError();
        TrainState next = midEpoch ? s.keepPosition(plateau, bestError) : s.nextEpoch(plateau, bestError);
        save(next, best);
        history.add(m);
        for (TrainingListener l : listeners) {
            l.onEpoch(m);
        }
        return next;
    }

    /** The learning rate of {@code step} in state {@code s}: the schedule's times the rollbacks' scale. */
    private double lr(TrainState s, long step) {
        return recipe.schedule().lr(recipe.baseLr(), step, totalSteps(), s.plateau()) * s.lrScale();
    }

    /** Rank 0 writes the checkpoint (when there is a checkpointer); the other ranks have nothing to do. */
    private void save(TrainState s, boolean best) throws IOException {
        if (checkpointer != null && ranks.leader()) {
            checkpointer.save(replicas, s, recipe.name(), best);
        }
    }

    /**
     * After divergence (a non-finite value or an exploded loss): stops when the recipe says STOP, there are no
     * usable checkpoints or the rollbacks are used up; otherwise reloads the newest usable checkpoint from before
     * the step that diverged and divides the learning rate by 10.
     */
    private TrainState rollback(TrainState now, String why) throws IOException {
        if (recipe.onNonFinite() == Recipe.NonFinitePolicy.STOP || checkpointer == null
                || now.rollbacks() >= MAX_ROLLBACKS) {
            throw new IllegalStateException("training diverged at " + why);
        }
        Optional<TrainState> back = Optional.empty();
        String none = "there is no checkpoint to roll back to";
        if (ranks.leader()) {
            try {
                back = checkpointer.restore(replicas, now.step()); // the checkpoint of this step is what diverged
            } catch (IOException e) { // every checkpoint damaged: the ranks must still agree, below
                none = "no checkpoint can be rolled back to (" + e.getMessage() + ")";
            }
        }
        if (!ranks.fromLeader(back.isPresent())) {
            throw new IllegalStateException("training diverged at " + why + ", and " + none);
        }
        TrainState r = ranks.fromLeader(replicas, back.orElse(null)).rolledBack(now);
        String message = "rolled back to step " + r.step() + " with the learning rate divided by 10 (scale "
                + r.lrScale() + ") after training diverged at " + why;
        LOG.warn(message);
        for (TrainingListener l : listeners) {
            l.onWarning(message);
        }
        return r;
    }
}
