package org.vgg4j.core.layers;

import org.vgg4j.core.tensor.Shape;

/**
 * One named parameter or state tensor of a layer, as torchvision names it relative to the layer
 * ("weight", "bias", "running_mean", "running_var").
 *
 * @param name   torchvision's local name
 * @param shape  its shape (conv weight K,C,R,S; linear weight out,in; bias K)
 * @param role   how the optimiser treats it
 * @param fanIn  inputs per output unit (C*R*S for a conv, in for a linear): for initialisers
 * @param fanOut outputs per input unit (K*R*S for a conv, out for a linear): for initialisers
 */
public record ParamSpec(String name, Shape shape, Role role, int fanIn, int fanOut) {

    public enum Role {
        /** Trained and weight-decayed (conv and linear weights). */
        WEIGHT,
        /** Trained, not weight-decayed (biases, BatchNorm's gamma and beta): Caffe's decay_mult 0. */
        NO_DECAY,
        /** Not trained, but part of the model's state (BatchNorm's running statistics). */
        STATE
    }
}
