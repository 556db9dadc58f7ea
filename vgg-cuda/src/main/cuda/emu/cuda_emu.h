// cuda_emu.h -- the CUDA execution model on the CPU, so that our .cu kernels compile with g++ and run without a GPU.
//
// Is: enough of CUDA's device-side language for the kernels in ../*.cu -- dim3, threadIdx/blockIdx/blockDim/gridDim,
// per-block __shared__ memory, __syncthreads() with real barrier semantics, atomics, the float math intrinsics the
// kernels use -- plus the launcher that runs a grid, and the warp-level instructions of ../warp_mma.cuh (below).
// Is not: a host API (no cudaMalloc here; the JNI layer in emu_jni.cpp owns memory), not warp-synchronous outside
// those instructions (no votes, no implicit lockstep), not a timing model. It is a debugging device: results must
// equal the GPU's for kernels without data races.
//
// How a launch runs (fiber switches: hand-written on x86-64, ucontext elsewhere; see cuda_emu.cpp):
//   * blocks are independent: they are handed out to a pool of OS worker threads (environment VGG_EMU_THREADS,
//     default 2, at most the number of cores: polite on shared CI machines);
//   * the threads of ONE block run as cooperative fibers on that worker: a fiber runs until it calls
//     __syncthreads() or returns, then the next fiber runs. A barrier opens only when every live thread of the
//     block has arrived, exactly CUDA's rule; a thread that RETURNS while others wait at a barrier is reported as a
//     divergent-barrier error (undefined behaviour on a GPU, so we fail loudly instead of guessing);
//   * __shared__ is `static thread_local`: one copy per worker thread, i.e. per running block, shared by its fibers.
//     Like CUDA, it is NOT cleared between blocks: a kernel reading shared memory it did not write sees stale data
//     from the previous block, which is how a missing __syncthreads() shows up as wrong results here;
//   * because fibers switch only at barriers (and warp-level instructions, below), a kernel that forgets a barrier
//     sees its neighbours' writes MISSING (they have not run yet), deterministically, rather than maybe-missing as on
//     a GPU. The threads of a phase run in ascending order in even blocks and descending order in odd ones
//     (alternating every phase), so a dependency in either direction is exposed by any launch of two blocks or more.
//
// Warp-level instructions (../warp_mma.cuh: mma.sync bf16 m16n8k16 and tf32 m16n8k8, ldmatrix x1/x2/x4[.trans],
// cp.async with commit/wait groups, shfl_xor_sync; implemented in warp.cpp, the rendezvous in cuda_emu.cpp):
//   * lane = linear thread index % 32, warp = linear thread index / 32. A warp op deposits the lane's operands and
//     suspends its fiber until all 32 lanes of its warp have deposited; the last lane computes every lane's result
//     from the 32 deposits, exactly as the PTX ISA lays out the fragments, and writes it into each lane's registers
//     before any of them resumes (so no second rendezvous is needed: a lane deposits again only after resuming);
//   * the launch FAILS, with a message naming lane, warp and instruction, when: a lane returns or reaches
//     __syncthreads() while others of its warp wait at a warp op (divergent warp op: undefined on a GPU, a hang or
//     garbage there); lanes of a warp reach different warp ops; the block size is not a multiple of 32; the kernel is
//     registered EMU_KERNEL_NOSYNC (its threads are plain calls, they cannot wait for each other); an ldmatrix row
//     address that is read, or a cp.async address, is not 16-byte aligned; shfl_xor_sync's mask is not full;
//   * mma: D = A * B + C where each element is accumulated with fmaf in increasing k, starting from C. Products of
//     bf16 (and of tf32) operands are exact in fp32, so each step rounds once; the tensor core's own adder may round
//     differently (its order and internal width are not documented), so GPU results can differ in the last bits.
//     A tf32 operand is the register's fp32 value with its low 13 mantissa bits ignored, as the tensor core reads it;
//   * cp.async: per THREAD queues: copies since the last commit, then committed groups, oldest first. A copy is
//     performed as LATE as the rules allow: at the cp_async_wait<N>() that retires its group (source read and
//     destination written there). A thread that reads the destination before its wait -- or another thread before
//     the wait and a __syncthreads() -- sees the OLD contents, which is how a missing wait shows up here. srcBytes
//     < 16 zero-fills the rest (0: nothing is read). A thread that exits with copies still pending or uncommitted
//     fails the launch ("cp.async pending at exit");
//   * not modelled: timing, latency, bank conflicts, whether an address is really in shared memory.
//
// Dimension legend used by kernels: see each .cu file.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <cfloat>
#include <climits>
#include <algorithm>
#include <utility>
#include <type_traits>

#define VGG_EMULATED 1

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef dim3 uint3;

