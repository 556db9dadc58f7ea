package org.vgg4j.train;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.model.DenseEvaluation;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;
import org.vgg4j.data.BadImageException;
import org.vgg4j.data.BadImageLog;
import org.vgg4j.data.Batch;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.ImageDataset;
import org.vgg4j.data.Normalization;
import org.vgg4j.data.Resampler;
import org.vgg4j.data.RgbImage;
import org.vgg4j.data.TestTransforms;

/**
 * Top-1 / top-5 error under the paper's test protocols (§3.2, §4; Tables 3, 4 and 5), for one network or an
 * ensemble of them:
 * <ul>
 *   <li>{@link View#CENTRE}: one centre crop of the image rescaled to shorter side Q;</li>
 *   <li>{@link View#DENSE}: the whole image through the fully-convolutional net (vgg-core's DenseEvaluation), class
 *       scores averaged spatially, the softmax averaged with that of the mirrored image;</li>
 *   <li>{@link View#MULTI_CROP}: a grid x grid lattice of crops and their mirrors (5x5x2 = 50 per scale);</li>
 *   <li>{@link View#DENSE_AND_MULTI_CROP}: the mean of the two (Table 5's best single-network numbers).</li>
 * </ul>
 * Each view gives class posteriors (softmax); they are averaged over the test scales Q of the {@link Protocol}
 * (Table 4: S-32, S, S+32 for fixed S; 256, 384, 512 for jittered S) and then over the networks of an ensemble
 * (Table 7's fusion), and the averaged posterior is ranked. Everything is deterministic.
 *
 * <p>{@link #onBatches} is the fast path used for validation during training: one centre-crop batch at a time from
 * a {@link DataPipeline}. Legend: N images, V views, F classes, H/W image height/width.
 */
public final class Evaluator {

    /**
     * Counts over a set: {@code count} images evaluated, of which {@code top1Wrong} / {@code top5Wrong} missed, and
     * {@code skipped} images of the set not evaluated because they could not be read (errors are over the
     * {@code count} evaluated ones).
     */
    public record Result(long count, long top1Wrong, long top5Wrong, long skipped) {
        /** A set with no image skipped. */
        public Result(long count, long top1Wrong, long top5Wrong) {
            this(count, top1Wrong, top5Wrong, 0);
        }

        public double top1Error() {
            return count == 0 ? Double.NaN : top1Wrong / (double) count;
        }

        public double top5Error() {
            return count == 0 ? Double.NaN : top5Wrong / (double) count;
        }

        @Override
        public String toString() {
            String s = String.format(Locale.ROOT, "top-1 error %.2f %%, top-5 error %.2f %% (%d images", 100 * top1Error(),
                    100 * top5Error(), count);
            return skipped == 0 ? s + ")" : s + String.format(Locale.ROOT, " evaluated; %d unreadable image%s skipped)",
                    skipped, skipped == 1 ? "" : "s");
        }
    }

    /** The views of one test image at one scale. */
    public enum View { CENTRE, DENSE, MULTI_CROP, DENSE_AND_MULTI_CROP }

    /**
     * One evaluation protocol.
     *
     * @param view   which views
     * @param scales the test scales Q (shorter side), e.g. {256} or {224, 256, 288}
     * @param grid   multi-crop lattice side (5 in the paper)
     * @param flips  mirror views too (dense: averaged with the mirrored image; multi-crop: each crop mirrored)
     * @param norm   the pixel normalisation used in training
     */
    public record Protocol(View view, int[] scales, int grid, boolean flips, Normalization norm) {
        public Protocol {
            if (view == null) {
                throw new IllegalArgumentException("view must be one of " + Arrays.toString(View.values()));
            }
            if (scales == null || scales.length == 0) {
                throw new IllegalArgumentException("at least one test scale Q is needed");
            }
            for (int q : scales) {
                if (q < 1) {
                    throw new IllegalArgumentException("test scale " + q + " must be >= 1");
                }
            }
            if (grid < 1) {
                throw new IllegalArgumentException("multi-crop grid " + grid + " must be >= 1");
            }
            scales = scales.clone();
        }

        /**
         * Table 3's single test scale: Q = S for fixed S, Q = (Smin + Smax) / 2 for jittered S.
         */
        public static Protocol singleScale(View view, int sMin, int sMax, Normalization norm) {
            return new Protocol(view, new int[] {(sMin + sMax) / 2}, 5, true, norm);
        }

