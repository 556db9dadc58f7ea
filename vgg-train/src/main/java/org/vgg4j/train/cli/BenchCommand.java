package org.vgg4j.train.cli;

import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.ModelInfo;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.Batch;
import org.vgg4j.train.Replicas;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code vgg bench}: training-step throughput (forward + backward + all-reduce + SGD) of a configuration on
 * random inputs, after warm-up steps, with the work per step and the achieved GFLOP/s. A measurement for
 * docs/benchmarks.md, not a test.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Measure training-step throughput on random data.")
final class BenchCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--backend", converter = ModelOptions.BackendConverter.class, paramLabel = "NAME",
            description = "compute backend (default: cpu when present)")
    String backend;

    @Option(names = "--devices", paramLabel = "N", description = "data-parallel replicas (default 1): replica r on GPU r with cuda / cuda-emulated")
    int devices = 1;

    @Option(names = "--grad-precision", paramLabel = "P", description = "format gradients travel in between devices: fp32 (default), bf16 or fp16")
    String gradPrecision = "fp32";

    @Option(names = "--batch", paramLabel = "N", description = "batch per step (default 4)")
    int batch = 4;

    @Option(names = "--steps", paramLabel = "N", description = "timed steps (default 5)")
    int steps = 5;

    @Option(names = "--warmup", paramLabel = "N", description = "untimed steps first (default 1)")
    int warmup = 1;

    @Mixin
    ModelOptions model;

    @Override
    public Integer call() {
        if (batch < 1 || steps < 1 || warmup < 0 || devices < 1) {
            throw new IllegalArgumentException("--batch " + batch + ", --steps " + steps + ", --devices " + devices
                    + " must be >= 1 and --warmup " + warmup + " >= 0");
        }
        VggSpec s = model.spec(false, 1000, 0);
        String name = backend != null ? backend : ModelOptions.defaultBackend();
        var out = spec.commandLine().getOut();
        int side = s.inputSize();
        Batch b = new Batch(batch, 3, side, side);
        SplittableRandom rnd = new SplittableRandom(1);
        for (int i = 0; i < batch * 3 * side * side; i++) {
            b.hostImages()[i] = (float) rnd.nextGaussian();
        }
        for (int i = 0; i < batch; i++) {
            b.labels()[i] = rnd.nextInt(s.numClasses());
        }
        b.setSize(batch);
        try (Replicas r = Replicas.create(name, devices, (be, rank) -> Vgg.build(be, DType.FLOAT32, s),
                Sgd.Settings.PAPER, Replicas.allReduceFor(name, devices, GradPrecision.parse(gradPrecision)))) {
            Initializers.initialize(r.primary(), Initializers.Scheme.GLOROT_UNIFORM, 1);
            r.broadcastFromPrimary();
            for (int i = 0; i < warmup; i++) {
                r.forwardBackward(b, 0);
                r.step(1e-4);
            }
            long t0 = System.nanoTime();
            for (int i = 0; i < steps; i++) {
                r.forwardBackward(b, 0);
                r.step(1e-4);
            }
            r.primary().backend().synchronize();
            double sec = (System.nanoTime() - t0) / 1e9 / steps;
            double flops = 3 * 2 * ModelInfo.of(s, batch).macsPerImage() * (double) batch;
            out.printf(Locale.ROOT, "VGG %s, input %dx%d, batch %d, backend %s x %d: %.3f s/step, %.2f img/s, %.1f GFLOP/s "
                    + "(3 x forward FLOPs)%n", s.name(), side, side, batch, name, devices, sec, batch / sec, flops / sec / 1e9);
            out.flush();
        }
        return 0;
    }
}
