package org.vgg4j.core.layers;

import java.util.List;
import java.util.Map;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * A layer with torchvision's "weight" and "bias" parameters (conv, linear, BatchNorm's gamma and beta): the views
 * {@link #bind} gives it. The fields are null until the layer is bound.
 */
abstract class WeightedLayer extends BufferedLayer {
    protected Tensor weight;
    protected Tensor bias;
    protected Tensor weightGrad;
    protected Tensor biasGrad;

    protected WeightedLayer(Backend backend) {
        super(backend);
    }

    /** The specs of a weight (decayed) of {@code weightShape} (outputs first) and its bias (outputs, not decayed). */
    static List<ParamSpec> weightAndBias(Shape weightShape, int fanIn, int fanOut) {
        return List.of(
                new ParamSpec("weight", weightShape, ParamSpec.Role.WEIGHT, fanIn, fanOut),
                new ParamSpec("bias", Shape.of(weightShape.dim(0)), ParamSpec.Role.NO_DECAY, fanIn, fanOut));
    }

    @Override
    public void bind(Map<String, Tensor> values, Map<String, Tensor> grads) {
        weight = values.get("weight");
        bias = values.get("bias");
        weightGrad = grads.get("weight");
        biasGrad = grads.get("bias");
    }
}
