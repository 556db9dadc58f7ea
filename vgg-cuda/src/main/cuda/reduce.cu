// reduce.cu -- the ops that reduce: bias gradient, sum of squares, softmax, softmax cross-entropy, and the batch
// norm passes that need per-channel statistics.
//
// Dimension legend: N batch, K (or C) channels, inner = H*W (1 for (N,K)), F features (classes).
// Every kernel here runs 256 threads per block and reduces with block_sum / block_max (kernel_common.cuh): a fixed
// tree, so results are deterministic (no atomics). Partial results that need double precision go back to the host
// (sum_squares_partial, softmax_xent's per-row losses), where Java adds them in double.
// Versions: v1, one block per channel / row; v1.1 bias gradient and batch norm split into ordered slices per
// channel when channels are few (bias_backward_partial + bias_backward_finish; bn_partial_sq, bn_finish_stats,
// bn_normalize, bn_bwd_partial, bn_bwd_finish, bn_bwd_dx at the end of this file). Check: ReduceKernelTest, BatchNormKernelTest (emulator).
#include "kernel_common.cuh"

// db[k] += sum over n, inner of dy (N,K,inner); grid (K), block 256
extern "C" __global__ void bias_backward(const float* dy, float* db, int n, int k, int inner) {
    KERNEL_REQUIRE(blockDim.x == 256);
    const int ch = blockIdx.x;
    float acc = 0.0f;
    for (long long e = threadIdx.x; e < (long long)n * inner; e += blockDim.x) {
        const long long b = e / inner, i = e % inner;
        acc += dy[(b * k + ch) * inner + i];
    }
    const float total = block_sum(acc);
    if (threadIdx.x == 0) db[ch] += total;
}
EMU_KERNEL(bias_backward)

// The same sum in `slices` pieces per channel, for layers with few channels but large N*H*W (VGG's first layers:
// 64 channels of 3.2 million values at batch 64): grid (K, slices), partial (K, slices); bias_backward_finish adds
// the pieces in order, so the result stays deterministic.
extern "C" __global__ void bias_backward_partial(const float* dy, float* partial, int n, int k, int inner,
                                                 int slices) {
    KERNEL_REQUIRE(blockDim.x == 256);
    const int ch = blockIdx.x, sl = blockIdx.y;
    const long long total = (long long)n * inner;
    const long long per = (total + slices - 1) / slices;
    const long long end = min(total, (sl + 1) * per);
    float acc = 0.0f;
    for (long long e = sl * per + threadIdx.x; e < end; e += blockDim.x) {
        acc += dy[((e / inner) * k + ch) * inner + e % inner];
    }
    const float t = block_sum(acc);
    if (threadIdx.x == 0) partial[(long long)ch * slices + sl] = t;
}
EMU_KERNEL(bias_backward_partial)

// db[k] += sum over s of partial[k][s]; grid-stride over K
extern "C" __global__ void bias_backward_finish(const float* partial, float* db, int k, int slices) {
    GRID_STRIDE_LOOP(ch, k) {
        float t = 0.0f;
        for (int s = 0; s < slices; s++) t += partial[ch * slices + s];
        db[ch] += t;
    }
}
EMU_KERNEL_NOSYNC(bias_backward_finish)

// partial[block] = sum of x^2 over a grid-strided share of x (N elements); the host adds the partials.
extern "C" __global__ void sum_squares_partial(const float* x, long long n, float* partial) {
    KERNEL_REQUIRE(blockDim.x == 256);
    float acc = 0.0f;
    GRID_STRIDE_LOOP(i, n) acc = fmaf(x[i], x[i], acc);
    const float total = block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
}
EMU_KERNEL(sum_squares_partial)

