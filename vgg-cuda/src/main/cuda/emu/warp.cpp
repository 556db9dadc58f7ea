// warp.cpp -- the warp-level instructions of warp_mma.cuh on the emulated device: mma.sync (bf16 m16n8k16, tf32
// m16n8k8), ldmatrix (x1/x2/x4, .trans), cp.async (16 bytes, zero-fill, commit/wait groups) and shfl.xor.
//
// Is: each instruction's semantics as the PTX ISA documents it, on top of the scheduler's warp rendezvous
// (scheduler.h): every lane deposits its operands, the last lane to arrive computes the whole warp's results from
// the 32 deposits and writes each lane's registers. cp.async needs no rendezvous: it is per thread.
// Is not: a timing model (no bank conflicts, no latency), nor the tensor core's internal adder (see cuda_emu.h,
// "Warp-level instructions", for the accumulation order used instead).
//
// Fragment notation below: lane l, groupID g = l / 4, thread-in-group t = l % 4 (warp_mma.cuh's comment).
#include <cstdio>
#include <cstring>

#include "cuda_emu.h"
#include "scheduler.h"
#include "warp_mma.cuh"

namespace emu {

namespace {

using sched::LaneCall;
using sched::WarpOp;

float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// The two bf16 halves of a 32-bit register: the lower index in the low 16 bits.
float bf16_low(uint32_t r) { return bits_float(r << 16); }
float bf16_high(uint32_t r) { return bits_float(r & 0xffff0000u); }

// A tf32 operand as the tensor core reads the register: the low 13 mantissa bits are ignored (a finite value is
// truncated to 10 mantissa bits; inf and NaN pass unchanged, so a NaN whose payload lies in those bits stays NaN).
float tf32_operand(uint32_t r) {
    if ((r & 0x7f800000u) == 0x7f800000u) return bits_float(r);
    return bits_float(r & 0xffffe000u);
}

// d = a (16 x K) * b (K x 8) + c, one fmaf per product in increasing k, starting from c.
template <int K>
void multiply(const float (&a)[16][K], const float (&b)[K][8], float (&d)[16][8]) {
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 8; j++) {
            float acc = d[i][j];
            for (int k = 0; k < K; k++) acc = fmaf(a[i][k], b[k][j], acc);
            d[i][j] = acc;
        }
    }
}

