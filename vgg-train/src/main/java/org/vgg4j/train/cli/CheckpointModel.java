package org.vgg4j.train.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

import org.vgg4j.core.io.ModelMetadata;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.data.Normalization;

import picocli.CommandLine;

/**
 * The model a weights file is for, as eval, export and features decide it: a checkpoint that records its
 * {@link VggSpec} (every {@code vgg train} checkpoint does, see {@link ModelMetadata}) is built as recorded, and a
 * model option that says otherwise is an error naming both values (never a load failure deep inside); a file that
 * records nothing (a torchvision {@code .pth}, an older checkpoint) needs the model options it was built with.
 */
final class CheckpointModel {
    /** The model options, by the name picocli knows them under. */
    static final List<String> MODEL_OPTIONS = List.of("--config", "--bn", "--width", "--hidden", "--input-size",
            "--classes", "--dropout");

    /** Which input normalisation {@code --normalization} names (for files that record none). */
    enum NormChoice {
        /** torchvision's ImageNet mean and std: what torchvision's pretrained weights expect. */
        imagenet(Normalization.TORCHVISION),
        /** The paper's mean-RGB subtraction only: what vgg train applies to image folders. */
        paper(Normalization.IMAGENET_MEAN_RGB);

        final Normalization norm;

        NormChoice(Normalization norm) {
            this.norm = norm;
        }
    }

    /** A file's model: the spec to build and the recorded normalisation (null when the file records none). */
    record Resolved(VggSpec spec, Normalization norm, boolean recorded) {
    }

    private CheckpointModel() {
    }

    /** The model options the user typed (not their defaults), from a command's parse result. */
    static Set<String> given(CommandLine.Model.CommandSpec spec) {
        Set<String> names = new TreeSet<>();
        CommandLine.ParseResult parsed = spec.commandLine().getParseResult();
        if (parsed != null) {
            for (CommandLine.Model.OptionSpec o : parsed.matchedOptions()) {
                if (MODEL_OPTIONS.contains(o.longestName())) {
                    names.add(o.longestName());
                }
            }
        }
        return names;
    }

    /**
     * The model of {@code file}.
     *
     * @param given       the model options the user typed ({@link #given})
     * @param fromOptions the spec the options describe (defaults filled in)
     * @param whole       an option that fixes every field at once (export's {@code --small-images}), or null
     */
    static Resolved resolve(Path file, Set<String> given, VggSpec fromOptions, String whole) throws IOException {
        var meta = ModelMetadata.read(file);
        Optional<VggSpec> recorded = ModelMetadata.spec(meta, file);
        Normalization norm = ModelMetadata.normalization(meta, file)
                .map(n -> new Normalization(n.mean(), n.std())).orElse(null);
        if (recorded.isEmpty()) {
            if (given.isEmpty() && whole == null) {
                throw new IllegalArgumentException("--checkpoint " + file + " records no model architecture (a torchvision"
                        + " .pth, or a checkpoint from before checkpoints recorded it); give the model options it was built"
                        + " with: --config, --bn or --no-bn, --width, --hidden, --input-size, --classes");
            }
            return new Resolved(fromOptions, norm, false);
        }
        VggSpec r = recorded.get();
        VggSpec o = fromOptions;
        check(file, given, whole, "--config", "configuration", o.config().paperName(), r.config().paperName());
        if (given.contains("--bn") || whole != null) {
            if (o.batchNorm() != r.batchNorm()) {
                throw contradiction(file, o.batchNorm() ? "--bn" : "--no-bn", whole, "BatchNorm",
                        r.batchNorm() ? "on" : "off", r.batchNorm() ? "--bn" : "--no-bn");
            }
        }
        check(file, given, whole, "--width", "width", num(o.widthMultiplier()), num(r.widthMultiplier()));
        check(file, given, whole, "--hidden", "hidden features", o.hiddenFeatures(), r.hiddenFeatures());
        check(file, given, whole, "--input-size", "input size", o.inputSize(), r.inputSize());
        check(file, given, whole, "--classes", "classes", o.numClasses(), r.numClasses());
        if (given.contains("--dropout") && o.dropout() != r.dropout()) { // --small-images keeps dropout's default
            throw contradiction(file, "--dropout " + num(o.dropout()), null, "dropout", num(r.dropout()),
                    "--dropout " + num(r.dropout()));
        }
        return new Resolved(r, norm, true);
    }

    /**
     * The normalisation to evaluate {@code file} with: the recorded one, else {@code --normalization}'s; both
     * given and different is an error, neither is an error saying which to choose.
     */
    static Normalization normalization(Path file, Normalization recorded, NormChoice option) {
        if (recorded != null) {
            if (option != null && !same(recorded, option.norm)) {
                throw new IllegalArgumentException("--normalization " + option + " contradicts --checkpoint " + file
                        + ", which records mean " + describe(recorded) + "; omit --normalization");
            }
            return recorded;
        }
        if (option == null) {
            throw new IllegalArgumentException("--checkpoint " + file + " records no input normalisation; give"
                    + " --normalization imagenet (torchvision's weights: mean and std) or paper (mean subtraction only:"
                    + " the paper's, and vgg train's for image folders)");
        }
        return option.norm;
    }

    /** The normalisation all of {@code models} agree on (an ensemble is evaluated on one input). */
    static Normalization common(List<Path> files, List<Normalization> norms) {
        for (int i = 1; i < norms.size(); i++) {
            if (!same(norms.get(0), norms.get(i))) {
                throw new IllegalArgumentException("--checkpoint " + files.get(i) + " records input mean "
                        + describe(norms.get(i)) + " but " + files.get(0) + " records " + describe(norms.get(0))
                        + "; an ensemble needs one normalisation");
            }
        }
        return norms.get(0);
    }

    static ModelMetadata.Norm forMetadata(Normalization n) {
        return new ModelMetadata.Norm(n.mean(), n.std());
    }

    private static boolean same(Normalization a, Normalization b) {
        return java.util.Arrays.equals(a.mean(), b.mean()) && java.util.Arrays.equals(a.std(), b.std());
    }

    private static String describe(Normalization n) {
        List<String> m = new ArrayList<>();
        for (int c = 0; c < 3; c++) {
            m.add(num(n.mean()[c]));
        }
        List<String> s = new ArrayList<>();
        for (int c = 0; c < 3; c++) {
            s.add(num(n.std()[c]));
        }
        return "(" + String.join(", ", m) + ") and std (" + String.join(", ", s) + ")";
    }

    private static void check(Path file, Set<String> given, String whole, String option, String what, Object mine,
                              Object recorded) {
        if ((given.contains(option) || whole != null) && !Objects.equals(mine, recorded)) {
            throw contradiction(file, option + " " + mine, given.contains(option) ? null : whole, what,
                    String.valueOf(recorded), option + " " + recorded);
        }
    }

    private static IllegalArgumentException contradiction(Path file, String mine, String whole, String what,
                                                          String recorded, String instead) {
        String who = whole != null ? whole + " (" + mine + ")" : mine;
        return new IllegalArgumentException(who + " contradicts --checkpoint " + file + ", which records " + what + " "
                + recorded + "; omit the option (the checkpoint knows its model) or give " + instead);
    }

    private static String num(float v) {
        return v == Math.rint(v) && Math.abs(v) < 1e9 ? Long.toString((long) v) : Float.toString(v);
    }

    private static String num(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e9 ? Long.toString((long) v) : String.format(Locale.ROOT, "%s", v);
    }
}
