package org.vgg4j.examples;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.ModelMetadata;
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
 * -Dexec.args="[--config C] [--normalization imagenet|paper] TRAIN_SCALE VAL_DIR CHECKPOINT [CHECKPOINT...]"}.
 * A {@code vgg train} checkpoint records its architecture and input normalisation, and both are used as
 * recorded. A file that records neither (torchvision's weights, a {@code .pth} or safetensors) is the paper's
 * network of {@code --config} with 1000 classes and needs {@code --normalization}: {@code imagenet} for
 * torchvision's weights (they were trained on mean/std-normalised inputs), {@code paper} for mean subtraction only,
 * e.g. {@code --config D --normalization imagenet 256:512 /data/imagenet/val vgg16.pth}. Train scale S or
 * SMIN:SMAX sets the test scales; VAL_DIR holds one folder per class.
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
        List<String> rest = new ArrayList<>(List.of(args));
        String config = option(rest, "--config");
        String normName = option(rest, "--normalization");
        if (rest.size() < 3) {
            System.err.println("usage: EvaluateDense [--config C] [--normalization imagenet|paper] TRAIN_SCALE VAL_DIR"
                    + " CHECKPOINT [CHECKPOINT...]");
            System.exit(2);
        }
        Normalization chosen = normName == null ? null : switch (normName) {
            case "imagenet" -> Normalization.TORCHVISION;
            case "paper" -> Normalization.IMAGENET_MEAN_RGB;
            default -> throw new IllegalArgumentException("--normalization " + normName + ": expected imagenet or paper");
        };
        String[] s = rest.get(0).split(":");
        int sMin = Integer.parseInt(s[0]);
        int sMax = s.length > 1 ? Integer.parseInt(s[1]) : sMin;
        ImageDataset val = ImageFolders.imageFolder(Path.of(rest.get(1)), new ImageDecoder());
        List<Path> files = rest.subList(2, rest.size()).stream().map(Path::of).toList();
        Normalization norm = null;
        List<VggSpec> specs = new ArrayList<>();
        for (Path f : files) {
            Map<String, String> meta = ModelMetadata.read(f);
            VggSpec recorded = ModelMetadata.spec(meta, f).orElse(null);
            if (recorded != null && config != null && VggConfig.parse(config) != recorded.config()) {
                throw new IllegalArgumentException("--config " + config + " contradicts " + f + ", which records "
                        + recorded.config().paperName() + "; omit --config");
            }
            if (recorded == null && config == null) {
                throw new IllegalArgumentException(f + " records no architecture (torchvision's weights, say): give --config");
            }
            specs.add(recorded != null ? recorded : VggSpec.paper(VggConfig.parse(config)));
            Normalization n = ModelMetadata.normalization(meta, f).map(r -> new Normalization(r.mean(), r.std()))
                    .orElse(null);
            if (n != null && chosen != null && !(Arrays.equals(n.mean(), chosen.mean()) && Arrays.equals(n.std(), chosen.std()))) {
                throw new IllegalArgumentException("--normalization " + normName + " contradicts " + f
                        + ", which records mean " + Arrays.toString(n.mean()) + " std " + Arrays.toString(n.std()));
            }
            n = n != null ? n : chosen;
            if (n == null) {
                throw new IllegalArgumentException(f + " records no input normalisation: give --normalization imagenet"
                        + " (torchvision's weights) or paper (mean subtraction only)");
            }
            if (norm != null && !(Arrays.equals(n.mean(), norm.mean()) && Arrays.equals(n.std(), norm.std()))) {
                throw new IllegalArgumentException(f + " records another input normalisation than " + files.get(0)
                        + "; an ensemble is evaluated on one input");
            }
            norm = n;
        }
        try (Backend b = Backends.create(Backends.names().contains("cpu") ? "cpu" : "reference")) {
            List<Network> nets = new ArrayList<>();
            try {
                for (int i = 0; i < files.size(); i++) {
                    Network n = Vgg.build(b, DType.FLOAT32, specs.get(i));
                    nets.add(n);
                    Initialization.loadWeights(n, files.get(i));
                }
                table(nets, val, sMin, sMax, norm, System.out);
            } finally {
                nets.forEach(Network::close);
            }
        }
    }

    /** Removes {@code name VALUE} from {@code args} and returns VALUE (null when absent). */
    private static String option(List<String> args, String name) {
        int i = args.indexOf(name);
        if (i < 0) {
            return null;
        }
        if (i + 1 >= args.size()) {
            throw new IllegalArgumentException(name + " needs a value");
        }
        String v = args.get(i + 1);
        args.subList(i, i + 2).clear();
        return v;
    }
}
