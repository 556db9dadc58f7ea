package org.vgg4j.core.model;

/**
 * Everything that fixes a VGG network's architecture (not how it is trained).
 *
 * @param config          the paper's column of Table 1
 * @param batchNorm       EXTENSION beyond the paper: BatchNorm after every conv, as torchvision's vgg*_bn
 * @param numClasses      outputs of the last FC layer (1000 for ImageNet)
 * @param inputSize       side of the square training input (224 in the paper; any multiple of 32 from 32 up)
 * @param widthMultiplier scales every conv's channel count (1.0 in the paper; small values for fast tests)
 * @param hiddenFeatures  width of FC6 and FC7 (4096 in the paper; e.g. 512 for 32x32 inputs)
 * @param dropout         dropout probability after FC6 and FC7 (0.5 in the paper)
 * @param seed            seeds dropout masks (initialisation takes its own seed)
 */
public record VggSpec(VggConfig config, boolean batchNorm, int numClasses, int inputSize, double widthMultiplier,
                      int hiddenFeatures, double dropout, long seed) {

    public VggSpec {
        if (config == null) {
            throw new IllegalArgumentException("config must be one of A, A-LRN, B, C, D, E");
        }
        if (numClasses < 1) {
            throw new IllegalArgumentException("number of classes " + numClasses + " must be >= 1");
        }
        int min = 1 << VggConfig.POOLINGS;
        if (inputSize < min) {
            throw new IllegalArgumentException("input " + inputSize + "x" + inputSize + " is smaller than config "
                    + config.paperName() + "'s minimum " + min + "x" + min + " (five 2x2 poolings)");
        }
        if (inputSize % min != 0) {
            throw new IllegalArgumentException("input size " + inputSize + " must be a multiple of " + min
                    + " for training (five 2x2 poolings); use dense evaluation for other sizes");
        }
        if (!(widthMultiplier > 0) || widthMultiplier > 16) {
            throw new IllegalArgumentException("width multiplier " + widthMultiplier + " must be in (0, 16]");
        }
        if (hiddenFeatures < 1) {
            throw new IllegalArgumentException("hidden features " + hiddenFeatures + " must be >= 1");
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("dropout " + dropout + " must be in [0, 1)");
        }
    }

    /** The paper's network: 224x224 input, 4096-wide FC layers, dropout 0.5, 1000 classes. */
    public static VggSpec paper(VggConfig config) {
        return new VggSpec(config, false, 1000, 224, 1.0, 4096, 0.5, 0L);
    }

    /** A small-input variant (e.g. 32x32 CIFAR-sized): classifier 512 -> 512 -> 512 -> classes. */
    public static VggSpec small(VggConfig config, int inputSize, int numClasses) {
        return new VggSpec(config, false, numClasses, inputSize, 1.0, 512, 0.5, 0L);
    }

    public VggSpec withBatchNorm(boolean on) {
        return new VggSpec(config, on, numClasses, inputSize, widthMultiplier, hiddenFeatures, dropout, seed);
    }

    public VggSpec withWidth(double multiplier) {
        return new VggSpec(config, batchNorm, numClasses, inputSize, multiplier, hiddenFeatures, dropout, seed);
    }

    public VggSpec withHidden(int features) {
        return new VggSpec(config, batchNorm, numClasses, inputSize, widthMultiplier, features, dropout, seed);
    }

    public VggSpec withDropout(double p) {
        return new VggSpec(config, batchNorm, numClasses, inputSize, widthMultiplier, hiddenFeatures, p, seed);
    }

    public VggSpec withSeed(long s) {
        return new VggSpec(config, batchNorm, numClasses, inputSize, widthMultiplier, hiddenFeatures, dropout, s);
    }

    /** Channels of a conv of nominal width {@code c} under the width multiplier (at least 1). */
    public int channels(int c) {
        return Math.max(1, (int) Math.round(c * widthMultiplier));
    }

    /** Name such as "D", "D_bn", "A-LRN" (with "x0.25" when narrowed). */
    public String name() {
        return config.paperName() + (batchNorm ? "_bn" : "") + (widthMultiplier != 1.0 ? "x" + widthMultiplier : "");
    }
}