namespace emu {

// What a fiber sees as its built-in variables. One per OS worker thread; the scheduler rewrites threadIdx before it
// resumes each fiber, so inside a kernel these read exactly like CUDA's built-ins.
struct BuiltIns {
    uint3 thread;  // threadIdx
    uint3 block;   // blockIdx
    dim3 blockDims;  // blockDim
    dim3 gridDims;   // gridDim
};
extern thread_local BuiltIns builtins;

// Marks the running launch as failed with `why` (a kernel's tiling assumption did not hold); see KERNEL_REQUIRE.
void fail(const char* why);

// Suspends the calling fiber until every live thread of its block has called it (defined in cuda_emu.cpp).
void syncthreads();

// A kernel as the launcher sees it: a function of the packed argument slots (cuLaunchKernel's kernelParams layout:
// args[i] points at the i-th argument's value).
typedef void (*Invoker)(void** args);

// Registry of kernels by their extern "C" name, filled at library load by EMU_KERNEL below.
struct Registration {
    // barrierFree: the kernel never calls __syncthreads(), so its threads may run as plain calls (no fibers). The
    // launcher checks the promise: a barrier-free kernel that reaches __syncthreads() fails its launch.
    // signature: one letter per parameter, as signature_of below writes it.
    Registration(const char* name, Invoker invoker, bool barrierFree, const char* signature);
};
struct Kernel {
    Invoker invoker;
    bool barrierFree;
    const char* signature;
};
const Kernel* find_kernel(const char* name);

// Runs grid x block threads of `invoker`. Returns nullptr on success, else a static-lifetime error message.
const char* launch(const Kernel* kernel, dim3 grid, dim3 block, void** args);

// Unpacks args[] into a typed call: the element type of each slot is the kernel parameter's type.
template <typename... A, size_t... I>
inline void call_unpacked(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}
template <typename... A>
inline void call_packed(void (*f)(A...), void** args) {
    call_unpacked(f, args, std::index_sequence_for<A...>{});
}

// The width class of one kernel parameter as the GPU's ABI sees it (the PTX .param type): 'q' an 8-byte integer or a
// pointer (.u64), 'i' a 4-byte integer (.u32/.s32), 'f' float (.f32), 'd' double (.f64); '?' anything else.
// org.vgg4j.cuda.KernelArgs checks every launch against this string (a 4-byte int where the kernel takes a
// long long reads garbage on a GPU, while 8-byte slots would hide it here).
template <typename T>
constexpr char param_code() {
    using U = std::remove_cv_t<std::remove_reference_t<T>>;
    if constexpr (std::is_pointer_v<U>) return 'q';
    else if constexpr (std::is_same_v<U, float>) return 'f';
    else if constexpr (std::is_same_v<U, double>) return 'd';
    else if constexpr (std::is_integral_v<U> && sizeof(U) == 8) return 'q';
    else if constexpr (std::is_integral_v<U> && sizeof(U) == 4) return 'i';
    else return '?';
}
template <typename... A>
struct Signature {
    static constexpr char value[sizeof...(A) + 1] = {param_code<A>()..., '\0'};
};
template <typename... A>
constexpr const char* signature_of(void (*)(A...)) {
    return Signature<A...>::value;
}

}  // namespace emu

// ------------------------------------------------------------------ the device language
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict
#define __shared__ static thread_local
#define __syncthreads() ::emu::syncthreads()
#define threadIdx (::emu::builtins.thread)
#define blockIdx (::emu::builtins.block)
#define blockDim (::emu::builtins.blockDims)
#define gridDim (::emu::builtins.gridDims)

// Registers an extern "C" __global__ kernel under its own name (a no-op under nvcc, see kernel_common.cuh).
#define EMU_KERNEL(name) \
    static ::emu::Registration emu_reg_##name(#name, [](void** a) { ::emu::call_packed(&name, a); }, false, \
                                              ::emu::signature_of(&name));
// Same for a kernel without any __syncthreads(): runs its threads as plain calls, much faster on the emulator.
#define EMU_KERNEL_NOSYNC(name) \
    static ::emu::Registration emu_reg_##name(#name, [](void** a) { ::emu::call_packed(&name, a); }, true, \
                                              ::emu::signature_of(&name));

// Math: nvcc maps these to hardware instructions; here libm gives the correctly rounded (or as accurate) value.
// The kernels use fmaf explicitly where the GPU would fuse, so both devices round the same way.
__forceinline__ float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
__forceinline__ float __fdividef(float a, float b) { return a / b; }
__forceinline__ float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
__forceinline__ int __float_as_int(float f) { int v; std::memcpy(&v, &f, 4); return v; }
__forceinline__ unsigned int __float_as_uint(float f) { unsigned int v; std::memcpy(&v, &f, 4); return v; }
__forceinline__ float __uint_as_float(unsigned int v) { float f; std::memcpy(&f, &v, 4); return f; }
__forceinline__ unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
__forceinline__ unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
using std::min;
using std::max;

// Atomics: blocks of one launch may run on different worker threads, so these are real atomic operations.
__forceinline__ float atomicAdd(float* p, float v) {
    unsigned int* u = reinterpret_cast<unsigned int*>(p);
    unsigned int old = __atomic_load_n(u, __ATOMIC_RELAXED);
    unsigned int want;
    do {
        want = __float_as_uint(__uint_as_float(old) + v);
    } while (!__atomic_compare_exchange_n(u, &old, want, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return __uint_as_float(old);
}
__forceinline__ int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
__forceinline__ unsigned int atomicAdd(unsigned int* p, unsigned int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
__forceinline__ int atomicMax(int* p, int v) {
    int old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
__forceinline__ int atomicCAS(int* p, int cmp, int v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;
}
__forceinline__ void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
