package org.vgg4j.core.model;

import java.util.List;

/**
 * The paper's Table 1 as data: the convolutional stack of each configuration, in order.
 * Tokens: a number n is conv3-n (3x3, pad 1); "c1-n" is conv1-n (1x1, pad 0, configuration C only);
 * "M" is maxpool 2x2/2; "LRN" is local response normalisation (A-LRN only).
 */
public enum VggConfig {
    A("vgg11", List.of("64", "M", "128", "M", "256", "256", "M", "512", "512", "M", "512", "512", "M")),
    A_LRN(null, List.of("64", "LRN", "M", "128", "M", "256", "256", "M", "512", "512", "M", "512", "512", "M")),
    B("vgg13", List.of("64", "64", "M", "128", "128", "M", "256", "256", "M", "512", "512", "M", "512", "512", "M")),
    C(null, List.of("64", "64", "M", "128", "128", "M", "256", "256", "c1-256", "M", "512", "512", "c1-512", "M",
            "512", "512", "c1-512", "M")),
    D("vgg16", List.of("64", "64", "M", "128", "128", "M", "256", "256", "256", "M", "512", "512", "512", "M",
            "512", "512", "512", "M")),
    E("vgg19", List.of("64", "64", "M", "128", "128", "M", "256", "256", "256", "256", "M", "512", "512", "512", "512",
            "M", "512", "512", "512", "512", "M"));

    /** Number of 2x2 poolings in every configuration: the input must be at least 2^5 = 32 pixels a side. */
    public static final int POOLINGS = 5;

    private final String torchvisionName;
    private final List<String> layers;

    VggConfig(String torchvisionName, List<String> layers) {
        this.torchvisionName = torchvisionName;
        this.layers = layers;
    }

    /** torchvision's model name (vgg11, vgg13, vgg16, vgg19), or null for A-LRN and C, which it lacks. */
    public String torchvisionName() {
        return torchvisionName;
    }

    /** The Table 1 column, as tokens. */
    public List<String> layers() {
        return layers;
    }

    /** Weight layers (conv + 3 FC): 11, 11, 13, 16, 16, 19. */
    public int depth() {
        return (int) layers.stream().filter(t -> !t.equals("M") && !t.equals("LRN")).count() + 3;
    }

    /** The paper's name: "A", "A-LRN", "B", ... */
    public String paperName() {
        return name().replace('_', '-');
    }

    /** Parses "A", "A-LRN", "a_lrn", "D", "vgg16", "VGG-16" (case-insensitive). */
    public static VggConfig parse(String s) {
        String t = s.trim().toUpperCase().replace('-', '_');
        for (VggConfig c : values()) {
            if (c.name().equals(t) || (c.torchvisionName != null && c.torchvisionName.equalsIgnoreCase(t.replace("_", "")))) {
                return c;
            }
        }
        throw new IllegalArgumentException("unknown VGG configuration '" + s
                + "'; expected one of A, A-LRN, B, C, D, E or vgg11, vgg13, vgg16, vgg19");
    }
}
