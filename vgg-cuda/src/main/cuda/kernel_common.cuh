// kernel_common.cuh -- what every .cu file of vgg-cuda includes first: the device language on both compilers.
//
// Under nvcc this is plain CUDA and EMU_KERNEL(...) expands to nothing; under g++ (the emulated device) it pulls in
// emu/cuda_emu.h, which supplies the execution model, and EMU_KERNEL registers each kernel by name so the JNI
// launcher can find it, as cuModuleGetFunction finds it in a cubin.
//
// Conventions of all kernels: every kernel is extern "C" (stable names for cuModuleGetFunction), takes raw device
// pointers and int sizes, is launched with a 1-D block unless its file says otherwise, and checks its launch
// assumptions first with KERNEL_REQUIRE (a wrong launch traps on the GPU, fails the launch on the emulator).
#pragma once

#ifdef __CUDACC__
#define EMU_KERNEL(name)
#define EMU_KERNEL_NOSYNC(name)
#define KERNEL_REQUIRE(cond) \
    do {                     \
        if (!(cond)) __trap(); \
    } while (0)
#else
#include "emu/cuda_emu.h"
#define KERNEL_REQUIRE(cond)         \
    do {                             \
        if (!(cond)) {               \
            ::emu::fail(#cond);      \
            return;                  \
        }                            \
    } while (0)
#endif

// Grid-stride loop over [0, n): elementwise kernels run with any grid size.
#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)blockDim.x * gridDim.x)

// Operand precision of the GEMM-shaped kernels (conv and gemm): what the inputs are rounded to before the multiply;
// products are always accumulated in FP32.
enum Precision { PREC_FP32 = 0, PREC_TF32 = 1, PREC_BF16 = 2 };

// TF32 as the tensor cores take it (cvt.rna.tf32.f32): 10 mantissa bits, round to nearest, ties away from zero.
__device__ __forceinline__ float round_tf32(float v) {
    unsigned int u = __float_as_uint(v);
    if ((u & 0x7f800000u) == 0x7f800000u) return v;  // inf / NaN unchanged
    return __uint_as_float((u + 0x1000u) & 0xffffe000u);
}

// BF16 (__float2bfloat16_rn): 7 mantissa bits, round to nearest even.
__device__ __forceinline__ float round_bf16(float v) {
    unsigned int u = __float_as_uint(v);
    if ((u & 0x7f800000u) == 0x7f800000u) return v;
    return __uint_as_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}

template <int PREC>
__device__ __forceinline__ float round_operand(float v) {
    return PREC == PREC_TF32 ? round_tf32(v) : PREC == PREC_BF16 ? round_bf16(v) : v;
}

// Division by a runtime constant as a multiply-high, an add and a shift (the round-up method of Granlund &
// Montgomery, 1994): valid for 0 <= n < 2^31 and 1 <= d < 2^31. The im2col gathers of conv.cu divide every element
// index by the geometry (S, R*S, Q, P*Q, W, H*W); a hardware-less 32-bit division is ~20 instructions on a GPU, so
// the integer work of a tile load used to exceed its share of the FMAs. Built once per thread, used per element.
struct FastDivmod {
    unsigned int d, m, s;
    __device__ __forceinline__ FastDivmod() : d(1), m(1), s(0) {}
    __device__ __forceinline__ explicit FastDivmod(int divisor) : d((unsigned int)divisor), s(0) {
        while ((1ull << s) < d) s++;  // s = ceil(log2 d)
        m = (unsigned int)((((1ull << 32) * ((1ull << s) - d)) / d) + 1);
    }
    __device__ __forceinline__ int div(int n) const { return (int)((__umulhi((unsigned int)n, m) + (unsigned int)n) >> s); }
    __device__ __forceinline__ int mod(int n) const { return n - div(n) * (int)d; }
};

// Sum of v over the block (blockDim.x a power of two <= 256), returned to every thread. A fixed tree order, so the
// result does not depend on scheduling. Every thread of the block must call it (it has barriers).
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float scratch[256];
    const int t = threadIdx.x;
    scratch[t] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) scratch[t] += scratch[t + s];
        __syncthreads();
    }
    const float r = scratch[0];
    __syncthreads();  // scratch is reused by the next call
    return r;
}

// Max of v over the block, same rules as block_sum.
__device__ __forceinline__ float block_max(float v) {
    __shared__ float scratch[256];
    const int t = threadIdx.x;
    scratch[t] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) scratch[t] = fmaxf(scratch[t], scratch[t + s]);
        __syncthreads();
    }
    const float r = scratch[0];
    __syncthreads();
    return r;
}