        /**
         * Table 4's multiple test scales: {S-32, S, S+32} for fixed S; {Smin, (Smin+Smax)/2, Smax} for jittered S.
         */
        public static Protocol multiScale(View view, int sMin, int sMax, Normalization norm) {
            int[] q = sMin == sMax ? new int[] {sMin - 32, sMin, sMin + 32} : new int[] {sMin, (sMin + sMax) / 2, sMax};
            return new Protocol(view, q, 5, true, norm);
        }

        @Override
        public String toString() {
            return view + " Q=" + Arrays.toString(scales) + (view == View.MULTI_CROP || view == View.DENSE_AND_MULTI_CROP
                    ? " grid " + grid + "x" + grid : "") + (flips ? " +flips" : "");
        }
    }

    private Evaluator() {
    }

    /** Validation during training: centre-crop batches from {@code val} (not shuffled), single network. */
    public static Validation onBatches(DataPipeline val) {
        return onBatches(val, false);
    }

    /**
     * Validation on centre-crop batches from {@code val} (not shuffled), single network; with {@code flips} each
     * image's softmax is averaged with that of its mirror image (the paper's §3.2 test-set augmentation), at twice
     * the forward cost. Without flips the logits are ranked directly (softmax keeps the order).
     */
    public static Validation onBatches(DataPipeline val, boolean flips) {
        return net -> {
            long count = 0;
            long wrong1 = 0;
            long wrong5 = 0;
            long skipped;
            try (DataPipeline.Epoch e = val.epoch(0, 0)) {
                while (e.hasNext()) {
                    Batch batch = e.next();
                    double[] scores = batchScores(net, batch, flips); // (N,F)
                    int classes = scores.length / batch.size();
                    for (int i = 0; i < batch.size(); i++) {
                        int rank = rankOf(scores, i * classes, classes, batch.labels()[i]);
                        wrong1 += rank >= 1 ? 1 : 0;
                        wrong5 += rank >= 5 ? 1 : 0;
                        count++;
                    }
                }
                skipped = e.skipped(); // the pipeline skipped and logged them (DataPipeline.badImages())
            }
            return new Result(count, wrong1, wrong5, skipped);
        };
    }

    /**
     * Class scores (N,F) of one batch: the logits, or with {@code flips} the mean of the softmax of each image and
     * of its mirror image.
     */
    static double[] batchScores(Network net, Batch batch, boolean flips) {
        Backend b = net.backend();
        Shape shape = Shape.of(batch.size(), batch.channels(), batch.height(), batch.width());
        Tensor x = b.allocate(net.dtype(), shape); // (N,C,H,W)
        try {
            b.copyIn(batch.hostImages(), 0, x);
            Tensor out = net.forward(x, false); // (N,F)
            int classes = out.dim(1);
            double[] scores = new double[batch.size() * classes];
            b.copyOut(out, scores, 0);
            NonFiniteScores.check(scores, 0, scores.length, net, x, "a validation batch");
            if (!flips) {
                return scores; // softmax keeps the order
            }
            float[] mirror = new float[(int) shape.size()];
            mirrorRows(batch.hostImages(), mirror, mirror.length, batch.width());
            b.copyIn(mirror, 0, x);
            double[] mirrored = new double[scores.length];
            b.copyOut(net.forward(x, false), mirrored, 0);
            NonFiniteScores.check(mirrored, 0, mirrored.length, net, x, "a mirrored validation batch");
            for (int i = 0; i < batch.size(); i++) {
                softmaxInPlace(scores, i * classes, classes);
                softmaxInPlace(mirrored, i * classes, classes);
            }
            for (int c = 0; c < scores.length; c++) {
                scores[c] = 0.5 * (scores[c] + mirrored[c]);
            }
            return scores;
        } finally {
            b.free(x);
        }
    }

    /** dst[0..len) = src with every row of width w reversed (a horizontal mirror of NCHW images). */
    static void mirrorRows(float[] src, float[] dst, int len, int w) {
        for (int row = 0; row < len; row += w) {
            for (int j = 0; j < w; j++) {
                dst[row + j] = src[row + w - 1 - j];
            }
        }
    }

    /**
     * Evaluates an ensemble (one network or several, same classes) on {@code data} under {@code protocol}, the
     * unreadable images reported to a fresh {@link BadImageLog} (see {@link #evaluate(List, ImageDataset, Protocol,
     * BadImageLog)}).
     */
    public static Result evaluate(List<Network> ensemble, ImageDataset data, Protocol protocol) throws IOException {
        return evaluate(ensemble, data, protocol, new BadImageLog());
    }

