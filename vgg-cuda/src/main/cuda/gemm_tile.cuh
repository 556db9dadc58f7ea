// gemm_tile.cuh -- the one tiled GEMM core behind every GEMM-shaped kernel (conv forward / backward-data /
// backward-filter as implicit GEMM, and the FC layers' gemm).
//
// Is: C(M,Nc) = sum over Kd of A(M,Kd) * B(Kd,Nc) for ONE 64x64 tile of C per block, through shared memory, where
// A, B and the store are supplied by a "problem" struct (how an index maps to memory: the im2col gather of a
// convolution happens inside loadB, never materialised). Is not: split-K, double-buffered or vectorised (see
// docs/cuda.md, "versions").
//
// Versions (selected by the PREC template argument, one kernel name each):
//   v1 FP32  (default)  exact FP32 products, fmaf accumulate, 4x4 register tile per thread.      emulator + GPU
//   v1 TF32 / BF16      operands rounded to TF32 / BF16 as they enter shared memory, FP32 accumulate.
//                       On a GPU (sm_80+) the tile product runs on tensor cores (wmma m16n16k8 tf32; BF16-rounded
//                       values are exact in TF32, so BF16 uses the same MMA). On the emulator the SAME kernel
//                       runs its twin: identical rounding, products by fmaf -- the emulator checks everything but
//                       the MMA instruction itself, which only the real-GPU suite covers.
//
// Tiling (checked by KERNEL_REQUIRE): blockDim = (256,1,1), grid = (ceil(Nc/64), ceil(M/64)). Thread t owns rows
// ty + 16i and columns tx + 16j (i, j < 4; tx = t % 16, ty = t / 16): strided so that reading a row of the B tile
// hits 16 consecutive floats (no bank conflicts) and the A tile value is a broadcast.
// Bounds: any M, Nc, Kd >= 1; loads outside the matrix put 0 in the tile, stores outside are skipped.
#pragma once
#include "kernel_common.cuh"

#if defined(__CUDA_ARCH__)
#include <mma.h>
#endif

namespace tile {
constexpr int BM = 64;        // rows of C per block
constexpr int BN = 64;        // columns of C per block
constexpr int BK = 16;        // depth of one shared-memory stage
constexpr int THREADS = 256;  // 16 x 16 threads, 4x4 outputs each

// Faults that only the negative tests instantiate (src/test/cuda): they prove the emulator catches such bugs.
enum Fault { FAULT_NONE = 0, FAULT_NO_SYNC_AFTER_LOAD = 1, FAULT_K_BOUND_OFF_BY_ONE = 2 };
}  // namespace tile

// The shared tiles live in non-template functions, so every instantiation of gemm_tile in one kernel (the plain
// and the split-K problem) uses the SAME 8 KiB instead of a copy each.
struct TileSmem {
    float as[tile::BK * tile::BM];
    float bs[tile::BK * tile::BN];
};
__device__ __forceinline__ TileSmem& tile_smem() {
    __shared__ __align__(32) TileSmem t;
    return t;
}
#if defined(__CUDA_ARCH__)
// 64x64 staging of the tensor-core accumulators (only the TF32/BF16 kernels reference it)
__device__ __forceinline__ float* tile_staging() {
    __shared__ __align__(32) float cs[tile::BM * tile::BN];
    return cs;
}
#endif

