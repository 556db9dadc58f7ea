package org.vgg4j.examples;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.IdxImages;
import org.vgg4j.data.SmallImageTransform;
import org.vgg4j.train.HostAllReduce;
import org.vgg4j.train.Recipe;
import org.vgg4j.train.Recipes;
import org.vgg4j.train.Replicas;
import org.vgg4j.train.Schedule;
import org.vgg4j.train.TrainingListener;
import org.vgg4j.train.TrainingRun;

/**
 * Shows that a run killed with SIGKILL resumes exactly: trains a narrow VGG-A_bn (with dropout) on part of the
 * bundled Fashion-MNIST sample once without interruption, then again in a child JVM that is killed (kill -9,
 * {@code Process.destroyForcibly}) after {@code killAt} steps and resumed here from its newest checkpoint, and
 * compares the final parameters and momentum bit for bit.
 *
 * <p>Run: {@code mvn -q -DskipTests package exec:java -Dexec.mainClass=org.vgg4j.examples.ResumeAfterCrash}
 * (optional args: BACKEND, default reference). Prints "bitwise identical: true".
 */
public final class ResumeAfterCrash {
    private ResumeAfterCrash() {
    }

    static final VggSpec SPEC = new VggSpec(VggConfig.A, true, 10, 32, 0.0625, 32, 0.5, 3);

    static Recipe recipe() {
        return Recipes.fashion().toBuilder().batchSize(32).microBatch(0).maxEpochs(2).maxIterations(0).checkpointEvery(2)
                .keepLast(2).schedule(new Schedule.Cosine(4, 0)).baseLr(0.05).build();
    }

    /**
     * Trains (or resumes, from the newest intact checkpoint) in {@code dir}; returns the final parameters then
     * momentum, as float bits.
     */
    static float[] train(Path dir, String backend, List<TrainingListener> listeners) throws IOException {
        IdxImages all = FashionMnist.bundledSample(FashionMnist.Split.TRAIN);
        int n = 320;
        IdxImages part = new IdxImages(n, all.rows(), all.cols(), Arrays.copyOf(all.pixels(), n * all.rows() * all.cols()),
                Arrays.copyOf(all.labels(), n));
        IdxImages test = FashionMnist.bundledSample(FashionMnist.Split.TEST);
        SmallImageTransform t = SmallImageTransform.grey(32, 2, true, 0.286, 0.353);
        Recipe r = recipe();
        // the replicas are made here, not by the run, so that their final tensors can be read after it
        try (Replicas replicas = Replicas.create(backend, 1, (b, rank) -> Vgg.build(b, DType.FLOAT32, SPEC), r.sgdSettings(),
                new HostAllReduce())) {
            TrainingRun.Builder run = TrainingRun.builder().model(SPEC).recipe(r).replicas(replicas)
                    .train(new IdxDataset(part, FashionMnist.CLASS_NAMES), t)
                    .validation(new IdxDataset(test, FashionMnist.CLASS_NAMES), t.testView()).out(dir).resume(true);
            listeners.forEach(run::listener);
            run.build().run();
            int p = Math.toIntExact(replicas.primary().params().values().size());
            float[] out = new float[2 * p];
            replicas.primary().backend().copyOut(replicas.primary().params().values(), out, 0);
            replicas.primary().backend().copyOut(replicas.optimizer(0).velocity(), out, p);
            return out;
        }
    }

    /** This JVM's class path and module path (when it runs the modules), as one class path for the child JVM. */
    private static String classAndModulePath() {
        return Stream.of(System.getProperty("java.class.path"), System.getProperty("jdk.module.path"))
                .filter(p -> p != null && !p.isEmpty()).collect(Collectors.joining(File.pathSeparator));
    }

    /** The whole demonstration; returns whether the resumed run equals the uninterrupted one bit for bit. */
    static boolean run(Path work, String backend, int killAt) throws Exception {
        System.out.println("1. uninterrupted run");
        float[] reference = train(work.resolve("uninterrupted"), backend, List.of());
        Path crashed = work.resolve("crashed");
        System.out.println("2. the same run in a child JVM, killed with SIGKILL after step " + killAt);
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process child = new ProcessBuilder(java, "-cp", classAndModulePath(), ResumeAfterCrash.class.getName(),
                "--child", crashed.toString(), backend).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.equals("step " + killAt)) {
                    child.destroyForcibly();
                    break;
                }
            }
        } finally {
            child.destroyForcibly();
            child.waitFor(30, TimeUnit.SECONDS);
        }
        try (var files = Files.list(crashed.resolve(TrainingRun.CHECKPOINTS))) {
            System.out.println("   left on disk: " + files.map(p -> p.getFileName().toString()).sorted().toList());
        }
        System.out.println("3. resumed here from the newest intact checkpoint");
        float[] resumed = train(crashed, backend, List.of());
        boolean same = Arrays.equals(reference, resumed);
        System.out.println("bitwise identical: " + same);
        return same;
    }

    public static void main(String[] args) throws Exception {
        if (args.length >= 2 && args[0].equals("--child")) {
            train(Path.of(args[1]), args[2], List.of(new TrainingListener() {
                @Override
                public void onStep(Step s) {
                    System.out.println("step " + s.step());
                    System.out.flush();
                    try {
                        Thread.sleep(100); // give the parent time to kill in the middle of the run
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }));
            return;
        }
        Path work = Files.createTempDirectory("vgg4j-resume");
        boolean same = run(work, args.length > 0 ? args[0] : "reference", 13);
        System.exit(same ? 0 : 1);
    }
}
