package org.vgg4j.core.model;

import org.vgg4j.core.tensor.DType;

/**
 * How {@link Vgg#of(VggConfig, VggOptions)} builds a one-line model: the architecture besides the configuration
 * (a {@link VggSpec}), its initialisation, its dtype and the backend it creates for itself. Immutable; every
 * setter returns a new instance, e.g. {@code VggOptions.torchvision().batchNorm(true).classes(10)}.
 */
public final class VggOptions {
    private final boolean batchNorm;
    private final int classes;
    private final int inputSize;
    private final double width;
    private final int hidden;
    private final double dropout;
    private final Initializers.Scheme init;
    private final long seed;
    private final DType dtype;
    private final String backend;
    private final int device;

    private VggOptions(boolean batchNorm, int classes, int inputSize, double width, int hidden, double dropout,
                       Initializers.Scheme init, long seed, DType dtype, String backend, int device) {
        this.batchNorm = batchNorm;
        this.classes = classes;
        this.inputSize = inputSize;
        this.width = width;
        this.hidden = hidden;
        this.dropout = dropout;
        this.init = init;
        this.seed = seed;
        this.dtype = dtype;
        this.backend = backend;
        this.device = device;
    }

    /**
     * torchvision's architecture: no BatchNorm, 1000 classes, 224x224 input, full width, FC 4096, dropout 0.5;
     * Glorot-uniform initialisation with seed 0, float32, on a new {@code cpu} backend (device 0).
     */
    public static VggOptions torchvision() {
        return new VggOptions(false, 1000, 224, 1.0, 4096, 0.5, Initializers.Scheme.GLOROT_UNIFORM, 0L,
                DType.FLOAT32, "cpu", 0);
    }

    /** BatchNorm after every conv, as torchvision's vgg*_bn (an extension beyond the paper). */
    public VggOptions batchNorm(boolean on) {
        return new VggOptions(on, classes, inputSize, width, hidden, dropout, init, seed, dtype, backend, device);
    }

    /** Outputs of the last FC layer. */
    public VggOptions classes(int n) {
        return new VggOptions(batchNorm, n, inputSize, width, hidden, dropout, init, seed, dtype, backend, device);
    }

    /** Side of the square input, a multiple of 32 (see {@link VggSpec}). */
    public VggOptions inputSize(int side) {
        return new VggOptions(batchNorm, classes, side, width, hidden, dropout, init, seed, dtype, backend, device);
    }

    /** Scales every conv's channel count (e.g. 0.25 for a narrow, fast network). */
    public VggOptions width(double multiplier) {
        return new VggOptions(batchNorm, classes, inputSize, multiplier, hidden, dropout, init, seed, dtype, backend, device);
    }

    /** Width of FC6 and FC7. */
    public VggOptions hidden(int features) {
        return new VggOptions(batchNorm, classes, inputSize, width, features, dropout, init, seed, dtype, backend, device);
    }

    /** Dropout probability after FC6 and FC7. */
    public VggOptions dropout(double p) {
        return new VggOptions(batchNorm, classes, inputSize, width, hidden, p, init, seed, dtype, backend, device);
    }

    /** The initialisation scheme of conv and FC weights. */
    public VggOptions init(Initializers.Scheme scheme) {
        if (scheme == null) {
            throw new IllegalArgumentException("initialisation scheme must be one of "
                    + java.util.Arrays.toString(Initializers.Scheme.values()));
        }
        return new VggOptions(batchNorm, classes, inputSize, width, hidden, dropout, scheme, seed, dtype, backend, device);
    }

    /** Seeds both the initialisation and the dropout masks. */
    public VggOptions seed(long s) {
        return new VggOptions(batchNorm, classes, inputSize, width, hidden, dropout, init, s, dtype, backend, device);
    }

    public VggOptions dtype(DType t) {
        if (t == null) {
            throw new IllegalArgumentException("dtype must be one of " + java.util.Arrays.toString(DType.values()));
        }
        return new VggOptions(batchNorm, classes, inputSize, width, hidden, dropout, init, seed, t, backend, device);
    }

    /** The backend the model creates for itself and closes with itself: "cpu" (the default), "reference", ... */
    public VggOptions backend(String name) {
        return backend(name, 0);
    }

    /** As {@link #backend(String)}, on device {@code device} of a device-bound backend ("cuda", 1). */
    public VggOptions backend(String name, int device) {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("backend name '" + name + "' must not be empty");
        }
        return new VggOptions(batchNorm, classes, inputSize, width, hidden, dropout, init, seed, dtype, name, device);
    }

    /** The architecture these options give {@code config}; VggSpec checks the values. */
    public VggSpec spec(VggConfig config) {
        return new VggSpec(config, batchNorm, classes, inputSize, width, hidden, dropout, seed);
    }

    public Initializers.Scheme init() {
        return init;
    }

    public long seed() {
        return seed;
    }

    public DType dtype() {
        return dtype;
    }

    public String backend() {
        return backend;
    }

    public int device() {
        return device;
    }
}
