package org.vgg4j.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.ModelMetadata;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggOptions;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.data.FileImageDataset;
import org.vgg4j.data.ImageDataset;
import org.vgg4j.data.ImageDecoder;
import org.vgg4j.data.ImageFolders;
import org.vgg4j.data.Normalization;
import org.vgg4j.data.PaperTransforms;
import org.vgg4j.data.SampleTransform;

/**
 * The fluent way to train from Java: each method sets one part of a {@link TrainingRun}, which assembles and checks
 * them (this class re-implements nothing), and {@link #run()} trains.
 *
 * <pre>{@code
 * Trainer.Result r = Training.of(spec).imageFolders(dir).recipe(Recipes.PAPER_A).out(runDir)
 *         .listener(progress).devices(4).run();
 * }</pre>
 *
 * <p>The guardrails are the run's (a folder holding checkpoints is refused unless {@link #resume()}, a diverging run
 * stops, a missing part is named); progress reaches the {@link TrainingListener}s, as the command line's bar does.
 * The backend defaults to {@code cpu} when present, {@code reference} otherwise (as {@code vgg train}'s does).
 * {@code vgg train} is its options mapped onto this class, so everything the command line does is here, several
 * processes included ({@link #allReduce}).
 */
public final class Training {
    private final VggSpec model;
    private final TrainingRun.Builder run = TrainingRun.builder();
    private Recipe recipe;
    private String backend;
    private Path imageFolders;
    private boolean dataGiven; // data(...) or validation(...): in conflict with imageFolders(...)

    private Training(VggSpec model) {
        this.model = model;
    }

    /** A run of this network (every replica builds it; a warm start reads into it). */
    public static Training of(VggSpec model) {
        if (model == null) {
            throw new IllegalArgumentException("model must not be null: expected a VggSpec, e.g. from Vgg.vgg16()'s spec");
        }
        return new Training(model);
    }

    /**
     * A run of {@code config} as {@code options} shape it ({@link VggOptions#spec}), on the options' backend and
     * device (the first replica's). The options' initialisation and dtype do not apply: the recipe initialises,
     * and training runs in float32.
     */
    public static Training of(VggConfig config, VggOptions options) {
        Training t = of(options.spec(config));
        t.backend = options.backend();
        t.run.firstDevice(options.device());
        return t;
    }

    /** Training data and its augmentation (validation is set separately, see {@link #validation}). */
    public Training data(ImageDataset train, SampleTransform augmentation) {
        run.train(train, augmentation);
        dataGiven = true;
        return this;
    }

    /**
     * Class folders {@code dir/train/<class>/*} and {@code dir/val/<class>/*}, read as {@code vgg train --data dir}
     * reads them: the paper's augmentation at the recipe's scales and the model's input size, centre-crop validation
     * at Q = (Smin + Smax) / 2, the paper's mean subtraction (recorded in every checkpoint). Resolved by {@link #run()}.
     */
    public Training imageFolders(Path dir) {
        this.imageFolders = dir;
        return this;
    }

    /** Validation data and its deterministic view, evaluated after every epoch. */
    public Training validation(ImageDataset val, SampleTransform view) {
        run.validation(val, view);
        dataGiven = true;
        return this;
    }

    public Training recipe(Recipe r) {
        this.recipe = r;
        run.recipe(r);
        return this;
    }

    /** The compute backend: reference, cpu, cuda, ... (default: cpu when present). */
    public Training backend(String name) {
        this.backend = name;
        return this;
    }

    /** Data-parallel replicas in this process (default 1). */
    public Training devices(int n) {
        run.devices(n);
        return this;
    }

    /** Data loading threads of each pipeline (default 1). */
    public Training threads(int n) {
        run.threads(n);
        return this;
    }

    /** Replica r on device {@code first + r} (default 0, or the options' device with {@link #of(VggConfig, VggOptions)}). */
    public Training firstDevice(int first) {
        run.firstDevice(first);
        return this;
    }

