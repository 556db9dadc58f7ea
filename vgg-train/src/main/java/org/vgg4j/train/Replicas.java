package org.vgg4j.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntConsumer;

import org.vgg4j.core.parallel.AllReduce;
import org.vgg4j.core.parallel.AllReduceProvider;
import org.vgg4j.core.parallel.GradPrecision;
import org.vgg4j.core.parallel.ProcessGroup;
import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.backend.Backends;
import org.vgg4j.core.layers.ParamSpec;
import org.vgg4j.core.layers.SoftmaxCrossEntropy;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.data.Batch;

/**
 * N replicas of one network for synchronous data-parallel SGD (N = 1 is plain training): each replica is a
 * {@link Network} on its own backend instance (or device) with its own {@link Sgd}, driven by its own thread.
 * A step splits the batch N ways, each replica splits its share into micro-batches whose gradients accumulate,
 * the {@link AllReduce} averages the gradient buffers, and every replica takes the same SGD step.
 *
 * <p>Why the result equals one big batch: the loss is the mean over the B examples of the batch. A micro-batch
 * of m examples gives the gradient of its own mean, so its dlogits are scaled by m*N/B before backward; summed
 * over a replica's micro-batches and averaged over the N replicas that is exactly the gradient of the batch mean
 * (up to float rounding). BatchNorm is the exception (its statistics are per micro-batch, as in PyTorch's DDP
 * without SyncBN); its running statistics are averaged across replicas after each step so replicas stay identical.
 * Dropout: each forward tells the replica's Dropout layers the step and where its examples lie in the global batch
 * ({@link Network#setTrainingPosition}), so an example's mask is the same whatever the split over replicas,
 * processes and micro-batches, provided every replica's Dropout layers have the same seed (see {@link Factory}).
 *
 * <p>Devices and overlap: {@link #create} puts replica r on device r of a device backend (cuda, cuda-emulated).
 * During the LAST micro-batch's backward each replica tells the all-reduce ({@link AllReduce#begin}) which gradient
 * elements are final as soon as each layer's backward is issued, so a device all-reduce can send the last layers'
 * gradients while earlier layers are still in backward. A replica that fails aborts the all-reduce in flight (no
 * one waits for its missing gradients) and the step throws, naming the replica's device and the cause.
 *
 * <p>Several processes (the all-reduce's {@link AllReduce#group()} has more than one rank): each process holds
 * its slice of the global batch and its own N replicas; the weights use the world's replica count and the global
 * batch size (summed over processes each step), the all-reduce averages over every process's replicas, and the
 * returned loss is the global mean, so every rank sees the same numbers as one process with the whole batch.
 *
 * <p>Legend: B batch, N replicas, m micro-batch, C,H,W one example.
 */
public final class Replicas implements AutoCloseable {

    /**
     * Builds replica {@code rank}'s network on {@code backend}. With the same dropout seed for every replica the
     * masks do not depend on the split (a seed per replica still gives independent masks, but others for another
     * split).
     */
    @FunctionalInterface
    public interface Factory {
        Network build(Backend backend, int rank);
    }

    private static final class Replica {
        final Backend backend;
        final Network net;
        final Sgd sgd;
        SoftmaxCrossEntropy loss; // replaced by labelSmoothing
        final Map<Integer, Tensor> inputs = new HashMap<>(); // micro-batch size -> (m,C,H,W)
        /** (layers) for layer i, the element ranges {from, to} of its parameters' gradients in the grads buffer */
        final long[][][] layerGrads;

        Replica(Network net, Sgd.Settings settings) {
            this.backend = net.backend();
            this.net = net;
            this.sgd = new Sgd(net.params(), settings);
            this.loss = new SoftmaxCrossEntropy(net.backend());
            long base = net.params().grads().offset();
            List<NamedLayer> layers = net.layers();
            this.layerGrads = new long[layers.size()][][];
            for (int i = 0; i < layers.size(); i++) {
                List<long[]> ranges = new ArrayList<>();
                for (ParamSpec spec : layers.get(i).layer().params()) {
                    ParamStore.Entry e = net.params().get(layers.get(i).name() + "." + spec.name());
                    if (e != null && e.grad() != null) {
                        long from = e.grad().offset() - base;
                        ranges.add(new long[] {from, from + e.grad().size()});
                    }
                }
                layerGrads[i] = ranges.toArray(new long[0][]);
            }
        }

        Tensor input(int m) {
            Shape example = net.inputShape();
            return inputs.computeIfAbsent(m, k -> backend.allocate(net.dtype(),
                    Shape.of(k, example.dim(0), example.dim(1), example.dim(2))));
        }
    }

