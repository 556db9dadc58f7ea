package org.vgg4j.core.model;

import java.util.ArrayList;
import java.util.List;

import org.vgg4j.core.layers.BatchNorm2d;
import org.vgg4j.core.layers.Conv2d;
import org.vgg4j.core.layers.Dropout;
import org.vgg4j.core.layers.Flatten;
import org.vgg4j.core.layers.GlobalAvgPool;
import org.vgg4j.core.layers.Layer;
import org.vgg4j.core.layers.Linear;
import org.vgg4j.core.layers.LocalResponseNorm;
import org.vgg4j.core.layers.MaxPool2d;
import org.vgg4j.core.layers.ReLU;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * The paper's dense evaluation (§3.2): a trained VGG turned fully convolutional, run on the whole uncropped image.
 * FC6 becomes a conv whose kernel is the final feature map's side at the training size (7x7 at 224, 1x1 at 32),
 * FC7 and FC8 become 1x1 convs, and the class score map is averaged spatially ({@link GlobalAvgPool}) to one
 * score vector per image. Dropout is dropped (evaluation only).
 *
 * <p>FC6's (F, C*R*S) weight flattens NCHW maps in C,H,W order, which is exactly the row-major order of the conv
 * weight (F, C, R, S): the dense network's parameters are the FC network's, element for element, in the same
 * order. {@link #of} copies them (a snapshot, independent of the FC network afterwards); {@link #sharing} views
 * them in place (no second copy: 528 MiB less for VGG-16; the FC network must stay open, and what it learns later
 * shows). Parameter keys are kept ("classifier.0.weight" now has shape (F,C,R,S)). This is not a training network
 * (no loss, no horizontal-flip averaging): its layers share two output buffers ({@link Network#shareOutputBuffers}),
 * and a training forward of {@link #network()} fails.
 *
 * <p>Legend: N batch, C channels of the last feature map, F hidden features, R = S = final side at training size.
 */
public final class DenseEvaluation implements AutoCloseable {
    private final Network network;
    private final int minSide;

    private DenseEvaluation(Network network, int minSide) {
        this.network = network;
        this.minSide = minSide;
    }

    /** Converts a network built by {@link Vgg#build} (features, flatten, classifier.0..6), its parameters copied. */
    public static DenseEvaluation of(Network fc) {
        return build(fc, false);
    }

    /**
     * As {@link #of}, the parameters shared with {@code fc} instead of copied: a live view of them, for as long as
     * {@code fc} stays open. Closing the result leaves {@code fc} and its parameters as they are.
     */
    public static DenseEvaluation sharing(Network fc) {
        return build(fc, true);
    }

    private static DenseEvaluation build(Network fc, boolean share) {
        Shape in = fc.inputShape();
        if (in.rank() != 3 || in.dim(1) != in.dim(2)) {
            throw new IllegalArgumentException("dense evaluation needs a network built for square (C,H,W) input, got " + in);
        }
        List<NamedLayer> layers = new ArrayList<>();
        Shape map = Shape.of(1, in.dim(0), in.dim(1), in.dim(2)); // (1,C,H,W) through the features
        boolean inClassifier = false;
        int linearSeen = 0;
        for (NamedLayer nl : fc.layers()) {
            Layer l = nl.layer();
            if (l instanceof Flatten) {
                inClassifier = true;
                continue;
            }
            if (!inClassifier) {
                layers.add(new NamedLayer(nl.name(), copyFeatureLayer(fc, l)));
                map = l.outputShape(map);
            } else if (l instanceof Linear lin) {
                Conv2d conv;
                if (linearSeen == 0) {
                    int c = map.dim(1);
                    int r = map.dim(2);
                    if (map.dim(3) != r || (long) c * r * r != lin.inFeatures()) {
                        throw new IllegalArgumentException("dense evaluation: " + nl.name() + " takes " + lin.inFeatures()
                                + " inputs but the final feature map is " + map.dim(1) + "x" + map.dim(2) + "x" + map.dim(3));
                    }
                    conv = new Conv2d(fc.backend(), c, lin.outFeatures(), r, 0);
                } else {
                    conv = new Conv2d(fc.backend(), lin.inFeatures(), lin.outFeatures(), 1, 0);
                }
                layers.add(new NamedLayer(nl.name(), conv));
                linearSeen++;
            } else if (l instanceof ReLU) {
                layers.add(new NamedLayer(nl.name(), new ReLU(fc.backend())));
            } else if (!(l instanceof Dropout)) {
                throw new IllegalArgumentException("dense evaluation: unexpected classifier layer " + nl.name() + " ("
                        + l.describe() + ")");
            }
        }
        if (!inClassifier || linearSeen == 0) {
            throw new IllegalArgumentException("dense evaluation: network '" + fc.name()
                    + "' has no flatten + fully-connected classifier to convert");
        }
        layers.add(new NamedLayer("avgpool", new GlobalAvgPool(fc.backend())));
        Network dense = new Network(fc.name() + "-dense", fc.backend(), fc.dtype(), in, layers, share ? fc : null);
        dense.shareOutputBuffers(); // it only evaluates: two activation buffers, not one per layer
        if (share) {
            return new DenseEvaluation(dense, in.dim(1));
        }
        for (ParamStore.Entry e : fc.params().entries()) {
            ParamStore.Entry d = dense.params().get(e.key());
            if (d == null || d.spec().shape().size() != e.spec().shape().size()) {
                dense.close();
                throw new IllegalStateException("dense evaluation: parameter " + e.key() + " has no counterpart of the same size");
            }
            TensorCopy.copy(e.value(), d.value()); // same element order: a bitwise copy
        }
        return new DenseEvaluation(dense, in.dim(1));
    }

    private static Layer copyFeatureLayer(Network fc, Layer l) {
        if (l instanceof Conv2d c) {
            return new Conv2d(fc.backend(), c.inChannels(), c.outChannels(), c.kernel(), c.pad());
        }
        if (l instanceof ReLU) {
            return new ReLU(fc.backend());
        }
        if (l instanceof MaxPool2d) {
            return new MaxPool2d(fc.backend());
        }
        if (l instanceof BatchNorm2d) {
            return new BatchNorm2d(fc.backend(), l.params().get(0).shape().dim(0));
        }
        if (l instanceof LocalResponseNorm) {
            return new LocalResponseNorm(fc.backend()); // VGG's A-LRN uses the defaults only
        }
        throw new IllegalArgumentException("dense evaluation: unsupported feature layer " + l.describe());
    }

    /** The fully convolutional network (parameters keyed as the FC network's). */
    public Network network() {
        return network;
    }

    /** Smallest input side accepted: the training size. */
    public int minSide() {
        return minSide;
    }

    /**
     * Class scores (N, classes) for images x (N,3,H,W) of any size with H, W &gt;= the training size, averaged over
     * the score map. Sides need not be multiples of 32: each max-pool floors an odd side.
     */
    public Tensor forward(Tensor x) {
        if (x.rank() != 4 || x.dim(1) != network.inputShape().dim(0)) {
            throw new IllegalArgumentException("dense evaluation expects input (N," + network.inputShape().dim(0)
                    + ",H,W), got " + x.shape());
        }
        if (x.dim(2) < minSide || x.dim(3) < minSide) {
            throw new IllegalArgumentException("input " + x.dim(1) + "x" + x.dim(2) + "x" + x.dim(3)
                    + " is smaller than the training size " + minSide + "x" + minSide + " required by dense evaluation");
        }
        return network.forward(x, false);
    }

    @Override
    public void close() {
        network.close();
    }
}
