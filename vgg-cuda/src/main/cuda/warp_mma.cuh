// warp_mma.cuh -- the warp-level instructions of the tensor-core kernels, one spelling for both compilers.
//
// Under nvcc each function is one PTX instruction (inline asm, sm_80+); under g++ the emulated device implements the
// same instruction with the semantics the PTX ISA documents ("Warp-level matrix fragments for mma.m16n8k16" /
// "mma.m16n8k8", "ldmatrix", "cp.async"): every lane of the warp must reach the call (full-warp, converged), and
// the emulator fails the launch when one does not. See emu/cuda_emu.h, "Warp-level instructions".
//
// Fragments (groupID g = lane / 4, thread-in-group t = lane % 4; bf16 values are packed two per 32-bit register,
// the lower column/row index in the low 16 bits):
//   mma_bf16_16816  D(16x8, f32) = A(16x16, bf16, row-major) * B(16x8, bf16, "col": B^T row-major) + C
//     a[0] = A[g][2t..2t+1]   a[1] = A[g+8][2t..2t+1]   a[2] = A[g][2t+8..2t+9]   a[3] = A[g+8][2t+8..2t+9]
//     b[0] = B[2t..2t+1][g]   b[1] = B[2t+8..2t+9][g]
//     c/d[0..1] = C[g][2t..2t+1]   c/d[2..3] = C[g+8][2t..2t+1]
//   mma_tf32_1688   D(16x8, f32) = A(16x8, tf32, row-major) * B(8x8, tf32, col) + C  (one value per register)
//     a[0] = A[g][t]  a[1] = A[g+8][t]  a[2] = A[g][t+4]  a[3] = A[g+8][t+4]   b[0] = B[t][g]  b[1] = B[t+4][g]
//   ldmatrix_x{1,2,4}[_trans]  loads 1, 2 or 4 8x8 matrices of b16 from shared memory: lanes 8i..8i+7 give the
//     addresses of matrix i's 8 rows (16 contiguous bytes each, 16-byte aligned); r[i] of lane l holds matrix i's
//     row l/4, elements 2(l%4) and 2(l%4)+1 -- or, with _trans, the transposed matrix's (column l/4).
//     (x1 and x2 read the addresses of lanes 0-7 and 0-15 only; the others' are ignored but must be valid values.)
//   cp_async_16(dst, src, srcBytes)  copies 16 bytes global -> shared without the registers, asynchronously:
//     srcBytes in [0,16] bytes are read and the rest of the 16 zero-filled (0: the destination becomes zeros, the
//     source is not read: the zero padding of a convolution). Both addresses 16-byte aligned. The copy is only
//     guaranteed done after cp_async_wait<N>() retires its group (cp_async_commit() closes a group of this thread's
//     copies; wait<N> waits until at most N of this thread's committed groups are pending) AND a __syncthreads() has
//     made it visible to the other threads. Reading the destination before that is a race: the emulator performs the
//     copy as late as the rule allows, so such a read sees the old contents.
//   shfl_xor_sync(mask, v, laneMask)  CUDA's __shfl_xor_sync (full mask only).
#pragma once
#include "kernel_common.cuh"

#include <cstdint>

#if defined(__CUDACC__)

__device__ __forceinline__ unsigned smem_addr(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
}

__device__ __forceinline__ void mma_tf32_1688(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
}

__device__ __forceinline__ void ldmatrix_x1(uint32_t r[1], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_addr(row)));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t r[2], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(smem_addr(row)));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(row)));
}
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t r[1], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_addr(row)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(smem_addr(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(row)));
}

__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int srcBytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(srcBytes)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ float shfl_xor_sync(unsigned mask, float v, int laneMask) {
    return __shfl_xor_sync(mask, v, laneMask);
}

#else  // the emulated device: emu/warp.cpp

namespace emu {
void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
void mma_tf32_1688(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
void ldmatrix(uint32_t* r, int matrices, bool trans, const void* row);
void cp_async_16(void* dst, const void* src, int srcBytes);
void cp_async_commit();
void cp_async_wait(int n);
float shfl_xor_sync(unsigned mask, float v, int laneMask);
}  // namespace emu

__forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    emu::mma_bf16_16816(d, a, b, c);
}
__forceinline__ void mma_tf32_1688(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    emu::mma_tf32_1688(d, a, b, c);
}
__forceinline__ void ldmatrix_x1(uint32_t r[1], const void* row) { emu::ldmatrix(r, 1, false, row); }
__forceinline__ void ldmatrix_x2(uint32_t r[2], const void* row) { emu::ldmatrix(r, 2, false, row); }
__forceinline__ void ldmatrix_x4(uint32_t r[4], const void* row) { emu::ldmatrix(r, 4, false, row); }
__forceinline__ void ldmatrix_x1_trans(uint32_t r[1], const void* row) { emu::ldmatrix(r, 1, true, row); }
__forceinline__ void ldmatrix_x2_trans(uint32_t r[2], const void* row) { emu::ldmatrix(r, 2, true, row); }
__forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* row) { emu::ldmatrix(r, 4, true, row); }
__forceinline__ void cp_async_16(void* dst, const void* src, int srcBytes) { emu::cp_async_16(dst, src, srcBytes); }
__forceinline__ void cp_async_commit() { emu::cp_async_commit(); }
template <int N>
__forceinline__ void cp_async_wait() {
    emu::cp_async_wait(N);
}
__forceinline__ float shfl_xor_sync(unsigned mask, float v, int laneMask) { return emu::shfl_xor_sync(mask, v, laneMask); }

#endif

// bf16 bits of v, rounded to nearest even (as __float2bfloat16_rn; NaN stays NaN)
__device__ __forceinline__ uint16_t bf16_bits(float v) {
    const unsigned int u = __float_as_uint(v);
    if ((u & 0x7f800000u) == 0x7f800000u) return (uint16_t)((u >> 16) | ((u & 0xffffu) != 0 ? 0x40u : 0u));
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
__device__ __forceinline__ float bf16_value(uint16_t b) { return __uint_as_float((unsigned int)b << 16); }
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    return (uint32_t)bf16_bits(lo) | ((uint32_t)bf16_bits(hi) << 16);
}
