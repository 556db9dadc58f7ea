package org.vgg4j.train;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.data.DataPipeline;

/**
 * How a network is trained — the solver half of Caffe's net/solver split, immutable. The architecture is a
 * {@code VggSpec}; the data and where checkpoints go are given separately ({@link TrainingRun} puts the parts of a
 * run together). Built with {@link #builder()} or {@link #toBuilder()}; named presets (the paper's recipes) are in
 * {@link Recipes}.
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
 * @param newHead         with {@link Init#FROM_CHECKPOINT}: the classifier head (the last layer with parameters)
 *                        starts fresh (Glorot, {@link #initSeed}) for the network's classes instead of coming from
 *                        the checkpoint, whose head may have another number of classes; every other tensor is loaded
 *                        strictly (transfer learning, {@code TransferLearning})
 * @param freezeUpTo      layer name ("features.16") up to which, inclusive, parameters are frozen: no update, no
 *                        weight decay, no gradient computed; null: nothing frozen
 * @param lrMult          learning-rate multipliers by layer-name prefix ("features" to 0.1: Caffe's lr_mult); the
 *                        longest prefix wins, a parameter under none gets 1; empty: one rate for all
 * @param labelSmoothing  EXTENSION beyond the paper: the loss's targets are (1 - e) onehot + e / classes (0: the
 *                        paper's plain cross-entropy; {@link org.vgg4j.core.layers.SoftmaxCrossEntropy})
 */
