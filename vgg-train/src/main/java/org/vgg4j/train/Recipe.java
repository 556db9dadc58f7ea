package org.vgg4j.train;

import java.nio.file.Path;

/**
 * How a network is trained — the solver half of Caffe's net/solver split, immutable. The architecture is a
 * {@code VggSpec}; the data and where checkpoints go are given to the {@link Trainer} separately. Named presets
 * (the paper's recipes) are in {@link Recipes}.
 *
 * @param name            preset name, recorded in checkpoints and metrics
 * @param batchSize       effective (global) batch: one optimiser step per batch (256 in the paper)
 * @param microBatch      largest forward/backward a replica runs at once; a replica's share of the batch is
 *                        split into micro-batches whose gradients accumulate (0: the whole share at once)
 * @param baseLr          initial learning rate (10^-2 in the paper)
 * @param momentum        0.9 in the paper
 * @param weightDecay     L2 multiplier, 5*10^-4 in the paper (weights only, as Caffe)
 * @param schedule        how the rate moves
 * @param maxEpochs       stop after this many epochs (74 in the paper)
 * @param maxIterations   stop after this many optimiser steps (370K in the paper); 0 for no limit
 * @param init            how parameters start
 * @param initFrom        checkpoint for {@link Init#WARM_START_A} (a trained A) or {@link Init#FROM_CHECKPOINT}
 * @param initSeed        seed of the fresh initialisation
 * @param dataSeed        seed of data order and augmentation
 * @param scaleMin        training scale S (shorter side) lower bound; = scaleMax for fixed S
 * @param scaleMax        training scale S upper bound (512 for the paper's multi-scale training)
 * @param checkpointEvery optimiser steps between checkpoints (0: at epoch ends only)
 * @param keepLast        checkpoints kept besides the best one
 * @param onNonFinite     what a NaN/Inf loss or gradient does
 * @param stuckLossSteps  warn when the loss stays within 2 % of ln(classes) for this many steps (0: never)
 */
public record Recipe(String name, int batchSize, int microBatch, double baseLr, double momentum, double weightDecay,
                     Schedule schedule, int maxEpochs, long maxIterations, Init init, Path initFrom, long initSeed,
                     long dataSeed, int scaleMin, int scaleMax, int checkpointEvery, int keepLast,
                     NonFinitePolicy onNonFinite, int stuckLossSteps) {

    /** Where the parameters come from. */
    public enum Init {
        /** The paper's §3.1: weights from N(0, 10^-2), biases 0 (how it trained A). */
        PAPER_NORMAL,
        /** Glorot &amp; Bengio uniform, biases 0: the paper's footnote, no warm start needed. */
        GLOROT,
        /** Fresh Glorot, then the first four convs and three FC layers copied from a trained A (§3.1). */
        WARM_START_A,
        /** Every tensor from a checkpoint of the same architecture (S = 384 from S = 256; multi-scale from 384). */
        FROM_CHECKPOINT
    }

    /** What a NaN or infinity in the loss or the gradients does. */
    public enum NonFinitePolicy {
        /** Stop the run, naming the step and the first layer whose gradient is not finite. */
        STOP,
        /** Reload the last checkpoint and continue with the learning rate divided by 10. */
        ROLLBACK
    }

    public Recipe {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("recipe name must not be empty");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size " + batchSize + " must be >= 1");
        }
        if (microBatch < 0) {
            throw new IllegalArgumentException("micro-batch " + microBatch + " must be >= 0 (0: no accumulation)");
        }
        if (!(baseLr > 0) || Double.isInfinite(baseLr)) {
            throw new IllegalArgumentException("learning rate " + baseLr + " must be finite and > 0");
        }
        if (schedule == null) {
            throw new IllegalArgumentException("schedule must be given (plateau, cosine, step or constant)");
        }
        if (maxEpochs < 1) {
            throw new IllegalArgumentException("maximum epochs " + maxEpochs + " must be >= 1");
        }
        if (maxIterations < 0) {
            throw new IllegalArgumentException("maximum iterations " + maxIterations + " must be >= 0 (0: no limit)");
        }
        if (init == null) {
            throw new IllegalArgumentException("init must be one of PAPER_NORMAL, GLOROT, WARM_START_A, FROM_CHECKPOINT");
        }
        if ((init == Init.WARM_START_A || init == Init.FROM_CHECKPOINT) && initFrom == null) {
            throw new IllegalArgumentException("init " + init + " needs a checkpoint to start from (initFrom)");
        }
        if (scaleMin < 1 || scaleMax < scaleMin) {
            throw new IllegalArgumentException("training scale range [" + scaleMin + ", " + scaleMax
                    + "] must satisfy 1 <= min <= max");
        }
        if (checkpointEvery < 0 || keepLast < 1) {
            throw new IllegalArgumentException("checkpoint every " + checkpointEvery + " steps (must be >= 0), keep last "
                    + keepLast + " (must be >= 1)");
        }
        if (onNonFinite == null) {
            throw new IllegalArgumentException("non-finite policy must be STOP or ROLLBACK");
        }
        if (stuckLossSteps < 0) {
            throw new IllegalArgumentException("stuck-loss window " + stuckLossSteps + " must be >= 0");
        }
    }

    public Recipe withName(String n) {
        return new Recipe(n, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, maxEpochs, maxIterations, init,
                initFrom, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, stuckLossSteps);
    }

    public Recipe withBatch(int batch, int micro) {
        return new Recipe(name, batch, micro, baseLr, momentum, weightDecay, schedule, maxEpochs, maxIterations, init,
                initFrom, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, stuckLossSteps);
    }

    public Recipe withLr(double lr) {
        return new Recipe(name, batchSize, microBatch, lr, momentum, weightDecay, schedule, maxEpochs, maxIterations, init,
                initFrom, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, stuckLossSteps);
    }

    public Recipe withSchedule(Schedule s) {
        return new Recipe(name, batchSize, microBatch, baseLr, momentum, weightDecay, s, maxEpochs, maxIterations, init,
                initFrom, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, stuckLossSteps);
    }

    public Recipe withLimits(int epochs, long iterations) {
        return new Recipe(name, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, epochs, iterations, init,
                initFrom, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, stuckLossSteps);
    }

    public Recipe withInit(Init i, Path from) {
        return new Recipe(name, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, maxEpochs, maxIterations, i,
                from, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, stuckLossSteps);
    }

    public Recipe withSeeds(long init, long data) {
        return new Recipe(name, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, maxEpochs, maxIterations,
                this.init, initFrom, init, data, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, stuckLossSteps);
    }

    public Recipe withCheckpoints(int every, int keep) {
        return new Recipe(name, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, maxEpochs, maxIterations, init,
                initFrom, initSeed, dataSeed, scaleMin, scaleMax, every, keep, onNonFinite, stuckLossSteps);
    }

    public Recipe withNonFinite(NonFinitePolicy p) {
        return new Recipe(name, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, maxEpochs, maxIterations, init,
                initFrom, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, p, stuckLossSteps);
    }

    public Recipe withOptimizer(double m, double wd) {
        return new Recipe(name, batchSize, microBatch, baseLr, m, wd, schedule, maxEpochs, maxIterations, init,
                initFrom, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, stuckLossSteps);
    }

    public Recipe withScales(int min, int max) {
        return new Recipe(name, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, maxEpochs, maxIterations, init,
                initFrom, initSeed, dataSeed, min, max, checkpointEvery, keepLast, onNonFinite, stuckLossSteps);
    }

    public Recipe withStuckLossSteps(int steps) {
        return new Recipe(name, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, maxEpochs, maxIterations, init,
                initFrom, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, steps);
    }
}