    /**
     * Evaluates an ensemble (one network or several, same classes) on {@code data} under {@code protocol}.
     * Images are read one at a time from the dataset. An image that cannot be read or transformed is skipped as
     * training skips it: reported to {@code bad} (once per file, with the reason) and counted in
     * {@link Result#skipped()}; the errors are over the images evaluated.
     *
     * @throws IllegalStateException when a network's class scores are not finite (named by {@link NonFiniteScores})
     */
    public static Result evaluate(List<Network> ensemble, ImageDataset data, Protocol protocol, BadImageLog bad)
            throws IOException {
        if (ensemble.isEmpty()) {
            throw new IllegalArgumentException("an ensemble needs at least one network");
        }
        List<DenseEvaluation> dense = new ArrayList<>();
        boolean needDense = protocol.view() == View.DENSE || protocol.view() == View.DENSE_AND_MULTI_CROP;
        try {
            if (needDense) {
                for (Network n : ensemble) {
                    dense.add(DenseEvaluation.sharing(n)); // n outlives it: no second copy of the parameters
                }
            }
            Resampler r = new Resampler();
            long wrong1 = 0;
            long wrong5 = 0;
            long skipped = 0;
            for (int i = 0; i < data.size(); i++) {
                double[] p = posteriorOrNull(ensemble, dense, data, i, protocol, r, bad);
                if (p == null) {
                    skipped++;
                    continue;
                }
                int rank = rankOf(p, 0, p.length, data.label(i));
                wrong1 += rank >= 1 ? 1 : 0;
                wrong5 += rank >= 5 ? 1 : 0;
            }
            return new Result(data.size() - skipped, wrong1, wrong5, skipped);
        } finally {
            for (DenseEvaluation d : dense) {
                d.close();
            }
        }
    }

    /**
     * The posterior of image {@code i}, or null when it cannot be read or transformed (then reported to {@code bad}),
     * as {@link DataPipeline} decides for training.
     */
    private static double[] posteriorOrNull(List<Network> ensemble, List<DenseEvaluation> dense, ImageDataset data,
                                            int i, Protocol p, Resampler r, BadImageLog bad) {
        RgbImage image;
        try {
            image = data.load(i);
        } catch (BadImageException e) {
            bad.report(e);
            return null;
        }
        try {
            for (int q : p.scales()) {
                Resampler.shorterSideTo(image.width(), image.height(), q);
            }
        } catch (IllegalArgumentException e) {
            // a decodable image the test scales cannot rescale (e.g. a 1x100000 strip): skipped the same way. Only
            // this check is caught: any other refusal (a scale below the crop) is the protocol's, for every image.
            bad.report(new BadImageException(data.source(i), "cannot transform: " + e.getMessage(), e));
            return null;
        }
        return posterior(ensemble, dense, image, p, r, "image " + data.source(i));
    }

    /** The averaged class posterior (F) of one image: mean over networks of the mean over scales of the views. */
    static double[] posterior(List<Network> ensemble, List<DenseEvaluation> dense, RgbImage image, Protocol p, Resampler r) {
        return posterior(ensemble, dense, image, p, r, "an image");
    }

    private static double[] posterior(List<Network> ensemble, List<DenseEvaluation> dense, RgbImage image, Protocol p,
                                      Resampler r, String what) {
        double[] sum = null;
        for (int m = 0; m < ensemble.size(); m++) {
            Network net = ensemble.get(m);
            for (int q : p.scales()) {
                double[] v = switch (p.view()) {
                    case CENTRE -> centre(net, image, q, p, r, what);
                    case DENSE -> denseView(dense.get(m), image, q, p, r, what);
                    case MULTI_CROP -> multiCrop(net, image, q, p, r, what);
                    case DENSE_AND_MULTI_CROP -> mean(denseView(dense.get(m), image, q, p, r, what),
                            multiCrop(net, image, q, p, r, what));
                };
                if (sum == null) {
                    sum = new double[v.length];
                }
                for (int c = 0; c < v.length; c++) {
                    sum[c] += v[c];
                }
            }
        }
        int views = ensemble.size() * p.scales().length;
        for (int c = 0; c < sum.length; c++) {
            sum[c] /= views;
        }
        return sum;
    }

