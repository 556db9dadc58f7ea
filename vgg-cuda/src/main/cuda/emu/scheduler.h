// scheduler.h -- what the warp-level instructions (warp.cpp) need from the fiber scheduler (cuda_emu.cpp).
//
// Is: an internal interface of the emulated device, never included by kernels: the warp rendezvous, the per-thread
// cp.async queue and a way to fail the running block with a formatted message. Is not: part of the device language
// (that is cuda_emu.h). See cuda_emu.h, "Warp-level instructions", for the semantics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace emu {
namespace sched {

// One lane's operands of a warp-level instruction, deposited at the rendezvous. Which fields mean something depends
// on the instruction (warp.cpp); `out` is where this lane's result goes (its registers, on its own fiber's stack).
struct LaneCall {
    uint32_t u[6];      // mma: a[0..3], b[0..1]
    float f[4];         // mma: c[0..3]; shfl: f[0] = v
    int i;              // shfl: laneMask
    unsigned mask;      // shfl: member mask
    const void* addr;   // ldmatrix: this lane's row address
    void* out;          // mma: float[4]; ldmatrix: uint32_t[matrices]; shfl: float
};

// One warp-level instruction: every lane of a warp must call warp_rendezvous with the same op (the same complete
// function: one per form, e.g. ldmatrix.x4.trans). complete() runs once, on the lane that arrives last, over the 32
// deposits (index = lane), and writes every lane's result through its `out`. Because the results are written
// before any lane resumes, and a lane can only deposit again after it has resumed, one rendezvous per instruction
// is enough: no lane can overwrite a deposit that is still to be read.
struct WarpOp {
    const char* name;  // e.g. "ldmatrix.x4.trans", for error messages
    void (*complete)(const LaneCall* lanes);
};

// Deposits `mine` for the calling thread's lane and suspends it until all 32 lanes of its warp have deposited; the
// last to arrive runs op.complete. Returns true when the results are written. Returns false (after failing the
// launch) only for a thread that does not run as a fiber (an EMU_KERNEL_NOSYNC kernel): the caller then zero-fills
// its outputs and returns. Every other misuse (a block that is not whole warps, lanes at different instructions)
// fails the block and never returns.
bool warp_rendezvous(const WarpOp& op, const LaneCall& mine);

// Fails the running block with `why` (copied): the launch reports it with the block's index. In a fiber this never
// returns (the block is abandoned); for a thread run as a plain call (EMU_KERNEL_NOSYNC) it returns, and the block
// stops after that thread.
void block_error(const char* why);

// The calling thread's linear index in its block (for messages).
unsigned thread_in_block();

// cp.async of one thread: `open` holds the copies issued since the last commit, `groups` the committed groups,
// oldest first. A copy is performed when the wait that retires its group runs (as late as the PTX rules allow).
struct PendingCopy {
    void* dst;
    const void* src;
    int srcBytes;
};
struct CpAsyncQueue {
    std::vector<PendingCopy> open;
    std::deque<std::vector<PendingCopy>> groups;
    void clear() {
        open.clear();
        groups.clear();
    }
    bool empty() const { return open.empty() && groups.empty(); }
};
// The calling thread's queue (its fiber's, or the worker's one for threads run as plain calls).
CpAsyncQueue& cp_async_queue();

}  // namespace sched
}  // namespace emu