// C/D fragment (both shapes): c[0..1] = C[g][2t..2t+1], c[2..3] = C[g+8][2t..2t+1].
void gather_c(const LaneCall* lanes, float (&c)[16][8]) {
    for (int l = 0; l < 32; l++) {
        const int g = l / 4, t = l % 4;
        c[g][2 * t] = lanes[l].f[0];
        c[g][2 * t + 1] = lanes[l].f[1];
        c[g + 8][2 * t] = lanes[l].f[2];
        c[g + 8][2 * t + 1] = lanes[l].f[3];
    }
}
void scatter_d(const LaneCall* lanes, const float (&d)[16][8]) {
    for (int l = 0; l < 32; l++) {
        const int g = l / 4, t = l % 4;
        float* out = static_cast<float*>(lanes[l].out);
        out[0] = d[g][2 * t];
        out[1] = d[g][2 * t + 1];
        out[2] = d[g + 8][2 * t];
        out[3] = d[g + 8][2 * t + 1];
    }
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
//   a[0] = A[g][2t..2t+1]  a[1] = A[g+8][2t..2t+1]  a[2] = A[g][2t+8..2t+9]  a[3] = A[g+8][2t+8..2t+9]
//   b[0] = B[2t..2t+1][g]  b[1] = B[2t+8..2t+9][g]
void mma_bf16_complete(const LaneCall* lanes) {
    float a[16][16], b[16][8], d[16][8];
    for (int l = 0; l < 32; l++) {
        const int g = l / 4, t = l % 4;
        const uint32_t* ra = lanes[l].u;
        const uint32_t* rb = lanes[l].u + 4;
        const int rows[4] = {g, g + 8, g, g + 8};
        const int cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
        for (int r = 0; r < 4; r++) {
            a[rows[r]][cols[r]] = bf16_low(ra[r]);
            a[rows[r]][cols[r] + 1] = bf16_high(ra[r]);
        }
        b[2 * t][g] = bf16_low(rb[0]);
        b[2 * t + 1][g] = bf16_high(rb[0]);
        b[2 * t + 8][g] = bf16_low(rb[1]);
        b[2 * t + 9][g] = bf16_high(rb[1]);
    }
    gather_c(lanes, d);
    multiply<16>(a, b, d);
    scatter_d(lanes, d);
}

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
//   a[0] = A[g][t]  a[1] = A[g+8][t]  a[2] = A[g][t+4]  a[3] = A[g+8][t+4]   b[0] = B[t][g]  b[1] = B[t+4][g]
void mma_tf32_complete(const LaneCall* lanes) {
    float a[16][8], b[8][8], d[16][8];
    for (int l = 0; l < 32; l++) {
        const int g = l / 4, t = l % 4;
        const uint32_t* ra = lanes[l].u;
        const uint32_t* rb = lanes[l].u + 4;
        a[g][t] = tf32_operand(ra[0]);
        a[g + 8][t] = tf32_operand(ra[1]);
        a[g][t + 4] = tf32_operand(ra[2]);
        a[g + 8][t + 4] = tf32_operand(ra[3]);
        b[t][g] = tf32_operand(rb[0]);
        b[t + 4][g] = tf32_operand(rb[1]);
    }
    gather_c(lanes, d);
    multiply<8>(a, b, d);
    scatter_d(lanes, d);
}

LaneCall mma_call(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    LaneCall m{};
    for (int i = 0; i < 4; i++) m.u[i] = a[i];
    m.u[4] = b[0];
    m.u[5] = b[1];
    for (int i = 0; i < 4; i++) m.f[i] = c[i];
    m.out = d;
    return m;
}

// ldmatrix.sync.aligned.m8n8.xM[.trans].shared.b16: lane 8i + j gives the address of row j of matrix i (16 bytes,
// 16-byte aligned); register i of lane l receives matrix i's row l/4, elements 2(l%4) and 2(l%4)+1 (low half first)
// -- with .trans, the same elements of the transposed matrix, i.e. column l/4, rows 2(l%4) and 2(l%4)+1.
template <int M, bool TRANS>
void ldmatrix_complete(const LaneCall* lanes) {
    uint16_t m[M][8][8];
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < 8; j++) {
            const LaneCall& src = lanes[8 * i + j];
            if (reinterpret_cast<uintptr_t>(src.addr) % 16 != 0) {
                char buf[200];
                std::snprintf(buf, sizeof buf,
                              "ldmatrix.x%d: the row address %p of lane %d (matrix %d, row %d) is not 16-byte aligned",
                              M, src.addr, 8 * i + j, i, j);
                sched::block_error(buf);
                return;
            }
            std::memcpy(m[i][j], src.addr, 16);
        }
    }
    for (int l = 0; l < 32; l++) {
        uint32_t* r = static_cast<uint32_t*>(lanes[l].out);
        const int row = l / 4, col = 2 * (l % 4);
        for (int i = 0; i < M; i++) {
            const uint16_t lo = TRANS ? m[i][col][row] : m[i][row][col];
            const uint16_t hi = TRANS ? m[i][col + 1][row] : m[i][row][col + 1];
            r[i] = (uint32_t)lo | ((uint32_t)hi << 16);
        }
    }
}

// shfl.sync.bfly.b32 with a full mask and a 32-lane segment: lane l receives lane (l ^ laneMask)'s value.
void shfl_xor_complete(const LaneCall* lanes) {
    for (int l = 0; l < 32; l++) {
        *static_cast<float*>(lanes[l].out) = lanes[l ^ lanes[l].i].f[0];
    }
}

// Performs one cp.async copy: srcBytes bytes from the source, the rest of the 16 zero-filled.
void perform(const sched::PendingCopy& c) {
    std::memcpy(c.dst, c.src, (size_t)c.srcBytes);
    std::memset(static_cast<char*>(c.dst) + c.srcBytes, 0, (size_t)(16 - c.srcBytes));
}

}  // namespace

