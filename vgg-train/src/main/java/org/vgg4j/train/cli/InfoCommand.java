package org.vgg4j.train.cli;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

import org.vgg4j.core.model.ModelInfo;
import org.vgg4j.core.model.VggSpec;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code vgg info}: parameters, FLOPs and training memory of a configuration, per layer and per batch size. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Parameters, FLOPs and memory of a VGG configuration (computed, nothing allocated).")
final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions model;

    @Option(names = "--batch", split = ",", paramLabel = "N[,N...]",
            description = "batch sizes for the memory table (default 1,32,64,128,256)")
    List<Integer> batches = List.of(1, 32, 64, 128, 256);

    @Option(names = "--layers", description = "print the per-layer table")
    boolean layers;

    @Override
    public Integer call() {
        VggSpec s = model.spec(false, 1000, 0);
        var out = spec.commandLine().getOut();
        ModelInfo one = ModelInfo.of(s, batches.get(0));
        if (layers) {
            out.print(one);
        }
        out.printf(Locale.ROOT, "VGG %s (%d weight layers), input 3x%dx%d, %d classes%n", s.name(), s.config().depth(),
                s.inputSize(), s.inputSize(), s.numClasses());
        out.printf(Locale.ROOT, "parameters: %,d (conv %,d, FC %,d)%n", one.parameters(), one.convParameters(),
                one.parameters() - one.convParameters());
        out.printf(Locale.ROOT, "forward: %.3f GMACs = %.3f GFLOPs per image; a training step ~3x that%n", one.gigaMacs(),
                2 * one.gigaMacs());
        // one cpu replica holds the FC layers' weight gradients as factors (Network.deferLinearWeightGradients)
        out.printf(Locale.ROOT, "%8s %18s %18s %22s%n", "batch", "activations MiB", "training step MiB",
                "one cpu replica MiB");
        for (int b : batches) {
            ModelInfo i = ModelInfo.of(s, b);
            out.printf(Locale.ROOT, "%8d %18.1f %18.1f %22.1f%n", b, i.activationBytes() / 1048576.0,
                    i.trainingBytes() / 1048576.0, i.factoredTrainingBytes() / 1048576.0);
        }
        out.flush();
        return 0;
    }
}
