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
 * -Dexec.args="[--config C] [--normalization imagenet|paper] [--views V,V...] [--single-scale] TRAIN_SCALE VAL_DIR
 * CHECKPOINT [CHECKPOINT...]"}.
 * A {@code vgg train} checkpoint records its architecture and input normalisation, and both are used as
 * recorded. A file that records neither (torchvision's weights, a {@code .pth} or safetensors) is the paper's
 * network of {@code --config} with 1000 classes and needs {@code --normalization}: {@code imagenet} for
 * torchvision's weights (they were trained on mean/std-normalised inputs), {@code paper} for mean subtraction only,
 * e.g. {@code --config D --normalization imagenet 256:512 /data/imagenet/val vgg16.pth}. Train scale S or
 * SMIN:SMAX sets the test scales; VAL_DIR holds one folder per class.
 *
 * <p>On the CPU the full table is slow for a full-width network: the multi-crop rows run 50 forward passes per
 * image and scale (the three-scale rows 150), all eight rows about 400 per image. For a demo, pick rows with
 * {@code --views centre,dense} (one pass per image and scale each) and {@code --single-scale} (Table 3's rows
 * only), or evaluate a narrow checkpoint. Each row's progress goes to stderr before it starts; the table to stdout.
 */
public final class EvaluateDense {
    private EvaluateDense() {
    }

    /**
     * The protocols to run, in table order: each of {@code views} at Table 3's single test scale, then (unless
     * {@code singleScale}) at Table 4's three test scales. Multi-crop is what costs: 50 crops per scale and image
     * (150 over three scales), each a full forward pass, where centre is one and dense one on the whole image.
     */
    static List<Evaluator.Protocol> protocols(List<Evaluator.View> views, int sMin, int sMax, Normalization norm,
                                              boolean singleScale) {
        List<Evaluator.Protocol> out = new ArrayList<>();
        for (boolean multi : singleScale ? new boolean[] {false} : new boolean[] {false, true}) {
            for (Evaluator.View v : views) {
                out.add(multi ? Evaluator.Protocol.multiScale(v, sMin, sMax, norm)
                        : Evaluator.Protocol.singleScale(v, sMin, sMax, norm));
            }
        }
        return out;
    }

    /** The width of the table's protocol column: its longest name, at least the header's. */
    static int protocolWidth(List<Evaluator.Protocol> protocols) {
        return Math.max("protocol".length(), protocols.stream().mapToInt(p -> p.toString().length()).max().orElse(0));
    }

    /** The table's header line, columns as wide as {@link #row}'s. */
    static String header(int width) {
        return String.format(Locale.ROOT, "%-" + width + "s  %10s  %10s", "protocol", "top-1 err", "top-5 err");
    }

    /** One row of the table: the protocol left-aligned in {@code width} characters, the two errors in percent. */
    static String row(Evaluator.Protocol p, Evaluator.Result r, int width) {
        return String.format(Locale.ROOT, "%-" + width + "s  %9.2f%%  %9.2f%%", p, 100 * r.top1Error(), 100 * r.top5Error());
    }

    /**
     * Evaluates {@code nets} on {@code data} under each protocol; prints the table to {@code out} row by row (a
     * row's progress line to {@code progress} before it starts) and returns the results in order.
     */
    static List<Evaluator.Result> table(List<Network> nets, ImageDataset data, List<Evaluator.Protocol> protocols,
                                        PrintStream out, PrintStream progress) throws IOException, BadImageException {
        List<Evaluator.Result> results = new ArrayList<>();
        int width = protocolWidth(protocols);
        out.println(header(width));
        for (int i = 0; i < protocols.size(); i++) {
            Evaluator.Protocol p = protocols.get(i);
            progress.printf(Locale.ROOT, "[%d/%d] %s on %d images...%n", i + 1, protocols.size(), p, data.size());
            Evaluator.Result r = Evaluator.evaluate(nets, data, p);
            results.add(r);
            out.println(row(p, r, width));
        }
        return results;
    }

    public static void main(String[] args) throws Exception {
        List<String> rest = new ArrayList<>(List.of(args));
        String config = option(rest, "--config");
        String normName = option(rest, "--normalization");
        String viewNames = option(rest, "--views");
        boolean singleScale = rest.remove("--single-scale");
        if (rest.size() < 3) {
            System.err.println("usage: EvaluateDense [--config C] [--normalization imagenet|paper] [--views V,V...]"
                    + " [--single-scale] TRAIN_SCALE VAL_DIR CHECKPOINT [CHECKPOINT...]");
            System.exit(2);
        }
        List<Evaluator.View> views = viewNames == null ? List.of(Evaluator.View.values()) : views(viewNames);
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
                table(nets, val, protocols(views, sMin, sMax, norm, singleScale), System.out, System.err);
            } finally {
                nets.forEach(Network::close);
            }
        }
    }

    /** {@code --views}' comma-separated list, e.g. {@code centre,dense}. */
    static List<Evaluator.View> views(String list) {
        List<Evaluator.View> out = new ArrayList<>();
        for (String v : list.split(",")) {
            String name = v.trim().toUpperCase(Locale.ROOT).replace('-', '_');
            try {
                out.add(Evaluator.View.valueOf(name));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--views " + list + ": '" + v + "' is not one of "
                        + Arrays.toString(Evaluator.View.values()) + " (case-insensitive)", e);
            }
        }
        return out;
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
