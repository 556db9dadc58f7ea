package org.vgg4j.train;

import java.io.IOException;

import org.vgg4j.core.model.Network;

/** What the trainer runs after each epoch: top-1/top-5 error of a network on held-out data (see {@link Evaluator}). */
@FunctionalInterface
public interface Validation {
    Evaluator.Result evaluate(Network net) throws IOException;
}
