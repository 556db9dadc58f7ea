// cuda_emu.cpp -- the emulated device's scheduler: runs a grid of blocks, each block's threads as cooperative fibers.
//
// Is: the implementation behind cuda_emu.h (kernel registry, launch, __syncthreads, the warp rendezvous of the
// warp-level instructions and each thread's cp.async queue). Is not: memory management or JNI (emu_jni.cpp), nor the
// instructions' semantics (warp.cpp). See cuda_emu.h for the execution model and what it guarantees.
#include "cuda_emu.h"
#include "scheduler.h"

#include <ucontext.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace emu {

thread_local BuiltIns builtins;

namespace {
std::atomic<const char*> g_failure{nullptr};
}

void fail(const char* why) {
    const char* none = nullptr;
    g_failure.compare_exchange_strong(none, why);
}

namespace {

// 64 KiB per thread: our kernels keep at most a 4x4 register tile and a few scalars on their stack.
constexpr size_t kStackBytes = 64 * 1024;

std::map<std::string, Kernel>& registry() {
    static std::map<std::string, Kernel> r;
    return r;
}

// ------------------------------------------------------------------ fiber contexts
// On x86-64 a fiber switch is a handful of instructions (callee-saved registers, the stack pointer, MXCSR and the
// x87 control word, which is all the System V ABI asks a call to preserve); glibc's swapcontext would also save the
// signal mask, one system call per switch, which made barrier-heavy kernels several times slower. Elsewhere (or
// with -DVGG_EMU_UCONTEXT) the portable ucontext path is used.
#if defined(__x86_64__) && !defined(VGG_EMU_UCONTEXT)
extern "C" void vgg_emu_switch(void** saveSp, void* loadSp);
asm(R"(
    .text
    .globl vgg_emu_switch
    .hidden vgg_emu_switch
    .type vgg_emu_switch, @function
vgg_emu_switch:
    endbr64
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size vgg_emu_switch, .-vgg_emu_switch
)");

struct Context {
    void* sp = nullptr;
};

// A fresh context that starts entry() on [stack, stack + size); entry must never return.
void context_make(Context& c, char* stack, size_t size, void (*entry)()) {
    uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + size) & ~uintptr_t(15);
    void** p = reinterpret_cast<void**>(top);
    *--p = nullptr;                              // entry's would-be return address (it never returns)
    *--p = reinterpret_cast<void*>(entry);       // popped by `ret`: then rsp = top - 8, as after a call
    for (int i = 0; i < 6; i++) *--p = nullptr;  // rbp rbx r12 r13 r14 r15
    --p;                                         // MXCSR and x87 control word: the current ones
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    std::memcpy(reinterpret_cast<char*>(p), &mxcsr, 4);
    std::memcpy(reinterpret_cast<char*>(p) + 4, &fpucw, 2);
    c.sp = p;
}

void context_switch(Context& from, Context& to) { vgg_emu_switch(&from.sp, to.sp); }
#else
struct Context {
    ucontext_t uc;
    bool initialised = false;
};

void context_make(Context& c, char* stack, size_t size, void (*entry)()) {
    if (!c.initialised) {
        getcontext(&c.uc);  // once per slot: makecontext reuses it
        c.initialised = true;
    }
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}

void context_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

// A fiber is runnable unless it is done, waits at the block's barrier, or waits at a warp-level instruction whose
// rendezvous (generation waitGeneration of its warp) has not completed.
struct Fiber {
    Context ctx;
    bool done = false;
    bool atBarrier = false;
    bool atWarpOp = false;
    unsigned long long waitGeneration = 0;
    sched::CpAsyncQueue cpAsync;
};

// The rendezvous of one warp: the instruction the lanes that arrived so far wait at, and their deposits.
// generation counts completed rendezvous; a waiting lane is runnable once it has moved past the one it waits for.
struct WarpState {
    sched::WarpOp op{nullptr, nullptr};
    unsigned arrived = 0;
    unsigned firstLane = 0;  // the lane that opened this rendezvous (for messages)
    unsigned long long generation = 0;
    sched::LaneCall lanes[32];
};