    private final List<Replica> replicas = new ArrayList<>();
    private final AllReduce allReduce;
    private final boolean ownsBackends;
    private final ExecutorService pool; // null for one replica: everything runs on the caller's thread
    private int lastExamples;           // examples of the last forwardBackward, over every process

    private Replicas(List<Network> nets, Sgd.Settings settings, AllReduce allReduce, boolean ownsBackends) {
        if (nets.isEmpty()) {
            throw new IllegalArgumentException("need at least one replica");
        }
        for (Network n : nets) {
            if (n.params().trainedCount() != nets.get(0).params().trainedCount()) {
                throw new IllegalArgumentException("replica " + n.name() + " has " + n.params().trainedCount()
                        + " parameters; replica 0 has " + nets.get(0).params().trainedCount());
            }
            replicas.add(new Replica(n, settings));
        }
        this.allReduce = allReduce;
        this.ownsBackends = ownsBackends;
        if (nets.size() * allReduce.group().size() == 1 && nets.get(0).backend().lowRankGradientsPay()) {
            // nothing to all-reduce: the FC weights' gradients can stay factors (Network#deferLinearWeightGradients)
            nets.get(0).deferLinearWeightGradients();
        }
        this.pool = nets.size() == 1 ? null : Executors.newFixedThreadPool(nets.size(), r -> {
            Thread t = new Thread(r, "vgg-replica");
            t.setDaemon(true);
            return t;
        });
    }

    /** Wraps networks built by the caller (their backends stay the caller's). */
    public static Replicas of(List<Network> nets, Sgd.Settings settings, AllReduce allReduce) {
        return new Replicas(nets, settings, allReduce, false);
    }

    /**
     * Creates {@code n} backend instances named {@code backendName} and one network on each; the replicas own
     * them. On a backend with devices (cuda, cuda-emulated) replica r opens device r, and {@code n} may not exceed
     * the device count; one replica opens the backend's default device. Backends without devices (cpu,
     * reference) get {@code n} alike instances. Parameters are NOT initialised: initialise replica 0, then
     * {@link #broadcastFromPrimary()}.
     */
    public static Replicas create(String backendName, int n, Factory factory, Sgd.Settings settings, AllReduce allReduce) {
        return create(backendName, n, 0, factory, settings, allReduce);
    }

    /**
     * As {@link #create(String, int, Factory, Sgd.Settings, AllReduce)}, with replica r on device
     * {@code firstDevice + r} (several processes on one machine each take their own devices: local rank x n).
     */
    public static Replicas create(String backendName, int n, int firstDevice, Factory factory, Sgd.Settings settings,
                                  AllReduce allReduce) {
        if (n < 1) {
            throw new IllegalArgumentException("number of replicas " + n + " must be >= 1");
        }
        if (backendName.equals("cpu") && n > 1) {
            Backends.shareCpuCores(n); // before the backend loads: cores / n threads each
        }
        boolean pickDevices = n > 1 || firstDevice > 0;
        int devices = pickDevices ? Backends.deviceCount(backendName) : 0;
        if (devices > 0 && firstDevice + n > devices) {
            throw new IllegalArgumentException(n + " replicas (--devices " + n + ")" + (firstDevice > 0 ? " from device "
                    + firstDevice : "") + " but backend '" + backendName + "' has only " + devices + " device(s)");
        }
        List<Network> nets = new ArrayList<>();
        try {
            for (int r = 0; r < n; r++) {
                Backend b = devices > 0 ? Backends.create(backendName, firstDevice + r) : Backends.create(backendName);
                try {
                    nets.add(factory.build(b, r));
                } catch (RuntimeException e) {
                    b.close();
                    throw e;
                }
            }
        } catch (RuntimeException e) {
            for (Network net : nets) {
                net.close();
                net.backend().close();
            }
            throw e;
        }
        return new Replicas(nets, settings, allReduce, true);
    }

    /**
     * The all-reduce for {@code n} replicas on backend {@code backendName}: a device all-reduce found through
     * {@link AllReduceProvider} (vgg-cuda's ring for cuda and cuda-emulated) when there is one, else
     * {@link HostAllReduce}. Gradients travel in {@code precision}; only a device all-reduce offers bf16/fp16
     * (one replica has nothing to send, so any precision is accepted and changes nothing).
     */
    public static AllReduce allReduceFor(String backendName, int n, GradPrecision precision) {
        if (n > 1) {
            java.util.Optional<AllReduce> device = AllReduceProvider.find(backendName, precision);
            if (device.isPresent()) {
                return device.get();
            }
            if (precision != GradPrecision.FP32) {
                throw new IllegalArgumentException("--grad-precision " + precision + " needs a device all-reduce"
                        + " (backends cuda, cuda-emulated); backend '" + backendName + "' averages on the host in"
                        + " float64 and supports fp32 only");
            }
        }
        return new HostAllReduce();
    }