    private static double[] centre(Network net, RgbImage image, int q, Protocol p, Resampler r, String what) {
        int crop = net.inputShape().dim(1);
        float[] host = new float[3 * crop * crop]; // (1,3,crop,crop)
        TestTransforms.centreCrop(image, q, crop, false, p.norm(), r, host, 0);
        return meanSoftmax(net, host, 1, crop, crop, what);
    }

    private static double[] multiCrop(Network net, RgbImage image, int q, Protocol p, Resampler r, String what) {
        int crop = net.inputShape().dim(1);
        int views = TestTransforms.multiCropCount(p.grid(), p.flips());
        float[] host = new float[views * 3 * crop * crop]; // (V,3,crop,crop)
        TestTransforms.multiCrop(image, q, crop, p.grid(), p.flips(), p.norm(), r, host, 0);
        return meanSoftmax(net, host, views, crop, crop, what);
    }

    private static double[] denseView(DenseEvaluation d, RgbImage image, int q, Protocol p, Resampler r, String what) {
        TestTransforms.FloatImage plain = TestTransforms.whole(image, q, false, p.norm(), r);
        double[] a = denseSoftmax(d, plain, what);
        if (!p.flips()) {
            return a;
        }
        return mean(a, denseSoftmax(d, TestTransforms.whole(image, q, true, p.norm(), r), what));
    }

    private static double[] denseSoftmax(DenseEvaluation d, TestTransforms.FloatImage img, String what) {
        Network net = d.network();
        Backend b = net.backend();
        Tensor x = b.allocate(net.dtype(), Shape.of(1, 3, img.height(), img.width())); // (1,3,H,W)
        try {
            b.copyIn(img.chw(), 0, x);
            Tensor scores = d.forward(x); // (1,F)
            double[] s = new double[scores.dim(1)];
            b.copyOut(scores, s, 0);
            NonFiniteScores.check(s, 0, s.length, net, x, what + " (dense view)");
            softmaxInPlace(s, 0, s.length);
            return s;
        } finally {
            b.free(x);
        }
    }

    /** Mean over V views of softmax(net(views)); host (V,3,H,W). */
    private static double[] meanSoftmax(Network net, float[] host, int views, int h, int w, String what) {
        Backend b = net.backend();
        Tensor x = b.allocate(net.dtype(), Shape.of(views, 3, h, w));
        try {
            b.copyIn(host, 0, x);
            Tensor out = net.forward(x, false); // (V,F)
            int classes = out.dim(1);
            double[] logits = new double[views * classes];
            b.copyOut(out, logits, 0);
            NonFiniteScores.check(logits, 0, logits.length, net, x, what);
            double[] mean = new double[classes];
            for (int v = 0; v < views; v++) {
                softmaxInPlace(logits, v * classes, classes);
                for (int c = 0; c < classes; c++) {
                    mean[c] += logits[v * classes + c] / views;
                }
            }
            return mean;
        } finally {
            b.free(x);
        }
    }

    private static double[] mean(double[] a, double[] b) {
        double[] m = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            m[i] = 0.5 * (a[i] + b[i]);
        }
        return m;
    }

    static void softmaxInPlace(double[] v, int off, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, v[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            v[off + i] = Math.exp(v[off + i] - max);
            sum += v[off + i];
        }
        for (int i = 0; i < n; i++) {
            v[off + i] /= sum;
        }
    }

    /**
     * How many classes score strictly higher than {@code label}, ties counted against the label for classes before
     * it (so a constant output is not a hit): 0 means top-1 correct, below 5 top-5 correct.
     *
     * @throws IllegalArgumentException when a score is not finite: NaN compares false with everything, so it would
     *                                  rank as a hit
     */
    static int rankOf(double[] scores, int off, int classes, int label) {
        double s = scores[off + label];
        int rank = 0;
        for (int c = 0; c < classes; c++) {
            double v = scores[off + c];
            if (!Double.isFinite(v)) {
                throw new IllegalArgumentException("class score " + c + " (" + v + ") is not finite: cannot rank");
            }
            if (v > s || (v == s && c < label)) {
                rank++;
            }
        }
        return rank;
    }

    /** Top-1 / top-5 of given posteriors (N,F) against labels: the counting used above, exposed for tests. */
    public static Result score(double[] posteriors, int classes, int[] labels) {
        long w1 = 0;
        long w5 = 0;
        for (int i = 0; i < labels.length; i++) {
            int rank = rankOf(posteriors, i * classes, classes, labels[i]);
            w1 += rank >= 1 ? 1 : 0;
            w5 += rank >= 5 ? 1 : 0;
        }
        return new Result(labels.length, w1, w5);
    }

}
