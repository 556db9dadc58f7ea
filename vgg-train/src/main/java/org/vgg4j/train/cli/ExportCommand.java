package org.vgg4j.train.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.OnnxExport;
import org.vgg4j.core.model.Initializers;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.train.Initialization;

import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code vgg export --onnx OUT.onnx}: a network's inference graph and weights as an ONNX model, through
 * {@link OnnxExport}. The weights come from a checkpoint or, to try a runtime out, from a fresh seeded
 * initialisation; one of the two must be named. The architecture is the checkpoint's when it records one (model
 * options are then only checked against it, as for {@code vgg eval}), else the model options'.
 */
@Command(name = "export", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write a VGG network as an ONNX model: input 'input' (N,3,H,W) with any batch N, output "
                + "'logits' (N,classes), evaluation mode (BatchNorm on running statistics, no dropout).")
final class ExportCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--onnx", required = true, paramLabel = "OUT.onnx", description = "the ONNX file to write (replaced)")
    Path onnx;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Weights weights;

    /** Where the weights come from: exactly one of the two. */
    static final class Weights {
        @Option(names = "--checkpoint", required = true, paramLabel = "FILE",
                description = "the weights: a vgg train checkpoint, a safetensors file or a torchvision .pth state dict")
        Path checkpoint;

        @Option(names = "--random-init", required = true, paramLabel = "SEED",
                description = "instead of a checkpoint: fresh Glorot-uniform weights drawn with SEED")
        Long randomInit;
    }

    @Option(names = "--small-images", description = "the architecture vgg train picks for small images "
            + "(Fashion-MNIST): BatchNorm, width 0.25, FC 128, 32x32, 10 classes; model options override it")
    boolean small;

    @Option(names = "--opset", paramLabel = "V", description = "ONNX opset to import, "
            + OnnxExport.Options.MIN_OPSET + ".." + OnnxExport.Options.MAX_OPSET + " (default 13)")
    int opset = OnnxExport.Options.MIN_OPSET;

    @Option(names = "--backend", converter = ModelOptions.BackendConverter.class, paramLabel = "NAME",
            description = "backend that holds the weights while they are written (default cpu, else reference)")
    String backend;

    @Mixin
    ModelOptions model;

    @Override
    public Integer call() throws IOException {
        OnnxExport.Options options = OnnxExport.Options.defaults().withOpset(opset);
        VggSpec fromOptions = model.spec(small, small ? 10 : 1000, 0);
        VggSpec vgg = weights.checkpoint == null ? fromOptions
                : CheckpointModel.resolve(weights.checkpoint, CheckpointModel.given(spec), fromOptions,
                small ? "--small-images" : null).spec();
        try (Backend b = Backends.create(backend != null ? backend : ModelOptions.defaultBackend());
             Network net = Vgg.build(b, DType.FLOAT32, vgg)) {
            if (weights.checkpoint != null) {
                Initialization.loadWeights(net, weights.checkpoint);
            } else {
                Initializers.initialize(net, Initializers.Scheme.GLOROT_UNIFORM, weights.randomInit);
            }
            OnnxExport.write(net, onnx, options);
        }
        var out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "wrote %s: VGG %s, input 'input' (N,3,%d,%d), output 'logits' (N,%d), opset %d, %.1f MB%n",
                onnx, vgg.name(), vgg.inputSize(), vgg.inputSize(), vgg.numClasses(), opset, Files.size(onnx) / 1e6);
        out.flush();
        return 0;
    }
}