    public int size() {
        return replicas.size();
    }

    /** Replica 0: the one evaluated and checkpointed (all are identical after each step). */
    public Network primary() {
        return replicas.get(0).net;
    }

    public Network network(int rank) {
        return replicas.get(rank).net;
    }

    public Sgd optimizer(int rank) {
        return replicas.get(rank).sgd;
    }

    /** The processes the all-reduce spans ({@link ProcessGroup#SINGLE} in one process). */
    public ProcessGroup group() {
        return allReduce.group();
    }

    /** Examples in the last {@link #forwardBackward} batch summed over every process (= its size in one process). */
    public int examplesLastStep() {
        return lastExamples;
    }

    /**
     * Every replica's loss from now on: softmax cross-entropy with label smoothing {@code e} in [0, 1) (0, the default:
     * the plain loss). See {@link SoftmaxCrossEntropy}.
     */
    public Replicas labelSmoothing(double e) {
        for (Replica rep : replicas) {
            if (rep.loss.smoothing() != e) {
                SoftmaxCrossEntropy smoothed = new SoftmaxCrossEntropy(rep.backend, e); // refuses e outside [0, 1)
                rep.loss.release();
                rep.loss = smoothed;
            }
        }
        return this;
    }

    /**
     * As {@link #forwardBackward(Batch, int, long)} at step 0: every call draws step 0's Dropout masks, which suits
     * a single pass (benchmarks, tests); a training loop passes its step.
     */
    public double forwardBackward(Batch batch, int microBatch) {
        return forwardBackward(batch, microBatch, 0);
    }

    /**
     * Forward and backward of the whole batch for optimiser step {@code step} (it keys the Dropout masks): replica
     * r takes examples [start_r, start_r + n_r) (shares differ by at most one), in micro-batches of at most
     * {@code microBatch} (0: the whole share); then the gradients are averaged. Returns the mean loss over the
     * batch. Several processes: this process's example j is example j * W + rank of the global batch, as the data
     * pipeline shards it (rank k of W takes positions k, k+W, ...).
     */
    public double forwardBackward(Batch batch, int microBatch, long step) {
        Shape example = primary().inputShape(); // (C,H,W)
        if (batch.channels() != example.dim(0) || batch.height() != example.dim(1) || batch.width() != example.dim(2)) {
            throw new IllegalArgumentException("batch examples " + batch.channels() + "x" + batch.height() + "x"
                    + batch.width() + " do not fit network " + primary().name() + "'s input " + example);
        }
        if (step < 0) {
            throw new IllegalArgumentException("step " + step + " must be >= 0");
        }
        int n = replicas.size();
        ProcessGroup group = allReduce.group();
        // the global batch and replica count: this process holds a slice of the batch and n of the world's replicas
        int total = group.size() == 1 ? batch.size() : (int) group.sum(new double[] {batch.size()})[0];
        int world = n * group.size();
        double[] lossSums = new double[n]; // (N) sum over a replica's examples of the per-example loss
        List<Tensor> grads = new ArrayList<>();
        for (Replica rep : replicas) {
            grads.add(rep.net.params().grads());
        }
        // cut at the biases: stored after all weights, they are final only when the first layer is done
        AllReduce.InFlight flight = allReduce.begin(grads, new long[] {primary().params().decayedCount()});
        List<Runnable> work = new ArrayList<>();
        Position position = new Position(step, group.rank(), group.size());
        int start = 0;
        int local = batch.size();
        for (int r = 0; r < n; r++) {
            int share = local / n + (r < local % n ? 1 : 0);
            int from = start;
            int rank = r;
            Replica rep = replicas.get(rank);
            IntConsumer layerDone = i -> {
                for (long[] range : rep.layerGrads[i]) {
                    flight.ready(rank, range[0], range[1]);
                }
            };
            work.add(() -> lossSums[rank] = replicaPass(rep, batch, from, share, microBatch, total, world, position,
                    layerDone));
            start += share;
        }
        try {
            runAll(work);
        } catch (RuntimeException e) {
            flight.abort(e); // the others must not wait for this step's missing gradients
            throw e;
        }
        flight.finish();
        double sum = 0;
        for (double s : lossSums) {
            sum += s;
        }
        if (group.size() > 1) {
            sum = group.sum(new double[] {sum})[0];
        }
        lastExamples = total;
        return sum / total;
    }