// One per OS worker thread: the fibers of the block it is running.
struct Worker {
    Context scheduler;
    std::vector<Fiber> fibers;
    std::unique_ptr<char[]> stacks;  // fibers.size() * kStackBytes, uninitialised (pages are touched on demand)
    std::vector<WarpState> warps;    // (threads of the block + 31) / 32
    int current = -1;                // fiber running now, -1 when threads run as plain calls
    unsigned plainThread = 0;        // the thread running as a plain call (when current is -1)
    unsigned blockThreads = 0;
    unsigned long long pendingWakeups = 0;  // lanes of completed rendezvous not resumed yet
    const Kernel* kernel = nullptr;
    void** args = nullptr;
    bool barrierInPlainMode = false;
    std::string error;               // set by block_error: the running block fails with it
    sched::CpAsyncQueue plainCpAsync;  // the cp.async queue of the thread running as a plain call
};
thread_local Worker worker;

// Non-empty (written into buf) when the calling thread leaves copies behind: PTX would still perform them, but no
// thread can know when, so a kernel that exits with copies in flight has lost track of them.
bool cp_async_left_pending(const sched::CpAsyncQueue& q, unsigned thread, char* buf, size_t size) {
    if (q.empty()) return false;
    std::snprintf(buf, size,
                  "cp.async pending at exit: thread %u returned with %zu committed group(s) not waited for and %zu "
                  "copies not committed (end with cp_async_commit() and cp_async_wait<0>())",
                  thread, q.groups.size(), q.open.size());
    return true;
}

[[noreturn]] void fiber_entry() {
    Worker& w = worker;
    w.kernel->invoker(w.args);
    Fiber& f = w.fibers[w.current];
    char buf[240];
    if (cp_async_left_pending(f.cpAsync, (unsigned)w.current, buf, sizeof buf)) {
        sched::block_error(buf);  // never returns
    }
    f.done = true;
    context_switch(f.ctx, w.scheduler);  // never resumed: the slot gets a fresh context for the next block
    std::abort();
}

uint3 thread_index(unsigned t, dim3 b) { return uint3(t % b.x, (t / b.x) % b.y, t / (b.x * b.y)); }

// Runs one block on this worker. Returns an empty string or an error.
// Fibers of a phase (the stretch between two barriers) run in thread order or in reverse: reverse when the block's
// linear index plus the phase number is odd. A thread that reads shared memory another thread writes in the same
// phase (a missing barrier) then sees it unwritten in one of the two orders, whichever direction the dependency has,
// as long as the launch has two blocks or more. Inside a phase, a fiber also stops at each warp-level instruction
// until its 32 lanes have arrived: the phase makes passes over the fibers, in the same order, until none is
// runnable.
std::string run_block(const Kernel* k, dim3 block, unsigned long long linearBlock, void** args) {
    Worker& w = worker;
    w.kernel = k;
    w.args = args;
    w.error.clear();
    const unsigned n = block.x * block.y * block.z;
    w.blockThreads = n;
    if (k->barrierFree) {
        w.current = -1;
        for (unsigned t = 0; t < n; t++) {
            builtins.thread = thread_index(t, block);
            w.plainThread = t;
            w.plainCpAsync.clear();
            k->invoker(args);
            if (w.barrierInPlainMode) {
                w.barrierInPlainMode = false;
                return "kernel registered with EMU_KERNEL_NOSYNC reached __syncthreads(); register it with EMU_KERNEL";
            }
            if (!w.error.empty()) return w.error;
            char buf[240];
            if (cp_async_left_pending(w.plainCpAsync, t, buf, sizeof buf)) return buf;
        }
        return "";
    }
    if (w.fibers.size() < n) {
        w.fibers = std::vector<Fiber>(n);
        w.stacks.reset(new char[n * kStackBytes]);
    }
    for (unsigned t = 0; t < n; t++) {
        Fiber& f = w.fibers[t];
        context_make(f.ctx, w.stacks.get() + t * kStackBytes, kStackBytes, fiber_entry);
        f.done = false;
        f.atBarrier = false;
        f.atWarpOp = false;
        f.cpAsync.clear();
    }
    w.warps.assign((n + 31) / 32, WarpState());
    w.pendingWakeups = 0;
    for (unsigned long long phase = 0;; phase++) {
        const bool reverse = ((linearBlock + phase) & 1) != 0;
        for (unsigned t = 0; t < n; t++) w.fibers[t].atBarrier = false;  // the barrier opens
        for (bool firstPass = true; firstPass || w.pendingWakeups > 0; firstPass = false) {
            for (unsigned i = 0; i < n; i++) {
                const unsigned t = reverse ? n - 1 - i : i;
                Fiber& f = w.fibers[t];
                if (f.done || f.atBarrier) continue;
                if (f.atWarpOp) {
                    if (w.warps[t / 32].generation == f.waitGeneration) continue;  // its warp is still gathering
                    w.pendingWakeups--;
                }
                builtins.thread = thread_index(t, block);
                w.current = (int)t;
                context_switch(w.scheduler, f.ctx);
                if (!w.error.empty()) {
                    w.current = -1;
                    return w.error;  // the block is abandoned: its fibers get fresh contexts next time
                }
            }
        }
        w.current = -1;
        // nothing is runnable: every live thread waits at the barrier or at a warp op that will never complete
        unsigned waiting = 0, firstWaiting = 0, done = 0, firstDone = 0, atWarp = 0, firstAtWarp = 0;
        for (unsigned t = 0; t < n; t++) {
            const Fiber& f = w.fibers[t];
            if (f.done && done++ == 0) firstDone = t;
            if (f.atBarrier && waiting++ == 0) firstWaiting = t;
            if (f.atWarpOp && atWarp++ == 0) firstAtWarp = t;
        }
        char buf[240];
        if (atWarp > 0) {
            const unsigned warp = firstAtWarp / 32;
            const WarpState& ws = w.warps[warp];
            unsigned away = warp * 32;
            while (w.fibers[away].atWarpOp) away++;  // a lane of that warp that did not arrive (one exists)
            std::snprintf(buf, sizeof buf,
                          "divergent warp op: lane %u of warp %u %s while lane %u waits at %s (%u of 32 lanes "
                          "arrived); every lane of a warp must reach each warp-level instruction",
                          away % 32, warp, w.fibers[away].done ? "returned" : "reached __syncthreads()",
                          firstAtWarp % 32, ws.op.name, ws.arrived);
            return buf;
        }
        if (waiting == 0) {
            return "";  // every thread returned
        }
        if (done > 0) {
            std::snprintf(buf, sizeof buf,
                          "divergent __syncthreads(): thread %u returned while thread %u waits at a barrier "
                          "(%u of %u threads waiting)",
                          firstDone, firstWaiting, waiting, n);
            return buf;
        }
        // every live thread reached the barrier: it opens, run the next phase
    }
}

}  // namespace