public record Recipe(String name, int batchSize, int microBatch, double baseLr, double momentum, double weightDecay,
                     Schedule schedule, int maxEpochs, long maxIterations, Init init, Path initFrom, long initSeed,
                     long dataSeed, int scaleMin, int scaleMax, int checkpointEvery, int keepLast,
                     NonFinitePolicy onNonFinite, int stuckLossSteps, boolean newHead, String freezeUpTo,
                     Map<String, Double> lrMult, double labelSmoothing) {

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
        new Sgd.Settings(momentum, weightDecay); // checks them: momentum in [0, 1), weight decay finite and >= 0
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
        if (initFrom != null && init != Init.WARM_START_A && init != Init.FROM_CHECKPOINT) {
            throw new IllegalArgumentException("init " + init + " starts fresh and would ignore initFrom " + initFrom
                    + "; expected WARM_START_A or FROM_CHECKPOINT with a checkpoint, or no initFrom");
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
        if (newHead && init != Init.FROM_CHECKPOINT) {
            throw new IllegalArgumentException("a new head replaces the head of a checkpoint; init " + init
                    + " loads none: expected FROM_CHECKPOINT with initFrom");
        }
        if (freezeUpTo != null && freezeUpTo.isBlank()) {
            throw new IllegalArgumentException("freezeUpTo must name a layer (e.g. features.16), or be null to freeze nothing");
        }
        if (lrMult == null) {
            throw new IllegalArgumentException("lrMult must not be null; expected an empty map for no multipliers");
        }
        for (Map.Entry<String, Double> m : lrMult.entrySet()) {
            if (m.getKey() == null || m.getKey().isBlank() || m.getValue() == null || !(m.getValue() >= 0)
                    || Double.isInfinite(m.getValue())) {
                throw new IllegalArgumentException("learning-rate multiplier " + m.getKey() + "=" + m.getValue()
                        + ": expected a layer-name prefix (features, classifier.6) and a finite multiplier >= 0");
            }
        }
        lrMult = Collections.unmodifiableMap(new LinkedHashMap<>(lrMult));
        if (!(labelSmoothing >= 0 && labelSmoothing < 1)) {
            throw new IllegalArgumentException("label smoothing " + labelSmoothing + " must be in [0, 1) (0: none)");
        }
    }

    /** A recipe that trains every parameter at the base rate and keeps the checkpoint's head (no transfer learning). */
    public Recipe(String name, int batchSize, int microBatch, double baseLr, double momentum, double weightDecay,
                  Schedule schedule, int maxEpochs, long maxIterations, Init init, Path initFrom, long initSeed,
                  long dataSeed, int scaleMin, int scaleMax, int checkpointEvery, int keepLast,
                  NonFinitePolicy onNonFinite, int stuckLossSteps) {
        this(name, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, maxEpochs, maxIterations, init, initFrom,
                initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast, onNonFinite, stuckLossSteps, false, null,
                Map.of(), 0);
    }

    /** A builder with nothing set but the defaults listed at {@link Builder}. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding every value of this recipe, to change some of them. */
    public Builder toBuilder() {
        return new Builder().name(name).batchSize(batchSize).microBatch(microBatch).baseLr(baseLr).momentum(momentum)
                .weightDecay(weightDecay).schedule(schedule).maxEpochs(maxEpochs).maxIterations(maxIterations).init(init)
                .initFrom(initFrom).initSeed(initSeed).dataSeed(dataSeed).scales(scaleMin, scaleMax)
                .checkpointEvery(checkpointEvery).keepLast(keepLast).onNonFinite(onNonFinite).stuckLossSteps(stuckLossSteps)
                .newHead(newHead).freezeUpTo(freezeUpTo).lrMult(lrMult).labelSmoothing(labelSmoothing);
    }

    /** The solver's settings: momentum and weight decay. */
    public Sgd.Settings sgdSettings() {
        return new Sgd.Settings(momentum, weightDecay);
    }

    /**
     * The training pipeline of process {@code rank} of {@code worldSize}: its share {@code batchSize / worldSize} of
     * every global batch, shuffled and augmented with {@link #dataSeed}, on {@code threads} loading threads. Every
     * rank draws the same global permutation and takes positions rank, rank + W, ... of it, so batch b of the W
     * ranks together is batch b of one process (docs/distributed.md).
     *
     * @throws IllegalArgumentException when the batch does not split evenly over the processes
     */
    public DataPipeline.Config pipelineConfig(int threads, int rank, int worldSize) {
        if (worldSize < 1 || batchSize % worldSize != 0) {
            throw new IllegalArgumentException("batch size " + batchSize + " (the global batch) cannot be split evenly"
                    + " over " + worldSize + " processes; expected a multiple of " + worldSize);
        }
        return DataPipeline.Config.training(batchSize / worldSize, threads, dataSeed).sharded(rank, worldSize);
    }

    /** The validation pipeline: in order (not shuffled), batches of min(batchSize, 256), on {@code threads} threads. */
    public DataPipeline.Config validationPipelineConfig(int threads) {
        return DataPipeline.Config.training(Math.min(batchSize, 256), threads, 0).withShuffle(false);
    }

    /** How a fresh run of this recipe starts networks of {@code spec} (see {@link Initialization#forRecipe}). */
    public Initialization initialization(VggSpec spec) {
        return Initialization.forRecipe(this, spec);
    }

    /**
     * Named setters for a {@link Recipe}; {@link #build()} checks every value (the record's constructor). Required:
     * {@link #name}, {@link #batchSize}, {@link #baseLr}, {@link #schedule}, {@link #maxEpochs}. Defaults of the
     * rest: micro-batch 0 (the whole share at once), momentum 0.9 and weight decay 5e-4 (the paper's), no iteration
     * limit, {@link Init#GLOROT} (needs no checkpoint), seeds 1, fixed S = 256, checkpoints at epoch ends only
     * keeping the last 2, {@link NonFinitePolicy#STOP}, no stuck-loss warning, the checkpoint's head, nothing
     * frozen, no learning-rate multipliers.
     */
    public static final class Builder {
        private String name;
        private Integer batchSize;
        private int microBatch;
        private Double baseLr;
        private double momentum = 0.9;
        private double weightDecay = 5e-4;
        private Schedule schedule;
        private Integer maxEpochs;
        private long maxIterations;
        private Init init = Init.GLOROT;
        private Path initFrom;
        private long initSeed = 1;
        private long dataSeed = 1;
        private int scaleMin = 256;
        private int scaleMax = 256;
        private int checkpointEvery;
        private int keepLast = 2;
        private NonFinitePolicy onNonFinite = NonFinitePolicy.STOP;
        private int stuckLossSteps;
        private boolean newHead;
        private String freezeUpTo;
        private Map<String, Double> lrMult = new LinkedHashMap<>();
        private double labelSmoothing;

        private Builder() {
        }

        /** Preset name, recorded in checkpoints and metrics. */
        public Builder name(String n) {
            this.name = n;
            return this;
        }

        /** Effective (global) batch: one optimiser step per batch. */
        public Builder batchSize(int n) {
            this.batchSize = n;
            return this;
        }

        /** Largest forward/backward a replica runs at once (0: its whole share). */
        public Builder microBatch(int n) {
            this.microBatch = n;
            return this;
        }

        /** Initial learning rate. */
        public Builder baseLr(double lr) {
            this.baseLr = lr;
            return this;
        }

        public Builder momentum(double m) {
            this.momentum = m;
            return this;
        }

        /** L2 multiplier on the weights. */
        public Builder weightDecay(double wd) {
            this.weightDecay = wd;
            return this;
        }

        public Builder schedule(Schedule s) {
            this.schedule = s;
            return this;
        }

        public Builder maxEpochs(int n) {
            this.maxEpochs = n;
            return this;
        }

        /** Stop after this many optimiser steps (0: no limit). */
        public Builder maxIterations(long n) {
            this.maxIterations = n;
            return this;
        }

        public Builder init(Init i) {
            this.init = i;
            return this;
        }

        /** The checkpoint {@link Init#WARM_START_A} and {@link Init#FROM_CHECKPOINT} start from (null: none). */
        public Builder initFrom(Path checkpoint) {
            this.initFrom = checkpoint;
            return this;
        }

        /** Seed of the fresh initialisation. */
        public Builder initSeed(long seed) {
            this.initSeed = seed;
            return this;
        }

        /** Seed of data order and augmentation. */
        public Builder dataSeed(long seed) {
            this.dataSeed = seed;
            return this;
        }

        /** Training scale S, fixed: the shorter side of every training image. */
        public Builder scale(int s) {
            return scales(s, s);
        }

        /** Training scale S drawn per image from [min, max] (scale jittering). */
        public Builder scales(int min, int max) {
            this.scaleMin = min;
            this.scaleMax = max;
            return this;
        }

        /** Optimiser steps between checkpoints (0: at epoch ends only). */
        public Builder checkpointEvery(int steps) {
            this.checkpointEvery = steps;
            return this;
        }

        /** Checkpoints kept besides the best one. */
        public Builder keepLast(int n) {
            this.keepLast = n;
            return this;
        }

        public Builder onNonFinite(NonFinitePolicy p) {
            this.onNonFinite = p;
            return this;
        }

        /** Warn when the loss stays within 2 % of ln(classes) for this many steps (0: never). */
        public Builder stuckLossSteps(int steps) {
            this.stuckLossSteps = steps;
            return this;
        }

        /**
         * Whether the classifier head starts fresh for the network's classes instead of coming from the
         * checkpoint (with {@link Init#FROM_CHECKPOINT}; the checkpoint's head may have another number of classes).
         */
        public Builder newHead(boolean fresh) {
            this.newHead = fresh;
            return this;
        }

        /** Freezes this layer ("features.16") and every layer before it; null: nothing frozen. */
        public Builder freezeUpTo(String layer) {
            this.freezeUpTo = layer;
            return this;
        }

        /** Learning-rate multiplier of the parameters under a layer-name prefix ("features", 0.1); adds to the others. */
        public Builder lrMult(String prefix, double multiplier) {
            this.lrMult.put(prefix, multiplier);
            return this;
        }

        /** Replaces every learning-rate multiplier with these (layer-name prefix to multiplier). */
        public Builder lrMult(Map<String, Double> multipliers) {
            this.lrMult = new LinkedHashMap<>(multipliers);
            return this;
        }

        /** Label smoothing e in [0, 1): targets (1 - e) onehot + e / classes (default 0: none). */
        public Builder labelSmoothing(double e) {
            this.labelSmoothing = e;
            return this;
        }

        /**
         * The recipe; every value is checked here.
         *
         * @throws IllegalArgumentException naming the first value that is missing or out of range, and what was expected
         */
        public Recipe build() {
            String what = name == null || name.isBlank() ? "recipe" : "recipe '" + name + "'";
            if (batchSize == null) {
                throw new IllegalArgumentException(what + ": batch size not set; expected batchSize(n), n >= 1");
            }
            if (baseLr == null) {
                throw new IllegalArgumentException(what + ": learning rate not set; expected baseLr(x), x > 0");
            }
            if (maxEpochs == null) {
                throw new IllegalArgumentException(what + ": maximum epochs not set; expected maxEpochs(n), n >= 1");
            }
            return new Recipe(name, batchSize, microBatch, baseLr, momentum, weightDecay, schedule, maxEpochs,
                    maxIterations, init, initFrom, initSeed, dataSeed, scaleMin, scaleMax, checkpointEvery, keepLast,
                    onNonFinite, stuckLossSteps, newHead, freezeUpTo, lrMult, labelSmoothing);
        }
    }
}