    /** Where this process's examples lie in a step's global batch: local example j is global j * stride + first. */
    private record Position(long step, long first, long stride) {
        void tell(Network net, int localExample) {
            net.setTrainingPosition(step, localExample * stride + first, stride);
        }
    }

    /** {@code layerDone} is told, in the last micro-batch only, when each layer's parameter gradients are final. */
    private static double replicaPass(Replica rep, Batch batch, int from, int count, int microBatch, int total,
                                      int world, Position position, IntConsumer layerDone) {
        int m = microBatch <= 0 ? Math.max(count, 1) : microBatch;
        int example = batch.exampleSize();
        double lossSum = 0;
        for (int off = 0; off < count; off += m) {
            int size = Math.min(m, count - off);
            Tensor x = rep.input(size);
            rep.backend.copyIn(batch.hostImages(), (from + off) * example, x);
            int[] labels = Arrays.copyOfRange(batch.labels(), from + off, from + off + size);
            position.tell(rep.net, from + off);
            double l = rep.loss.forwardBackward(rep.net.forward(x, true), labels);
            double weight = (double) size * world / total; // makes the averaged sum the gradient of the batch mean
            if (weight != 1.0) {
                rep.backend.scale(rep.loss.gradient(), weight);
            }
            rep.net.backward(rep.loss.gradient(), off + m >= count ? layerDone : null);
            lossSum += l * size;
        }
        return lossSum;
    }

    /** The same SGD step in every replica (their gradients are identical after the all-reduce). */
    public void step(double lr) {
        List<Runnable> work = new ArrayList<>();
        for (Replica rep : replicas) {
            work.add(() -> rep.sgd.step(lr));
        }
        runAll(work);
        List<Tensor> states = new ArrayList<>();
        for (Replica rep : replicas) {
            if (rep.net.params().state() != null) {
                states.add(rep.net.params().state());
            }
        }
        if (!states.isEmpty() && states.size() * allReduce.group().size() > 1) {
            allReduce.average(states); // BatchNorm running statistics: keep the replicas identical
        }
    }

    /** Clears every replica's gradients (after a rollback, say). */
    public void zeroGrads() {
        for (Replica rep : replicas) {
            rep.net.params().zeroGrads();
        }
    }

    /** Copies replica 0's parameters, state and momentum into every other replica (after init or load). */
    public void broadcastFromPrimary() {
        Replica p = replicas.get(0);
        for (int r = 1; r < replicas.size(); r++) {
            Replica q = replicas.get(r);
            copyAcross(p.net.params().values(), q.net.params().values());
            copyAcross(p.sgd.velocity(), q.sgd.velocity());
            if (p.net.params().state() != null) {
                copyAcross(p.net.params().state(), q.net.params().state());
            }
        }
    }

    /** dst = src for tensors of equal size on possibly different backends, through host memory. */
    static void copyAcross(Tensor src, Tensor dst) {
        if (src.backend() == dst.backend()) {
            src.backend().copy(src, dst);
            return;
        }
        int n = Math.toIntExact(src.size());
        if (src.dtype() == DType.FLOAT32) {
            float[] host = new float[n];
            src.backend().copyOut(src, host, 0);
            dst.backend().copyIn(host, 0, dst);
        } else {
            double[] host = new double[n];
            src.backend().copyOut(src, host, 0);
            dst.backend().copyIn(host, 0, dst);
        }
    }

    private void runAll(List<Runnable> work) {
        if (pool == null) {
            work.forEach(Runnable::run);
            return;
        }
        List<Future<?>> futures = new ArrayList<>();
        for (Runnable w : work) {
            futures.add(pool.submit(w));
        }
        RuntimeException failure = null;
        for (int r = 0; r < futures.size(); r++) {
            try {
                futures.get(r).get();
            } catch (ExecutionException e) {
                if (failure == null) {
                    // name the device: with several replicas "which one, where" is the first question
                    failure = new IllegalStateException("replica " + r + " of " + futures.size() + " on "
                            + replicas.get(r).backend.describe() + " failed: " + e.getCause(), e.getCause());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while replicas were working", e);
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
        allReduce.close(); // first: a device all-reduce frees its scratch on the devices closed below
        for (Replica rep : replicas) {
            for (Tensor t : rep.inputs.values()) {
                rep.backend.free(t);
            }
            rep.loss.release();
            rep.sgd.close();
            rep.net.close();
            if (ownsBackends) {
                rep.backend.close();
            }
        }
    }
}
