// gemm.cu -- dense GEMM for the fully connected layers: c (M,Nd) = alpha * op(a) * op(b) + beta * c.
//
// Dimension legend: M rows of op(a) and c, Kd the shared dimension, Nd columns of op(b) and c; a, b, c dense
// row-major float32, op(m) = m or its transpose (transA / transB flags, lda / ldb = stored column counts).
// Kernels: gemm_{f32,tf32,bf16}(a, b, c, m, nd, kd, transA, transB, lda, ldb, alpha, beta, workspace, kChunk);
// launch 256 threads, grid (ceil(Nd/64), ceil(M/64), splits). With beta == 0 the old c is never read (it may hold
// NaN), as the SPI says. With a workspace (split-K, for FC layers at small batch: M = 64 rows is one tile row but
// Kd = 25088) each z-slice writes raw partial sums and splitk_gemm_epilogue (elementwise.cu) applies alpha/beta.
// Versions: v1, the shared tile core of gemm_tile.cuh (FP32 default; TF32/BF16 tensor cores on a GPU, twin on the
// emulator). Check: GemmKernelTest (emulator, vs the reference backend, exact on small integers); benchmark via
// scripts/gpu-check.sh.
#include "gemm_tile.cuh"

struct Gemm {
    int m, n, kd;
    bool aKFast, bKFast;
    const float* a;
    const float* b;
    float* c;
    int transA, transB, lda, ldb;
    float alpha, beta;
    __device__ float loadA(int i, int l) const { return transA ? a[(long long)l * lda + i] : a[(long long)i * lda + l]; }
    __device__ float loadB(int l, int j) const { return transB ? b[(long long)j * ldb + l] : b[(long long)l * ldb + j]; }
    __device__ void store(int i, int j, float v) const {
        float* p = c + (long long)i * n + j;
        *p = beta == 0.0f ? alpha * v : fmaf(beta, *p, alpha * v);
    }
};

#define GEMM_KERNEL(suffix, PREC)                                                                               \
    extern "C" __global__ void __launch_bounds__(256)                                                           \
        gemm_##suffix(const float* a, const float* b, float* c, int m, int nd, int kd, int transA, int transB,  \
                      int lda, int ldb, float alpha, float beta, float* workspace, int kChunk) {                \
        Gemm pb{m, nd, kd, !transA, transB != 0, a, b, c, transA, transB, lda, ldb, alpha, beta};               \
        gemm_tile_maybe_split<PREC>(pb, workspace, kChunk);                                                     \
    }                                                                                                           \
    EMU_KERNEL(gemm_##suffix)

GEMM_KERNEL(f32, PREC_FP32)
GEMM_KERNEL(tf32, PREC_TF32)
GEMM_KERNEL(bf16, PREC_BF16)
