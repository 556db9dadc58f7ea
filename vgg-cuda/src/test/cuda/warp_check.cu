// warp_check.cu -- TEST-ONLY kernels (test build of the emulator only) for the warp-level instructions of
// warp_mma.cuh: each builds its operands with the fragment formulas of warp_mma.cuh's comment from plain row-major
// memory and writes what it received, so WarpInstructionsTest can check them against the PTX ISA's layouts computed
// independently in Java. Some are deliberately wrong (named so), to prove the emulator catches the bug.
#include "warp_mma.cuh"

// ------------------------------------------------------------------ mma.sync
// Problem p (one per warp: p = blockIdx.x * warps per block + warp) multiplies
//   bf16: a (16,16) row-major, b (16,8) row-major (k, n), c and d (16,8) row-major, all float in memory;
//   tf32: a (16,8), b (8,8), c and d (16,8).
// Inputs of the bf16 kernels are bf16 values (pack_bf16 is exact on them); the tf32 kernels pass the raw fp32 bits.
template <bool SWAP_A12>
__device__ void mma_bf16_problem(const float* a, const float* b, const float* c, float* d) {
    const int lane = threadIdx.x % 32, p = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    a += p * 256;
    b += p * 128;
    c += p * 128;
    d += p * 128;
    uint32_t ra[4] = {pack_bf16(a[g * 16 + 2 * t], a[g * 16 + 2 * t + 1]),
                      pack_bf16(a[(g + 8) * 16 + 2 * t], a[(g + 8) * 16 + 2 * t + 1]),
                      pack_bf16(a[g * 16 + 2 * t + 8], a[g * 16 + 2 * t + 9]),
                      pack_bf16(a[(g + 8) * 16 + 2 * t + 8], a[(g + 8) * 16 + 2 * t + 9])};
    if (SWAP_A12) {  // BUG (deliberate): a[1] and a[2] exchanged
        const uint32_t x = ra[1];
        ra[1] = ra[2];
        ra[2] = x;
    }
    const uint32_t rb[2] = {pack_bf16(b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g]),
                            pack_bf16(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g])};
    const float rc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
    float rd[4];
    mma_bf16_16816(rd, ra, rb, rc);
    d[g * 8 + 2 * t] = rd[0];
    d[g * 8 + 2 * t + 1] = rd[1];
    d[(g + 8) * 8 + 2 * t] = rd[2];
    d[(g + 8) * 8 + 2 * t + 1] = rd[3];
}

extern "C" __global__ void mma_bf16_check(const float* a, const float* b, const float* c, float* d) {
    mma_bf16_problem<false>(a, b, c, d);
}
EMU_KERNEL(mma_bf16_check)

extern "C" __global__ void mma_bf16_wrong_fragment(const float* a, const float* b, const float* c, float* d) {
    mma_bf16_problem<true>(a, b, c, d);
}
EMU_KERNEL(mma_bf16_wrong_fragment)

extern "C" __global__ void mma_tf32_check(const float* a, const float* b, const float* c, float* d) {
    const int lane = threadIdx.x % 32, p = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int g = lane / 4, t = lane % 4;
    a += p * 128;
    b += p * 64;
    c += p * 128;
    d += p * 128;
    const uint32_t ra[4] = {__float_as_uint(a[g * 8 + t]), __float_as_uint(a[(g + 8) * 8 + t]),
                            __float_as_uint(a[g * 8 + t + 4]), __float_as_uint(a[(g + 8) * 8 + t + 4])};
    const uint32_t rb[2] = {__float_as_uint(b[t * 8 + g]), __float_as_uint(b[(t + 4) * 8 + g])};
    const float rc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
    float rd[4];
    mma_tf32_1688(rd, ra, rb, rc);
    d[g * 8 + 2 * t] = rd[0];
    d[g * 8 + 2 * t + 1] = rd[1];
    d[(g + 8) * 8 + 2 * t] = rd[2];
    d[(g + 8) * 8 + 2 * t + 1] = rd[3];
}
EMU_KERNEL(mma_tf32_check)

