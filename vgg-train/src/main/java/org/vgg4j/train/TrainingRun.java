package org.vgg4j.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.vgg4j.core.io.ModelMetadata;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.TransferLearning;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.parallel.ProcessGroup;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.BadImageLog;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.ImageDataset;
import org.vgg4j.data.SampleTransform;

/**
 * One training run, assembled: a network ({@link VggSpec}), a {@link Recipe}, training data and optional validation
 * data, where replicas run, and an output folder, wired into the data pipelines, the {@link Replicas} (networks,
 * SGD, all-reduce), the {@link Initialization}, the {@link Checkpointer}, the {@link MetricsLog} and
 * {@link CurvePlot}, and the {@link Trainer}, which {@link #run()} runs. {@code vgg train} is option parsing plus
 * {@link Training}, the fluent facade over this class; library callers use either.
 *
 * <p>The output folder holds what {@code vgg train --out} holds: {@code checkpoints/step-*.safetensors} and
 * {@code checkpoints/best.safetensors}, {@code metrics.csv}, {@code metrics.json}, {@code curves.png} and, when some
 * image could not be read, {@code bad-images.tsv} (each skipped file with the reason, see {@link BadImageLog}). A folder
 * that already holds checkpoints is refused unless the run resumes, which continues its newest intact checkpoint; a
 * resume that cannot resume (the checkpoints do not fit the model, or every one is damaged) stops before anything is
 * written, so the earlier run's metrics, best checkpoint and checkpoints stay as they were.
 * Without an output folder nothing is written (no checkpoints, no resume, no NaN rollback).
 *
 * <p>Several processes: the all-reduce's {@link ProcessGroup} says which rank this process is; each rank takes its
 * share of every global batch ({@link Recipe#pipelineConfig}), and only rank 0 writes into the output folder.
 * Every replica of every rank builds its network with the spec's dropout seed: a mask is keyed by the step and the
 * example's position in the global batch ({@code Dropout}), so the masks do not depend on how the batch is split.
 */
public final class TrainingRun {
    /** The output folder's subfolder of checkpoints. */
    public static final String CHECKPOINTS = "checkpoints";

    private final VggSpec model;
    private final Recipe recipe;
    private final String backend;
    private final int devices;
    private final int firstDevice;
    private final GradPrecision gradPrecision;
    private final AllReduce allReduce;
    private final Replicas readyReplicas;
    private final ImageDataset train;
    private final SampleTransform trainTransform;
    private final ImageDataset val;
    private final SampleTransform valTransform;
    private final boolean valFlips;
    private final int validateEvery;
    private final Validation validation;
    private final int threads;
    private final Path out;
    private final boolean resume;
    private final List<TrainingListener> listeners;
    private final ModelMetadata.Norm normalization;

