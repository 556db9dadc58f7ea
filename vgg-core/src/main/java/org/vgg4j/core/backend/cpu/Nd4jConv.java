package org.vgg4j.core.backend.cpu;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Stride-1 convolutions through ND4J's own custom ops {@code conv2d}, {@code conv2d_bp} and {@code deconv2d}.
 * With the {@code -onednn-avx2} natives these run in oneDNN (the measured winner, docs/benchmarks.md); with the
 * plain natives they run ND4J's im2col code. Legend: N batch, C in, K out, H/W in, P/Q out, R/S kernel.
 *
 * <p>What it is not: accumulation. ND4J overwrites every output, so the caller routes parameter gradients through
 * scratch and adds them ({@code +=} is the SPI's rule).
 */
final class Nd4jConv {
    private Nd4jConv() {
    }

    /**
     * Integer arguments shared by the three ops: kernel R,S; stride 1,1; pad; dilation 1,1; explicit padding (0);
     * NCHW (0); weights as (K,C,R,S) (format 1, which for deconv2d reads (its-in = K, its-out = C, R, S)).
     */
    private static int[] args(int r, int s, int pad) {
        return new int[]{r, s, 1, 1, pad, pad, 1, 1, 0, 0, 1};
    }

    /** y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C,R,S)) + b (K) or no bias. */
    static void forward(INDArray x, INDArray w, INDArray b, INDArray y, int pad) {
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("conv2d");
        op.addInputs(b == null ? new INDArray[]{x, w} : new INDArray[]{x, w, b});
        op.addOutputs(y);
        op.addIntegerArguments(args((int) w.size(2), (int) w.size(3), pad));
        Nd4j.exec(op.build());
    }

    /** dx (N,C,H,W) = conv_transpose(dy (N,K,P,Q), w (K,C,R,S)), overwritten. */
    static void backwardData(INDArray dy, INDArray w, INDArray dx, int pad) {
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("deconv2d");
        op.addInputs(dy, w);
        op.addOutputs(dx);
        op.addIntegerArguments(args((int) w.size(2), (int) w.size(3), pad));
        Nd4j.exec(op.build());
    }

    /**
     * One fused backward: dx (N,C,H,W), dw (K,C,R,S) and db (K) (when not null) all OVERWRITTEN from x, w, dy.
     * oneDNN does both products in one call faster than separate ones (docs/benchmarks.md, "Fused backward").
     */
    static void backward(INDArray x, INDArray w, INDArray dy, INDArray dx, INDArray dw, INDArray db, int pad) {
        DynamicCustomOp.DynamicCustomOpsBuilder op = DynamicCustomOp.builder("conv2d_bp");
        if (db == null) {
            op.addInputs(x, w, dy);
            op.addOutputs(dx, dw);
        } else {
            // conv2d_bp computes db only when given a bias; its values do not enter any output.
            op.addInputs(x, w, Nd4j.zeros(w.dataType(), w.size(0)), dy);
            op.addOutputs(dx, dw, db);
        }
        op.addIntegerArguments(args((int) w.size(2), (int) w.size(3), pad));
        Nd4j.exec(op.build());
    }
}
