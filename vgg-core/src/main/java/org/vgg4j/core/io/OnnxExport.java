package org.vgg4j.core.io;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Dropout;
import org.vgg4j.core.layers.Flatten;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.LocalResponseNorm;
import org.vgg4j.core.layers.MaxPool2d;
import org.vgg4j.core.layers.ReLU;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * Writes a {@link Network}'s inference graph as an ONNX model (protobuf, encoded by {@link ProtoMessage}; field
 * numbers from ONNX's {@code onnx.proto}). The graph has one input "input" (N,C,H,W) float32 whose batch dimension
 * N is symbolic (any batch size) and whose C, H, W are the network's; one output "logits" (N,classes). Parameters
 * are initializers named as our (torchvision's) state-dict keys, in float32 (a FLOAT64 network's values are rounded).
 *
 * <p>Layer by layer, evaluation mode: Conv2d as Conv (stride 1, symmetric pads); BatchNorm2d as
 * BatchNormalization on its running statistics (epsilon {@link BatchNorm2d#EPS}); ReLU as Relu; MaxPool2d as
 * MaxPool 2x2/2 (floor, as ours); LocalResponseNorm as LRN when its window is odd (ONNX's window for channel c is
 * c - floor((size-1)/2) ... c + ceil((size-1)/2), ours c - floor(size/2) ... c + floor((size-1)/2): the same only
 * for odd sizes; A-LRN's is 5); Flatten as Flatten(axis 1); Linear as Gemm with transB = 1 (our weights are
 * (out,in)); Dropout is left out (the identity in evaluation). Any other layer is refused, naming it.
 */
public final class OnnxExport {
    /** ONNX IR version 7 is the one opset 13 came with; runtimes that read opset 13 read it. */
    static final long IR_VERSION = 7;

    // TensorProto.DataType
    private static final int FLOAT = 1;
    // AttributeProto.AttributeType
    private static final int ATTR_FLOAT = 1;
    private static final int ATTR_INT = 2;
    private static final int ATTR_INTS = 7;

    /**
     * @param opset    the default-domain opset the model imports, {@link #MIN_OPSET}..{@link #MAX_OPSET}: every
     *                 operator used has kept its semantics for float32 over that range
     * @param batchDim the name of the symbolic batch dimension of "input" and "logits"
     */
    public record Options(int opset, String batchDim) {
        public static final int MIN_OPSET = 13;
        public static final int MAX_OPSET = 21;

        public Options {
            if (opset < MIN_OPSET || opset > MAX_OPSET) {
                throw new IllegalArgumentException("ONNX opset " + opset + " is not supported; expected "
                        + MIN_OPSET + ".." + MAX_OPSET);
            }
            if (batchDim == null || batchDim.isBlank()) {
                throw new IllegalArgumentException("the batch dimension needs a name, got '" + batchDim + "'");
            }
        }

        /** Opset 13, batch dimension "N". */
        public static Options defaults() {
            return new Options(MIN_OPSET, "N");
        }

        public Options withOpset(int o) {
            return new Options(o, batchDim);
        }
    }

    private OnnxExport() {
    }

    /** {@link #write(Network, Path, Options)} with {@link Options#defaults()}. */
    public static void write(Network network, Path path) throws IOException {
        write(network, path, Options.defaults());
    }

    /**
     * Writes {@code network}'s inference graph and weights to {@code path} (replacing it).
     *
     * @throws IllegalArgumentException for a layer ONNX cannot express exactly, naming it
     */
    public static void write(Network network, Path path, Options options) throws IOException {
        ProtoMessage model = model(network, options); // refuses before the file is touched
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(path), 1 << 16)) {
            model.writeTo(out);
        }
    }

    /** As {@link #write(Network, Path, Options)}, to a stream (left open). */
    public static void write(Network network, OutputStream out, Options options) throws IOException {
        model(network, options).writeTo(out);
    }

    /** The ModelProto; tensor values are read from the network when it is written. */
    static ProtoMessage model(Network network, Options options) {
        return new ProtoMessage()
                .varint(1, IR_VERSION)                                   // ir_version
                .string(2, "VGG4J")                                      // producer_name
                .message(7, graph(network, options))                     // graph
                .message(8, new ProtoMessage().string(1, "").varint(2, options.opset())); // opset_import
    }

    private static ProtoMessage graph(Network network, Options options) {
        List<NamedLayer> exported = new ArrayList<>();
        for (NamedLayer nl : network.layers()) {
            if (!(nl.layer() instanceof Dropout)) {
                exported.add(nl);
            }
        }
        if (exported.isEmpty()) {
            throw new IllegalArgumentException("network " + network.name() + " has no layer to export");
        }
        ProtoMessage graph = new ProtoMessage();
        String in = "input";
        for (int i = 0; i < exported.size(); i++) {
            NamedLayer nl = exported.get(i);
            String out = i == exported.size() - 1 ? "logits" : nl.name();
            graph.message(1, node(network, nl, in, out));                // node
            in = out;
        }
        graph.string(2, network.name());                                 // name
        for (NamedLayer nl : exported) {
            for (var spec : nl.layer().params()) {
                ParamStore.Entry e = network.params().get(nl.name() + "." + spec.name());
                graph.message(5, initializer(e.key(), e.value()));       // initializer
            }
        }
        Shape x = network.inputShape();
        graph.message(11, valueInfo("input", options.batchDim(), x.dims()));           // input
        Shape y = network.outputShape(1);
        graph.message(12, valueInfo("logits", options.batchDim(), new int[] {y.dim(1)})); // output
        return graph;
    }

    private static ProtoMessage node(Network network, NamedLayer nl, String in, String out) {
        String p = nl.name() + ".";
        Layer l = nl.layer();
        if (l instanceof Conv2d c) {
            int k = c.kernel();
            int pad = c.pad();
            return node(nl.name(), "Conv", List.of(in, p + "weight", p + "bias"), out)
                    .message(5, ints("kernel_shape", k, k))
                    .message(5, ints("pads", pad, pad, pad, pad))
                    .message(5, ints("strides", 1, 1));
        }
        if (l instanceof BatchNorm2d) {
            return node(nl.name(), "BatchNormalization",
                    List.of(in, p + "weight", p + "bias", p + "running_mean", p + "running_var"), out)
                    .message(5, floatAttr("epsilon", (float) BatchNorm2d.EPS));
        }
        if (l instanceof ReLU) {
            return node(nl.name(), "Relu", List.of(in), out);
        }
        if (l instanceof MaxPool2d) {
            return node(nl.name(), "MaxPool", List.of(in), out)
                    .message(5, ints("kernel_shape", 2, 2))
                    .message(5, ints("strides", 2, 2));
        }
        if (l instanceof LocalResponseNorm lrn) {
            if (lrn.size() % 2 == 0) {
                throw new IllegalArgumentException("layer " + nl.name() + ": LRN size " + lrn.size()
                        + " cannot be exported: ONNX's LRN window equals ours only for odd sizes");
            }
            return node(nl.name(), "LRN", List.of(in), out)
                    .message(5, intAttr("size", lrn.size()))
                    .message(5, floatAttr("alpha", (float) lrn.alpha()))
                    .message(5, floatAttr("beta", (float) lrn.beta()))
                    .message(5, floatAttr("bias", (float) lrn.k()));
        }
        if (l instanceof Flatten) {
            return node(nl.name(), "Flatten", List.of(in), out).message(5, intAttr("axis", 1));
        }
        if (l instanceof Linear) {
            return node(nl.name(), "Gemm", List.of(in, p + "weight", p + "bias"), out)
                    .message(5, intAttr("transB", 1));
        }
        throw new IllegalArgumentException("layer " + nl.name() + " (" + l.describe() + ", "
                + l.getClass().getSimpleName() + ") of network " + network.name() + " has no ONNX export; exported are "
                + "conv, bn, relu, maxpool, lrn (odd size), flatten, fc and dropout (left out)");
    }

    private static ProtoMessage node(String name, String opType, List<String> inputs, String output) {
        ProtoMessage n = new ProtoMessage();
        for (String i : inputs) {
            n.string(1, i);                                              // input
        }
        return n.string(2, output)                                       // output
                .string(3, name)                                         // name
                .string(4, opType);                                      // op_type
    }

    private static ProtoMessage ints(String name, long... values) {
        return new ProtoMessage().string(1, name).varint(20, ATTR_INTS).packedVarints(8, values);
    }

    private static ProtoMessage intAttr(String name, long value) {
        return new ProtoMessage().string(1, name).varint(20, ATTR_INT).varint(3, value);
    }

    private static ProtoMessage floatAttr(String name, float value) {
        return new ProtoMessage().string(1, name).varint(20, ATTR_FLOAT).float32(2, value);
    }

    /** TensorProto: dims (1), data_type (2), name (8), raw_data (9) as float32 little-endian. */
    private static ProtoMessage initializer(String name, Tensor t) {
        int[] dims = t.shape().dims();
        long[] d = new long[dims.length];
        for (int i = 0; i < dims.length; i++) {
            d[i] = dims[i];
        }
        int n = Math.toIntExact(t.size());
        return new ProtoMessage()
                .packedVarints(1, d)
                .varint(2, FLOAT)
                .string(8, name)
                .bytes(9, 4L * n, out -> writeFloats(t, n, out));
    }

    private static void writeFloats(Tensor t, int n, OutputStream out) throws IOException {
        float[] host = new float[n];
        t.backend().copyOut(t, host, 0);
        ByteBuffer chunk = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : host) {
            if (!chunk.hasRemaining()) {
                out.write(chunk.array(), 0, chunk.position());
                chunk.clear();
            }
            chunk.putFloat(v);
        }
        out.write(chunk.array(), 0, chunk.position());
    }

    /** ValueInfoProto of a float32 tensor (batch, dims...), the batch dimension symbolic. */
    private static ProtoMessage valueInfo(String name, String batchDim, int[] dims) {
        ProtoMessage shape = new ProtoMessage()
                .message(1, new ProtoMessage().string(2, batchDim));       // dim { dim_param }
        for (int d : dims) {
            shape.message(1, new ProtoMessage().varint(1, d));            // dim { dim_value }
        }
        ProtoMessage tensorType = new ProtoMessage().varint(1, FLOAT).message(2, shape); // elem_type, shape
        return new ProtoMessage()
                .string(1, name)
                .message(2, new ProtoMessage().message(1, tensorType));  // type { tensor_type }
    }
}
