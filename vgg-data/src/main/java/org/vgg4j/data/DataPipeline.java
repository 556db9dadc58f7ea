package org.vgg4j.data;

import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Images to batches: per-epoch shuffling, sharding across data-parallel ranks, decode + augment on worker
 * threads, bounded prefetch into a fixed pool of reusable {@link Batch} buffers.
 *
 * <p>Determinism: the content of batch b of epoch e (images bit for bit, labels) is a function of (seed, e, b,
 * rank, world size) only — the order comes from a permutation keyed by (seed, e), and every random draw of a
 * sample from {@link SampleRandom} keyed by (seed, e, its position in that permutation). The number of threads
 * changes only the speed, and {@link #epoch(long, int)} can start from any batch (resume).
 *
 * <p>Sharding: rank r of W takes permutation positions r, r+W, r+2W, ...; the permutation is padded by wrapping
 * to a multiple of W so every rank gets the same count (as PyTorch's DistributedSampler).
 *
 * <p>Bad samples ({@link BadImageException}) are skipped: the batch is compacted (its size shrinks), the
 * epoch's {@link Epoch#skipped()} counts them, and {@link BadImageLog} reports each file once.
 * Not thread-safe for consumers: one thread iterates an epoch.
 */
public final class DataPipeline implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DataPipeline.class);

    /**
     * @param batchSize       examples per batch (per rank)
     * @param threads         decode/augment worker threads
     * @param prefetchBatches batches being prepared ahead of the consumer
     * @param memoryCapBytes  upper bound on the batch buffers (prefetched + the one held); lowers the prefetch
     * @param seed            the root of every random draw
     * @param shuffle         permute each epoch (false: dataset order, e.g. validation)
     * @param rank            this data-parallel worker in [0, worldSize)
     * @param worldSize       number of data-parallel workers
     * @param dropLast        drop the final partial batch of a rank
     */
    public record Config(int batchSize, int threads, int prefetchBatches, long memoryCapBytes, long seed,
                         boolean shuffle, int rank, int worldSize, boolean dropLast) {
        public Config {
            if (batchSize < 1 || threads < 1 || prefetchBatches < 1 || memoryCapBytes < 1) {
                throw new IllegalArgumentException("batchSize " + batchSize + ", threads " + threads + ", prefetch "
                        + prefetchBatches + ", memoryCap " + memoryCapBytes + ": each must be >= 1");
            }
            if (worldSize < 1 || rank < 0 || rank >= worldSize) {
                throw new IllegalArgumentException("rank " + rank + " outside [0, worldSize " + worldSize + ")");
            }
        }

        /** Training defaults: shuffled, one rank, prefetch 2 batches per thread, 2 GiB cap, no drop. */
        public static Config training(int batchSize, int threads, long seed) {
            return new Config(batchSize, threads, 2 * threads, 2L << 30, seed, true, 0, 1, false);
        }

        public Config sharded(int rank, int worldSize) {
            return new Config(batchSize, threads, prefetchBatches, memoryCapBytes, seed, shuffle, rank, worldSize, dropLast);
        }

        public Config withThreads(int n) {
            return new Config(batchSize, n, prefetchBatches, memoryCapBytes, seed, shuffle, rank, worldSize, dropLast);
        }

        public Config withShuffle(boolean s) {
            return new Config(batchSize, threads, prefetchBatches, memoryCapBytes, seed, s, rank, worldSize, dropLast);
        }

        public Config withPrefetch(int batches, long capBytes) {
            return new Config(batchSize, threads, batches, capBytes, seed, shuffle, rank, worldSize, dropLast);
        }
    }

    private final ImageDataset dataset;
    private final SampleTransform transform;
    private final Config config;
    private final int depth; // batches in flight; the pool holds depth + 1
    private final ExecutorService workers;
    private final ThreadLocal<Resampler> resamplers = ThreadLocal.withInitial(Resampler::new);
    private final BadImageLog badLog;

    public DataPipeline(ImageDataset dataset, SampleTransform transform, Config config, BadImageLog badLog) {
        if (dataset.size() == 0) {
            throw new IllegalArgumentException("dataset is empty");
        }
        this.dataset = dataset;
        this.transform = transform;
        this.config = config;
        this.badLog = badLog;
        long batchBytes = 4L * config.batchSize() * transform.channels() * transform.height() * transform.width()
                + 4L * config.batchSize();
        long byCap = config.memoryCapBytes() / batchBytes - 1;
        if (byCap < 1) {
            throw new IllegalArgumentException("memory cap " + config.memoryCapBytes() + " bytes holds fewer than 2"
                    + " batches of " + batchBytes + " bytes");
        }
        this.depth = (int) Math.min(config.prefetchBatches(), byCap);
        if (depth < config.prefetchBatches()) {
            LOG.info("prefetch lowered from {} to {} batches by the {}-byte memory cap", config.prefetchBatches(), depth,
                    config.memoryCapBytes());
        }
        AtomicInteger count = new AtomicInteger();
        this.workers = Executors.newFixedThreadPool(config.threads(), r -> {
            Thread t = new Thread(r, "vgg-data-" + count.getAndIncrement());
            t.setDaemon(true);
            return t;
        });
    }

    public DataPipeline(ImageDataset dataset, SampleTransform transform, Config config) {
        this(dataset, transform, config, new BadImageLog());
    }

    public Config config() {
        return config;
    }

    public BadImageLog badImages() {
        return badLog;
    }

    /** Batches in flight at most (after the memory cap). */
    public int prefetchDepth() {
        return depth;
    }

    /** Examples this rank sees per epoch (the padded share). */
    public int samplesPerRank() {
        return (dataset.size() + config.worldSize() - 1) / config.worldSize();
    }

    public int batchesPerEpoch() {
        int n = samplesPerRank();
        return config.dropLast() ? n / config.batchSize() : (n + config.batchSize() - 1) / config.batchSize();
    }

    /** The global permutation of epoch {@code epoch} (identity without shuffle), padded to a multiple of W. */
    int[] globalOrder(long epoch) {
        int n = dataset.size();
        int w = config.worldSize();
        int padded = (n + w - 1) / w * w;
        int[] order = new int[padded];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        if (config.shuffle()) {
            SplittableRandom rng = SampleRandom.of(config.seed(), epoch, SampleRandom.SHUFFLE, 0);
            for (int i = n - 1; i > 0; i--) { // Fisher-Yates
                int j = rng.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        for (int i = n; i < padded; i++) {
            order[i] = order[i - n];
        }
        return order;
    }

    /** This rank's sample indices for an epoch, in batch order. */
    public int[] rankOrder(long epoch) {
        int[] g = globalOrder(epoch);
        int[] mine = new int[samplesPerRank()];
        for (int k = 0; k < mine.length; k++) {
            mine[k] = g[k * config.worldSize() + config.rank()];
        }
        return mine;
    }

    /** Starts epoch {@code epoch} at batch {@code startBatch} (0 for a fresh epoch; later to resume). */
    public Epoch epoch(long epoch, int startBatch) {
        if (startBatch < 0 || startBatch > batchesPerEpoch()) {
            throw new IllegalArgumentException("start batch " + startBatch + " outside [0, " + batchesPerEpoch() + "]");
        }
        return new Epoch(epoch, startBatch);
    }

    @Override
    public void close() {
        workers.shutdownNow();
    }

    /**
     * One pass over this rank's share. {@link #next()} returns a pooled {@link Batch} that stays valid until the
     * following call to {@code next()} or {@link #close()}; copy it out (Backend.copyIn) before asking again.
     */
    public final class Epoch implements Iterator<Batch>, AutoCloseable {
        private final long epoch;
        private final int[] order;
        private final int end;
        private final BlockingQueue<Batch> pool;
        private final ArrayDeque<Future<Batch>> inFlight = new ArrayDeque<>();
        private final AtomicLong skipped = new AtomicLong();
        private final AtomicLong delivered = new AtomicLong();
        private int nextToSubmit;
        private int position;
        private Batch held;

        private Epoch(long epoch, int start) {
            this.epoch = epoch;
            this.order = rankOrder(epoch);
            this.end = batchesPerEpoch();
            this.pool = new ArrayBlockingQueue<>(depth + 1);
            for (int i = 0; i < Math.min(depth + 1, end - start + 1); i++) {
                pool.add(new Batch(config.batchSize(), transform.channels(), transform.height(), transform.width()));
            }
            this.nextToSubmit = start;
            this.position = start;
            while (inFlight.size() < depth && nextToSubmit < end) {
                submit();
            }
        }

        private void submit() {
            int b = nextToSubmit++;
            inFlight.add(workers.submit(() -> fill(b)));
        }

        private Batch fill(int b) throws InterruptedException {
            Batch batch = pool.take();
            Resampler r = resamplers.get();
            int from = b * config.batchSize();
            int to = Math.min(from + config.batchSize(), order.length);
            int k = 0;
            int per = batch.exampleSize();
            for (int p = from; p < to; p++) {
                int index = order[p];
                long globalPosition = (long) p * config.worldSize() + config.rank();
                try {
                    // The transform's draws depend only on the image size, so a twin generator tells the decoder
                    // which source window the crop reads: only that is decoded (same pixels, less work).
                    RgbImage img = dataset.load(index, (w, h) -> transform.regionNeeded(w, h,
                            SampleRandom.of(config.seed(), epoch, SampleRandom.AUGMENT, globalPosition)));
                    transform.apply(img, SampleRandom.of(config.seed(), epoch, SampleRandom.AUGMENT, globalPosition),
                            r, batch.hostImages(), k * per);
                    batch.labels()[k] = dataset.label(index);
                    k++;
                } catch (BadImageException e) {
                    skipped.incrementAndGet();
                    badLog.report(e);
                } catch (IllegalArgumentException e) {
                    // a decodable image the transform cannot handle (e.g. a 1x100000 strip): skipped the same way
                    skipped.incrementAndGet();
                    badLog.report(new BadImageException(dataset.source(index), "cannot transform: " + e.getMessage(), e));
                }
            }
            batch.setSize(k);
            return batch;
        }

        @Override
        public boolean hasNext() {
            return position < end;
        }

        @Override
        public Batch next() {
            if (!hasNext()) {
                throw new NoSuchElementException("epoch " + epoch + " has " + end + " batches");
            }
            if (held != null) {
                pool.add(held); // the consumer is done with it
                held = null;
            }
            if (nextToSubmit < end) {
                submit();
            }
            try {
                held = inFlight.poll().get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for batch " + position, e);
            } catch (ExecutionException e) {
                throw new IllegalStateException("worker failed on batch " + position + " of epoch " + epoch, e.getCause());
            }
            position++;
            delivered.addAndGet(held.size());
            return held;
        }

        /** Index of the batch the next call to {@link #next()} returns: save it to resume. */
        public int position() {
            return position;
        }

        /** Bad samples skipped so far in this epoch. */
        public long skipped() {
            return skipped.get();
        }

        /** Examples delivered so far in this epoch. */
        public long delivered() {
            return delivered.get();
        }

        @Override
        public void close() {
            for (Future<Batch> f : inFlight) {
                f.cancel(true);
            }
            inFlight.clear();
        }
    }
}
