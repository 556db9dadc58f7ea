package org.vgg4j.train.cli;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.io.ModelMetadata;
import org.vgg4j.core.io.Safetensors;
import org.vgg4j.core.model.Features;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.data.BadImageException;
import org.vgg4j.data.FileImageDataset;
import org.vgg4j.data.ImageDecoder;
import org.vgg4j.data.ImageFolders;
import org.vgg4j.data.Normalization;
import org.vgg4j.data.Resampler;
import org.vgg4j.data.SampleTransform;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code vgg features}: one layer's activations for every image of a folder of class folders, as a safetensors file
 * for retrieval, clustering or a linear probe. Each image is seen as validation sees it: shorter side rescaled to
 * Q = round(256/224 x input size), the centred input-size square, the checkpoint's normalisation. The network runs in
 * evaluation mode (no dropout, BatchNorm on running statistics) through {@link Network#featuresAt}.
 *
 * <p>The file: {@code features} F32 (N, D), one row per image flattened from the layer's (C, H, W) or (F);
 * {@code labels} I64 (N), the class index; metadata {@code vgg4j.features.layer}, {@code .shape} (one row's shape),
 * {@code .classes} and {@code .files} (newline-separated, files relative to {@code --data}, in row order) and
 * {@code .labels} (comma-separated), plus the model the checkpoint records ({@link ModelMetadata}). Rows go to a
 * temporary file as they are computed, so memory does not grow with the folder.
 */
@Command(name = "features", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write one layer's activations (fc7, pool5, features.N, ...) for every image of a folder to safetensors.")
final class FeaturesCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", required = true, paramLabel = "FILE",
            description = "the weights: a vgg train checkpoint, a safetensors file or a torchvision .pth state dict")
    Path checkpoint;

    @Option(names = "--data", required = true, paramLabel = "DIR", description = "a folder of class folders (DIR/<class>/<image>)")
    Path data;

    @Option(names = "--layer", paramLabel = "NAME", description = "fc6, fc7 (after their ReLU), pool5 (the last pooling), "
            + "or any layer name: features.N (features.3/8/15/22 are relu1_2..relu4_3 of D), classifier.N; default fc7")
    String layer = "fc7";

    @Option(names = "--out", required = true, paramLabel = "F.safetensors", description = "the file to write (replaced)")
    Path out;

    @Option(names = "--batch", paramLabel = "N", description = "images per forward pass (default 16)")
    int batch = 16;

    @Option(names = "--normalization", paramLabel = "N", description = "input normalisation for a checkpoint that "
            + "records none: imagenet (torchvision's weights) or paper (mean subtraction only)")
    CheckpointModel.NormChoice normalization;

    @Option(names = "--backend", converter = ModelOptions.BackendConverter.class, paramLabel = "NAME",
            description = "compute backend (default: cpu when present)")
    String backend;

    @Mixin
    ModelOptions model;

    @Override
    public Integer call() throws IOException {
        CliErrors.requireFile("--checkpoint", checkpoint, "a safetensors checkpoint or a torchvision .pth");
        if (!Files.isDirectory(data)) {
            throw new IllegalArgumentException("--data " + data + ": no such directory; expected a folder of class folders");
        }
        if (batch < 1) {
            throw new IllegalArgumentException("--batch " + batch + ": expected 1 or more images");
        }
        FileImageDataset images = ImageFolders.imageFolder(data, new ImageDecoder());
        if (images.size() == 0) {
            throw new IllegalArgumentException("--data " + data + ": no images in its class folders " + images.classes());
        }
        CheckpointModel.Resolved m = CheckpointModel.resolve(checkpoint, CheckpointModel.given(spec),
                model.spec(false, 1000, 0), null);
        Normalization norm = CheckpointModel.normalization(checkpoint, m.norm(), normalization);
        VggSpec vgg = m.spec();
        int side = vgg.inputSize();
        SampleTransform view = SampleTransform.centreCrop(Math.round(side * 256f / 224f), side, norm);
        Path rows = Files.createTempFile("vgg4j-features-", ".f32");
        try (Backend b = Backends.create(backend != null ? backend : ModelOptions.defaultBackend());
             Network net = Vgg.build(b, DType.FLOAT32, vgg)) {
            org.vgg4j.train.Initialization.loadWeights(net, checkpoint);
            net.shareOutputBuffers(); // it only evaluates; featuresAt copies the layer it wants before the next runs
            String name = layerName(net, layer);
            long[] rowShape = null;
            try (OutputStream o = new BufferedOutputStream(Files.newOutputStream(rows))) {
                rowShape = extract(net, images, view, name, o);
            }
            write(images, vgg, norm, name, rowShape, rows);
            var w = spec.commandLine().getOut();
            w.printf(Locale.ROOT, "wrote %s: %d images x %d features of %s (%s of %s, row shape %s)%n", out, images.size(),
                    product(rowShape), layer, name, vgg.name(), shape(rowShape));
            w.flush();
        } finally {
            Files.deleteIfExists(rows);
        }
        return 0;
    }

    /** The network's name for {@code layer}: fc6/fc7 after their ReLU, pool5 the last pooling; others as given. */
    static String layerName(Network net, String layer) {
        switch (layer) {
            case "fc6":
                return "classifier.1";
            case "fc7":
                return "classifier.4";
            case "pool5": {
                String last = null;
                for (NamedLayer nl : net.layers()) {
                    if (nl.name().startsWith("features.")) {
                        last = nl.name();
                    }
                }
                return last;
            }
            default:
                return layer;
        }
    }

    /** Runs every image through {@code net} in batches, writing each row's floats (little-endian); the row shape. */
    private long[] extract(Network net, FileImageDataset images, SampleTransform view, String name, OutputStream o)
            throws IOException {
        Backend b = net.backend();
        Resampler resampler = new Resampler();
        SplittableRandom unused = new SplittableRandom(0); // the centre view draws nothing
        int side = view.height();
        int per = 3 * side * side;
        long[] rowShape = null;
        for (int start = 0; start < images.size(); start += batch) {
            int n = Math.min(batch, images.size() - start);
            float[] host = new float[n * per]; // (n, 3, side, side)
            for (int i = 0; i < n; i++) {
                try {
                    view.apply(images.load(start + i), unused, resampler, host, i * per);
                } catch (BadImageException e) {
                    throw new IOException(e.source() + ": " + e.reason() + "; expected a readable image (remove it or"
                            + " replace it: every image gets a row)", e);
                }
            }
            Tensor x = b.allocate(DType.FLOAT32, Shape.of(n, 3, side, side));
            try (Features f = featuresOf(net, x, host, name)) {
                Tensor t = f.get(name);
                float[] values = f.toFloats(name);
                rowShape = new long[t.shape().rank() - 1];
                for (int d = 1; d < t.shape().rank(); d++) {
                    rowShape[d - 1] = t.shape().dim(d);
                }
                ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
                for (float v : values) {
                    bytes.putFloat(v);
                }
                o.write(bytes.array());
            } finally {
                b.free(x);
            }
            net.releaseActivations();
        }
        return rowShape;
    }

    private static Features featuresOf(Network net, Tensor x, float[] host, String name) {
        net.backend().copyIn(host, 0, x);
        return net.featuresAt(x, name);
    }

    private void write(FileImageDataset images, VggSpec vgg, Normalization norm, String name, long[] rowShape, Path rows)
            throws IOException {
        int n = images.size();
        long width = product(rowShape);
        long[] labels = new long[n];
        List<String> files = new ArrayList<>();
        List<String> labelText = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            labels[i] = images.label(i);
            files.add(data.relativize(images.file(i)).toString());
            labelText.add(Integer.toString(images.label(i)));
        }
        Map<String, String> meta = new LinkedHashMap<>(ModelMetadata.of(vgg));
        meta.putAll(ModelMetadata.of(CheckpointModel.forMetadata(norm)));
        meta.put("vgg4j.features.layer", layer.equals(name) ? name : layer + " (" + name + ")");
        meta.put("vgg4j.features.shape", shape(rowShape));
        meta.put("vgg4j.features.classes", String.join("\n", images.classes()));
        meta.put("vgg4j.features.files", String.join("\n", files));
        meta.put("vgg4j.features.labels", String.join(",", labelText));
        Safetensors.write(out, List.of(
                new Safetensors.Entry("features", Safetensors.Dtype.F32, new long[] {n, width}, o -> Files.copy(rows, o)),
                Safetensors.ofLongs("labels", new long[] {n}, labels)), meta);
    }

    private static long product(long[] shape) {
        long p = 1;
        for (long d : shape) {
            p *= d;
        }
        return p;
    }

    private static String shape(long[] shape) {
        List<String> s = new ArrayList<>();
        for (long d : shape) {
            s.add(Long.toString(d));
        }
        return "(" + String.join(",", s) + ")";
    }
}
