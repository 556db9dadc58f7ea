package org.vgg4j.core.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;

/**
 * What a checkpoint says about the model its weights belong to, as safetensors metadata strings: the
 * {@link VggSpec} under {@code vgg4j.model.*} and the input normalisation (per-channel mean and std of RGB pixels on
 * the 0..255 scale, {@code (v - mean) / std}) under {@code vgg4j.input.*}. A file written before these keys existed,
 * or by another program (a torchvision {@code .pth} has no metadata at all), simply has neither: {@link #spec} and
 * {@link #normalization} are then empty, and a key that is present but malformed is an error naming it.
 */
public final class ModelMetadata {
    static final String CONFIG = "vgg4j.model.config";
    static final String BATCH_NORM = "vgg4j.model.batch_norm";
    static final String CLASSES = "vgg4j.model.classes";
    static final String INPUT_SIZE = "vgg4j.model.input_size";
    static final String WIDTH = "vgg4j.model.width";
    static final String HIDDEN = "vgg4j.model.hidden";
    static final String DROPOUT = "vgg4j.model.dropout";
    static final String SEED = "vgg4j.model.seed";
    static final String MEAN = "vgg4j.input.mean";
    static final String STD = "vgg4j.input.std";

    /** Input normalisation: per-channel (R, G, B) mean and std on the 0..255 scale. */
    public record Norm(float[] mean, float[] std) {
        public Norm {
            if (mean.length != 3 || std.length != 3) {
                throw new IllegalArgumentException("normalisation needs 3 means and 3 stds (R, G, B); got "
                        + mean.length + " and " + std.length);
            }
            mean = mean.clone();
            std = std.clone();
        }

        @Override
        public float[] mean() {
            return mean.clone();
        }

        @Override
        public float[] std() {
            return std.clone();
        }
    }

    private ModelMetadata() {
    }

    /** The spec as metadata entries (doubles as Java's shortest exact decimal, so they read back equal). */
    public static Map<String, String> of(VggSpec s) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(CONFIG, s.config().name());
        m.put(BATCH_NORM, Boolean.toString(s.batchNorm()));
        m.put(CLASSES, Integer.toString(s.numClasses()));
        m.put(INPUT_SIZE, Integer.toString(s.inputSize()));
        m.put(WIDTH, Double.toString(s.widthMultiplier()));
        m.put(HIDDEN, Integer.toString(s.hiddenFeatures()));
        m.put(DROPOUT, Double.toString(s.dropout()));
        m.put(SEED, Long.toString(s.seed()));
        return m;
    }

    /** The normalisation as metadata entries: "r,g,b" for the mean and for the std. */
    public static Map<String, String> of(Norm n) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(MEAN, join(n.mean));
        m.put(STD, join(n.std));
        return m;
    }

    /** The recorded spec, or empty when the metadata has no {@code vgg4j.model.config}. */
    public static Optional<VggSpec> spec(Map<String, String> meta, Path file) throws IOException {
        if (!meta.containsKey(CONFIG)) {
            return Optional.empty();
        }
        try {
            return Optional.of(new VggSpec(VggConfig.parse(get(meta, CONFIG)), bool(get(meta, BATCH_NORM)),
                    Integer.parseInt(get(meta, CLASSES)), Integer.parseInt(get(meta, INPUT_SIZE)),
                    Double.parseDouble(get(meta, WIDTH)), Integer.parseInt(get(meta, HIDDEN)),
                    Double.parseDouble(get(meta, DROPOUT)), Long.parseLong(get(meta, SEED))));
        } catch (IllegalArgumentException e) { // NumberFormatException included
            throw new IOException(file + ": malformed model metadata (" + e.getMessage() + "); expected the "
                    + "vgg4j.model.* keys a vgg4j checkpoint writes", e);
        }
    }

    /** The recorded normalisation, or empty when the metadata has none. */
    public static Optional<Norm> normalization(Map<String, String> meta, Path file) throws IOException {
        if (!meta.containsKey(MEAN)) {
            return Optional.empty();
        }
        try {
            return Optional.of(new Norm(floats(get(meta, MEAN)), floats(get(meta, STD))));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": malformed input normalisation metadata (" + e.getMessage()
                    + "); expected vgg4j.input.mean and vgg4j.input.std as 'r,g,b'", e);
        }
    }

    /**
     * The metadata of a weights file: a safetensors file's {@code __metadata__}, or an empty map for a
     * {@code torch.save} file (which records no architecture).
     */
    public static Map<String, String> read(Path file) throws IOException {
        if (StateDicts.detect(file) != StateDicts.Format.SAFETENSORS) {
            return Map.of();
        }
        try (Safetensors.Reader r = Safetensors.open(file)) {
            return r.metadata();
        }
    }

    private static String get(Map<String, String> meta, String key) {
        String v = meta.get(key);
        if (v == null) {
            throw new IllegalArgumentException("key " + key + " is missing");
        }
        return v;
    }

    private static boolean bool(String s) {
        if (!s.equals("true") && !s.equals("false")) {
            throw new IllegalArgumentException("'" + s + "' is not true or false");
        }
        return Boolean.parseBoolean(s);
    }

    private static String join(float[] v) {
        return String.format(Locale.ROOT, "%s,%s,%s", Float.toString(v[0]), Float.toString(v[1]), Float.toString(v[2]));
    }

    private static float[] floats(String s) {
        String[] p = s.split(",");
        if (p.length != 3) {
            throw new IllegalArgumentException("'" + s + "' does not hold 3 numbers");
        }
        float[] v = new float[3];
        for (int i = 0; i < 3; i++) {
            v[i] = Float.parseFloat(p[i].trim());
        }
        return v;
    }
}
