package org.vgg4j.core.model;

import org.vgg4j.core.layers.Layer;

/** A layer and its torchvision module path ("features.0", "classifier.6"); parameter names append ".weight" etc. */
public record NamedLayer(String name, Layer layer) {
}