void syncthreads() {
    Worker& w = worker;
    if (w.current < 0) {
        w.barrierInPlainMode = true;  // reported by run_block; the kernel's result is void anyway
        return;
    }
    Fiber& f = w.fibers[w.current];
    f.atBarrier = true;
    context_switch(f.ctx, w.scheduler);
}

namespace sched {

void block_error(const char* why) {
    Worker& w = worker;
    if (w.error.empty()) w.error = why;
    if (w.current >= 0) {
        context_switch(w.fibers[w.current].ctx, w.scheduler);  // run_block returns the error: never resumed
        std::abort();
    }
}

unsigned thread_in_block() {
    const Worker& w = worker;
    return w.current >= 0 ? (unsigned)w.current : w.plainThread;
}

CpAsyncQueue& cp_async_queue() {
    Worker& w = worker;
    return w.current >= 0 ? w.fibers[w.current].cpAsync : w.plainCpAsync;
}

bool warp_rendezvous(const WarpOp& op, const LaneCall& mine) {
    Worker& w = worker;
    char buf[240];
    if (w.current < 0) {
        std::snprintf(buf, sizeof buf,
                      "kernel registered with EMU_KERNEL_NOSYNC used the warp-level instruction %s; register it with "
                      "EMU_KERNEL (a warp op needs the block's threads as fibers)",
                      op.name);
        block_error(buf);
        return false;
    }
    const unsigned t = (unsigned)w.current;
    if (w.blockThreads % 32 != 0) {
        std::snprintf(buf, sizeof buf,
                      "warp-level instruction %s in a block of %u threads: warp ops need whole warps (a block size "
                      "that is a multiple of 32)",
                      op.name, w.blockThreads);
        block_error(buf);
    }
    WarpState& ws = w.warps[t / 32];
    const unsigned lane = t % 32;
    if (ws.arrived == 0) {
        ws.op = op;
        ws.firstLane = lane;
    } else if (ws.op.complete != op.complete) {
        std::snprintf(buf, sizeof buf,
                      "divergent warp op: lane %u of warp %u reached %s while lane %u of its warp waits at %s",
                      lane, t / 32, op.name, ws.firstLane, ws.op.name);
        block_error(buf);
    }
    ws.lanes[lane] = mine;
    if (++ws.arrived < 32) {
        Fiber& f = w.fibers[t];
        f.atWarpOp = true;
        f.waitGeneration = ws.generation;
        context_switch(f.ctx, w.scheduler);
        f.atWarpOp = false;  // the last lane has written this lane's result
        return true;
    }
    ws.op.complete(ws.lanes);  // the last lane computes every lane's result
    ws.arrived = 0;
    ws.generation++;
    w.pendingWakeups += 31;
    return true;
}

}  // namespace sched

