package org.vgg4j.core.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.layers.LowRankGradient;
import org.vgg4j.core.layers.ParamSpec;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * All parameters of one replica in ONE contiguous buffer, all their gradients in another of the same layout, and
 * the non-trained state (BatchNorm running statistics) in a third; every named tensor is a view. All-reduce, the
 * SGD update and checkpointing are then single calls (Caffe's {@code Params}, llm.c's
 * {@code malloc_and_point_parameters}).
 *
 * <p>Layout of the trained buffer: every {@link ParamSpec.Role#WEIGHT} first, then every
 * {@link ParamSpec.Role#NO_DECAY}, each group in network order, so weight decay applies to the prefix
 * [0, {@link #decayedCount()}). Per-tensor learning-rate multipliers (transfer learning: frozen layers, Caffe's
 * {@code lr_mult}) cut the buffer into a few {@link Group}s, which the SGD step takes one call each.
 */
public final class ParamStore {

    /** A named tensor: its torchvision key, its spec, its view. */
    public record Entry(String key, ParamSpec spec, Tensor value, Tensor grad) {
    }

    private final Backend backend;
    private final Tensor values;   // (T) trained parameters
    private final Tensor grads;    // (T) their gradients
    private final Tensor state;    // (S) non-trained state, or null when there is none
    private final long decayedCount;
    private final List<Entry> entries;            // network (torchvision state-dict) order
    private final Map<String, Entry> byKey;
    private final Map<String, Double> lrMultipliers = new LinkedHashMap<>(); // trained key -> multiplier != 1
    private final List<LowRankGradient> lowRank = new ArrayList<>(); // gradients held as factors, in buffer order

    /** False for a view of another store's buffers ({@link #viewOf}): {@link #free} leaves them to their owner. */
    private final boolean owns;

    ParamStore(Backend backend, DType dtype, List<Map.Entry<String, ParamSpec>> specs) {
        this(backend, dtype, specs, null);
    }

    /**
     * A store over {@code source}'s buffers, a live view of its values, gradients and state: {@code specs} must
     * name the same parameters with the same roles and sizes in the same order (the shapes may differ, e.g. a
     * fully-connected weight (F, C*R*S) seen as a convolution's (F, C, R, S)), so that every parameter lies where
     * it lies in the source. {@link #free} leaves the buffers to the source, which must outlive the view.
     *
     * @throws IllegalArgumentException naming the first parameter that differs
     */
    static ParamStore viewOf(ParamStore source, List<Map.Entry<String, ParamSpec>> specs) {
        if (specs.size() != source.entries.size()) {
            throw new IllegalArgumentException("a parameter view needs the source's " + source.entries.size()
                    + " parameters, got " + specs.size());
        }
        for (int i = 0; i < specs.size(); i++) {
            Entry e = source.entries.get(i);
            String key = specs.get(i).getKey();
            ParamSpec spec = specs.get(i).getValue();
            if (!key.equals(e.key()) || spec.role() != e.spec().role() || spec.shape().size() != e.spec().shape().size()) {
                throw new IllegalArgumentException("parameter " + i + " of the view is " + key + " " + spec.shape() + " ("
                        + spec.role() + "), the source's is " + e.key() + " " + e.spec().shape() + " (" + e.spec().role()
                        + "): a view needs the same keys, roles and sizes in the same order");
            }
        }
        return new ParamStore(source.backend, source.values.dtype(), specs, source);
    }

    private ParamStore(Backend backend, DType dtype, List<Map.Entry<String, ParamSpec>> specs, ParamStore source) {
        this.backend = backend;
        this.owns = source == null;
        long weights = 0;
        long noDecay = 0;
        long stateSize = 0;
        for (Map.Entry<String, ParamSpec> e : specs) {
            long n = e.getValue().shape().size();
            switch (e.getValue().role()) {
                case WEIGHT -> weights += n;
                case NO_DECAY -> noDecay += n;
                case STATE -> stateSize += n;
            }
        }
        long trained = weights + noDecay;
        if (trained == 0) {
            throw new IllegalArgumentException("a network needs at least one trained parameter");
        }
        this.decayedCount = weights;
        if (source != null) {
            this.values = source.values;
            this.grads = source.grads;
            this.state = source.state;
        } else {
            this.values = backend.allocate(dtype, Shape.of(Math.toIntExact(trained)));
            // zero, and held by the system only once written: a network that never trains (evaluation, dense
            // evaluation, features) never occupies memory for its gradients, not even while it is built
            this.grads = backend.allocateReleased(dtype, Shape.of(Math.toIntExact(trained)));
            this.state = stateSize == 0 ? null : backend.allocate(dtype, Shape.of(Math.toIntExact(stateSize)));
        }
        long nextWeight = 0;
        long nextNoDecay = weights;
        long nextState = 0;
        List<Entry> list = new ArrayList<>();
        Map<String, Entry> map = new LinkedHashMap<>();
        for (Map.Entry<String, ParamSpec> e : specs) {
            ParamSpec spec = e.getValue();
            long n = spec.shape().size();
            Entry entry = switch (spec.role()) {
                case WEIGHT -> new Entry(e.getKey(), spec, values.view(nextWeight, spec.shape()), grads.view(nextWeight, spec.shape()));
                case NO_DECAY -> new Entry(e.getKey(), spec, values.view(nextNoDecay, spec.shape()), grads.view(nextNoDecay, spec.shape()));
                case STATE -> new Entry(e.getKey(), spec, state.view(nextState, spec.shape()), null);
            };
            switch (spec.role()) {
                case WEIGHT -> nextWeight += n;
                case NO_DECAY -> nextNoDecay += n;
                case STATE -> nextState += n;
            }
            if (map.put(e.getKey(), entry) != null) {
                throw new IllegalArgumentException("parameter name " + e.getKey() + " appears twice");
            }
            list.add(entry);
        }
        this.entries = Collections.unmodifiableList(list);
        this.byKey = Collections.unmodifiableMap(map);
    }

    public Backend backend() {
        return backend;
    }

    public DType dtype() {
        return values.dtype();
    }

    /** The one buffer of trained parameters (T). */
    public Tensor values() {
        return values;
    }

    /** The one buffer of gradients (T), same layout as {@link #values()}. */
    public Tensor grads() {
        return grads;
    }

    /** The buffer of non-trained state (S), or null. */
    public Tensor state() {
        return state;
    }

    /** Elements at the start of {@link #values()} that take weight decay (the WEIGHT role). */
    public long decayedCount() {
        return decayedCount;
    }

    /** Number of trained parameters (what papers and torchvision count). */
    public long trainedCount() {
        return values.size();
    }

    /** Every named tensor in torchvision state-dict order. */
    public List<Entry> entries() {
        return entries;
    }

    /** The entry for a torchvision key such as "features.0.weight"; null when absent. */
    public Entry get(String key) {
        return byKey.get(key);
    }

    /**
     * A contiguous part of the trained buffer whose elements share one learning-rate multiplier (Caffe's
     * {@code lr_mult}; 0: frozen) and all take weight decay or none.
     *
     * @param offset  first element in {@link #values()} (and {@link #grads()})
     * @param count   elements
     * @param lrMult  the learning rate of these elements is the step's rate times this
     * @param decayed whether these elements take weight decay (the WEIGHT role)
     */
    public record Group(long offset, long count, double lrMult, boolean decayed) {
    }

    /**
     * Sets the learning-rate multiplier of the trained tensor {@code key} (Caffe's {@code lr_mult}): 1 is the
     * default, 0 freezes it (no update, no weight decay, its gradient is cleared by each step).
     *
     * @throws IllegalArgumentException for an unknown or non-trained key, or a multiplier not finite and >= 0
     */
    public void setLrMultiplier(String key, double multiplier) {
        Entry e = byKey.get(key);
        if (e == null || e.grad() == null) {
            throw new IllegalArgumentException("no trained parameter '" + key + "' (" + (e == null ? "unknown key"
                    : "non-trained state") + "); expected a key such as " + entries.get(0).key());
        }
        if (!(multiplier >= 0) || Double.isInfinite(multiplier)) {
            throw new IllegalArgumentException("learning-rate multiplier " + multiplier + " of " + key
                    + " must be finite and >= 0");
        }
        if (multiplier == 1.0) {
            lrMultipliers.remove(key);
        } else {
            lrMultipliers.put(key, multiplier);
        }
    }

    /** The learning-rate multiplier of the trained tensor {@code key} (1 unless set). */
    public double lrMultiplier(String key) {
        return lrMultipliers.getOrDefault(key, 1.0);
    }

    /** Whether every trained tensor has multiplier 1 (then one SGD call covers the whole buffer). */
    public boolean uniformLr() {
        return lrMultipliers.isEmpty();
    }

    /**
     * The trained buffer cut into runs of equal multiplier, in buffer order (weights first, then the non-decayed
     * tensors); neighbouring tensors of equal multiplier share one group. Covers [0, {@link #trainedCount()}).
     */
    public List<Group> groups() {
        List<Entry> byOffset = new ArrayList<>();
        for (Entry e : entries) {
            if (e.grad() != null) {
                byOffset.add(e);
            }
        }
        byOffset.sort(java.util.Comparator.comparingLong(e -> e.value().offset()));
        long base = values.offset();
        List<Group> groups = new ArrayList<>();
        for (Entry e : byOffset) {
            long from = e.value().offset() - base;
            long n = e.value().size();
            double m = lrMultiplier(e.key());
            boolean decayed = from < decayedCount;
            Group last = groups.isEmpty() ? null : groups.get(groups.size() - 1);
            if (last != null && last.lrMult() == m && last.decayed() == decayed && last.offset() + last.count() == from) {
                groups.set(groups.size() - 1, new Group(last.offset(), last.count() + n, m, decayed));
            } else {
                groups.add(new Group(from, n, m, decayed));
            }
        }
        return Collections.unmodifiableList(groups);
    }

    /**
     * Registers {@code g}, which holds the gradient of one entry as factors (see {@link LowRankGradient}): the SGD
     * step, {@link #gradsSurelyFinite} and {@link #zeroGrads} take it into account, and its part of
     * {@link #grads()} stays zero while factors are pending. Called by {@code Network.deferLinearWeightGradients}.
     */
    void addLowRank(LowRankGradient g) {
        lowRank.add(g);
        lowRank.sort(java.util.Comparator.comparingLong(t -> t.dense().offset()));
        if (backend.sumOfSquares(g.dense()) == 0) {
            backend.zeroAndRelease(g.dense());
        } else {
            g.toDense(); // a gradient accumulated before: kept, and dense from now on
        }
    }

    /** The gradients held as factors, in buffer order; empty unless the network deferred them. */
    public List<LowRankGradient> lowRank() {
        return Collections.unmodifiableList(lowRank);
    }

    /**
     * Adds every pending factor into {@link #grads()}, so that the buffer holds the whole gradient (for a check
     * that reads it element by element); until the next step those gradients then accumulate densely.
     */
    public void densifyGrads() {
        for (LowRankGradient g : lowRank) {
            g.toDense();
        }
    }

    /**
     * Whether every gradient is finite, cheaply: one sum of squares over {@link #grads()} and a bound on each
     * low-rank gradient from its factors; where the bound is not conclusive, that gradient is made dense and
     * checked exactly.
     */
    public boolean gradsSurelyFinite() {
        for (LowRankGradient g : lowRank) {
            if (!g.surelyFinite()) {
                g.toDense();
            }
        }
        return Double.isFinite(backend.sumOfSquares(grads));
    }

    /** Sets every gradient to zero (pending factors discarded). */
    public void zeroGrads() {
        if (lowRank.isEmpty()) {
            backend.fill(grads, 0.0);
            return;
        }
        long at = 0; // fill around the low-rank gradients, which clear themselves without touching their memory
        for (LowRankGradient g : lowRank) {
            long from = g.dense().offset() - grads.offset();
            fillGrads(at, from);
            g.clear();
            at = from + g.dense().size();
        }
        fillGrads(at, grads.size());
    }

    private void fillGrads(long from, long to) {
        if (to > from) {
            backend.fill(grads.view(from, Shape.of(Math.toIntExact(to - from))), 0.0);
        }
    }

    void free() {
        for (LowRankGradient g : lowRank) {
            g.free();
        }
        if (!owns) {
            return;
        }
        backend.free(values);
        backend.free(grads);
        if (state != null) {
            backend.free(state);
        }
    }
}
