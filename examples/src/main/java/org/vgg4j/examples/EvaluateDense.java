package org.vgg4j.examples;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.BadImageException;
import org.vgg4j.data.ImageDataset;
import org.vgg4j.data.ImageDecoder;
import org.vgg4j.data.ImageFolders;
import org.vgg4j.data.Normalization;
import org.vgg4j.train.Evaluator;
import org.vgg4j.train.Initialization;

/**
 * The paper's test protocols side by side for one trained network (or an ensemble): the rows of Tables 3, 4 and
 * 5 — single-scale centre crop, dense (with flips), multi-crop (5x5x2), dense + multi-crop, and the same at
 * three test scales. Dense evaluation runs the network fully convolutionally on the whole rescaled image
 * (vgg-core's DenseEvaluation), so images of any size are used uncropped.
 *
 * <p>Run: {@code mvn -q -DskipTests package exec:java -Dexec.mainClass=org.vgg4j.examples.EvaluateDense
 * -Dexec.args="CONFIG TRAIN_SCALE VAL_DIR CHECKPOINT [CHECKPOINT...]"}, e.g. {@code D 256:512 /data/imagenet/val
 * vgg16.safetensors} with torchvision's vgg16 weights saved as safetensors (names match; train scale S or
 * SMIN:SMAX sets the test scales). VAL_DIR holds one folder per class.
 */
public final class EvaluateDense {
    private EvaluateDense() {
    }

    /** Evaluates {@code nets} on {@code data} under every protocol; prints and returns the results in order. */
    static List<Evaluator.Result> table(List<Network> nets, ImageDataset data, int sMin, int sMax, Normalization norm,
                                        PrintStream out) throws IOException, BadImageException {
        List<Evaluator.Result> results = new ArrayList<>();
        out.printf(Locale.ROOT, "%-42s %10s %10s%n", "protocol", "top-1 err", "top-5 err");
        for (boolean multi : new boolean[] {false, true}) {
            for (Evaluator.View v : Evaluator.View.values()) {
                Evaluator.Protocol p = multi ? Evaluator.Protocol.multiScale(v, sMin, sMax, norm)
                        : Evaluator.Protocol.singleScale(v, sMin, sMax, norm);
                Evaluator.Result r = Evaluator.evaluate(nets, data, p);
                results.add(r);
                out.printf(Locale.ROOT, "%-42s %9.2f%% %9.2f%%%n", p, 100 * r.top1Error(), 100 * r.top5Error());
            }
        }
        return results;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: EvaluateDense CONFIG TRAIN_SCALE VAL_DIR CHECKPOINT [CHECKPOINT...]");
            System.exit(2);
        }
        VggSpec spec = VggSpec.paper(VggConfig.parse(args[0]));
        String[] s = args[1].split(":");
        int sMin = Integer.parseInt(s[0]);
        int sMax = s.length > 1 ? Integer.parseInt(s[1]) : sMin;
        ImageDataset val = ImageFolders.imageFolder(Path.of(args[2]), new ImageDecoder());
        try (Backend b = Backends.create(Backends.names().contains("cpu") ? "cpu" : "reference")) {
            List<Network> nets = new ArrayList<>();
            for (int i = 3; i < args.length; i++) {
                Network n = Vgg.build(b, DType.FLOAT32, spec);
                Initialization.loadWeights(n, Path.of(args[i]));
                nets.add(n);
            }
            table(nets, val, sMin, sMax, Normalization.IMAGENET_MEAN_RGB, System.out);
            nets.forEach(Network::close);
        }
    }
}
