package org.vgg4j.train.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

import org.vgg4j.core.model.TransferLearning;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.CollectiveProvider;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.train.CurvePlot;
import org.vgg4j.train.Initialization;
import org.vgg4j.train.MetricsLog;
import org.vgg4j.train.Recipe;
import org.vgg4j.train.Recipes;
import org.vgg4j.train.Schedule;
import org.vgg4j.train.Trainer;
import org.vgg4j.train.Training;
import org.vgg4j.train.TrainingListener;
import org.vgg4j.train.TrainingRun;
import org.vgg4j.train.dist.LaunchEnv;
import org.vgg4j.train.dist.TcpAllReduce;
import org.vgg4j.train.dist.TcpProcessGroup;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code vgg train}: a recipe preset (with overrides) on a data source, N replicas on a backend, with a progress
 * bar, per-epoch metrics (CSV/JSON), training curves (PNG) and checkpoints in {@code --out}; {@code --resume}
 * continues the newest intact checkpoint there.
 *
 * <p>Several processes (docs/distributed.md): started by torchrun, srun, a Kubernetes indexed Job, ... with
 * WORLD_SIZE > 1 (or {@code --dist env}), every process runs this same command; each takes its slice of every
 * global batch ({@code --batch} is the global batch), the collective follows the backend (NCCL for {@code cuda},
 * TCP through rank 0 otherwise, {@code --collective} to choose), and only rank 0 prints, writes metrics, curves and
 * checkpoints. A failure on any rank stops every rank with an error naming it.
 *
 * <p>The options are mapped onto the fluent {@link Training} API, which runs the training; this class resolves
 * {@code --data} ({@link DataSource}), the network ({@link ModelOptions}), the recipe and the processes, refuses
 * what cannot mean anything in the options' words, and prints the run's first and last lines.
 *
 * <p>With neither {@code --data} nor {@code --recipe}, {@code vgg train} alone is README's main job (examples'
 * TrainFashionMnist, chosen so it stays about a minute on 2 cores: docs/benchmarks.md "README's main job"): the
 * bundled Fashion-MNIST sample, the {@code fashion} recipe at batch {@value #DEMO_BATCH} for {@value #DEMO_EPOCHS}
 * epochs, FC {@value #DEMO_HIDDEN} without dropout, images shifted by at most {@value #DEMO_PAD} pixel; each option
 * given overrides its value. Naming the data or the recipe gives every other option its plain default.
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Train a VGG with one of the paper's recipes (or the small-image one) and write metrics, curves and checkpoints.",
        footer = {"", "With neither --data nor --recipe: README's demo, the bundled Fashion-MNIST sample with the fashion"
                + " recipe and --batch 64 --epochs 10 --hidden 256 --dropout 0 --pad 1 (each option given overrides its"
                + " value)."})
public final class TrainCommand implements Callable<Integer> {
    /** The demo's batch (README's main job; see the class comment). */
    static final int DEMO_BATCH = 64;
    /** The demo's epochs. */
    static final int DEMO_EPOCHS = 10;
    /** The demo's FC6/FC7 width. */
    static final int DEMO_HIDDEN = 256;
    /** The demo's dropout after FC6/FC7: none. */
    static final double DEMO_DROPOUT = 0;
    /** The demo's random shift of the 28x28 images in their 32x32 frame, pixels. */
    static final int DEMO_PAD = 1;
    /** The plain random shift of small images, pixels. */
    static final int PAD = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--backend", converter = ModelOptions.BackendConverter.class, paramLabel = "NAME",
            description = "compute backend: reference, cpu, cuda (default: cpu when present)")
    String backend;

    @Option(names = "--devices", paramLabel = "N", description = "data-parallel replicas (default 1): replica r on GPU r with cuda / cuda-emulated (gradients averaged by a ring all-reduce, overlapped with backward), or N instances of a CPU backend (at most one per CPU core)")
    int devices = 1;

    @Option(names = "--precision", paramLabel = "P", description = "operands of the convolutions and GEMMs: fp32 (default), tf32 or bf16 (accumulation, master weights and SGD stay FP32). cuda: tensor cores, sets -Dvgg4j.cuda.math for this run; cpu: fp32 or bf16 (oneDNN, needs AVX512-BF16), sets -Dvgg4j.cpu.precision; reference: fp32 only")
    String precision;

    @Option(names = "--grad-precision", paramLabel = "P", description = "format gradients travel in between devices: fp32 (default), bf16 or fp16 (half the bytes; cuda backends with --devices > 1)")
    String gradPrecision = "fp32";

    @Option(names = "--recipe", paramLabel = "NAME", description = "paper-a, paper-warm, paper-s384, paper-multiscale, glorot, fashion (default fashion)")
    String recipe; // null: fashion (with --data, or the demo's without; see the class comment)

    @Option(names = "--data", paramLabel = "SOURCE", description = "fashion-mnist-sample (default), fashion-mnist, an IDX directory, or a directory with train/ and val/")
    String data; // null: fashion-mnist-sample

    @Option(names = "--out", paramLabel = "DIR", description = "run directory: checkpoints, metrics.csv/json, curves.png (default runs/train)")
    Path out = Path.of("runs", "train");

    @Option(names = "--resume", description = "continue from the newest intact checkpoint in --out")
    boolean resume;

    @Option(names = "--init-from", paramLabel = "FILE", description = "checkpoint a warm-start or fine-tuning recipe starts from")
    Path initFrom;

    @Option(names = "--freeze", paramLabel = "LAYER", description = "freeze this layer (e.g. features.16) and every"
            + " layer before it: no update, no weight decay, no gradient (fine-tuning)")
    String freeze;

    @Option(names = "--lr-mult", paramLabel = "PREFIX=X", description = "learning-rate multiplier of the layers under a"
            + " name prefix, repeatable, e.g. --lr-mult features=0.1 (Caffe's lr_mult; the longest prefix wins)")
    Map<String, Double> lrMult;

    @Option(names = "--epochs", paramLabel = "N", description = "maximum epochs (default: the recipe's; 10 in the demo)")
    Integer epochs;

    @Option(names = "--iterations", paramLabel = "N", description = "maximum optimiser steps (default: the recipe's)")
    Long iterations;

    @Option(names = "--batch", paramLabel = "N", description = "effective batch (default: the recipe's; 64 in the demo)")
    Integer batch;

    @Option(names = "--micro-batch", paramLabel = "N", description = "largest forward/backward per replica, >= 1; gradients accumulate (default: whole share)")
    Integer microBatch;

    @Option(names = "--lr", paramLabel = "X", description = "base learning rate (default: the recipe's)")
    Double lr;

    @Option(names = "--schedule", paramLabel = "S", description = "plateau, cosine, cosine:WARMUP, step:EVERY:GAMMA, constant (default: the recipe's)")
    String schedule;

    @Option(names = "--weight-decay", paramLabel = "X", description = "L2 weight decay (default: the recipe's)")
    Double weightDecay;

    @Option(names = "--label-smoothing", paramLabel = "E", description = "label smoothing: the loss's targets are (1 - E) onehot + E / classes, E in [0, 1) (default 0: the paper's plain cross-entropy)")
    Double labelSmoothing;

    @Option(names = "--seed", paramLabel = "N", description = "seed of initialisation, data order, augmentation and dropout (default 1)")
    long seed = 1;

    @Option(names = "--scale", paramLabel = "S[:SMAX]", description = "training scale S, or a jittering range (image folders; default: the recipe's)")
    String scale;

    @Option(names = "--pad", paramLabel = "PX", description = "random shift of small images in pixels (default 2; 1 in the demo)")
    Integer pad;

    @Option(names = "--limit", paramLabel = "N", description = "use only the first N training images, N >= 1 (default: all)")
    Integer limit;

    @Option(names = "--threads", paramLabel = "N", description = "data loading threads, >= 1 (default 1)")
    int threads = 1;

    @Option(names = "--checkpoint-every", paramLabel = "STEPS", description = "steps between checkpoints besides epoch ends; 0: at epoch ends only (default: the recipe's)")
    Integer checkpointEvery;

    @Option(names = "--on-nan", paramLabel = "POLICY", description = "STOP or ROLLBACK (to the last checkpoint with lr/10); default STOP")
    Recipe.NonFinitePolicy onNan;

    @Option(names = "--no-progress", description = "no progress bar (epoch lines only)")
    boolean noProgress;

    @Option(names = "--val-flips", description = "validate on each image and its mirror, softmax averaged (the paper's test-set flips; twice the validation cost)")
    boolean valFlips;

    @Option(names = "--val-every", paramLabel = "N", description = "validate after every N-th epoch and after the last (default 1: every epoch; the plateau schedule needs 1)")
    int valEvery = 1;

    /** How this process learns about the others. */
    public enum Dist { auto, env, none }

    @Option(names = "--dist", paramLabel = "MODE", description = "auto (default: several processes when the launcher's"
            + " WORLD_SIZE or SLURM_NTASKS > 1), env (require the launcher's variables), none (ignore them)")
    Dist dist = Dist.auto;

    /** Which all-reduce runs across processes. */
    public enum Collective { auto, tcp, nccl }

    @Option(names = "--collective", paramLabel = "NAME", description = "across processes: auto (default: nccl for the"
            + " cuda backend, tcp otherwise), tcp (through rank 0, any backend), nccl")
    Collective collective = Collective.auto;

    @Option(names = "--dist-timeout", paramLabel = "SECONDS", description = "longest wait for the other processes, at"
            + " start-up and for any one message (default 1800)")
    int distTimeout = 1800;

    private Map<String, String> environment = System.getenv();

    /** Reads the launcher's variables from {@code env} instead of the process environment (tests). */
    public TrainCommand withEnvironment(Map<String, String> env) {
        this.environment = Map.copyOf(env);
        return this;
    }

    @Mixin
    ModelOptions model;

    @Mixin
    OutputOptions output;

    /**
     * Trains, writing through the command line's output stream ({@code VggCli.run}'s {@code out}, the process's
     * stdout from {@code main}), so a caller can capture it; the bar only as {@link OutputOptions} decides.
     */
    @Override
    public Integer call() throws IOException {
        boolean bar = output.drawBar(noProgress);
        PrintStream console = new PrintStream(new WriterStream(spec.commandLine().getOut()), true, StandardCharsets.UTF_8);
        Result r = train(bar ? console : null, console);
        console.flush();
        return r == null ? 1 : 0;
    }

    /** Bytes to a PrintWriter: buffered until flushed (PrintStream flushes after each line and each bar frame). */
    private static final class WriterStream extends java.io.OutputStream {
        private final java.io.PrintWriter out;
        private final java.io.ByteArrayOutputStream pending = new java.io.ByteArrayOutputStream();

        WriterStream(java.io.PrintWriter out) {
            this.out = out;
        }

        @Override
        public void write(int b) {
            pending.write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) {
            pending.write(b, off, len);
        }

        @Override
        public void flush() {
            out.write(pending.toString(StandardCharsets.UTF_8)); // PrintStream flushes whole strings only
            pending.reset();
            out.flush();
        }
    }

    /** What a CLI run ended with. */
    public record Result(Trainer.Result trainer, Path out, VggSpec spec) {
    }

    /** Trains as the options say; progress goes to {@code progress} (or nowhere), epoch lines to {@code lines}. */
    public Result train(PrintStream progress, PrintStream lines) throws IOException {
        checkOptions();
        // the backends read their precision when they are made: set for this run, restored after it
        String savedMath = System.getProperty(CUDA_MATH);
        String savedCpu = System.getProperty(CPU_PRECISION);
        if (precision != null) {
            String p = precision.toLowerCase(Locale.ROOT);
            System.setProperty(backendName().startsWith("cuda") ? CUDA_MATH : CPU_PRECISION, p);
        }
        try {
            return trainChecked(progress, lines);
        } finally {
            restore(CUDA_MATH, savedMath);
            restore(CPU_PRECISION, savedCpu);
        }
    }

    private static void restore(String property, String saved) {
        if (saved == null) {
            System.clearProperty(property);
        } else {
            System.setProperty(property, saved);
        }
    }

    private String backendName() {
        return backend != null ? backend : ModelOptions.defaultBackend();
    }

    /** The system property the cuda backends take their MathMode from (vgg-cuda's CudaBackendProvider). */
    static final String CUDA_MATH = "vgg4j.cuda.math";
    /** The cpu backend's precision property (CpuBackend reads it when it is made). */
    static final String CPU_PRECISION = "vgg4j.cpu.precision";

    private Result trainChecked(PrintStream progress, PrintStream lines) throws IOException {
        if (distTimeout < 1) {
            throw new IllegalArgumentException("--dist-timeout " + distTimeout + ": must be >= 1 second");
        }
        LaunchEnv launch = switch (dist) {
            case none -> LaunchEnv.single();
            case auto -> LaunchEnv.present(environment) ? LaunchEnv.from(environment) : LaunchEnv.single();
            case env -> {
                LaunchEnv e = LaunchEnv.from(environment);
                if (e.source().equals("single")) {
                    throw new IllegalArgumentException("--dist env: no launcher variables found (RANK and WORLD_SIZE"
                            + " as torchrun sets them, or SLURM_PROCID and SLURM_NTASKS); see docs/distributed.md");
                }
                yield e;
            }
        };
        if (!launch.distributed()) {
            return trainOn(launch, null, progress, lines);
        }
        String backendName = backendName();
        if (backendName.startsWith("cuda") && System.getProperty("vgg4j.cuda.device") == null) {
            System.setProperty("vgg4j.cuda.device", Integer.toString(launch.localRank())); // one GPU per local rank
        }
        java.time.Duration timeout = java.time.Duration.ofSeconds(distTimeout);
        TcpProcessGroup group = TcpProcessGroup.connect(launch, new TcpProcessGroup.Options(timeout, timeout));
        try {
            return trainOn(launch, group, launch.rank() == 0 ? progress : null, launch.rank() == 0 ? lines : silent());
        } catch (IOException | RuntimeException | Error e) {
            group.abort(String.valueOf(e.getMessage() != null ? e.getMessage() : e)); // the others learn who and why
            throw e;
        } finally {
            group.close();
        }
    }

    /**
     * Refuses values that cannot mean anything, in the options' words, before any data is read. Several CPU-backend
     * replicas share this machine's cores: more replicas than cores would only take turns on them, so that is refused.
     */
    private void checkOptions() {
        String backendName = backendName();
        int cores = Runtime.getRuntime().availableProcessors();
        atLeast("--devices", devices, 1, "replicas");
        if (!backendName.startsWith("cuda") && devices > cores) {
            throw new IllegalArgumentException("--devices " + devices + ": the " + backendName + " backend runs every replica"
                    + " on this machine's " + cores + " CPU core" + (cores == 1 ? "" : "s") + "; expected at most " + cores);
        }
        atLeast("--dist-timeout", distTimeout, 1, "seconds");
        if (precision != null) {
            String p = precision.toLowerCase(Locale.ROOT);
            if (!p.equals("fp32") && !p.equals("tf32") && !p.equals("bf16")) {
                throw new IllegalArgumentException("--precision " + precision + ": expected fp32, tf32 or bf16");
            }
            if (p.equals("tf32") && !backendName.startsWith("cuda")) {
                throw new IllegalArgumentException("--precision " + precision + ": tf32 is a tensor-core format; the "
                        + backendName + " backend computes in fp32" + (backendName.equals("cpu") ? " or bf16" : "")
                        + ", and tf32 needs the cuda (or cuda-emulated) backend");
            }
            if (p.equals("bf16") && !backendName.startsWith("cuda") && !backendName.equals("cpu")) {
                throw new IllegalArgumentException("--precision " + precision + ": the " + backendName + " backend computes"
                        + " in FP32 only; bf16 needs the cpu backend (with AVX512-BF16) or a cuda backend");
            }
        }
        if (microBatch != null) {
            atLeast("--micro-batch", microBatch, 1, "images per forward/backward (omit it to run each replica's whole share at once)");
        }
        if (limit != null) {
            atLeast("--limit", limit, 1, "training images (omit it to use them all)");
        }
        atLeast("--threads", threads, 1, "data loading threads");
        atLeast("--val-every", valEvery, 1, "epochs from one validation to the next (1: every epoch)");
        if (labelSmoothing != null && !(labelSmoothing >= 0 && labelSmoothing < 1)) {
            throw new IllegalArgumentException("--label-smoothing " + labelSmoothing + ": expected a value in [0, 1)"
                    + " (0: the plain cross-entropy)");
        }
        if (pad != null) {
            atLeast("--pad", pad, 0, "pixels of random shift");
        }
        if (checkpointEvery != null) {
            atLeast("--checkpoint-every", checkpointEvery, 0, "steps (0: at epoch ends only)");
        }
        if (epochs != null) {
            atLeast("--epochs", epochs, 1, "epochs");
        }
        if (batch != null) {
            atLeast("--batch", batch, 1, "images");
        }
        if (iterations != null && iterations < 0) {
            throw new IllegalArgumentException("--iterations " + iterations + ": expected 0 (no limit) or more steps");
        }
        if (initFrom != null) {
            CliErrors.requireFile("--init-from", initFrom, "a safetensors checkpoint");
        }
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new IllegalArgumentException("--out " + out + ": not a directory; expected a directory (new or a run's)"
                    + " for checkpoints, metrics and curves");
        }
        if (Files.isDirectory(out) && !Files.isWritable(out)) {
            throw new IllegalArgumentException("--out " + out + ": not writable; expected a directory this user can write");
        }
    }

    private static void atLeast(String option, long value, long min, String what) {
        if (value < min) {
            throw new IllegalArgumentException(option + " " + value + ": expected " + min + " or more " + what);
        }
    }

    private static PrintStream silent() {
        return new PrintStream(java.io.OutputStream.nullOutputStream(), false, StandardCharsets.UTF_8);
    }

    /** The all-reduce across processes: the backend's own (NCCL for cuda) or TCP through rank 0; no silent fallback. */
    private AllReduce collective(String backendName, TcpProcessGroup group) {
        CollectiveProvider p = CollectiveProvider.forBackend(backendName);
        if (collective == Collective.tcp || (collective == Collective.auto && p == null)) {
            return new TcpAllReduce(group);
        }
        if (p == null) {
            throw new IllegalArgumentException("--collective nccl: no collective on the class path handles backend '"
                    + backendName + "' (NCCL needs the cuda backend from org.vgg4j:vgg-cuda)");
        }
        String why = p.unavailableReason();
        if (why != null) {
            throw new IllegalStateException(why + " (or run with --collective tcp, through the CPU and rank 0)");
        }
        return p.create(group);
    }

    private Result trainOn(LaunchEnv launch, TcpProcessGroup group, PrintStream progress, PrintStream lines)
            throws IOException {
        int world = launch.worldSize();
        boolean leader = launch.rank() == 0;
        Recipe r = recipe();
        if (valEvery > 1 && r.schedule() instanceof Schedule.Plateau) {
            throw new IllegalArgumentException("--val-every " + valEvery + ": the plateau schedule of recipe " + r.name()
                    + " decides after every epoch's validation; expected 1, or another --schedule");
        }
        if (r.batchSize() % world != 0) {
            throw new IllegalArgumentException("--batch " + r.batchSize() + " (the global batch) cannot be split evenly"
                    + " over WORLD_SIZE=" + world + " processes; use a multiple of " + world);
        }
        DataSource src = DataSource.resolve(data != null ? data : "fashion-mnist-sample", limit != null ? limit : 0,
                pad(), model.inputSize != null ? model.inputSize : 224,
                r.scaleMin(), r.scaleMax());
        VggSpec vgg = spec(src.small(), src.classes());
        if (!src.small() && r.scaleMin() < vgg.inputSize()) {
            throw new IllegalArgumentException("training scale " + r.scaleMin() + " is smaller than the crop " + vgg.inputSize());
        }
        if (leader && !resume && TrainingRun.holdsCheckpoints(out)) { // only rank 0 reads and writes --out
            throw new IllegalArgumentException("--out " + out + " already holds checkpoints: pass --resume to continue"
                    + " that run, or choose another --out");
        }
        if (leader) {
            try {
                Files.createDirectories(out);
            } catch (IOException e) { // a read-only or special place: the user's value, said in their words
                throw new IllegalArgumentException("--out " + out + ": cannot create the directory: " + CliErrors.describe(e), e);
            }
        }
        String backendName = backendName();
        lines.printf(Locale.ROOT, "recipe %s: batch %d, lr %s, %s, %d epochs; data %s (%,d train / %,d validation images); backend %s x %d%s%n",
                r.name(), r.batchSize(), r.baseLr(), r.schedule().describe(), r.maxEpochs(), src.name(), src.train().size(),
                src.val().size(), backendName, devices, group == null ? "" : String.format(Locale.ROOT,
                        " per process x %d processes (%s, rank 0 at %s)", world, launch.source(), group.master()));
        if (precision != null) {
            lines.printf(Locale.ROOT, "precision %s: operands of the convolutions and GEMMs; FP32 accumulation, master weights"
                    + " and SGD%n", precision.toLowerCase(Locale.ROOT));
        }
        if (r.newHead() || r.freezeUpTo() != null || !r.lrMult().isEmpty()) {
            lines.printf(Locale.ROOT, "fine-tuning from %s: %s head%s%s%n", r.initFrom() != null ? r.initFrom() : "a fresh start",
                    r.newHead() ? "a new " + vgg.numClasses() + "-class" : "the checkpoint's",
                    r.freezeUpTo() != null ? ", frozen up to " + r.freezeUpTo() : "",
                    r.lrMult().isEmpty() ? "" : ", learning-rate multipliers " + r.lrMult());
        }
        GradPrecision precision = GradPrecision.parse(gradPrecision);
        if (group != null && precision != GradPrecision.FP32) {
            throw new IllegalArgumentException("--grad-precision " + precision + " applies to the devices of one process"
                    + " (the ring all-reduce); the multi-process collectives send fp32");
        }
        Training training = Training.of(vgg).recipe(r).backend(backendName).devices(devices)
                .data(src.train(), src.trainTransform()).validation(src.val(), src.valTransform())
                .threads(threads).out(out).normalization(src.norm());
        if (valFlips) {
            training.validationFlips();
        }
        training.validateEvery(valEvery);
        if (resume) {
            training.resume();
        }
        if (group == null) {
            training.gradPrecision(precision);
        } else {
            // several devices per process: each process on a machine takes its own block of them (one device per
            // process is chosen through -Dvgg4j.cuda.device = local rank instead, see above)
            training.allReduce(collective(backendName, group)).firstDevice(devices > 1 ? launch.localRank() * devices : 0);
        }
        if (leader) {
            training.listener(progress != null ? new ProgressBar(progress, r.maxEpochs()) : epochLinesOnly(lines, r.maxEpochs()));
        }
        Trainer.Result res = training.run();
        long skipped = res.epochs().isEmpty() ? 0 : res.epochs().get(res.epochs().size() - 1).skippedImages();
        lines.printf(Locale.ROOT, "stopped: %s; metrics in %s, curves in %s, checkpoints in %s%s%n", res.stopReason(),
                out.resolve(MetricsLog.CSV), out.resolve(CurvePlot.FILE), out.resolve(TrainingRun.CHECKPOINTS),
                ProgressBar.skippedAtEnd(skipped));
        return new Result(res, out, vgg);
    }

    /** Whether neither {@code --data} nor {@code --recipe} was given: the demo's defaults apply (class comment). */
    boolean demo() {
        return data == null && recipe == null;
    }

    /** The random shift of small images: {@code --pad}, else the demo's or the plain default. */
    int pad() {
        return pad != null ? pad : demo() ? DEMO_PAD : PAD;
    }

    /** The network the model options describe for this data, with the demo's FC width and dropout by default there. */
    VggSpec spec(boolean small, int dataClasses) {
        return demo() ? model.spec(small, dataClasses, seed, DEMO_HIDDEN, DEMO_DROPOUT) : model.spec(small, dataClasses, seed);
    }

    private static TrainingListener epochLinesOnly(PrintStream lines, int maxEpochs) {
        ProgressBar bar = new ProgressBar(lines, maxEpochs);
        return new TrainingListener() {
            @Override
            public void onStart(Start s) {
                bar.onStart(s);
            }

            @Override
            public void onEpoch(org.vgg4j.train.EpochMetrics m) {
                bar.onEpoch(m);
            }

            @Override
            public void onWarning(String message) {
                bar.onWarning(message);
            }
        };
    }

    /** The preset with the options' overrides applied. */
    Recipe recipe() {
        Recipe r;
        try {
            r = Recipes.named(recipe != null ? recipe : "fashion", initFrom);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Invalid value for option '--recipe': " + e.getMessage());
        }
        Recipe.Builder b = r.toBuilder();
        if (initFrom != null && r.init() != Recipe.Init.WARM_START_A && r.init() != Recipe.Init.FROM_CHECKPOINT) {
            b.init(Recipe.Init.FROM_CHECKPOINT).initFrom(initFrom);
        }
        if (initFrom != null && model.classes != null && r.init() != Recipe.Init.WARM_START_A) {
            // --classes N with a checkpoint of other classes: a fresh head for N, every other tensor loaded strictly
            int fileClasses;
            try {
                fileClasses = Initialization.classesOf(initFrom, TransferLearning.VGG_HEAD + ".weight");
            } catch (IOException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "Invalid value for option '--init-from': "
                        + e.getMessage());
            }
            b.newHead(fileClasses != model.classes);
        }
        if (freeze != null) {
            b.freezeUpTo(freeze);
        }
        if (lrMult != null) {
            b.lrMult(lrMult);
        }
        if (epochs != null) {
            b.maxEpochs(epochs);
        } else if (demo()) {
            b.maxEpochs(DEMO_EPOCHS);
        }
        if (iterations != null) {
            b.maxIterations(iterations);
        }
        if (batch != null) {
            b.batchSize(batch);
        } else if (demo()) {
            b.batchSize(DEMO_BATCH);
        }
        if (microBatch != null) {
            b.microBatch(microBatch);
        }
        if (lr != null) {
            b.baseLr(lr);
        }
        if (schedule != null) {
            try {
                b.schedule(Schedule.parse(schedule));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "Invalid value for option '--schedule': " + e.getMessage());
            }
        }
        if (labelSmoothing != null) {
            b.labelSmoothing(labelSmoothing);
        }
        if (weightDecay != null) {
            b.weightDecay(weightDecay);
        }
        if (scale != null) {
            String[] p = scale.split(":");
            try {
                int lo = Integer.parseInt(p[0]);
                b.scales(lo, p.length > 1 ? Integer.parseInt(p[1]) : lo);
            } catch (NumberFormatException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "Invalid value for option '--scale': '" + scale
                        + "'; expected S or SMIN:SMAX, e.g. 256 or 256:512");
            }
        }
        if (checkpointEvery != null) {
            b.checkpointEvery(checkpointEvery);
        }
        if (onNan != null) {
            b.onNonFinite(onNan);
        }
        return b.initSeed(seed).dataSeed(seed).build();
    }
}