// ------------------------------------------------------------------ ldmatrix
// One warp. Shared memory holds four 8x8 matrices of b16, row j of matrix i at halves (8i + j) * 24 .. + 7 (a
// 48-byte row stride: 16-byte aligned rows, not contiguous), element k of it = 64i + 8j + k + 1. Lane 8i + j gives
// row j of matrix i; lanes past the matrices an x1/x2 reads give rows of matrix 3, which must be ignored.
// out (32 lanes, 4 registers): register i of each lane as an int, -1 past `matrices`. misalignLane >= 0 moves that
// lane's address by 8 bytes.
extern "C" __global__ void ldmatrix_check(int* out, int matrices, int trans, int misalignLane) {
    __shared__ __align__(16) uint16_t tile[32 * 24];
    const int lane = threadIdx.x;
    for (int e = lane; e < 32 * 24; e += 32) {
        const int row = e / 24, k = e % 24;
        tile[e] = k < 8 ? (uint16_t)(64 * (row / 8) + 8 * (row % 8) + k + 1) : (uint16_t)0xdead;
    }
    __syncthreads();
    const int matrix = lane / 8 < matrices ? lane / 8 : 3;
    const char* row = reinterpret_cast<const char*>(&tile[(8 * matrix + lane % 8) * 24]);
    if (lane == misalignLane) row += 8;
    uint32_t r[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    if (matrices == 1) {
        if (trans) ldmatrix_x1_trans(r, row); else ldmatrix_x1(r, row);
    } else if (matrices == 2) {
        if (trans) ldmatrix_x2_trans(r, row); else ldmatrix_x2(r, row);
    } else {
        if (trans) ldmatrix_x4_trans(r, row); else ldmatrix_x4(r, row);
    }
    for (int i = 0; i < 4; i++) out[lane * 4 + i] = (int)r[i];
}
EMU_KERNEL(ldmatrix_check)

// ------------------------------------------------------------------ cp.async
// One warp; thread t copies src[4t .. 4t+3] into its 16 shared bytes with `srcBytes` read, the rest zero-filled,
// waits, and after the barrier writes its NEIGHBOUR's (t ^ 1) 16 bytes to out[4t ..]. The tile holds -7 before.
extern "C" __global__ void cp_async_zero_fill(const float* src, float* out, int srcBytes) {
    __shared__ __align__(16) float tile[32 * 4];
    const int t = threadIdx.x;
    for (int k = 0; k < 4; k++) tile[4 * t + k] = -7.0f;
    __syncthreads();
    cp_async_16(&tile[4 * t], &src[4 * t], srcBytes);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    for (int k = 0; k < 4; k++) out[4 * t + k] = tile[4 * (t ^ 1) + k];
}
EMU_KERNEL(cp_async_zero_fill)

// The same with the wait in the wrong place (BUG, deliberate): not before the barrier that should publish the
// tile but after the read (and the next barrier), so the read races with the copy. On the emulator the copy happens
// at the wait: every neighbour's bytes read are still -7.
extern "C" __global__ void cp_async_missing_wait(const float* src, float* out, int srcBytes) {
    __shared__ __align__(16) float tile[32 * 4];
    const int t = threadIdx.x;
    for (int k = 0; k < 4; k++) tile[4 * t + k] = -7.0f;
    __syncthreads();
    cp_async_16(&tile[4 * t], &src[4 * t], srcBytes);
    cp_async_commit();
    __syncthreads();
    for (int k = 0; k < 4; k++) out[4 * t + k] = tile[4 * (t ^ 1) + k];
    __syncthreads();
    cp_async_wait<0>();
}
EMU_KERNEL(cp_async_missing_wait)

// Groups: thread t commits three groups, group q copying src[(q * 32 + t) * 4 ..] into its own slot q (-1 before),
// and reads its three slots before any wait, after wait<2>, after wait<1> and after wait<0>:
// out[((stage * 3 + q) * 32 + t) * 4 + k].
extern "C" __global__ void cp_async_groups(const float* src, float* out) {
    __shared__ __align__(16) float slots[3][32 * 4];
    const int t = threadIdx.x;
    for (int q = 0; q < 3; q++) {
        for (int k = 0; k < 4; k++) slots[q][4 * t + k] = -1.0f;
    }
    for (int q = 0; q < 3; q++) {
        cp_async_16(&slots[q][4 * t], &src[(q * 32 + t) * 4], 16);
        cp_async_commit();
    }
    for (int stage = 0; stage < 4; stage++) {
        if (stage == 1) cp_async_wait<2>();
        if (stage == 2) cp_async_wait<1>();
        if (stage == 3) cp_async_wait<0>();
        for (int q = 0; q < 3; q++) {
            for (int k = 0; k < 4; k++) out[((stage * 3 + q) * 32 + t) * 4 + k] = slots[q][4 * t + k];
        }
    }
}
EMU_KERNEL(cp_async_groups)

// BUG (deliberate): commits a copy and returns without waiting for it.
extern "C" __global__ void cp_async_pending_at_exit(const float* src, float* out) {
    __shared__ __align__(16) float tile[32 * 4];
    const int t = threadIdx.x;
    cp_async_16(&tile[4 * t], &src[4 * t], 16);
    cp_async_commit();
    out[t] = 1.0f;
}
EMU_KERNEL(cp_async_pending_at_exit)

// `misalign` bytes added to the destination of thread 5's copy.
extern "C" __global__ void cp_async_misaligned(const float* src, int misalign) {
    __shared__ __align__(16) float tile[32 * 4 + 4];
    const int t = threadIdx.x;
    cp_async_16(reinterpret_cast<char*>(&tile[4 * t]) + (t == 5 ? misalign : 0), &src[4 * t], 16);
    cp_async_commit();
    cp_async_wait<0>();
}
EMU_KERNEL(cp_async_misaligned)

// ------------------------------------------------------------------ shfl and the warp rendezvous
// Thread x of the block holds v = 1000 * warp + lane; out[5 * x + s] = what shfl_xor_sync(v, 1 << s) gave it.
extern "C" __global__ void shfl_check(float* out) {
    const int x = threadIdx.x;
    const float v = (float)(1000 * (x / 32) + x % 32);
    for (int s = 0; s < 5; s++) out[5 * x + s] = shfl_xor_sync(0xffffffffu, v, 1 << s);
}
EMU_KERNEL(shfl_check)

// BUG (deliberate): lanes 16..31 of each warp leave (how 0) or go to __syncthreads() (how 1) while lanes 0..15 wait
// at a shuffle.
extern "C" __global__ void warp_op_divergent(float* out, int how) {
    const int x = threadIdx.x;
    if (x % 32 >= 16) {
        if (how == 0) return;
        __syncthreads();
        return;
    }
    out[x] = shfl_xor_sync(0xffffffffu, (float)x, 1);
}
EMU_KERNEL(warp_op_divergent)

// BUG (deliberate): a shuffle in a kernel registered as barrier-free (its threads run as plain calls).
extern "C" __global__ void warp_op_nosync(float* out) {
    const int x = threadIdx.x;
    out[x] = shfl_xor_sync(0xffffffffu, (float)x, 1);
}
EMU_KERNEL_NOSYNC(warp_op_nosync)

// BUG (deliberate): lanes 0..15 shuffle while lanes 16..31 load a matrix: two different warp ops at once.
extern "C" __global__ void warp_op_mismatch(float* out) {
    __shared__ __align__(16) uint16_t tile[8 * 8];
    const int x = threadIdx.x;
    if (x % 32 < 16) {
        out[x] = shfl_xor_sync(0xffffffffu, (float)x, 1);
    } else {
        uint32_t r[1];
        ldmatrix_x1(r, &tile[8 * (x % 8)]);
        out[x] = (float)r[0];
    }
}
EMU_KERNEL(warp_op_mismatch)

// A shuffle with a partial member mask, which the emulator does not model.
extern "C" __global__ void shfl_partial_mask(float* out) {
    const int x = threadIdx.x;
    out[x] = shfl_xor_sync(0x0000ffffu, (float)x, 1);
}
EMU_KERNEL(shfl_partial_mask)
