package org.vgg4j.core.backend;

import org.vgg4j.core.tensor.DType;
import org.vgg4j.core.tensor.Shape;
import org.vgg4j.core.tensor.Tensor;

/**
 * The Backend SPI: memory plus a short list of ops. Layers call these; they never touch memory themselves.
 *
 * <p>Dimension legend: N batch, C in-channels, K out-channels, H/W input height/width, P/Q output
 * height/width, R/S kernel height/width, F features.
 *
 * <p>Conventions every implementation keeps (the {@code reference} backend is their definition):
 * <ul>
 *   <li>All tensors of one call belong to this backend and share one dtype; layouts are dense row-major NCHW.</li>
 *   <li>Parameter gradients ACCUMULATE ({@code +=}); activation gradients and outputs are OVERWRITTEN ({@code =}).</li>
 *   <li>Unless a method says otherwise, inputs and outputs must not overlap.</li>
 *   <li>Shapes are checked at the public boundary by the layers; backends may assert.</li>
 * </ul>
 * Implementations are found with {@link java.util.ServiceLoader} through {@link BackendProvider}.
 */
public interface Backend extends AutoCloseable {

    /** Name under which {@link Backends#create} finds this backend: "reference", "cpu", "cuda", ... */
    String name();

    /**
     * Which backend and device this instance runs on, for error messages ("cuda-emulated on emulated CUDA device 1
     * of 4"); the name alone for backends without devices.
     */
    default String describe() {
        return name();
    }

    /** Whether this backend computes in {@code dtype}. */
    boolean supports(DType dtype);

    // ---------------------------------------------------------------- memory

    /** A new zero-filled dense tensor. */
    Tensor allocate(DType dtype, Shape shape);

    /**
     * A new zero-filled dense tensor whose memory the backend may leave untouched until it is first written, as
     * after {@link #zeroAndRelease}: for a buffer that may never be written (the gradients of a network that only
     * evaluates). Default: {@link #allocate} then {@link #zeroAndRelease}.
     */
    default Tensor allocateReleased(DType dtype, Shape shape) {
        Tensor t = allocate(dtype, shape);
        zeroAndRelease(t);
        return t;
    }

    /** Releases a tensor obtained from {@link #allocate} (views are released with their base). May be a no-op. */
    void free(Tensor t);

    /** Copies {@code t.size()} values from {@code host[hostOffset...]} into {@code t}. */
    void copyIn(float[] host, int hostOffset, Tensor t);

    void copyIn(double[] host, int hostOffset, Tensor t);

    /** Copies {@code t.size()} values of {@code t} into {@code host[hostOffset...]}. */
    void copyOut(Tensor t, float[] host, int hostOffset);

    void copyOut(Tensor t, double[] host, int hostOffset);

    /** Sets every element of {@code t} to {@code value}. */
    void fill(Tensor t, double value);

    /** dst = src (same size; the shapes may differ). */
    void copy(Tensor src, Tensor dst);

    // ---------------------------------------------------------------- convolution (stride 1, square padding)

