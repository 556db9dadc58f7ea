// elementwise.cu -- the memory-bound one-pass ops: fill, ReLU forward/backward, multiply, axpy, scale, bias add,
// dropout, SGD momentum update.
//
// Dimension legend: n elements; for add_bias, a tensor (N,K,inner) with inner = H*W (or 1 for (N,K)).
// Every kernel is a grid-stride loop (any grid; the backend launches min(ceil(n/256), 4096) blocks of 256 threads)
// and has no barrier, so the emulator runs its threads as plain calls (EMU_KERNEL_NOSYNC).
// Versions: v1, scalar loads (no float4 vectorisation yet).
// Exactness: fill, relu, multiply, add_bias, dropout and the SGD step give the reference backend's results bit for
// bit (the SGD step computes in double, as the reference does, then rounds once); axpy and scale round once per
// element, as the reference. Check: ElementwiseKernelTest (emulator).
#include "kernel_common.cuh"

extern "C" __global__ void fill_f32(float* p, long long n, float v) {
    GRID_STRIDE_LOOP(i, n) p[i] = v;
}
EMU_KERNEL_NOSYNC(fill_f32)

// y = max(x, 0); y may alias x. fmaxf would turn NaN into 0: keep NaN visible, as the reference does.
extern "C" __global__ void relu_fwd(const float* x, float* y, long long n) {
    GRID_STRIDE_LOOP(i, n) {
        const float v = x[i];
        y[i] = v > 0.0f || v != v ? v : 0.0f;
    }
}
EMU_KERNEL_NOSYNC(relu_fwd)

// dx = y > 0 ? dy : 0 (y is the ReLU's output); dx may alias dy.
extern "C" __global__ void relu_bwd(const float* y, const float* dy, float* dx, long long n) {
    GRID_STRIDE_LOOP(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
EMU_KERNEL_NOSYNC(relu_bwd)

// y = a * b; y may alias a.
extern "C" __global__ void multiply_f32(const float* a, const float* b, float* y, long long n) {
    GRID_STRIDE_LOOP(i, n) y[i] = a[i] * b[i];
}
EMU_KERNEL_NOSYNC(multiply_f32)

// y = alpha * x + y, computed in double and rounded once like the reference.
extern "C" __global__ void axpy_f32(double alpha, const float* x, float* y, long long n) {
    GRID_STRIDE_LOOP(i, n) y[i] = (float)(alpha * (double)x[i] + (double)y[i]);
}
EMU_KERNEL_NOSYNC(axpy_f32)

extern "C" __global__ void scale_f32(float* x, double alpha, long long n) {
    GRID_STRIDE_LOOP(i, n) x[i] = (float)(alpha * (double)x[i]);
}
EMU_KERNEL_NOSYNC(scale_f32)

// y (N,K,inner) += bias (K)
extern "C" __global__ void add_bias(float* y, const float* bias, long long n, int k, int inner) {
    GRID_STRIDE_LOOP(i, n) y[i] += bias[(i / inner) % k];
}
EMU_KERNEL_NOSYNC(add_bias)

// org.vgg4j.core.backend.DropoutRng, bit for bit: uniform(seed, i) = top 24 bits of
// mix64(seed + (i + 1) * GOLDEN) / 2^24 (SplitMix64's finaliser); keep when uniform >= p.
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// mask = keep ? kept : 0 with kept = (float) (1 / (1 - p)) computed by the caller; y = x * mask.
extern "C" __global__ void dropout_fwd(const float* x, float* y, float* mask, long long n, double p,
                                       unsigned long long seed, float kept) {
    GRID_STRIDE_LOOP(i, n) {
        const unsigned long long z = mix64(seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ull);
        const float u = (float)(z >> 40) * 0x1.0p-24f;
        const float m = (double)u >= p ? kept : 0.0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}
EMU_KERNEL_NOSYNC(dropout_fwd)

// Caffe's momentum SGD (the SPI's formula), in double like the reference, so both round identically:
// d = grad + (i < decayed ? wd * param : 0); v = momentum * v + lr * d; param -= v; grad = 0.
extern "C" __global__ void sgd_step(float* param, float* grad, float* velocity, long long n, double lr,
                                    double momentum, double wd, long long decayed) {
    GRID_STRIDE_LOOP(i, n) {
        const double p = param[i];
        const double d = (double)grad[i] + (i < decayed ? wd * p : 0.0);
        const float v = (float)(momentum * (double)velocity[i] + lr * d);
        velocity[i] = v;
        param[i] = (float)(p - (double)v);
        grad[i] = 0.0f;
    }
}
EMU_KERNEL_NOSYNC(sgd_step)

// BatchNorm inference: y = gamma * (x - mean) * rsqrt(var + eps) + beta; x, y (N,C,inner)
extern "C" __global__ void bn_fwd_infer(const float* x, const float* gamma, const float* beta, float* y,
                                        const float* mean, const float* var, long long n, int c, int inner,
                                        float eps) {
    GRID_STRIDE_LOOP(i, n) {
        const int ch = (int)((i / inner) % c);
        const float inv = 1.0f / sqrtf(var[ch] + eps);
        y[i] = gamma[ch] * (x[i] - mean[ch]) * inv + beta[ch];
    }
}
EMU_KERNEL_NOSYNC(bn_fwd_infer)

// Split-K epilogues (see gemm_tile.cuh): partial (splits, mn) holds each z-slice's sum; adding them in z order keeps
// the result deterministic.
// out[i] += sum over z of partial[z][i]   (conv backward-filter: dw accumulates)
extern "C" __global__ void splitk_accumulate(const float* partial, int splits, long long mn, float* out) {
    GRID_STRIDE_LOOP(i, mn) {
        float s = 0.0f;
        for (int z = 0; z < splits; z++) s += partial[z * mn + i];
        out[i] += s;
    }
}
EMU_KERNEL_NOSYNC(splitk_accumulate)

// c[i] = alpha * sum + beta * c[i]; beta == 0 never reads c (the SPI)
extern "C" __global__ void splitk_gemm_epilogue(const float* partial, int splits, long long mn, float* c, float alpha,
                                                float beta) {
    GRID_STRIDE_LOOP(i, mn) {
        float s = 0.0f;
        for (int z = 0; z < splits; z++) s += partial[z * mn + i];
        c[i] = beta == 0.0f ? alpha * s : fmaf(beta, c[i], alpha * s);
    }
}
EMU_KERNEL_NOSYNC(splitk_gemm_epilogue)