Registration::Registration(const char* name, Invoker invoker, bool barrierFree, const char* signature) {
    registry()[name] = Kernel{invoker, barrierFree, signature};
}

const Kernel* find_kernel(const char* name) {
    auto it = registry().find(name);
    return it == registry().end() ? nullptr : &it->second;
}

// Worker threads that live as long as the process, so a launch does not pay for creating threads (nor for their
// fibers' stacks, which each worker keeps). Helper i runs the launch's work function when i < the helpers asked for.
class Pool {
  public:
    explicit Pool(int helpers) {
        for (int i = 0; i < helpers; i++) std::thread([this, i] { loop(i); }).detach();
    }

    // Runs work on the calling thread and on `helpers` pool threads; returns when all are done.
    void run(const std::function<void()>& work, int helpers) {
        {
            std::lock_guard<std::mutex> g(mu_);
            job_ = &work;
            wanted_ = helpers;
            running_ = helpers;
            generation_++;
        }
        cv_.notify_all();
        work();
        std::unique_lock<std::mutex> l(mu_);
        done_.wait(l, [this] { return running_ == 0; });
        job_ = nullptr;
    }

  private:
    void loop(int index) {
        unsigned long long seen = 0;
        for (;;) {
            const std::function<void()>* job;
            {
                std::unique_lock<std::mutex> l(mu_);
                cv_.wait(l, [&] { return generation_ != seen; });
                seen = generation_;
                if (index >= wanted_) continue;
                job = job_;
            }
            (*job)();
            std::lock_guard<std::mutex> g(mu_);
            if (--running_ == 0) done_.notify_all();
        }
    }

    std::mutex mu_;
    std::condition_variable cv_, done_;
    const std::function<void()>* job_ = nullptr;
    unsigned long long generation_ = 0;
    int wanted_ = 0;
    int running_ = 0;
};

static int worker_count() {
    const char* e = std::getenv("VGG_EMU_THREADS");
    int n = e ? std::atoi(e) : 2;
    int hw = (int)std::thread::hardware_concurrency();
    if (n < 1) n = 1;
    if (hw > 0 && n > hw) n = hw;
    return n;
}

const char* launch(const Kernel* k, dim3 grid, dim3 block, void** args) {
    static thread_local std::string error;
    error.clear();
    const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
    const unsigned threads = block.x * block.y * block.z;
    if (blocks == 0 || threads == 0 || threads > 1024 || grid.y > 65535 || grid.z > 65535) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)", grid.x,
                      grid.y, grid.z, block.x, block.y, block.z);
        error = buf;
        return error.c_str();
    }
    g_failure.store(nullptr);
    std::atomic<unsigned long long> next{0};
    std::mutex mu;
    std::string firstError;
    auto work = [&]() {
        builtins.blockDims = block;
        builtins.gridDims = grid;
        for (;;) {
            unsigned long long b = next.fetch_add(1);
            if (b >= blocks) return;
            builtins.block = uint3(b % grid.x, (b / grid.x) % grid.y, b / ((unsigned long long)grid.x * grid.y));
            std::string e = run_block(k, block, b, args);
            if (!e.empty()) {
                std::lock_guard<std::mutex> g(mu);
                if (firstError.empty()) {
                    char where[80];
                    std::snprintf(where, sizeof where, " in block (%u,%u,%u)", builtins.block.x,
                                  builtins.block.y, builtins.block.z);
                    firstError = e + where;
                }
                next.store(blocks);  // stop handing out blocks
                return;
            }
        }
    };
    static const int kWorkers = worker_count();
    static Pool* pool = new Pool(kWorkers - 1);  // never destroyed: its threads are detached and outlive main
    static std::mutex launchMu;                   // one launch at a time uses the pool
    std::lock_guard<std::mutex> one(launchMu);
    const int helpers = (int)std::min<unsigned long long>(kWorkers, blocks) - 1;
    if (helpers <= 0) {
        work();
    } else {
        pool->run(work, helpers);
    }
    const char* failed = g_failure.exchange(nullptr);
    if (failed != nullptr && firstError.empty()) {
        firstError = std::string("kernel requirement failed: ") + failed;
    }
    if (!firstError.empty()) {
        error = firstError;
        return error.c_str();
    }
    return nullptr;
}

}  // namespace emu
