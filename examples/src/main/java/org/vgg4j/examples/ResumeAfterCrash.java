package org.vgg4j.examples;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
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
        return Recipes.FASHION.toBuilder().batchSize(32).microBatch(0).maxEpochs(2).maxIterations(0).checkpointEvery(2)
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

    /**
     * The class path the child JVM runs with. Under {@code java -cp} or surefire this JVM's class path and module
     * path hold this example and its dependencies, and are used as they are. Under {@code exec:java} they are
     * Maven's own launcher (the example runs in a class loader Maven made), so the child gets the URLs of the
     * class loader that loaded this example: the project's classes and its dependencies, nothing of Maven's.
     *
     * @throws IllegalStateException when neither holds this example's classes (naming where they were loaded from)
     */
    static String childClassPath(String classPath, String modulePath, ClassLoader loader, Path ownCode) {
        List<String> jvm = Stream.of(classPath, modulePath).filter(p -> p != null && !p.isEmpty())
                .flatMap(p -> Arrays.stream(p.split(File.pathSeparator))).filter(e -> !e.isEmpty()).toList();
        if (jvm.stream().anyMatch(e -> sameFile(e, ownCode))) {
            return String.join(File.pathSeparator, jvm);
        }
        List<String> fromLoader = new ArrayList<>();
        if (loader instanceof URLClassLoader u) {
            for (URL url : u.getURLs()) {
                if (url.getProtocol().equals("file")) {
                    try {
                        fromLoader.add(Path.of(url.toURI()).toString());
                    } catch (URISyntaxException e) {
                        throw new IllegalStateException("class path entry " + url + " is not a file path", e);
                    }
                }
            }
        }
        if (fromLoader.stream().noneMatch(e -> sameFile(e, ownCode))) {
            throw new IllegalStateException("cannot build the child JVM's class path: " + ownCode + " (where "
                    + ResumeAfterCrash.class.getName() + " was loaded from) is neither on java.class.path/jdk.module.path ("
                    + jvm + ") nor among the URLs of its class loader " + loader + " (" + fromLoader + ")");
        }
        return String.join(File.pathSeparator, fromLoader);
    }

    private static boolean sameFile(String entry, Path p) {
        return Path.of(entry).toAbsolutePath().normalize().equals(p.toAbsolutePath().normalize());
    }

    /** Where this example's classes were loaded from (a folder or a jar). */
    private static Path ownCode() {
        try {
            return Path.of(ResumeAfterCrash.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException("the location of " + ResumeAfterCrash.class.getName() + " is not a file path", e);
        }
    }

    /** The whole demonstration; returns whether the resumed run equals the uninterrupted one bit for bit. */
    static boolean run(Path work, String backend, int killAt) throws Exception {
        System.out.println("1. uninterrupted run");
        float[] reference = train(work.resolve("uninterrupted"), backend, List.of());
        Path crashed = work.resolve("crashed");
        System.out.println("2. the same run in a child JVM, killed with SIGKILL after step " + killAt);
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process child = new ProcessBuilder(java, "-cp", childClassPath(System.getProperty("java.class.path"),
                System.getProperty("jdk.module.path"), ResumeAfterCrash.class.getClassLoader(), ownCode()), ResumeAfterCrash.class.getName(),
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
