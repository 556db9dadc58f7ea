package org.vgg4j.train.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.BadImageException;
import org.vgg4j.data.BadImageLog;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.Normalization;
import org.vgg4j.train.Evaluator;
import org.vgg4j.train.Initialization;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code vgg eval}: top-1/top-5 error of one checkpoint or an ensemble (softmax averaged) under one of the paper's
 * protocols. Small-image data (Fashion-MNIST) is evaluated on its centred 32x32 view and its mirror (unless
 * {@code --no-flips}); image folders under
 * {@code --protocol} at the test scales. An image that cannot be read is skipped as training skips it: the result
 * says how many were, the errors are over the images evaluated, and each skipped file is listed with its reason.
 *
 * <p>The architecture and input normalisation come from the checkpoint when it records them (every {@code vgg train}
 * checkpoint does); model options are then only checked against it. A file that records none (a torchvision
 * {@code .pth}, an older checkpoint) needs the model options, and on image folders {@code --normalization}
 * ({@code imagenet} for torchvision's weights).
 */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Evaluate checkpoints (an ensemble when several) with the paper's test protocols.")
final class EvalCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--checkpoint", required = true, paramLabel = "FILE",
            description = "a checkpoint (safetensors); repeat for an ensemble")
    List<Path> checkpoints;

    @Option(names = "--data", paramLabel = "SOURCE", description = "as for train; its validation/test split is used")
    String data = "fashion-mnist-sample";

    @Option(names = "--backend", converter = ModelOptions.BackendConverter.class, paramLabel = "NAME",
            description = "compute backend (default: cpu when present)")
    String backend;

    @Option(names = "--protocol", paramLabel = "P", description = "CENTRE, DENSE, MULTI_CROP or DENSE_AND_MULTI_CROP (image folders; default DENSE)")
    Evaluator.View view = Evaluator.View.DENSE;

    @Option(names = "--train-scale", paramLabel = "S[:SMAX]", description = "the training scale, which sets the test scales (default 256)")
    String trainScale = "256";

    @Option(names = "--multi-scale", description = "three test scales (Table 4) instead of one (Table 3)")
    boolean multiScale;

    @Option(names = "--scales", split = ",", paramLabel = "Q[,Q...]", description = "explicit test scales (overrides --train-scale)")
    int[] scales;

    @Option(names = "--grid", paramLabel = "G", description = "multi-crop lattice side (default 5: 5x5x2 = 50 crops)")
    int grid = 5;

    @Option(names = "--no-flips", description = "no mirrored views")
    boolean noFlips;

    @Option(names = "--normalization", paramLabel = "N", description = "input normalisation for a checkpoint that "
            + "records none: imagenet (torchvision's mean and std: what torchvision's weights need) or paper (mean "
            + "subtraction only: the paper's, and vgg train's for image folders)")
    CheckpointModel.NormChoice normalization;

    @Mixin
    ModelOptions model;

    @Override
    public Integer call() throws IOException, BadImageException {
        checkpoints.forEach(p -> CliErrors.requireFile("--checkpoint", p, "a safetensors checkpoint"));
        DataSource src = DataSource.resolve(data, 0, 0, model.inputSize != null ? model.inputSize : 224, 256, 256);
        VggSpec fromOptions = model.spec(src.small(), src.classes(), 0);
        java.util.Set<String> given = CheckpointModel.given(spec);
        List<CheckpointModel.Resolved> models = new ArrayList<>();
        for (Path p : checkpoints) { // every contradiction is found before any network is built
            models.add(CheckpointModel.resolve(p, given, fromOptions, null));
        }
        Normalization norm = normalization(models, src);
        VggSpec vgg = models.get(0).spec();
        var out = spec.commandLine().getOut();
        try (Backend b = Backends.create(backend != null ? backend : ModelOptions.defaultBackend())) {
            List<Network> nets = new ArrayList<>();
            try {
                for (int i = 0; i < checkpoints.size(); i++) {
                    Network n = Vgg.build(b, DType.FLOAT32, models.get(i).spec());
                    nets.add(n);
                    Initialization.loadWeights(n, checkpoints.get(i));
                    n.shareOutputBuffers(); // it only evaluates: two activation buffers, not one per layer
                }
                Evaluator.Result r;
                String how;
                BadImageLog bad = new BadImageLog();
                if (src.small()) {
                    if (nets.size() > 1) {
                        throw new IllegalArgumentException("ensembles of small-image models are not supported by eval; give one --checkpoint");
                    }
                    try (DataPipeline val = new DataPipeline(src.val(), norm == src.norm() ? src.valTransform()
                            : DataSource.smallTestView(vgg.inputSize(), norm),
                            DataPipeline.Config.training(256, 1, 0).withShuffle(false), bad)) {
                        r = Evaluator.onBatches(val, !noFlips).evaluate(nets.get(0));
                    }
                    how = noFlips ? "centred 32x32 view" : "centred 32x32 view +flips";
                } else {
                    Evaluator.Protocol p = protocol(norm);
                    r = Evaluator.evaluate(nets, src.val(), p, bad);
                    how = p.toString();
                }
                if (r.count() == 0) { // no error rate at all, not "NaN %" with exit 0
                    spec.commandLine().getErr().printf(Locale.ROOT, "error: none of the %d images of %s could be read;"
                            + " expected at least one readable image%n", r.skipped(), data);
                    bad.snapshot().forEach((file, why) -> spec.commandLine().getErr().printf(Locale.ROOT, "  %s: %s%n", file, why));
                    return 1;
                }
                out.printf(Locale.ROOT, "%s, %d network%s, %s: %s%n", vgg.name(), nets.size(), nets.size() == 1 ? "" : "s",
                        how, r);
                if (r.skipped() > 0) {
                    out.printf(Locale.ROOT, "%d unreadable image%s skipped (errors are over the %d evaluated):%n", r.skipped(),
                            r.skipped() == 1 ? "" : "s", r.count());
                    bad.snapshot().forEach((file, why) -> out.printf(Locale.ROOT, "  %s: %s%n", file, why));
                }
                out.flush();
                return 0;
            } finally {
                nets.forEach(Network::close);
            }
        }
    }

    /**
     * The input normalisation: the one the checkpoints record (all the same), else {@code --normalization}'s; small
     * images without either use the statistics vgg train computes from the same training set.
     */
    private Normalization normalization(List<CheckpointModel.Resolved> models, DataSource src) {
        List<Normalization> norms = new ArrayList<>();
        for (int i = 0; i < models.size(); i++) {
            Normalization recorded = models.get(i).norm();
            norms.add(src.small() && recorded == null && normalization == null ? src.norm()
                    : CheckpointModel.normalization(checkpoints.get(i), recorded, normalization));
        }
        return CheckpointModel.common(checkpoints, norms);
    }

    Evaluator.Protocol protocol(Normalization norm) {
        if (scales != null) {
            return new Evaluator.Protocol(view, scales, grid, !noFlips, norm);
        }
        String[] p = trainScale.split(":");
        int lo;
        int hi;
        try {
            lo = Integer.parseInt(p[0]);
            hi = p.length > 1 ? Integer.parseInt(p[1]) : lo;
        } catch (NumberFormatException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Invalid value for option '--train-scale': '"
                    + trainScale + "'; expected S or SMIN:SMAX, e.g. 256 or 256:512");
        }
        Evaluator.Protocol base = multiScale ? Evaluator.Protocol.multiScale(view, lo, hi, norm)
                : Evaluator.Protocol.singleScale(view, lo, hi, norm);
        return new Evaluator.Protocol(view, base.scales(), grid, !noFlips, base.norm());
    }
}
