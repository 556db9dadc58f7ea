package org.vgg4j.core.model;

import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Dropout;
import org.vgg4j.core.layers.GradientArena;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.LowRankGradient;
import org.vgg4j.core.layers.MaxPool2d;
import org.vgg4j.core.layers.ParamSpec;
import org.vgg4j.core.layers.ReLU;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * A sequence of layers with one {@link ParamStore}. Forward runs the layers in order; backward runs them in
 * reverse, accumulating parameter gradients. It knows nothing of data, losses or optimisers (Trainer's job).
 *
 * <p>A {@link Conv2d} directly followed by a {@link ReLU} runs forward as one backend call
 * ({@link Conv2d#forwardRelu}, then {@link ReLU#forwardFused}): the cpu backend applies the ReLU inside its oneDNN
 * convolution instead of a second pass over y. A {@link BatchNorm2d} directly followed by a ReLU (the _bn
 * networks, where no Conv2d meets a ReLU) runs the same way ({@link BatchNorm2d#forwardRelu}): the cpu backend
 * applies the ReLU in the loop that writes y. Both layers of a pair keep their own backward. {@link #featuresAt}
 * runs a pair unfused when the first layer's own (pre-ReLU) output is asked for. Backward fuses the other way
 * round: a {@link MaxPool2d} right after a ReLU takes that ReLU's backward into its own pass
 * ({@link MaxPool2d#backwardWithRelu}; its input is the ReLU's output).
 */
public final class Network implements AutoCloseable {
    private final String name;
    private final Backend backend;
    private final DType dtype;
    private final Shape inputShape;   // (C,H,W) the network was built for
    private final List<NamedLayer> layers;
    private final ParamStore params;
    private final GradientArena gradients; // the two dL/dx buffers all layers share
    private GradientArena outputs;         // the two output buffers of an evaluation-only network, else null
    private final boolean[] fused;         // [i]: layer i is a Conv2d or a BatchNorm2d and layer i+1 a ReLU, run as one call
    private final boolean[] poolAfterRelu; // [i]: layer i is a MaxPool2d and layer i-1 a ReLU: one backward call
    private boolean closesBackend;         // set for Vgg's one-line models, whose backend is this network's alone

    /**
     * @param name       e.g. "D" or "vgg16"
     * @param inputShape (C,H,W) of one example
     * @param layers     in order; a layer's parameters are named {@code layerName + "." + spec.name()}
     */
    public Network(String name, Backend backend, DType dtype, Shape inputShape, List<NamedLayer> layers) {
        this(name, backend, dtype, inputShape, layers, null);
    }

    /**
     * As above, the parameters a live view of {@code sharedFrom}'s ({@link ParamStore#viewOf}: the same keys, roles
     * and sizes in the same order; null: its own). Closing this network leaves them to {@code sharedFrom}, which
     * must stay open while this one is used (on the cpu backend a use after that fails naming the freed memory).
     */
    Network(String name, Backend backend, DType dtype, Shape inputShape, List<NamedLayer> layers, Network sharedFrom) {
        if (!backend.supports(dtype)) {
            throw new IllegalArgumentException("backend '" + backend.name() + "' does not compute in " + dtype);
        }
        this.name = name;
        this.backend = backend;
        this.dtype = dtype;
        this.inputShape = inputShape;
        this.layers = Collections.unmodifiableList(new ArrayList<>(layers));
        outputShape(1); // validates the chain for one example
        this.fused = new boolean[layers.size()];
        for (int i = 0; i + 1 < layers.size(); i++) {
            Layer first = layers.get(i).layer();
            fused[i] = (first instanceof Conv2d || first instanceof BatchNorm2d)
                    && layers.get(i + 1).layer() instanceof ReLU;
        }
        this.poolAfterRelu = new boolean[layers.size()];
        for (int i = 1; i < layers.size(); i++) {
            poolAfterRelu[i] = layers.get(i).layer() instanceof MaxPool2d && layers.get(i - 1).layer() instanceof ReLU;
        }
        List<Map.Entry<String, ParamSpec>> specs = new ArrayList<>();
        for (NamedLayer nl : layers) {
            for (ParamSpec s : nl.layer().params()) {
                specs.add(new AbstractMap.SimpleEntry<>(nl.name() + "." + s.name(), s));
            }
        }
        if (sharedFrom != null && (sharedFrom.backend != backend || sharedFrom.dtype != dtype)) {
            throw new IllegalArgumentException("network '" + name + "' can only share the parameters of a network on"
                    + " the same backend and dtype; '" + sharedFrom.name + "' is on " + sharedFrom.backend.name() + " in "
                    + sharedFrom.dtype);
        }
        this.params = sharedFrom == null ? new ParamStore(backend, dtype, specs)
                : ParamStore.viewOf(sharedFrom.params, specs);
        for (NamedLayer nl : layers) {
            Map<String, Tensor> values = new HashMap<>();
            Map<String, Tensor> grads = new HashMap<>();
            for (ParamSpec s : nl.layer().params()) {
                ParamStore.Entry e = params.get(nl.name() + "." + s.name());
                values.put(s.name(), e.value());
                if (e.grad() != null) {
                    grads.put(s.name(), e.grad());
                }
            }
            nl.layer().bind(values, grads);
        }
        this.gradients = new GradientArena(backend);
        for (NamedLayer nl : layers) {
            nl.layer().shareGradientBuffers(gradients);
        }
        if (!layers.isEmpty()) {
            layers.get(0).layer().setNeedsInputGradient(false);
        }
    }

    public String name() {
        return name;
    }

    public Backend backend() {
        return backend;
    }

    public DType dtype() {
        return dtype;
    }

    /** (C,H,W) of one example as built. */
    public Shape inputShape() {
        return inputShape;
    }

    public List<NamedLayer> layers() {
        return layers;
    }

    public ParamStore params() {
        return params;
    }

    /** Output shape for a batch of {@code batch} examples of {@link #inputShape()}. */
    public Shape outputShape(int batch) {
        Shape s = batchShape(batch, inputShape);
        for (NamedLayer nl : layers) {
            s = nl.layer().outputShape(s);
        }
        return s;
    }

    static Shape batchShape(int batch, Shape example) {
        int[] d = new int[example.rank() + 1];
        d[0] = batch;
        System.arraycopy(example.dims(), 0, d, 1, example.rank());
        return Shape.of(d);
    }

    /**
     * Logits (N,classes) for x (N,C,H,W). The returned tensor belongs to the last layer.
     *
     * @throws IllegalArgumentException when x holds a NaN or an infinity (see {@link #checkInput})
     */
    public Tensor forward(Tensor x, boolean training) {
        if (training && outputs != null) {
            throw new IllegalStateException("network '" + name + "' evaluates only (its layers share two output"
                    + " buffers, shareOutputBuffers): a training forward needs every output kept for backward");
        }
        checkInput(x);
        Tensor h = x;
        for (int i = 0; i < layers.size(); i++) {
            if (fused[i]) {
                h = forwardFused(i++, h, training);
            } else {
                h = layers.get(i).layer().forward(h, training);
            }
        }
        return h;
    }

    /**
     * Makes this network evaluate only: from now on its layers write their outputs into two shared buffers (each
     * beside its input, as backward's dL/dx buffers) instead of one buffer per layer, so a forward holds twice the
     * largest activation instead of all of them (dense evaluation at 384: every conv output of 4 images is 38-151
     * MB). A training forward afterwards fails with an error. Idempotent; the layers' own buffers are freed.
     */
    public void shareOutputBuffers() {
        if (outputs != null) {
            return;
        }
        outputs = new GradientArena(backend);
        for (NamedLayer nl : layers) {
            nl.layer().release();
            nl.layer().shareOutputBuffers(outputs);
        }
    }

    /**
     * The input must be of this network's dtype and backend, and finite: a fused convolution + ReLU maps a NaN to 0
     * (Backend#conv2dForwardRelu), so a NaN pixel would otherwise vanish into finite logits instead of showing in
     * the loss. One sum of squares over the batch (an overflow to infinity needs values above ~1e154).
     */
    private void checkInput(Tensor x) {
        if (x.dtype() != dtype || x.backend() != backend) {
            throw new IllegalArgumentException("input " + x + " must be " + dtype + " on backend " + backend.name());
        }
        if (!Double.isFinite(backend.sumOfSquares(x))) {
            throw new IllegalArgumentException("input " + x.shape() + " of network " + name
                    + " holds a NaN or an infinity; expected finite values");
        }
    }

    /** Layers i (a Conv2d or a BatchNorm2d) and i + 1 (a ReLU) in one backend call; returns the ReLU's output. */
    private Tensor forwardFused(int i, Tensor x, boolean training) {
        Layer first = layers.get(i).layer();
        Tensor y = first instanceof Conv2d conv ? conv.forwardRelu(x, training)
                : ((BatchNorm2d) first).forwardRelu(x, training);
        return ((ReLU) layers.get(i + 1).layer()).forwardFused(y);
    }

    /** Whether forward runs layer i (a Conv2d) and layer i + 1 (a ReLU) as one backend call. */
    public boolean fusesRelu(int i) {
        return fused[i] && layers.get(i).layer() instanceof Conv2d;
    }

    /** Whether forward runs layer i (a BatchNorm2d) and layer i + 1 (a ReLU) as one backend call. */
    public boolean fusesBatchNormRelu(int i) {
        return fused[i] && layers.get(i).layer() instanceof BatchNorm2d;
    }

    /**
     * Where the next training forwards' examples lie, for the masks of the {@link Dropout} layers: example i of the
     * forward's batch is at position {@code firstExample + i * exampleStride} of training step {@code step}'s global
     * batch. See {@link Dropout} for why the masks are keyed so.
     */
    public void setTrainingPosition(long step, long firstExample, long exampleStride) {
        for (NamedLayer nl : layers) {
            if (nl.layer() instanceof Dropout d) {
                d.setMaskKey(step, firstExample, exampleStride);
            }
        }
    }

    /**
     * Holds the weight gradient of every {@link Linear} layer where it pays as factors ({@link LowRankGradient}):
     * dy^T x of the step's examples instead of a dense (out,in) tensor, and that part of {@link ParamStore#grads()}
     * zero and its memory handed back. For the paper's networks at the batches of one device this drops fc6's
     * 392 MiB gradient from memory and from every step's traffic (it is written, read and cleared no more); the
     * SGD step builds it a few rows at a time. A layer whose factors would not be small (fewer than 64 examples
     * fit in a quarter of its weight, e.g. the small networks' FC layers) stays dense.
     *
     * <p>The caller then owns the contract: {@link ParamStore#grads()} is zero there until
     * {@link ParamStore#densifyGrads()}; the SGD step ({@code Sgd}), {@link ParamStore#gradsSurelyFinite()} and
     * {@link ParamStore#zeroGrads()} know the factors. Data-parallel training must not use it (the all-reduce
     * reads the dense buffer): {@code Replicas} calls it for one replica in one process only, and only where the
     * backend says it pays ({@link Backend#lowRankGradientsPay}). Idempotent.
     *
     * @return the number of layers whose gradient is now held as factors
     */
    public int deferLinearWeightGradients() {
        int n = 0;
        for (NamedLayer nl : layers) {
            if (nl.layer() instanceof Linear fc) {
                ParamStore.Entry e = params.get(nl.name() + ".weight");
                if (LowRankGradient.maxRows(fc.outFeatures(), fc.inFeatures()) < MIN_LOW_RANK_ROWS) {
                    continue;
                }
                boolean already = params.lowRank().stream().anyMatch(g -> g.dense() == e.grad());
                if (!already) {
                    LowRankGradient g = new LowRankGradient(backend, e.grad());
                    fc.deferWeightGradient(g);
                    params.addLowRank(g);
                }
                n++;
            }
        }
        return n;
    }

    /** A weight gets a {@link LowRankGradient} only where at least this many examples' factors fit. */
    static final int MIN_LOW_RANK_ROWS = 64;

    /** Backpropagates dL/dlogits of the last training forward; parameter gradients accumulate. */
    public void backward(Tensor dLogits) {
        backward(dLogits, null);
    }

    /**
     * As {@link #backward(Tensor)}, calling {@code layerDone.accept(i)} right after layer i's backward has been
     * issued: from then on this backward call writes no more to layer i's parameter gradients (their kernels may
     * still be queued on the backend's stream). Data-parallel training uses it to start all-reducing the gradients
     * of the last layers while the earlier layers are still in backward. Layers that backward never reaches (all
     * before a layer that needs no input gradient) are not reported. {@code layerDone} may be null.
     */
    public void backward(Tensor dLogits, IntConsumer layerDone) {
        Tensor g = dLogits;
        for (int i = layers.size() - 1; i >= 0 && g != null; i--) {
            if (poolAfterRelu[i]) { // the pool's input is the ReLU's output: both backwards in the pool's pass
                g = ((MaxPool2d) layers.get(i).layer()).backwardWithRelu(g);
                if (layerDone != null) {
                    layerDone.accept(i);
                }
                i--;
            } else {
                g = layers.get(i).layer().backward(g);
            }
            if (layerDone != null) {
                layerDone.accept(i);
            }
        }
    }

    /**
     * The activations of the layers called {@code names} (torchvision module paths: "features.3", "features.8",
     * "features.15", "features.22" are relu1_2, relu2_2, relu3_3, relu4_3 in VGG-16; "classifier.4" is fc7 after
     * its ReLU) for the batch x (N,C,H,W), from one evaluation-mode forward (dropout off, BatchNorm on its running
     * statistics) that stops at the deepest requested layer.
     *
     * <p>Each activation is copied out right after its layer ran (ReLUs overwrite their input in place, and the
     * next forward overwrites every layer's output), into a new tensor on this network's backend that the returned
     * {@link Features} owns: the values stay valid across later forwards until it is closed. There is no backward
     * through them. Repeated names count once.
     *
     * @throws IllegalArgumentException naming an unknown layer and listing the valid names
     */
    public Features featuresAt(Tensor x, String... names) {
        checkInput(x);
        if (names.length == 0) {
            throw new IllegalArgumentException("name at least one layer; valid names: " + layerNames());
        }
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < layers.size(); i++) {
            index.put(layers.get(i).name(), i);
        }
        Map<Integer, String> wanted = new HashMap<>();
        int deepest = -1;
        for (String n : names) {
            Integer i = index.get(n);
            if (i == null) {
                throw new IllegalArgumentException("network " + name + " has no layer '" + n + "'; valid names: "
                        + layerNames());
            }
            wanted.put(i, n);
            deepest = Math.max(deepest, i);
        }
        Map<String, Tensor> copies = new HashMap<>();
        try {
            Tensor h = x;
            for (int i = 0; i <= deepest; i++) {
                if (fused[i] && !wanted.containsKey(i) && i < deepest) {
                    h = forwardFused(i++, h, false);
                } else {
                    h = layers.get(i).layer().forward(h, false);
                }
                String n = wanted.get(i);
                if (n != null) {
                    Tensor copy = backend.allocate(dtype, h.shape());
                    copies.put(n, copy);
                    backend.copy(h, copy);
                }
            }
        } catch (RuntimeException | Error e) {
            copies.values().forEach(backend::free);
            throw e;
        }
        List<String> order = new ArrayList<>();
        for (String n : names) {
            if (!order.contains(n)) {
                order.add(n);
            }
        }
        return new Features(backend, order, copies);
    }

    private List<String> layerNames() {
        List<String> n = new ArrayList<>();
        for (NamedLayer nl : layers) {
            n.add(nl.name());
        }
        return n;
    }

    /** Makes {@link #close()} close this network's backend too: for a backend created for this network alone. */
    Network closingBackend() {
        closesBackend = true;
        return this;
    }

    /** Releases activation buffers (parameters stay). */
    public void releaseActivations() {
        for (NamedLayer nl : layers) {
            nl.layer().release();
        }
        gradients.release();
        if (outputs != null) {
            outputs.release();
        }
    }

    /**
     * Frees the parameters and activation buffers. A network built by {@code Vgg.of} or a one-line model
     * ({@code Vgg.vgg16()}) also closes the backend it created; one built on a caller's backend leaves it open.
     */
    @Override
    public void close() {
        releaseActivations();
        params.free();
        if (closesBackend) {
            closesBackend = false; // a second close() must not close the backend again
            backend.close();
        }
    }
}