    /**
     * y = conv(x, w) + b, cross-correlation as in PyTorch.
     * x (N,C,H,W), w (K,C,R,S), b (K) or null, y (N,K,P,Q) with P = H + 2*pad - R + 1, Q = W + 2*pad - S + 1.
     */
    void conv2dForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad);

    /**
     * y = max(conv(x, w) + b, 0): a convolution and the ReLU after it, shapes as {@link #conv2dForward}. The
     * default runs {@link #conv2dForward} then {@link #reluForward} in place over y; a backend may apply the ReLU
     * inside the convolution instead (same values for finite results; a NaN may come out as 0, which is why
     * Network refuses a non-finite input and the trainer checks every gradient before an update).
     */
    default void conv2dForwardRelu(Tensor x, Tensor w, Tensor b, Tensor y, int pad) {
        conv2dForward(x, w, b, y, pad);
        reluForward(y, y);
    }

    /**
     * What a backend may keep from one convolution's forward for the backward of the same layer: the cpu backend
     * keeps x converted to its convolution's layout, so that backward does not convert x again. A layer makes one
     * ({@link #newConvMemo}), passes it to its forwards and backwards, and closes it when it releases its buffers.
     */
    interface ConvMemo extends AutoCloseable {
        @Override
        void close();
    }

    /** A memo for one convolution layer, or null where this backend keeps nothing (the default). */
    default ConvMemo newConvMemo() {
        return null;
    }

    /**
     * {@link #conv2dForwardRelu} when {@code relu}, else {@link #conv2dForward}, keeping in {@code memo} (null: none)
     * what {@link #conv2dBackward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int, ConvMemo)} with the same memo
     * may reuse. The caller guarantees that x's memory is not written between a forward and the backward that
     * follows it with the same memo (a layer's saved input); each forward replaces what the memo held.
     */
    default void conv2dForward(Tensor x, Tensor w, Tensor b, Tensor y, int pad, boolean relu, ConvMemo memo) {
        if (relu) {
            conv2dForwardRelu(x, w, b, y, pad);
        } else {
            conv2dForward(x, w, b, y, pad);
        }
    }

    /**
     * {@link #conv2dBackward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int)} reusing what the last forward with
     * {@code memo} kept (null: none); the same values, since x is unchanged since that forward.
     */
    default void conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad,
                                ConvMemo memo) {
        conv2dBackward(x, w, dy, dx, dw, db, pad);
    }

    /** dx = conv_transpose(dy, w): dy (N,K,P,Q), w (K,C,R,S), dx (N,C,H,W) overwritten. */
    void conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int pad);

    /** dw += corr(x, dy); db += sum of dy over N,P,Q (db may be null). x (N,C,H,W), dy (N,K,P,Q), dw (K,C,R,S). */
    void conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor db, int pad);

    /**
     * Both gradients of one convolution from one dy, the layer's whole backward: dw += corr(x, dy) and db += sum of
     * dy over N,P,Q (db may be null), then, when dx is not null, dx = conv_transpose(dy, w) (overwritten; null: no
     * input gradient is needed). x (N,C,H,W), w (K,C,R,S), dy (N,K,P,Q), dx (N,C,H,W), dw (K,C,R,S), db (K).
     * The default runs {@link #conv2dBackwardFilter} then {@link #conv2dBackwardData}; a backend may compute both in
     * one fused call instead (same values up to rounding, the reference backend being the definition).
     */
    default void conv2dBackward(Tensor x, Tensor w, Tensor dy, Tensor dx, Tensor dw, Tensor db, int pad) {
        conv2dBackwardFilter(x, dy, dw, db, pad);
        if (dx != null) {
            conv2dBackwardData(dy, w, dx, pad);
        }
    }

    // ---------------------------------------------------------------- pooling, activations, normalisation

    /** Max-pool 2x2 stride 2: x (N,C,H,W), y (N,C,H/2,W/2) rounded down (an odd last row/column is ignored). */
    void maxPool2x2Forward(Tensor x, Tensor y);

    /**
     * dx = gradient of the max-pool: in each 2x2 window the whole dy goes to the FIRST element (row-major order
     * inside the window) equal to the window's max, the others (and an ignored odd row/column) get 0. x (N,C,H,W), y, dy (N,C,H/2,W/2).
     */
    void maxPool2x2Backward(Tensor x, Tensor y, Tensor dy, Tensor dx);

    /**
     * {@link #maxPool2x2Backward}, then the backward of the ReLU whose output x is ({@link #reluBackward} with
     * y = x): each window's dy goes to its first maximum only where that maximum is &gt; 0. VGG's pools follow a
     * ReLU; a backend may do both in the pool's one pass. The default runs the two.
     */
    default void maxPool2x2BackwardRelu(Tensor x, Tensor y, Tensor dy, Tensor dx) {
        maxPool2x2Backward(x, y, dy, dx);
        reluBackward(x, dx, dx);
    }

    /** y = max(x, 0); y may be the same memory as x (in place). */
    void reluForward(Tensor x, Tensor y);

    /** dx = dy where y > 0, else 0; dx may be the same memory as dy. y is the ReLU's OUTPUT. */
    void reluBackward(Tensor y, Tensor dy, Tensor dx);

    /**
     * Local response normalisation across channels (AlexNet; PyTorch's LocalResponseNorm):
     * scale[n,c,h,w] = k + alpha/size * sum over c' in [c - size/2, c + (size-1)/2] of x[n,c',h,w]^2,
     * y = x * scale^-beta. scale (same shape as x) is written for the backward pass.
     */
    void lrnForward(Tensor x, Tensor y, Tensor scale, int size, double alpha, double beta, double k);

    /** dx = gradient of {@link #lrnForward}, given its x, y, scale and dy. */
    void lrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, double alpha, double beta, double k);

    /**
     * Inverted dropout: mask[i] = keep(seed, i) ? 1/(1-p) : 0 with keep from {@link DropoutRng}, y = x * mask.
     * The mask is a pure function of (seed, index), so every backend draws the same one.
     */
    void dropoutForward(Tensor x, Tensor y, Tensor mask, double p, long seed);

    /** y = a * b elementwise (dropout backward: dx = dy * mask). y may be the same memory as a. */
    void multiply(Tensor a, Tensor b, Tensor y);

    /**
     * Batch normalisation over N,H,W per channel C, training mode. x, y (N,C,H,W); gamma, beta, runningMean,
     * runningVar, saveMean, saveInvStd (C). Uses the biased batch variance to normalise; updates
     * running = (1-momentum)*running + momentum*batch with the UNBIASED variance (PyTorch's semantics);
     * saves mean and 1/sqrt(var+eps) for backward.
     */
    void batchNormForwardTraining(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean, Tensor runningVar,
                                  Tensor saveMean, Tensor saveInvStd, double momentum, double eps);

    /** Inference mode: y = gamma * (x - runningMean) / sqrt(runningVar + eps) + beta. */
    void batchNormForwardInference(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean, Tensor runningVar,
                                   double eps);

    /**
     * {@link #batchNormForwardTraining} and the ReLU after it: y = max(BN(x), 0), the running and saved statistics
     * those of x as without the ReLU. The default runs {@link #batchNormForwardTraining} then {@link #reluForward} in
     * place over y; a backend may apply the ReLU in its normalisation loop instead, with the same result bit for
     * bit, NaN included (unlike {@link #conv2dForwardRelu}): a NaN stays NaN and -0 becomes +0, as reluForward.
     * The backward needs no pre-ReLU y: the ReLU's backward masks dy with the saved y > 0, and
     * {@link #batchNormBackward} reads x and the saved statistics.
     */
    default void batchNormForwardTrainingRelu(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                              Tensor runningVar, Tensor saveMean, Tensor saveInvStd, double momentum,
                                              double eps) {
        batchNormForwardTraining(x, gamma, beta, y, runningMean, runningVar, saveMean, saveInvStd, momentum, eps);
        reluForward(y, y);
    }

    /**
     * {@link #batchNormForwardInference} and the ReLU after it, y = max(BN(x), 0). The default runs the two calls; an
     * override gives their bits, NaN and -0 as in {@link #batchNormForwardTrainingRelu}.
     */
    default void batchNormForwardInferenceRelu(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runningMean,
                                               Tensor runningVar, double eps) {
        batchNormForwardInference(x, gamma, beta, y, runningMean, runningVar, eps);
        reluForward(y, y);
    }

    /** dx overwritten; dgamma, dbeta accumulated (+=). */
    void batchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
                           Tensor dgamma, Tensor dbeta);

    // ---------------------------------------------------------------- dense algebra

    /**
     * c = alpha * op(a) * op(b) + beta * c on 2-D tensors, op(m) = m or its transpose.
     * op(a) (M,Kd), op(b) (Kd,Nd), c (M,Nd). With beta = 0, c's old contents are ignored (even NaN).
     */
    void gemm(boolean transA, boolean transB, double alpha, Tensor a, Tensor b, double beta, Tensor c);

    /** y[n,k,...] += bias[k]: y (N,K) or (N,K,H,W), bias (K). */
    void addBias(Tensor y, Tensor bias);

    /** db[k] += sum of dy[n,k,...] over n and any spatial dims: dy (N,K) or (N,K,H,W), db (K). */
    void biasBackward(Tensor dy, Tensor db);

    /** y = alpha * x + y (the sum in an all-reduce); same size. */
    void axpy(double alpha, Tensor x, Tensor y);

    /** x = alpha * x. */
    void scale(Tensor x, double alpha);

    // ---------------------------------------------------------------- loss and optimiser

    /** probs (N,F) = softmax of logits (N,F) over F, computed stably (max subtracted). */
    void softmax(Tensor logits, Tensor probs);

    /**
     * Mean softmax cross-entropy over the batch: returns -1/N * sum_n log softmax(logits)[n, labels[n]] and
     * writes dlogits = (softmax(logits) - onehot(labels)) / N (overwritten). logits, dlogits (N,F);
     * labels has N entries in [0, F).
     */
    double softmaxCrossEntropy(Tensor logits, int[] labels, Tensor dlogits);

    /**
     * Caffe's momentum SGD over whole buffers, one call for the whole network:
     * for i in [0, size): d = grad[i] + (i &lt; decayedCount ? weightDecay * param[i] : 0);
     * velocity[i] = momentum * velocity[i] + lr * d; param[i] -= velocity[i]; grad[i] = 0.
     */
    void sgdStep(Tensor param, Tensor grad, Tensor velocity, double lr, double momentum, double weightDecay,
                 long decayedCount);

    /**
     * The same step as {@link #sgdStep} for a weight (M,K) whose gradient is held as its factors: grad = dy^T x,
     * dy (R,M), x (R,K), R the examples since the last step (a fully connected layer's weight gradient, see
     * {@code LowRankGradient}). {@code decayed}: the whole weight takes weight decay. The gradient is rounded as
     * {@link #gemm} rounds it. A backend may update the weight piece by piece and never hold the (M,K) gradient;
     * this default builds it whole (correct, but it allocates M*K elements for the call).
     */
    default void sgdStepLowRank(Tensor param, Tensor velocity, Tensor dy, Tensor x, double lr, double momentum,
                                double weightDecay, boolean decayed) {
        Tensor grad = allocate(param.dtype(), param.shape());
        try {
            gemm(true, false, 1.0, dy, x, 0.0, grad);
            sgdStep(param, grad, velocity, lr, momentum, weightDecay, decayed ? param.size() : 0);
        } finally {
            free(grad);
        }
    }

    /**
     * Whether holding FC weight gradients as factors ({@code Network.deferLinearWeightGradients}) saves this backend
     * memory and time: true where {@link #sgdStepLowRank} and {@link #zeroAndRelease} are its own (the cpu
     * backend); false where they are these defaults, which build the gradient whole for the step. Training asks
     * it before deferring; results are the same either way.
     */
    default boolean lowRankGradientsPay() {
        return false;
    }

    /**
     * t = 0, and the backend may hand t's memory back to the system until it is next written (the next write then
     * pays a page fault per page): for a gradient that stays zero while it is held as factors. Default: a fill.
     */
    default void zeroAndRelease(Tensor t) {
        fill(t, 0.0);
    }

    /** Sum of squares of all elements (for gradient-norm logging and finiteness checks). */
    double sumOfSquares(Tensor x);

    /** Waits until all queued work is finished (a no-op for synchronous backends). */
    default void synchronize() {
    }

    @Override
    default void close() {
    }
}
