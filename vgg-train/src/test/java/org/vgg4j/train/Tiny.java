package org.vgg4j.train;

import java.util.Arrays;
import java.util.List;

import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.Vgg;
import org.vgg4j.core.model.VggConfig;
import org.vgg4j.core.model.VggSpec;
import org.vgg4j.core.optim.Sgd;
import org.vgg4j.core.tensor.DType;
import org.vgg4j.data.DataPipeline;
import org.vgg4j.data.FashionMnist;
import org.vgg4j.data.IdxDataset;
import org.vgg4j.data.IdxImages;
import org.vgg4j.data.SmallImageTransform;

/**
 * Test fixtures: a narrow VGG-A (width 1/16: 4..32 channels, FC 16) on 32x32 inputs, the first images of the
 * bundled Fashion-MNIST sample, a pipeline over them. Everything on the plain-Java reference backend.
 */
final class Tiny {
    private Tiny() {
    }

    static VggSpec spec(boolean bn, double dropout) {
        return new VggSpec(VggConfig.A, bn, 10, 32, 0.0625, 16, dropout, 7);
    }

    /** The first {@code n} images of the bundled sample's split. */
    static IdxDataset fashion(int n, FashionMnist.Split split) {
        IdxImages all = FashionMnist.bundledSample(split);
        int px = all.rows() * all.cols();
        IdxImages sub = new IdxImages(n, all.rows(), all.cols(), Arrays.copyOf(all.pixels(), n * px),
                Arrays.copyOf(all.labels(), n));
        return new IdxDataset(sub, FashionMnist.CLASS_NAMES);
    }

    static SmallImageTransform augment() {
        return SmallImageTransform.grey(32, 2, true, 0.286, 0.353);
    }

    static DataPipeline pipeline(IdxDataset ds, int batch, long seed, boolean train) {
        DataPipeline.Config c = DataPipeline.Config.training(batch, 1, seed).withShuffle(train);
        return new DataPipeline(ds, train ? augment() : augment().testView(), c);
    }

    static Replicas replicas(int n, VggSpec spec, DType dtype, double momentum, double wd) {
        return Replicas.create("reference", n, (b, r) -> Vgg.build(b, dtype, spec.withSeed(spec.seed() + r)),
                new Sgd.Settings(momentum, wd), new HostAllReduce());
    }

    static double[] values(Network net) {
        return host(net.params().values(), net);
    }

    static double[] host(org.vgg4j.core.tensor.Tensor t, Network net) {
        double[] d = new double[Math.toIntExact(t.size())];
        net.backend().copyOut(t, d, 0);
        return d;
    }

    static List<TrainingListener> none() {
        return List.of();
    }
}
