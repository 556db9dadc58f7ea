package org.vgg4j.train.cli;

import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;

import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The architecture options shared by train, eval, info and bench. Defaults depend on the data: small images
 * (Fashion-MNIST) get a narrow BN network at 32x32 (width 0.25, FC 128); anything else the paper's network.
 */
public final class ModelOptions {
    @Option(names = "--config", converter = ConfigConverter.class, paramLabel = "C",
            description = "VGG configuration: A, A-LRN, B, C, D, E (or vgg11, vgg13, vgg16, vgg19); default A")
    VggConfig config = VggConfig.A;

    @Option(names = "--bn", negatable = true, description = "BatchNorm after every conv (torchvision's _bn); "
            + "default on for small images, off otherwise (the paper)")
    Boolean batchNorm;

    @Option(names = "--width", paramLabel = "W", description = "channel multiplier (default 0.25 for small images, else 1)")
    Double width;

    @Option(names = "--hidden", paramLabel = "F", description = "width of FC6/FC7 (default 128 for small images, else 4096;"
            + " 256 in vgg train's demo)")
    Integer hidden;

    @Option(names = "--input-size", paramLabel = "PX", description = "training crop side, a multiple of 32 "
            + "(default 32 for small images, else 224)")
    Integer inputSize;

    @Option(names = "--classes", paramLabel = "N", description = "number of classes (default: the data's; 1000 for info/bench)")
    Integer classes;

    @Option(names = "--dropout", paramLabel = "P", description = "dropout after FC6/FC7 (default 0.5; 0 in vgg train's demo)")
    Double dropout;

    /** The spec these options describe; {@code small} picks the small-image defaults. */
    VggSpec spec(boolean small, int dataClasses, long seed) {
        return spec(small, dataClasses, seed, small ? 128 : 4096, 0.5);
    }

    /** The spec these options describe, with other defaults of the FC width and dropout (vgg train's demo). */
    VggSpec spec(boolean small, int dataClasses, long seed, int defaultHidden, double defaultDropout) {
        return new VggSpec(config, batchNorm != null ? batchNorm : small, classes != null ? classes : dataClasses,
                inputSize != null ? inputSize : small ? 32 : 224, width != null ? width : small ? 0.25 : 1.0,
                hidden != null ? hidden : defaultHidden, dropout != null ? dropout : defaultDropout, seed);
    }

    /** Reads a VggConfig, naming the accepted values when it cannot. */
    public static final class ConfigConverter implements CommandLine.ITypeConverter<VggConfig> {
        @Override
        public VggConfig convert(String value) {
            try {
                return VggConfig.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    /** Checks a backend name against those on the class path. */
    public static final class BackendConverter implements CommandLine.ITypeConverter<String> {
        @Override
        public String convert(String value) {
            if (!Backends.names().contains(value)) {
                throw new CommandLine.TypeConversionException("unknown backend '" + value + "'; expected one of "
                        + Backends.names() + (value.startsWith("cuda") ? " (add the org.vgg4j:vgg-cuda dependency)" : ""));
            }
            return value;
        }
    }

    /** "cpu" when it is on the class path, else "reference". */
    static String defaultBackend() {
        return Backends.names().contains("cpu") ? "cpu" : "reference";
    }
}