    /**
     * The format gradients travel in between this process's devices: fp32 (the default), bf16 or fp16, half the
     * bytes (see {@link Replicas#allReduceFor}); not together with {@link #allReduce}, which sends as it was built.
     */
    public Training gradPrecision(GradPrecision p) {
        run.gradPrecision(p);
        return this;
    }

    /**
     * The all-reduce of the gradients instead of the one the backend and devices imply; one that spans a process
     * group makes this a run of several processes: each takes its share of every global batch, and only rank 0
     * writes into the output folder (docs/distributed.md). The run closes it.
     */
    public Training allReduce(AllReduce reduce) {
        run.allReduce(reduce);
        return this;
    }

    /** Validate on each image and its mirror, softmax averaged: the paper's test-set flips, twice the validation cost. */
    public Training validationFlips() {
        run.validationFlips(true);
        return this;
    }

    /**
     * Validate after every {@code epochs}-th epoch and after the last one only (default 1: after every epoch): less
     * time on validation in short runs. The plateau schedule refuses more than 1 (it decides on each validation).
     */
    public Training validateEvery(int epochs) {
        run.validateEvery(epochs);
        return this;
    }

    /** The output folder: checkpoints, metrics.csv/json, curves.png (default: none, nothing written). */
    public Training out(Path dir) {
        run.out(dir);
        return this;
    }

    /** Continue from the newest intact checkpoint in the output folder. */
    public Training resume() {
        run.resume(true);
        return this;
    }

    /** The normalisation the training transform applies, recorded in every checkpoint (see {@link TrainingRun}). */
    public Training normalization(Normalization norm) {
        run.normalization(new ModelMetadata.Norm(norm.mean(), norm.std()));
        return this;
    }

    /** Adds a listener: progress, logging, early stopping by exception. */
    public Training listener(TrainingListener l) {
        run.listener(l);
        return this;
    }

    /**
     * The assembled run, every part checked.
     *
     * @throws IllegalArgumentException naming the first part that is missing, out of range or in conflict
     * @throws IOException              when the image folders cannot be listed
     */
    public TrainingRun build() throws IOException {
        run.model(model).backend(backend != null ? backend
                : Backends.names().contains("cpu") ? "cpu" : "reference");
        if (imageFolders != null) {
            if (dataGiven) {
                throw new IllegalArgumentException("data given twice: imageFolders(" + imageFolders + ") and data(...) or"
                        + " validation(...); expected one of the two");
            }
            if (recipe == null) { // the folders' transforms follow the recipe's scales
                throw new IllegalArgumentException("recipe not set: expected recipe(Recipe) for imageFolders(" + imageFolders
                        + "), e.g. Recipes.PAPER_A");
            }
            for (String split : new String[] {"train", "val"}) {
                if (!Files.isDirectory(imageFolders.resolve(split))) {
                    throw new IllegalArgumentException("imageFolders(" + imageFolders + ") has no " + split
                            + "/ folder; expected train/ and val/ class folders");
                }
            }
            ImageDecoder decoder = new ImageDecoder();
            FileImageDataset train = ImageFolders.imageFolder(imageFolders.resolve("train"), decoder);
            FileImageDataset val = ImageFolders.imageFolder(imageFolders.resolve("val"), decoder);
            int s0 = recipe.scaleMin();
            int s1 = recipe.scaleMax();
            run.train(train, PaperTransforms.training(s0, s1, model.inputSize()))
                    .validation(val, PaperTransforms.validation(s0, s1, model.inputSize()));
            normalization(Normalization.IMAGENET_MEAN_RGB);
        }
        return run.build();
    }

    /**
     * Trains until the recipe's limit (see {@link TrainingRun#run()}).
     *
     * @throws IllegalArgumentException naming a missing or bad part, or a folder holding checkpoints without
     *                                  {@link #resume()}
     * @throws IllegalStateException    when training diverges
     */
    public Trainer.Result run() throws IOException {
        return build().run();
    }
}