void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    static const WarpOp op{"mma.m16n8k16.bf16", mma_bf16_complete};
    if (!sched::warp_rendezvous(op, mma_call(d, a, b, c))) std::memset(d, 0, 4 * sizeof(float));
}

void mma_tf32_1688(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    static const WarpOp op{"mma.m16n8k8.tf32", mma_tf32_complete};
    if (!sched::warp_rendezvous(op, mma_call(d, a, b, c))) std::memset(d, 0, 4 * sizeof(float));
}

void ldmatrix(uint32_t* r, int matrices, bool trans, const void* row) {
    static const WarpOp ops[2][3] = {
        {{"ldmatrix.x1", ldmatrix_complete<1, false>},
         {"ldmatrix.x2", ldmatrix_complete<2, false>},
         {"ldmatrix.x4", ldmatrix_complete<4, false>}},
        {{"ldmatrix.x1.trans", ldmatrix_complete<1, true>},
         {"ldmatrix.x2.trans", ldmatrix_complete<2, true>},
         {"ldmatrix.x4.trans", ldmatrix_complete<4, true>}}};
    const int form = matrices == 1 ? 0 : matrices == 2 ? 1 : matrices == 4 ? 2 : -1;
    if (form < 0) {
        char buf[120];
        std::snprintf(buf, sizeof buf, "ldmatrix of %d matrices: expected 1, 2 or 4", matrices);
        sched::block_error(buf);
        return;
    }
    LaneCall m{};
    m.addr = row;
    m.out = r;
    if (!sched::warp_rendezvous(ops[trans ? 1 : 0][form], m)) std::memset(r, 0, (size_t)matrices * 4);
}

float shfl_xor_sync(unsigned mask, float v, int laneMask) {
    static const WarpOp op{"shfl.sync.bfly", shfl_xor_complete};
    char buf[200];
    if (mask != 0xffffffffu) {
        std::snprintf(buf, sizeof buf,
                      "shfl_xor_sync with member mask 0x%08x in thread %u: the emulator supports the full mask "
                      "0xffffffff only",
                      mask, sched::thread_in_block());
        sched::block_error(buf);
        return v;
    }
    if (laneMask < 0 || laneMask > 31) {
        std::snprintf(buf, sizeof buf, "shfl_xor_sync with laneMask %d in thread %u: expected 0..31", laneMask,
                      sched::thread_in_block());
        sched::block_error(buf);
        return v;
    }
    float result = v;
    LaneCall m{};
    m.f[0] = v;
    m.i = laneMask;
    m.mask = mask;
    m.out = &result;
    if (!sched::warp_rendezvous(op, m)) return v;
    return result;
}

void cp_async_16(void* dst, const void* src, int srcBytes) {
    char buf[240];
    if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || reinterpret_cast<uintptr_t>(src) % 16 != 0) {
        std::snprintf(buf, sizeof buf,
                      "cp.async of thread %u: destination %p and source %p must both be 16-byte aligned",
                      sched::thread_in_block(), dst, src);
        sched::block_error(buf);
        return;
    }
    if (srcBytes < 0 || srcBytes > 16) {
        std::snprintf(buf, sizeof buf, "cp.async of thread %u: srcBytes %d, expected 0..16",
                      sched::thread_in_block(), srcBytes);
        sched::block_error(buf);
        return;
    }
    sched::cp_async_queue().open.push_back(sched::PendingCopy{dst, src, srcBytes});
}

void cp_async_commit() {
    sched::CpAsyncQueue& q = sched::cp_async_queue();
    q.groups.push_back(std::move(q.open));
    q.open.clear();
}

void cp_async_wait(int n) {
    if (n < 0) {
        char buf[120];
        std::snprintf(buf, sizeof buf, "cp_async_wait<%d> in thread %u: expected N >= 0", n,
                      sched::thread_in_block());
        sched::block_error(buf);
        return;
    }
    sched::CpAsyncQueue& q = sched::cp_async_queue();
    while (q.groups.size() > (size_t)n) {
        for (const sched::PendingCopy& c : q.groups.front()) perform(c);
        q.groups.pop_front();
    }
}

}  // namespace emu