// probs (N,F) = softmax of logits (N,F) per row, max subtracted; grid (N), block 256
extern "C" __global__ void softmax_rows(const float* logits, float* probs, int f) {
    KERNEL_REQUIRE(blockDim.x == 256);
    const float* l = logits + (long long)blockIdx.x * f;
    float* out = probs + (long long)blockIdx.x * f;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < f; j += blockDim.x) m = fmaxf(m, l[j]);
    m = block_max(m);
    float s = 0.0f;
    for (int j = threadIdx.x; j < f; j += blockDim.x) s += expf(l[j] - m);
    s = block_sum(s);
    for (int j = threadIdx.x; j < f; j += blockDim.x) out[j] = expf(l[j] - m) / s;
}
EMU_KERNEL(softmax_rows)

// Per row n: rowLoss[n] = log sum exp(l - max) + max - l[label]; dlogits = (softmax - onehot(label)) / N.
// labels were checked on the host to lie in [0, F). grid (N), block 256
extern "C" __global__ void softmax_xent(const float* logits, const int* labels, float* dlogits, float* rowLoss, int n,
                                        int f) {
    KERNEL_REQUIRE(blockDim.x == 256);
    const int row = blockIdx.x;
    const float* l = logits + (long long)row * f;
    float* d = dlogits + (long long)row * f;
    const int label = labels[row];
    float m = -INFINITY;
    for (int j = threadIdx.x; j < f; j += blockDim.x) m = fmaxf(m, l[j]);
    m = block_max(m);
    float s = 0.0f;
    for (int j = threadIdx.x; j < f; j += blockDim.x) s += expf(l[j] - m);
    s = block_sum(s);
    for (int j = threadIdx.x; j < f; j += blockDim.x) {
        d[j] = (expf(l[j] - m) / s - (j == label ? 1.0f : 0.0f)) / n;
    }
    if (threadIdx.x == 0) rowLoss[row] = logf(s) + m - l[label];
}
EMU_KERNEL(softmax_xent)

// BatchNorm training forward, one block per channel: two passes (mean, then squares around it), biased variance
// to normalise, unbiased for the running estimate (PyTorch). x, y (N,C,inner); the rest (C).
extern "C" __global__ void bn_fwd_train(const float* x, const float* gamma, const float* beta, float* y,
                                        float* runMean, float* runVar, float* saveMean, float* saveInvStd, int n,
                                        int c, int inner, float momentum, float eps) {
    KERNEL_REQUIRE(blockDim.x == 256);
    const int ch = blockIdx.x;
    const long long m = (long long)n * inner;
    float acc = 0.0f;
    for (long long e = threadIdx.x; e < m; e += blockDim.x) acc += x[((e / inner) * c + ch) * inner + e % inner];
    const float mean = block_sum(acc) / m;
    acc = 0.0f;
    for (long long e = threadIdx.x; e < m; e += blockDim.x) {
        const float d = x[((e / inner) * c + ch) * inner + e % inner] - mean;
        acc = fmaf(d, d, acc);
    }
    const float sq = block_sum(acc);
    const float invStd = 1.0f / sqrtf(sq / m + eps);
    const float g = gamma[ch], b = beta[ch];
    for (long long e = threadIdx.x; e < m; e += blockDim.x) {
        const long long idx = ((e / inner) * c + ch) * inner + e % inner;
        y[idx] = g * (x[idx] - mean) * invStd + b;
    }
    if (threadIdx.x == 0) {
        runMean[ch] = (1 - momentum) * runMean[ch] + momentum * mean;
        runVar[ch] = (1 - momentum) * runVar[ch] + momentum * (sq / (m - 1));
        saveMean[ch] = mean;
        saveInvStd[ch] = invStd;
    }
}
EMU_KERNEL(bn_fwd_train)

