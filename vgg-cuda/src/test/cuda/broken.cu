// broken.cu -- TEST-ONLY kernels with deliberate bugs, compiled into the test build of the emulated device only
// (libvggcudaemu-test.so), never into the library or the GPU build.
//
// They are the real GEMM core of gemm.cu (gemm_tile.cuh) with one fault injected through its FAULT parameter:
//   gemm_broken_nosync      the __syncthreads() between loading a shared tile and reading it is missing
//   gemm_broken_offbyone    the tile loader's depth bound is `k <= Kd` instead of `k < Kd`
// BrokenKernelTest asserts that their parity check against the reference backend FAILS on the emulator: the proof
// that the emulated device catches these two classic bugs instead of hiding them.
#include "gemm_tile.cuh"

struct BrokenGemm {  // c (M,Nd) = a (M,Kd) * b (Kd,Nd), row-major, no transposes
    int m, n, kd;
    bool aKFast, bKFast;
    const float* a;
    const float* b;
    float* c;
    __device__ float loadA(int i, int l) const { return a[(long long)i * kd + l]; }
    __device__ float loadB(int l, int j) const { return b[(long long)l * n + j]; }
    __device__ void store(int i, int j, float v) const { c[(long long)i * n + j] = v; }
};

extern "C" __global__ void gemm_broken_nosync(const float* a, const float* b, float* c, int m, int nd, int kd) {
    BrokenGemm pb{m, nd, kd, true, false, a, b, c};
    gemm_tile<PREC_FP32, BrokenGemm, tile::FAULT_NO_SYNC_AFTER_LOAD>(pb);
}
EMU_KERNEL(gemm_broken_nosync)

extern "C" __global__ void gemm_broken_offbyone(const float* a, const float* b, float* c, int m, int nd, int kd) {
    BrokenGemm pb{m, nd, kd, true, false, a, b, c};
    gemm_tile<PREC_FP32, BrokenGemm, tile::FAULT_K_BOUND_OFF_BY_ONE>(pb);
}
EMU_KERNEL(gemm_broken_offbyone)

// The same core without a fault, as the control of the negative test (it must PASS the same check).
extern "C" __global__ void gemm_control(const float* a, const float* b, float* c, int m, int nd, int kd) {
    BrokenGemm pb{m, nd, kd, true, false, a, b, c};
    gemm_tile<PREC_FP32, BrokenGemm, tile::FAULT_NONE>(pb);
}
EMU_KERNEL(gemm_control)

// Emulator self-checks (not GEMM): a barrier that only some threads reach, and a write one element past a buffer.
extern "C" __global__ void divergent_barrier(float* out) {
    if (threadIdx.x < 32) return;  // the first warp leaves; the others wait at a barrier it never reaches
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}
EMU_KERNEL(divergent_barrier)

extern "C" __global__ void write_past_end(float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = 2.0f;  // off by one: writes out[n]
}
EMU_KERNEL_NOSYNC(write_past_end)

// out[i] = in[i - 1] within each block of 256, through shared memory: thread t reads what thread t - 1 wrote.
// With the barrier (shift_sync) this is correct; without it (shift_nosync) the read races with the write. Running
// threads in ascending order would hide this race (t - 1 always runs first); the emulator's descending order in
// odd blocks exposes it.
extern "C" __global__ void shift_sync(const float* in, float* out, int n) {
    __shared__ float s[256];
    const int t = threadIdx.x;
    const long long i = (long long)blockIdx.x * blockDim.x + t;
    s[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    if (i < n) out[i] = t > 0 ? s[t - 1] : 0.0f;
}
EMU_KERNEL(shift_sync)

extern "C" __global__ void shift_nosync(const float* in, float* out, int n) {
    __shared__ float s[256];
    const int t = threadIdx.x;
    const long long i = (long long)blockIdx.x * blockDim.x + t;
    s[t] = i < n ? in[i] : 0.0f;
    if (i < n) out[i] = t > 0 ? s[t - 1] : 0.0f;  // BUG: no __syncthreads() between the write and the read
}
EMU_KERNEL(shift_nosync)
