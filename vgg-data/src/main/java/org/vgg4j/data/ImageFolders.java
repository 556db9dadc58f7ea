package org.vgg4j.data;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * Builds {@link FileImageDataset}s from directory layouts:
 * <ul>
 * <li>{@link #imageFolder}: {@code root/<class>/**} with classes sorted by name — torchvision's ImageFolder order,
 *     so ImageNet's {@code train/<wnid>/*.JPEG} gets the class indices torchvision's VGG weights use;</li>
 * <li>{@link #imageNetTrain}: the same, checking the folder names look like wnids;</li>
 * <li>{@link #imageNetVal}: validation in class folders, or flat with a labels file ({@code <file> <wnid or
 *     index>} per line) or Kaggle's {@code LOC_val_solution.csv};</li>
 * <li>{@link #synsetNames}: {@code LOC_synset_mapping.txt} / {@code words.txt} / {@code synset_words.txt}.</li>
 * </ul>
 * Files are listed in sorted order so the sample index of a file never depends on the file system. Anything named
 * like an image that is not a readable file (a dangling symbolic link, a directory, a FIFO) is kept as a sample and
 * refused when loaded, with the reason ({@link FileImageDataset#readBytes}): skipped and listed like a corrupt image,
 * never dropped silently at scan time.
 */
public final class ImageFolders {
    private static final Set<String> IMAGE_EXTENSIONS = Set.of("jpg", "jpeg", "png", "bmp", "gif", "jfif", "ppm");

    private ImageFolders() {
    }

    /** {@code root/<class>/...}: every image file below a class folder (recursively), classes sorted. */
    public static FileImageDataset imageFolder(Path root, ImageDecoder decoder) throws IOException {
        List<String> classes = classFolders(root);
        return fromClassFolders(root, classes, decoder);
    }

    /** ImageNet training set {@code train/<wnid>/*.JPEG}; class index = rank of the wnid in sorted order. */
    public static FileImageDataset imageNetTrain(Path trainDir, ImageDecoder decoder) throws IOException {
        List<String> wnids = classFolders(trainDir);
        for (String w : wnids) {
            if (!isWnid(w)) {
                throw new IOException(trainDir + " holds folder '" + w + "', expected only wnids like n01440764");
            }
        }
        return fromClassFolders(trainDir, wnids, decoder);
    }

    /**
     * ImageNet validation. {@code wnids} are the classes (normally the training set's sorted wnids; null: the
     * sorted wnids found). Layout picked from what is there: a {@code labels} file given → flat (its format
     * by name: a {@code .csv} is Kaggle's solution file, anything else {@code <file> <wnid or index>} lines);
     * no labels file → class folders.
     */
    public static FileImageDataset imageNetVal(Path valDir, Path labels, List<String> wnids, ImageDecoder decoder)
            throws IOException {
        if (labels == null) {
            List<String> found = classFolders(valDir);
            List<String> classes = wnids != null ? wnids : found;
            if (!classes.containsAll(found)) {
                throw new IOException(valDir + " has class folders not among the " + classes.size() + " training classes");
            }
            return fromClassFolders(valDir, classes, decoder);
        }
        Map<String, String> fileToLabel = labels.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".csv")
                ? readKaggleSolution(labels) : readLabelLines(labels);
        List<String> classes = wnids;
        if (classes == null) {
            Set<String> s = new TreeSet<>();
            for (String v : fileToLabel.values()) {
                if (!isWnid(v)) {
                    throw new IOException(labels + " gives class '" + v + "' as an index: pass the class list");
                }
                s.add(v);
            }
            classes = new ArrayList<>(s);
        }
        Map<String, Integer> index = indexOf(classes);
        List<Path> files = new ArrayList<>();
        List<Integer> lab = new ArrayList<>();
        for (Map.Entry<String, String> e : new java.util.TreeMap<>(fileToLabel).entrySet()) {
            Path f = valDir.resolve(e.getKey());
            if (!Files.exists(f) && !Files.isSymbolicLink(f)) { // a dangling link is skipped with its reason later
                throw new IOException(labels + " names " + e.getKey() + ", which is not in " + valDir);
            }
            files.add(f);
            lab.add(labelOf(e.getValue(), index, classes.size(), labels));
        }
        return new FileImageDataset(files, lab.stream().mapToInt(Integer::intValue).toArray(), classes, decoder);
    }

    /** wnid to human-readable name from {@code "n01440764 tench, Tinca tinca"} or tab-separated lines. */
    public static Map<String, String> synsetNames(Path file) throws IOException {
        Map<String, String> names = new LinkedHashMap<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            line = line.strip();
            if (line.isEmpty()) {
                continue;
            }
            int cut = indexOfWhitespace(line);
            if (cut < 0 || !isWnid(line.substring(0, cut))) {
                throw new IOException(file + ": line '" + line + "' is not '<wnid> <name>'");
            }
            names.put(line.substring(0, cut), line.substring(cut).strip());
        }
        return names;
    }

    static boolean isWnid(String s) {
        return s.length() == 9 && s.charAt(0) == 'n' && s.chars().skip(1).allMatch(Character::isDigit);
    }

    private static List<String> classFolders(Path root) throws IOException {
        if (!Files.isDirectory(root)) {
            throw new IOException(root + " is not a directory");
        }
        List<String> classes = new ArrayList<>();
        try (Stream<Path> s = Files.list(root)) {
            s.filter(Files::isDirectory).map(p -> p.getFileName().toString()).filter(n -> !n.startsWith("."))
                    .sorted().forEach(classes::add);
        }
        if (classes.isEmpty()) {
            throw new IOException(root + " has no class folders (expected root/<class>/<image files>)");
        }
        return classes;
    }

    private static FileImageDataset fromClassFolders(Path root, List<String> classes, ImageDecoder decoder)
            throws IOException {
        List<Path> files = new ArrayList<>();
        List<Integer> labels = new ArrayList<>();
        for (int k = 0; k < classes.size(); k++) {
            Path dir = root.resolve(classes.get(k));
            if (!Files.isDirectory(dir)) {
                continue; // a class without validation images
            }
            try (Stream<Path> s = Files.walk(dir)) {
                // Every entry named like an image, whatever it is: a dangling link, a directory or a FIFO named
                // x.JPEG becomes a sample that FileImageDataset refuses with a reason, so it is skipped and listed
                // like any bad image instead of vanishing without a word (its folder's images are walked as usual).
                List<Path> images = s.filter(p -> !p.equals(dir)).filter(ImageFolders::isImageName).sorted().toList();
                for (Path p : images) {
                    files.add(p);
                    labels.add(k);
                }
            }
        }
        return new FileImageDataset(files, labels.stream().mapToInt(Integer::intValue).toArray(), classes, decoder);
    }

    static boolean isImageName(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return !n.startsWith(".") && dot > 0 && IMAGE_EXTENSIONS.contains(n.substring(dot + 1).toLowerCase(Locale.ROOT));
    }

    private static Map<String, String> readLabelLines(Path file) throws IOException {
        Map<String, String> out = new HashMap<>();
        int lineNo = 0;
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            lineNo++;
            line = line.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String[] parts = line.split("\\s+");
            if (parts.length != 2) {
                throw new IOException(file + ":" + lineNo + ": '" + line + "' is not '<file> <wnid or index>'");
            }
            out.put(parts[0], parts[1]);
        }
        return out;
    }

    /** Kaggle's {@code ImageId,PredictionString} where the string starts with the wnid of the first box. */
    private static Map<String, String> readKaggleSolution(Path file) throws IOException {
        Map<String, String> out = new HashMap<>();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String header = r.readLine();
            if (header == null || !header.strip().toLowerCase(Locale.ROOT).startsWith("imageid,")) {
                throw new IOException(file + ": header '" + header + "' is not Kaggle's 'ImageId,PredictionString'");
            }
            String line;
            int lineNo = 1;
            while ((line = r.readLine()) != null) {
                lineNo++;
                if (line.isBlank()) {
                    continue;
                }
                int comma = line.indexOf(',');
                String[] boxes = comma < 0 ? new String[0] : line.substring(comma + 1).strip().split("\\s+");
                if (boxes.length == 0 || !isWnid(boxes[0])) {
                    throw new IOException(file + ":" + lineNo + ": '" + line + "' does not start its boxes with a wnid");
                }
                out.put(line.substring(0, comma).strip() + ".JPEG", boxes[0]);
            }
        }
        return out;
    }

    private static Map<String, Integer> indexOf(List<String> classes) {
        Map<String, Integer> m = new HashMap<>();
        for (int i = 0; i < classes.size(); i++) {
            m.put(classes.get(i), i);
        }
        return m;
    }

    private static int labelOf(String value, Map<String, Integer> index, int n, Path file) throws IOException {
        Integer k = index.get(value);
        if (k != null) {
            return k;
        }
        try {
            int i = Integer.parseInt(value);
            if (i >= 0 && i < n) {
                return i;
            }
        } catch (NumberFormatException ignored) {
            // fall through to the error
        }
        throw new IOException(file + ": label '" + value + "' is neither a known class nor an index in [0, " + n + ")");
    }

    private static int indexOfWhitespace(String s) {
        for (int i = 0; i < s.length(); i++) {
            if (Character.isWhitespace(s.charAt(i))) {
                return i;
            }
        }
        return -1;
    }
}
