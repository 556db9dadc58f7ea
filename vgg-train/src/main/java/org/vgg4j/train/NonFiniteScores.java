package org.vgg4j.train;

import org.vgg4j.core.backend.Backend;
import org.vgg4j.core.model.NamedLayer;
import org.vgg4j.core.model.Network;
import org.vgg4j.core.model.ParamStore;
import org.vgg4j.core.tensor.Tensor;

/**
 * Evaluation's finiteness check. A NaN score compares false with everything, so ranking it would count every image
 * as correct (0 % error): class scores that are not finite are an error instead, and the message names where they
 * came from: the first parameter (network order) that is not finite, else the first layer whose output is not
 * finite for the evaluated input, else the input itself.
 */
final class NonFiniteScores {
    private NonFiniteScores() {
    }

    /**
     * Throws when some of {@code scores[off, off + n)} are not finite.
     *
     * @param net   the network that produced them (its parameters are searched)
     * @param input the input (N,C,H,W) it was given, still allocated; traced layer by layer when it fits the
     *              network's input shape (the dense view's whole image does not: then only the parameters are searched)
     * @param what  the evaluated thing in words, e.g. "image n01440764/x.JPEG" or "a validation batch"
     * @throws IllegalStateException naming the parameter, layer or input that is not finite
     */
    static void check(double[] scores, int off, int n, Network net, Tensor input, String what) {
        for (int i = off; i < off + n; i++) {
            if (!Double.isFinite(scores[i])) {
                throw new IllegalStateException("network " + net.name() + " gives a non-finite class score (" + scores[i]
                        + ") for " + what + ": " + cause(net, input) + "; a checkpoint with such weights cannot be evaluated");
            }
        }
    }

    /** Where the non-finite value first appears, in words. */
    static String cause(Network net, Tensor input) {
        Backend b = net.backend();
        for (ParamStore.Entry e : net.params().entries()) {
            // the sum of squares is one pass on the device; it also overflows on huge finite values: confirm on the host
            if (!Double.isFinite(b.sumOfSquares(e.value())) && !finite(b, e.value())) {
                String key = e.key();
                return "parameter " + key + " of layer " + key.substring(0, key.lastIndexOf('.')) + " holds NaN or infinity";
            }
        }
        if (!finite(b, input)) {
            return "the input holds NaN or infinity";
        }
        if (input.rank() != 4 || input.dim(1) != net.inputShape().dim(0) || input.dim(2) != net.inputShape().dim(1)
                || input.dim(3) != net.inputShape().dim(2)) {
            return "every parameter is finite: the forward pass overflowed";
        }
        Tensor h = input;
        for (NamedLayer nl : net.layers()) {
            h = nl.layer().forward(h, false);
            if (!finite(b, h)) {
                return "every parameter is finite; the output of layer " + nl.name() + " is not (it overflowed)";
            }
        }
        return "every parameter and layer output is finite: the scores overflowed";
    }

    private static boolean finite(Backend b, Tensor t) {
        double[] host = new double[Math.toIntExact(t.size())];
        b.copyOut(t, host, 0);
        for (double v : host) {
            if (!Double.isFinite(v)) {
                return false;
            }
        }
        return true;
    }
}