// dx = gamma invStd (dy - sum(dy)/m - xhat sum(dy xhat)/m); dgamma += sum(dy xhat); dbeta += sum(dy)
extern "C" __global__ void bn_bwd(const float* x, const float* dy, const float* gamma, const float* saveMean,
                                  const float* saveInvStd, float* dx, float* dgamma, float* dbeta, int n, int c,
                                  int inner) {
    KERNEL_REQUIRE(blockDim.x == 256);
    const int ch = blockIdx.x;
    const long long m = (long long)n * inner;
    const float mean = saveMean[ch], invStd = saveInvStd[ch];
    float sdy = 0.0f, sdyx = 0.0f;
    for (long long e = threadIdx.x; e < m; e += blockDim.x) {
        const long long idx = ((e / inner) * c + ch) * inner + e % inner;
        sdy += dy[idx];
        sdyx += dy[idx] * (x[idx] - mean) * invStd;
    }
    sdy = block_sum(sdy);
    sdyx = block_sum(sdyx);
    const float g = gamma[ch];
    for (long long e = threadIdx.x; e < m; e += blockDim.x) {
        const long long idx = ((e / inner) * c + ch) * inner + e % inner;
        const float xhat = (x[idx] - mean) * invStd;
        dx[idx] = g * invStd * (dy[idx] - sdy / m - xhat * sdyx / m);
    }
    if (threadIdx.x == 0) {
        dgamma[ch] += sdyx;
        dbeta[ch] += sdy;
    }
}
EMU_KERNEL(bn_bwd)

// ---------------------------------------------------------------- batch norm in slices (v1.1)
// For layers with few channels and many values per channel (VGG-BN's first layers: 64 channels of 3.2 million
// values at batch 64), the per-channel kernels above use only C blocks. These split each channel into `slices`
// pieces (grid (C, slices)); every total is the sum of the slices' partials in slice order, so results stay
// deterministic. Forward: bias_backward_partial (sums of x) -> bn_partial_sq -> bn_finish_stats -> bn_normalize.
// Backward: bn_bwd_partial -> bn_bwd_finish -> bn_bwd_dx.

// The channel's mean from the partial sums of bias_backward_partial (same order everywhere it is needed).
__device__ __forceinline__ float channel_mean(const float* partialSum, int ch, int slices, long long m) {
    float s = 0.0f;
    for (int i = 0; i < slices; i++) s += partialSum[ch * slices + i];
    return s / m;
}

// partialSq[c][s] = sum of (x - mean)^2 over slice s of channel c
extern "C" __global__ void bn_partial_sq(const float* x, const float* partialSum, float* partialSq, int n, int c,
                                         int inner, int slices) {
    KERNEL_REQUIRE(blockDim.x == 256);
    const int ch = blockIdx.x, sl = blockIdx.y;
    const long long m = (long long)n * inner;
    const float mean = channel_mean(partialSum, ch, slices, m);
    const long long per = (m + slices - 1) / slices;
    const long long end = min(m, (sl + 1) * per);
    float acc = 0.0f;
    for (long long e = sl * per + threadIdx.x; e < end; e += blockDim.x) {
        const float d = x[((e / inner) * c + ch) * inner + e % inner] - mean;
        acc = fmaf(d, d, acc);
    }
    const float t = block_sum(acc);
    if (threadIdx.x == 0) partialSq[(long long)ch * slices + sl] = t;
}
EMU_KERNEL(bn_partial_sq)

// Per channel: mean, biased variance -> saveMean, saveInvStd; running statistics (unbiased variance). Grid-stride.
extern "C" __global__ void bn_finish_stats(const float* partialSum, const float* partialSq, int slices, int n, int c,
                                           int inner, float* runMean, float* runVar, float* saveMean,
                                           float* saveInvStd, float momentum, float eps) {
    const long long m = (long long)n * inner;
    GRID_STRIDE_LOOP(ch, c) {
        const float mean = channel_mean(partialSum, (int)ch, slices, m);
        float sq = 0.0f;
        for (int i = 0; i < slices; i++) sq += partialSq[ch * slices + i];
        saveMean[ch] = mean;
        saveInvStd[ch] = 1.0f / sqrtf(sq / m + eps);
        runMean[ch] = (1 - momentum) * runMean[ch] + momentum * mean;
        runVar[ch] = (1 - momentum) * runVar[ch] + momentum * (sq / (m - 1));
    }
}
EMU_KERNEL_NOSYNC(bn_finish_stats)