    private TrainingRun(Builder b) {
        this.model = b.model;
        this.recipe = b.recipe;
        this.backend = b.backend;
        this.devices = b.devices;
        this.firstDevice = b.firstDevice;
        this.gradPrecision = b.gradPrecision != null ? b.gradPrecision : GradPrecision.FP32;
        this.allReduce = b.allReduce;
        this.readyReplicas = b.replicas;
        this.train = b.train;
        this.trainTransform = b.trainTransform;
        this.val = b.val;
        this.valTransform = b.valTransform;
        this.valFlips = b.valFlips;
        this.validateEvery = b.validateEvery;
        this.validation = b.validation;
        this.threads = b.threads;
        this.out = b.out;
        this.resume = b.resume;
        this.listeners = List.copyOf(b.listeners);
        this.normalization = b.normalization;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Whether {@code out} holds checkpoints of a run (in its {@value #CHECKPOINTS} subfolder). */
    public static boolean holdsCheckpoints(Path out) throws IOException {
        return !new Checkpointer(out.resolve(CHECKPOINTS), 1).list().isEmpty();
    }

    public VggSpec model() {
        return model;
    }

    public Recipe recipe() {
        return recipe;
    }

    /** The output folder; null when the run writes nothing. */
    public Path out() {
        return out;
    }

    /** Where checkpoints go: {@code out/checkpoints}; null without an output folder. */
    public Path checkpointDirectory() {
        return out == null ? null : out.resolve(CHECKPOINTS);
    }

    /**
     * Trains until the recipe's epoch or iteration limit (from the newest intact checkpoint when resuming) and
     * closes what it opened; ready {@link Replicas} given to the builder stay open, with the trained parameters.
     *
     * @throws IllegalArgumentException when the output folder holds checkpoints and the run does not resume, the
     *                                  run resumes from checkpoints that do not fit the model, or the recipe's
     *                                  batch does not split over the processes
     * @throws IOException              when resuming and every checkpoint in the folder is damaged
     * @throws IllegalStateException    when training diverges (see {@link Trainer#run()})
     */
    public Trainer.Result run() throws IOException {
        AllReduce reduce = readyReplicas != null ? null
                : allReduce != null ? allReduce : Replicas.allReduceFor(backend, devices, gradPrecision);
        ProcessGroup group = reduce != null ? reduce.group() : readyReplicas.group();
        boolean leader = group.rank() == 0; // only rank 0 reads and writes the output folder
        Checkpointer checkpointer = out == null ? null
                : new Checkpointer(checkpointDirectory(), recipe.keepLast()).describing(checkpointMetadata());
        DataPipeline.Config trainConfig;
        Replicas replicas = readyReplicas;
        try { // everything that can refuse the run, before the pipelines start
            trainConfig = recipe.pipelineConfig(threads, group.rank(), group.size());
            if (leader && out != null && !resume && !checkpointer.list().isEmpty()) {
                throw new IllegalArgumentException("output folder " + out + " already holds checkpoints: resume that run,"
                        + " or choose another output folder");
            }
            if (leader && out != null) {
                Files.createDirectories(out);
            }
            if (replicas == null) {
                replicas = createReplicas(reduce);
            } else {
                for (int r = 0; r < replicas.size(); r++) {
                    configureTraining(replicas.network(r));
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            if (reduce != null) {
                reduce.close(); // the run's own replicas would have closed it
            }
            throw e;
        }
        // one list of unreadable images for both pipelines, kept in the output folder (see BadImageLog)
        BadImageLog bad = leader && out != null ? new BadImageLog(out.resolve(BadImageLog.FILE)) : new BadImageLog();
        try (Replicas owned = readyReplicas == null ? replicas : null;
             DataPipeline trainData = new DataPipeline(train, trainTransform, trainConfig, bad);
             DataPipeline valData = val == null ? null
                     : new DataPipeline(val, valTransform, recipe.validationPipelineConfig(threads), bad)) {
            List<TrainingListener> all = new ArrayList<>(listeners);
            if (leader && out != null) {
                MetricsLog metrics = new MetricsLog(out);
                all.add(metrics);
                all.add(new CurvePlot(out, metrics)); // after metrics: it plots the rows the log holds
            }
            Validation v = validation != null ? validation : valData == null ? null : Evaluator.onBatches(valData, valFlips);
            return new Trainer(replicas, trainData, v, recipe, checkpointer, recipe.initialization(model), all)
                    .validateEvery(validateEvery).run();
        }
    }

    /** What every checkpoint records about the model: the spec and, when the builder was told, the normalisation. */
    private Map<String, String> checkpointMetadata() {
        Map<String, String> m = new LinkedHashMap<>(ModelMetadata.of(model));
        if (normalization != null) {
            m.putAll(ModelMetadata.of(normalization));
        }
        return m;
    }

    /** This process's replicas on the backend's devices, all with the spec's dropout seed (see the class comment). */
    private Replicas createReplicas(AllReduce reduce) {
        return Replicas.create(backend, devices, firstDevice, (b, rank) -> {
            Network net = Vgg.build(b, DType.FLOAT32, model);
            try {
                configureTraining(net);
            } catch (RuntimeException e) {
                net.close();
                throw e;
            }
            return net;
        }, recipe.sgdSettings(), reduce);
    }

    /** The recipe's frozen layers and learning-rate multipliers on {@code net} (untouched when it has none). */
    private void configureTraining(Network net) {
        if (recipe.freezeUpTo() != null || !recipe.lrMult().isEmpty()) {
            TransferLearning.configure(net, recipe.freezeUpTo(), recipe.lrMult());
        }
    }

    /**
     * The parts of a {@link TrainingRun}. Required: {@link #model}, {@link #recipe}, {@link #train}, and where the
     * replicas run: a {@link #backend} (with {@link #devices}, default 1) or {@link #replicas ready replicas}.
     * Optional: validation (without it no plateau rule and no best checkpoint), an output folder, resume, loading
     * threads (default 1), listeners (called before the metrics log and the curves).
     */
    public static final class Builder {
        private VggSpec model;
        private Recipe recipe;
        private String backend;
        private int devices = 1;
        private int firstDevice;
        private GradPrecision gradPrecision;
        private AllReduce allReduce;
        private Replicas replicas;
        private ImageDataset train;
        private SampleTransform trainTransform;
        private ImageDataset val;
        private SampleTransform valTransform;
        private boolean valFlips;
        private int validateEvery = 1;
        private Validation validation;
        private int threads = 1;
        private Path out;
        private boolean resume;
        private final List<TrainingListener> listeners = new ArrayList<>();
        private ModelMetadata.Norm normalization;

        private Builder() {
        }

        /** The network every replica builds (and the warm start's architecture). */
        public Builder model(VggSpec spec) {
            this.model = spec;
            return this;
        }

        public Builder recipe(Recipe r) {
            this.recipe = r;
            return this;
        }

        /** The compute backend the replicas are created on (reference, cpu, cuda, ...). */
        public Builder backend(String name) {
            this.backend = name;
            return this;
        }

        /** Data-parallel replicas in this process (default 1). */
        public Builder devices(int n) {
            this.devices = n;
            return this;
        }

        /** Replica r on device {@code first + r} (several processes on one machine: local rank x devices). */
        public Builder firstDevice(int first) {
            this.firstDevice = first;
            return this;
        }

        /** Format gradients travel in between this process's devices (default fp32; see {@link Replicas#allReduceFor}). */
        public Builder gradPrecision(GradPrecision p) {
            this.gradPrecision = p;
            return this;
        }

        /**
         * The all-reduce of the replicas (default: {@link Replicas#allReduceFor} the backend and devices); one that
         * spans a process group makes this a multi-process run. The run's replicas own it and close it.
         */
        public Builder allReduce(AllReduce reduce) {
            this.allReduce = reduce;
            return this;
        }

        /**
         * Replicas made by the caller, instead of a backend: they must hold networks of {@link #model} with
         * the recipe's SGD settings ({@link Recipe#sgdSettings()}); they stay the caller's, open after the run. The
         * recipe's frozen layers and learning-rate multipliers, when it has any, are set on their networks.
         */
        public Builder replicas(Replicas ready) {
            this.replicas = ready;
            return this;
        }

        /** The training set and its augmentation. */
        public Builder train(ImageDataset data, SampleTransform transform) {
            this.train = data;
            this.trainTransform = transform;
            return this;
        }

        /** The validation set and its (deterministic) view, evaluated after every epoch. */
        public Builder validation(ImageDataset data, SampleTransform transform) {
            this.val = data;
            this.valTransform = transform;
            return this;
        }

        /** Validation of any other kind, after every epoch. */
        public Builder validation(Validation v) {
            this.validation = v;
            return this;
        }

        /** Validate on each image and its mirror, softmax averaged (the paper's test-set flips). */
        public Builder validationFlips(boolean flips) {
            this.valFlips = flips;
            return this;
        }

        /** Validate after every {@code epochs}-th epoch and the last (default 1: every epoch); see {@link Trainer#validateEvery}. */
        public Builder validateEvery(int epochs) {
            Trainer.checkValidateEvery(epochs);
            this.validateEvery = epochs;
            return this;
        }

        /** Data loading threads of each pipeline (default 1). */
        public Builder threads(int n) {
            this.threads = n;
            return this;
        }

        /** The output folder: checkpoints, metrics.csv/json, curves.png (default: none, nothing written). */
        public Builder out(Path dir) {
            this.out = dir;
            return this;
        }

        /** Continue from the newest intact checkpoint in the output folder. */
        public Builder resume(boolean r) {
            this.resume = r;
            return this;
        }

        /**
         * The input normalisation the training transform applies, recorded in every checkpoint so evaluation can
         * apply the same (optional: without it checkpoints record the architecture only).
         */
        public Builder normalization(ModelMetadata.Norm norm) {
            this.normalization = norm;
            return this;
        }

        /** Adds a listener (progress display, logging, ...). */
        public Builder listener(TrainingListener l) {
            if (l == null) {
                throw new IllegalArgumentException("listener must not be null");
            }
            this.listeners.add(l);
            return this;
        }

        /**
         * The run; every part is checked here.
         *
         * @throws IllegalArgumentException naming the first part that is missing, out of range or in conflict
         */
        public TrainingRun build() {
            if (model == null) {
                throw new IllegalArgumentException("model not set: expected model(VggSpec)");
            }
            if (recipe == null) {
                throw new IllegalArgumentException("recipe not set: expected recipe(Recipe), e.g. Recipes.FASHION");
            }
            if (train == null || trainTransform == null) {
                throw new IllegalArgumentException("training data not set: expected train(dataset, transform) with both");
            }
            if ((val == null) != (valTransform == null)) {
                throw new IllegalArgumentException("validation(dataset, transform) needs both; got "
                        + (val == null ? "no dataset" : "no transform"));
            }
            if (val != null && validation != null) {
                throw new IllegalArgumentException("validation given twice: a dataset and a Validation; expected one");
            }
            if (replicas != null) {
                if (backend != null || allReduce != null || gradPrecision != null || devices != 1 || firstDevice != 0) {
                    throw new IllegalArgumentException("ready replicas given together with backend " + backend + ", devices "
                            + devices + ", first device " + firstDevice + ", all-reduce " + allReduce + ", grad precision "
                            + gradPrecision + "; expected replicas(...) alone (they bring all of these)");
                }
            } else {
                if (backend == null) {
                    throw new IllegalArgumentException("backend not set: expected backend(name) (reference, cpu, cuda, ...)"
                            + " or replicas(ready)");
                }
                if (devices < 1) {
                    throw new IllegalArgumentException("devices " + devices + ": must be >= 1");
                }
                if (firstDevice < 0) {
                    throw new IllegalArgumentException("first device " + firstDevice + ": must be >= 0");
                }
                if (allReduce != null && gradPrecision != null) {
                    throw new IllegalArgumentException("grad precision " + gradPrecision + " applies to the all-reduce the"
                            + " run creates; an all-reduce given sends as it was built: expected one of the two");
                }
            }
            if (threads < 1) {
                throw new IllegalArgumentException("threads " + threads + ": must be >= 1");
            }
            if (resume && out == null) {
                throw new IllegalArgumentException("resume needs an output folder to resume from: expected out(dir)");
            }
            return new TrainingRun(this);
        }
    }
}