// Problem: int m, n, kd; bool aKFast, bKFast (which index varies fastest in memory, for coalesced tile loads);
// float loadA(int m, int k) const; float loadB(int k, int n) const; void store(int m, int n, float acc) const.
// The block sums over k in [kBegin, kEnd) only (split-K, see SplitK below); kBegin is a multiple of BK.
template <int PREC, class Problem, int FAULT = tile::FAULT_NONE>
__device__ __forceinline__ void gemm_tile(const Problem& pb, int kBegin, int kEnd) {
    using namespace tile;
    KERNEL_REQUIRE(blockDim.x == THREADS && blockDim.y == 1 && blockDim.z == 1);
    // As: A tile stored k-major, As[k][m] (BK x BM); Bs: B tile, Bs[k][n] (BK x BN)
    float* As = tile_smem().as;
    float* Bs = tile_smem().bs;
    const int tid = threadIdx.x;
    const int tx = tid % 16;
    const int ty = tid / 16;
    const int m0 = blockIdx.y * BM;
    const int n0 = blockIdx.x * BN;
    const int kLimit = FAULT == FAULT_K_BOUND_OFF_BY_ONE ? kEnd + 1 : kEnd;

#if defined(__CUDA_ARCH__)
    // Tensor-core accumulators: warp w owns rows (w % 4) * 16 and columns (w / 4) * 32 .. +32 of the tile.
    namespace wm = nvcuda::wmma;
    wm::fragment<wm::accumulator, 16, 16, 8, float> cf[2];
    if (PREC != PREC_FP32) {
        wm::fill_fragment(cf[0], 0.0f);
        wm::fill_fragment(cf[1], 0.0f);
    }
#endif
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (int k0 = kBegin; k0 < kEnd; k0 += BK) {
        for (int e = tid; e < BK * BM; e += THREADS) {
            const int kk = pb.aKFast ? e % BK : e / BM;
            const int mm = pb.aKFast ? e / BK : e % BM;
            const int m = m0 + mm;
            const int k = k0 + kk;
            As[kk * BM + mm] = (m < pb.m && k < kLimit) ? round_operand<PREC>(pb.loadA(m, k)) : 0.0f;
        }
        for (int e = tid; e < BK * BN; e += THREADS) {
            const int kk = pb.bKFast ? e % BK : e / BN;
            const int nn = pb.bKFast ? e / BK : e % BN;
            const int n = n0 + nn;
            const int k = k0 + kk;
            Bs[kk * BN + nn] = (n < pb.n && k < kLimit) ? round_operand<PREC>(pb.loadB(k, n)) : 0.0f;
        }
        if (FAULT != FAULT_NO_SYNC_AFTER_LOAD) {
            __syncthreads();  // the tile is complete before anyone reads it
        }
#if defined(__CUDA_ARCH__)
        if (PREC != PREC_FP32) {
            const int warp = tid / 32;
            const int wr = (warp % 4) * 16;
            const int wc = (warp / 4) * 32;
            for (int ks = 0; ks < BK; ks += 8) {
                // As holds A(m, k) at [k * BM + m]: column-major A with leading dimension BM
                wm::fragment<wm::matrix_a, 16, 16, 8, wm::precision::tf32, wm::col_major> af;
                wm::load_matrix_sync(af, As + ks * BM + wr, BM);
                for (int t = 0; t < af.num_elements; t++) af.x[t] = wm::__float_to_tf32(af.x[t]);
                for (int h = 0; h < 2; h++) {
                    // Bs holds B(k, n) at [k * BN + n]: row-major B with leading dimension BN
                    wm::fragment<wm::matrix_b, 16, 16, 8, wm::precision::tf32, wm::row_major> bf;
                    wm::load_matrix_sync(bf, Bs + ks * BN + wc + 16 * h, BN);
                    for (int t = 0; t < bf.num_elements; t++) bf.x[t] = wm::__float_to_tf32(bf.x[t]);
                    wm::mma_sync(cf[h], af, bf, cf[h]);
                }
            }
        } else
#endif
        {
            for (int kk = 0; kk < BK; kk++) {
                float a[4], b[4];
                for (int i = 0; i < 4; i++) a[i] = As[kk * BM + ty + 16 * i];
                for (int j = 0; j < 4; j++) b[j] = Bs[kk * BN + tx + 16 * j];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
            }
        }
        __syncthreads();  // everyone is done with the tile before the next stage overwrites it
    }

#if defined(__CUDA_ARCH__)
    if (PREC != PREC_FP32) {
        // Spill the warps' fragments into a 64x64 staging tile so the epilogue below sees the same layout.
        float* Cs = tile_staging();
        const int warp = tid / 32;
        const int wr = (warp % 4) * 16;
        const int wc = (warp / 4) * 32;
        wm::store_matrix_sync(Cs + wr * BN + wc, cf[0], BN, wm::mem_row_major);
        wm::store_matrix_sync(Cs + wr * BN + wc + 16, cf[1], BN, wm::mem_row_major);
        __syncthreads();
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) acc[i][j] = Cs[(ty + 16 * i) * BN + tx + 16 * j];
    }
#endif
    for (int i = 0; i < 4; i++) {
        const int m = m0 + ty + 16 * i;
        if (m >= pb.m) continue;
        for (int j = 0; j < 4; j++) {
            const int n = n0 + tx + 16 * j;
            if (n < pb.n) pb.store(m, n, acc[i][j]);
        }
    }
}

template <int PREC, class Problem, int FAULT = tile::FAULT_NONE>
__device__ __forceinline__ void gemm_tile(const Problem& pb) {
    gemm_tile<PREC, Problem, FAULT>(pb, 0, pb.kd);
}

// Split-K: when a GEMM has few output tiles but a long shared dimension (conv backward-filter of VGG's first
// layers: K x C*R*S = 64 x 27 is ONE tile, summed over N*P*Q = 3.2 million), blockIdx.z picks a chunk of
// [0, Kd) and the block writes its partial tile to workspace[z] (M x Nc, row-major) instead of storing; a second,
// elementwise kernel (splitk_*) adds the partials in z order, so the result is deterministic.
template <class Problem>
struct SplitK {
    const Problem& inner;
    float* partial;  // workspace + z * M * Nc
    int m, n, kd;
    bool aKFast, bKFast;
    __device__ float loadA(int i, int k) const { return inner.loadA(i, k); }
    __device__ float loadB(int k, int j) const { return inner.loadB(k, j); }
    __device__ void store(int i, int j, float v) const { partial[(long long)i * n + j] = v; }
};

// Runs the problem whole (workspace == nullptr) or this block's split-K chunk of kChunk (a multiple of BK).
template <int PREC, class Problem>
__device__ __forceinline__ void gemm_tile_maybe_split(const Problem& pb, float* workspace, int kChunk) {
    if (workspace == nullptr) {
        gemm_tile<PREC>(pb);
        return;
    }
    const int z = blockIdx.z;
    SplitK<Problem> sk{pb, workspace + (long long)z * pb.m * pb.n, pb.m, pb.n, pb.kd, pb.aKFast, pb.bKFast};
    gemm_tile<PREC>(sk, z * kChunk, min(pb.kd, (z + 1) * kChunk));
}