// y = gamma (x - mean) invStd + beta with the saved statistics; x, y (N,C,inner)
extern "C" __global__ void bn_normalize(const float* x, const float* gamma, const float* beta, float* y,
                                        const float* saveMean, const float* saveInvStd, long long total, int c,
                                        int inner) {
    GRID_STRIDE_LOOP(i, total) {
        const int ch = (int)((i / inner) % c);
        y[i] = gamma[ch] * (x[i] - saveMean[ch]) * saveInvStd[ch] + beta[ch];
    }
}
EMU_KERNEL_NOSYNC(bn_normalize)

// partial[c][s] = (sum dy, sum dy * xhat) over slice s of channel c: partial (C, slices, 2)
extern "C" __global__ void bn_bwd_partial(const float* x, const float* dy, const float* saveMean,
                                          const float* saveInvStd, float* partial, int n, int c, int inner,
                                          int slices) {
    KERNEL_REQUIRE(blockDim.x == 256);
    const int ch = blockIdx.x, sl = blockIdx.y;
    const long long m = (long long)n * inner;
    const long long per = (m + slices - 1) / slices;
    const long long end = min(m, (sl + 1) * per);
    const float mean = saveMean[ch], invStd = saveInvStd[ch];
    float sdy = 0.0f, sdyx = 0.0f;
    for (long long e = sl * per + threadIdx.x; e < end; e += blockDim.x) {
        const long long idx = ((e / inner) * c + ch) * inner + e % inner;
        sdy += dy[idx];
        sdyx += dy[idx] * (x[idx] - mean) * invStd;
    }
    sdy = block_sum(sdy);
    sdyx = block_sum(sdyx);
    if (threadIdx.x == 0) {
        partial[((long long)ch * slices + sl) * 2] = sdy;
        partial[((long long)ch * slices + sl) * 2 + 1] = sdyx;
    }
}
EMU_KERNEL(bn_bwd_partial)

// totals (C, 2) = slice sums in order; dbeta += sum dy, dgamma += sum dy * xhat. Grid-stride over C.
extern "C" __global__ void bn_bwd_finish(const float* partial, int slices, int c, float* totals, float* dgamma,
                                         float* dbeta) {
    GRID_STRIDE_LOOP(ch, c) {
        float sdy = 0.0f, sdyx = 0.0f;
        for (int i = 0; i < slices; i++) {
            sdy += partial[(ch * slices + i) * 2];
            sdyx += partial[(ch * slices + i) * 2 + 1];
        }
        totals[ch * 2] = sdy;
        totals[ch * 2 + 1] = sdyx;
        dgamma[ch] += sdyx;
        dbeta[ch] += sdy;
    }
}
EMU_KERNEL_NOSYNC(bn_bwd_finish)

// dx = gamma invStd (dy - sum(dy)/m - xhat sum(dy xhat)/m), elementwise with the totals of bn_bwd_finish
extern "C" __global__ void bn_bwd_dx(const float* x, const float* dy, const float* gamma, const float* saveMean,
                                     const float* saveInvStd, const float* totals, float* dx, long long total, int c,
                                     int inner, long long m) {
    GRID_STRIDE_LOOP(i, total) {
        const int ch = (int)((i / inner) % c);
        const float invStd = saveInvStd[ch];
        const float xhat = (x[i] - saveMean[ch]) * invStd;
        dx[i] = gamma[ch] * invStd * (dy[i] - totals[ch * 2] / m - xhat * totals[ch * 2 + 1] / m);
    }
}
EMU_KERNEL_NOSYNC(bn_bwd_dx)
