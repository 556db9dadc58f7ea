// conv_tc.cu -- 2-D convolution on tensor cores: BF16 operands, FP32 accumulation, implicit GEMM in NHWC.
//
// Dimension legend: N batch, C in-channels, K out-channels, H/W input height/width, P/Q output height/width
// (P = H + 2 pad - R + 1, Q = W + 2 pad - S + 1), R/S kernel height/width; stride 1, square zero padding.
// Layout inside: activations NHWC (channels last), weights (K,R,S,C), bf16 stored as uint16_t bits; results f32.
// conv.cu holds the readable reference versions of the same passes (NCHW f32, one 64x64x16 tile); this file is
// the fast version.
//
// GEMM view of each kernel (Kd is the summed dimension):
//   conv_tc_fwd_bf16     y (NPQ x K) = A (NPQ x RSC) * B (RSC x K)   [+ bias[k]] [ReLU]
//                        A[m][(r*S+s)*C+c] = x[n][p+r-pad][q+s-pad][c] (im2col, never written; zero outside),
//                        B[kd][k] = w[k][kd]: w (K,R,S,C) is B^T row-major, the "col" operand of mma.sync.
//                        M = pixels (n,p,q), N = out-channels, Kd = (r,s,c) with c fastest: every 8 channels of a
//                        tap are 16 contiguous bytes, one cp.async (hence C % 8 == 0; a layer with other C, VGG's
//                        conv1_1 with C = 3, runs with C padded to Cp = the next multiple of 8 by the layout kernels,
//                        zeros in x and w, which add nothing to any sum).
//   backward-data        dx = conv_tc_fwd_bf16(dy, conv_tc_flip_weights_bf16(w), pad' = R-1-pad), C and K swapped.
//   conv_tc_wgrad_bf16   partial_z (K x RSC) = A (K x pixels_z) * B (pixels_z x RSC)  (or += with one slice)
//                        A[k][pix] = dy[pix][k], B[pix][(r*S+s)*C+c] = x[n][p+r-pad][q+s-pad][c]; both operands
//                        are contiguous along M / N, so their tiles are stored k-major and read with ldmatrix.trans.
//   conv_tc_wgrad_reduce dw (K,C,R,S) += sum over z in order of partial_z (deterministic split-K; SPI rule:
//                        backward-filter accumulates); with padded channels partial_z is (K x R*S*Cp) and only
//                        the C real channels are written.
// Layout kernels: conv_tc_pack_weights_bf16 (K,C,R,S f32 -> K,R,S,Cp bf16), conv_tc_flip_weights_bf16
// (K,C,R,S f32 -> C,R,S,K bf16, spatially flipped), nchw_to_nhwc_bf16 (N,C,HW f32 -> N,HW,Cp bf16),
// nhwc_to_nchw_f32; Cp >= C, the channels past C zero. Elementwise: 256 threads, grid-stride, any grid.
// A fully connected layer is a 1x1 convolution of a 1x1 image (N, P = Q = H = W = 1): y (N,O) = x (N,I) w (O,I)^T is
// conv_tc_fwd_bf16 with C = I, K = O; dx = dy w is the same with w transposed (conv_tc_flip_weights_bf16 at 1x1);
// dw (O,I) = dy^T x is conv_tc_wgrad_bf16 (TensorCoreGemm).
//
// Tiling of the two GEMM kernels: 256 threads = 8 warps, block tile 128 (M) x 128 (N), depth BK = 32 per stage.
// Warps are 2 (M) x 4 (N), each owning 64 x 32 of the tile: 4 x 4 mma.sync m16n8k16 per 16 of depth, the A
// fragments by ldmatrix.x4 (one per 16 rows), the B fragments by ldmatrix.x4 (one per 16 columns). Stages are filled
// by cp.async (16 bytes = 8 bf16 per copy, 4 copies per thread per stage) in a 3-stage pipeline: the copies of
// stage kt+2 are in flight while stage kt is multiplied. Shared memory is exactly 3 x (128x32 + 128x32) x 2 B =
// 48 KiB (the static limit), swizzled instead of padded (see swz64 / swz256). Results go from the accumulator
// registers straight to global memory, bias and ReLU fused (fwd). The im2col gather costs no division in the main
// loop: each thread owns fixed rows (fwd) or a fixed column (wgrad) of the tile, decodes them once, and walks the
// other index by steps.
// Check: ConvTcKernelTest (emulator: exact on small integers, 1e-5 relative on bf16-exact reals, vs plain loops).
#include "warp_mma.cuh"

namespace tc {
constexpr int BM = 128;      // rows of the GEMM per block
constexpr int BN = 128;      // columns of the GEMM per block
constexpr int BK = 32;       // depth of one stage
constexpr int STAGES = 3;    // cp.async pipeline depth
constexpr int THREADS = 256; // 8 warps, 2 (M) x 4 (N), 64 x 32 each
constexpr int TILE = 128 * 32;  // bf16 elements of one operand tile (BM x BK == BK x BN)
}  // namespace tc

// One pipeline's shared memory: exactly 48 KiB, nothing else is __shared__ in these kernels.
struct TcSmem {
    uint16_t a[tc::STAGES][tc::TILE];
    uint16_t b[tc::STAGES][tc::TILE];
};

// Forward tiles are 128 rows x 32 bf16 (64-byte rows, 4 chunks of 16 bytes, k fastest). ldmatrix reads one chunk
// column of 8 consecutive rows per phase; unswizzled, rows r and r+2 share banks (64-byte stride). XOR-ing the chunk
// index with (row / 2) % 4 puts those 8 rows on 8 different 16-byte bank groups, and a cp.async warp's 32 chunks
// still cover 512 contiguous bytes. Returns the byte offset of logical chunk `chunk` of `row`.
__device__ __forceinline__ int swz64(int row, int chunk) { return row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4); }

// Weight-gradient tiles are 32 rows (pixels) x 128 bf16 (256-byte rows, 16 chunks); ldmatrix.trans reads one chunk
// column of 8 consecutive rows: XOR with row % 8 spreads them over the 8 bank groups of a 128-byte line.
__device__ __forceinline__ int swz256(int row, int chunk) { return row * 256 + ((chunk ^ (row & 7)) << 4); }

struct __align__(8) TcFloat2 {
    float x, y;
};

// ReLU that keeps NaN visible, as relu_fwd does
__device__ __forceinline__ float tc_relu(float v) { return v > 0.0f || v != v ? v : 0.0f; }

// Walks Kd = (r, s, c), c fastest, by steps of channels without dividing; off = (r*W + s)*C + c is the element
// offset of the tap relative to the pixel's top-left input position.
struct TapWalk {
    int r, s, c;
    long long off;
    int C, S;
    long long rowJump;  // (W - S) * C: from (r, S, 0) to (r + 1, 0, 0)
    __device__ __forceinline__ void advance(int step) {
        c += step;
        off += step;
        while (c >= C) {
            c -= C;
            if (++s == S) {
                s = 0;
                r++;
                off += rowJump;
            }
        }
    }
};

// One warp's 64 x 32 block of the product of one 16-deep slice: af[mi] holds the A fragment of rows 16 mi..,
// bf[ni] the B fragment of columns 8 ni..
__device__ __forceinline__ void tc_mma_slice(float acc[4][4][4], const uint32_t af[4][4], const uint32_t bf[4][2]) {
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++) mma_bf16_16816(acc[mi][ni], af[mi], bf[ni], acc[mi][ni]);
}

// ------------------------------------------------------------------ forward (and backward-data)

// y (N,P,Q,K) f32 = conv(x (N,H,W,C) bf16, w (K,R,S,C) bf16) [+ bias (K)] [ReLU when relu != 0].
// Launch: 256 threads, grid (ceil(N*P*Q/128), ceil(K/128), 1). Requires C % 8 == 0.
extern "C" __global__ void __launch_bounds__(256, 2)
    conv_tc_fwd_bf16(const uint16_t* x, const uint16_t* wgt, const float* bias, float* y, int n, int h, int w, int c,
                     int k, int r, int s, int pad, int relu) {
    using namespace tc;
    const int P = h + 2 * pad - r + 1, Q = w + 2 * pad - s + 1;
    KERNEL_REQUIRE(blockDim.x == THREADS && blockDim.y == 1 && blockDim.z == 1);
    KERNEL_REQUIRE(c % 8 == 0 && c > 0 && k > 0 && n > 0 && P > 0 && Q > 0);
    const int M = n * P * Q, Kd = r * s * c;
    KERNEL_REQUIRE(gridDim.x == (unsigned)((M + BM - 1) / BM) && gridDim.y == (unsigned)((k + BN - 1) / BN) &&
                   gridDim.z == 1);
    __shared__ __align__(128) TcSmem sm;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;

    // Loads: this thread copies chunk lc (depth 8 lc .. 8 lc + 7 of the stage) of rows lr and lr + 64 of both tiles.
    const int lc = tid & 3, lr = tid >> 2;
    int ih[2], iw[2];         // top-left input position of the A rows' pixels (invalid rows: far outside)
    long long aOff[2];        // element offset of (n, ih, iw, 0) in x
    long long bOff[2];        // element offset of row k of w, or -1 past K
    for (int i = 0; i < 2; i++) {
        const int m = m0 + lr + 64 * i;
        if (m < M) {
            const int img = m / (P * Q), pq = m - img * (P * Q), p = pq / Q, q = pq - p * Q;
            ih[i] = p - pad;
            iw[i] = q - pad;
            aOff[i] = (((long long)img * h + ih[i]) * w + iw[i]) * c;
        } else {
            ih[i] = -(1 << 29);
            iw[i] = 0;
            aOff[i] = 0;
        }
        const int kk = n0 + lr + 64 * i;
        bOff[i] = kk < k ? (long long)kk * Kd : -1;
    }
    TapWalk tap{0, 0, 0, 0, c, s, (long long)(w - s) * c};
    tap.advance(8 * lc);
    int kd = 8 * lc;  // depth index of this thread's chunk in the stage being loaded

    // Issues the copies of the next stage into buffer `st` and steps the walk by BK.
    auto loadStage = [&](int st) {
        char* as = reinterpret_cast<char*>(sm.a[st]);
        char* bs = reinterpret_cast<char*>(sm.b[st]);
        const bool inKd = tap.r < r;  // kd < Kd
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int hh = ih[i] + tap.r, ww = iw[i] + tap.s;
            const bool ok = inKd && (unsigned)hh < (unsigned)h && (unsigned)ww < (unsigned)w;
            cp_async_16(as + swz64(lr + 64 * i, lc), ok ? x + aOff[i] + tap.off : x, ok ? 16 : 0);  // 0: padding
            const bool okB = inKd && bOff[i] >= 0;
            cp_async_16(bs + swz64(lr + 64 * i, lc), okB ? wgt + bOff[i] + kd : wgt, okB ? 16 : 0);
        }
        tap.advance(BK);
        kd += BK;
    };

    // Fragment addresses: warp (wm, wn) owns rows 64 wm.. and columns 32 wn.. of the block tile.
    const int wm = warp >> 2, wn = warp & 3;
    // A, ldmatrix.x4: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) are
    // a[0..3]; lane l names row l % 8 of matrix l / 8.
    const int aRow = wm * 64 + (lane & 7) + ((lane >> 3) & 1) * 8, aChunk = lane >> 4;
    // B (w rows are columns n of the GEMM), ldmatrix.x4: (n 0-7, k 0-7), (n 0-7, k 8-15) are b[0..1] of the first
    // 8 columns, (n 8-15, k 0-7), (n 8-15, k 8-15) those of the next 8.
    const int bRow = wn * 32 + (lane & 7) + (lane >> 4) * 8, bChunk = (lane >> 3) & 1;

    float acc[4][4][4];
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[mi][ni][e] = 0.0f;

    const int numK = (Kd + BK - 1) / BK;
#pragma unroll
    for (int st = 0; st < STAGES - 1; st++) {
        if (st < numK) loadStage(st);
        cp_async_commit();  // one group per stage, empty or not, so that wait<STAGES-2> counts stages
    }
    for (int kt = 0; kt < numK; kt++) {
        cp_async_wait<STAGES - 2>();  // this thread's copies of stage kt have landed ...
        __syncthreads();              // ... and everyone's; everyone is also done with stage kt-1's buffer
        if (kt + STAGES - 1 < numK) loadStage((kt + STAGES - 1) % STAGES);
        cp_async_commit();
        const char* as = reinterpret_cast<const char*>(sm.a[kt % STAGES]);
        const char* bs = reinterpret_cast<const char*>(sm.b[kt % STAGES]);
#pragma unroll
        for (int ks = 0; ks < BK / 16; ks++) {
            uint32_t af[4][4], bf[4][2];
#pragma unroll
            for (int mi = 0; mi < 4; mi++) ldmatrix_x4(af[mi], as + swz64(aRow + 16 * mi, 2 * ks + aChunk));
#pragma unroll
            for (int nj = 0; nj < 2; nj++) {
                uint32_t t4[4];
                ldmatrix_x4(t4, bs + swz64(bRow + 16 * nj, 2 * ks + bChunk));
                bf[2 * nj][0] = t4[0];
                bf[2 * nj][1] = t4[1];
                bf[2 * nj + 1][0] = t4[2];
                bf[2 * nj + 1][1] = t4[3];
            }
            tc_mma_slice(acc, af, bf);
        }
    }
    cp_async_wait<0>();  // no copy outlives the kernel (only empty groups can be pending here)

    // Epilogue: acc[mi][ni] = C rows g and g + 8 (g = lane / 4), columns 2t, 2t + 1 (t = lane % 4) of the 16 x 8
    // block (mi, ni). A row of y is a pixel's K channels, so each pair is one 8-byte store when K is even.
    const bool pairs = (k & 1) == 0;
#pragma unroll
    for (int mi = 0; mi < 4; mi++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int m = m0 + wm * 64 + 16 * mi + (lane >> 2) + 8 * half;
            if (m >= M) continue;
            float* yrow = y + (long long)m * k;
#pragma unroll
            for (int ni = 0; ni < 4; ni++) {
                const int kk = n0 + wn * 32 + 8 * ni + 2 * (lane & 3);
                if (kk >= k) continue;
                float v0 = acc[mi][ni][2 * half], v1 = acc[mi][ni][2 * half + 1];
                const bool two = kk + 1 < k;
                if (bias != nullptr) {
                    v0 += bias[kk];
                    if (two) v1 += bias[kk + 1];
                }
                if (relu) {
                    v0 = tc_relu(v0);
                    v1 = tc_relu(v1);
                }
                if (two && pairs) {
                    *reinterpret_cast<TcFloat2*>(yrow + kk) = TcFloat2{v0, v1};
                } else {
                    yrow[kk] = v0;
                    if (two) yrow[kk + 1] = v1;
                }
            }
        }
    }
}
EMU_KERNEL(conv_tc_fwd_bf16)

// ------------------------------------------------------------------ backward-filter

// partial + z*K*RSC (K, R*S*C) f32 = sum over pixels [z*chunk, min(NPQ, (z+1)*chunk)) of dy[pix][k] * im2col(x);
// with accumulate != 0 (one slice only) partial += that sum instead: a fully connected layer's dw (O,I) is this
// layout, so its weight gradient accumulates in place without a workspace.
// Launch: 256 threads, grid (ceil(RSC/128), ceil(K/128), Z) with Z * chunk >= N*P*Q. Requires C % 8 == 0,
// K % 8 == 0, chunk a positive multiple of 32. Every slice is written (zeros where it has no pixels).
extern "C" __global__ void __launch_bounds__(256, 2)
    conv_tc_wgrad_bf16(const uint16_t* x, const uint16_t* dy, float* partial, int n, int h, int w, int c, int k,
                       int r, int s, int pad, int chunk, int accumulate) {
    using namespace tc;
    const int P = h + 2 * pad - r + 1, Q = w + 2 * pad - s + 1;
    KERNEL_REQUIRE(blockDim.x == THREADS && blockDim.y == 1 && blockDim.z == 1);
    KERNEL_REQUIRE(c % 8 == 0 && k % 8 == 0 && c > 0 && k > 0 && n > 0 && P > 0 && Q > 0);
    const int NPQ = n * P * Q, RSC = r * s * c;
    KERNEL_REQUIRE(chunk > 0 && chunk % BK == 0 && (long long)gridDim.z * chunk >= NPQ);
    KERNEL_REQUIRE(accumulate == 0 || gridDim.z == 1);
    KERNEL_REQUIRE(gridDim.x == (unsigned)((RSC + BN - 1) / BN) && gridDim.y == (unsigned)((k + BM - 1) / BM));
    __shared__ __align__(128) TcSmem sm;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;  // m: out-channel k, n: tap (r, s, c)
    const int z = blockIdx.z;
    const int pixBegin = (int)min((long long)z * chunk, (long long)NPQ);
    const int pixEnd = (int)min((long long)pixBegin + chunk, (long long)NPQ);

    // Loads: this thread copies chunk lc (8 columns) of stage rows (pixels) lr and lr + 16 of both tiles.
    const int lc = tid & 15, lr = tid >> 4;
    // A column: out-channels m0 + 8 lc .. +7 of dy (whole or not at all, K % 8 == 0)
    const bool aColOk = m0 + 8 * lc < k;
    const uint16_t* dyCol = dy + m0 + 8 * lc;
    // B column: tap n0 + 8 lc = ((tr * S) + ts) * C + tcn, decoded once
    const int tapIdx = n0 + 8 * lc;
    const bool bColOk = tapIdx < RSC;
    int tr = 0, ts = 0, tcn = 0;
    if (bColOk) {
        tr = tapIdx / (s * c);
        const int rem = tapIdx - tr * s * c;
        ts = rem / c;
        tcn = rem - ts * c;
    }
    const int dh = tr - pad, dw = ts - pad;                      // input position = (p + dh, q + dw)
    const long long tapOff = ((long long)dh * w + dw) * c + tcn;  // relative to x's (n, p, q, 0)
    // The two rows' pixels, walked by BK per stage without dividing: (img, p, q) and xoff = ((img*H + p)*W + q)*C.
    int pix[2], pp[2], qq[2];
    long long xoff[2];
    for (int i = 0; i < 2; i++) {
        pix[i] = pixBegin + lr + 16 * i;
        const int img = pix[i] / (P * Q), pq = pix[i] - img * (P * Q);
        pp[i] = pq / Q;
        qq[i] = pq - pp[i] * Q;
        xoff[i] = (((long long)img * h + pp[i]) * w + qq[i]) * c;
    }
    const long long qWrap = (long long)(w - Q) * c;       // (img, p, Q) -> (img, p + 1, 0)
    const long long pWrap = (long long)(h - P) * w * c;   // (img, P, 0) -> (img + 1, 0, 0)

    auto loadStage = [&](int st) {
        char* as = reinterpret_cast<char*>(sm.a[st]);
        char* bs = reinterpret_cast<char*>(sm.b[st]);
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int row = lr + 16 * i;
            const bool inRange = pix[i] < pixEnd;
            const bool okA = inRange && aColOk;
            cp_async_16(as + swz256(row, lc), okA ? dyCol + (long long)pix[i] * k : dy, okA ? 16 : 0);
            const int hh = pp[i] + dh, ww = qq[i] + dw;
            const bool okB = inRange && bColOk && (unsigned)hh < (unsigned)h && (unsigned)ww < (unsigned)w;
            cp_async_16(bs + swz256(row, lc), okB ? x + xoff[i] + tapOff : x, okB ? 16 : 0);  // 0: padding
            // step to the pixel BK further on
            pix[i] += BK;
            qq[i] += BK;
            xoff[i] += (long long)BK * c;
            while (qq[i] >= Q) {
                qq[i] -= Q;
                xoff[i] += qWrap;
                if (++pp[i] == P) {
                    pp[i] = 0;
                    xoff[i] += pWrap;
                }
            }
        }
    };

    // Fragments, ldmatrix.x4.trans from the k-major tiles (row = pixel, 8 columns per chunk):
    // A: matrices (pix 0-7, m 0-7), (pix 0-7, m 8-15), (pix 8-15, m 0-7), (pix 8-15, m 8-15) transposed are a[0..3].
    const int wm = warp >> 2, wn = warp & 3;
    const int aRow = (lane & 7) + (lane >> 4) * 8, aChunk = wm * 8 + ((lane >> 3) & 1);
    // B: (pix 0-7, n 0-7), (pix 8-15, n 0-7) are b[0..1] of the first 8 columns; (.., n 8-15) those of the next 8.
    const int bRow = (lane & 7) + ((lane >> 3) & 1) * 8, bChunk = wn * 4 + (lane >> 4);

    float acc[4][4][4];
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int ni = 0; ni < 4; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[mi][ni][e] = 0.0f;

    const int numK = (pixEnd - pixBegin + BK - 1) / BK;
#pragma unroll
    for (int st = 0; st < STAGES - 1; st++) {
        if (st < numK) loadStage(st);
        cp_async_commit();
    }
    for (int kt = 0; kt < numK; kt++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        if (kt + STAGES - 1 < numK) loadStage((kt + STAGES - 1) % STAGES);
        cp_async_commit();
        const char* as = reinterpret_cast<const char*>(sm.a[kt % STAGES]);
        const char* bs = reinterpret_cast<const char*>(sm.b[kt % STAGES]);
#pragma unroll
        for (int ks = 0; ks < BK / 16; ks++) {
            uint32_t af[4][4], bf[4][2];
#pragma unroll
            for (int mi = 0; mi < 4; mi++) ldmatrix_x4_trans(af[mi], as + swz256(16 * ks + aRow, aChunk + 2 * mi));
#pragma unroll
            for (int nj = 0; nj < 2; nj++) {
                uint32_t t4[4];
                ldmatrix_x4_trans(t4, bs + swz256(16 * ks + bRow, bChunk + 2 * nj));
                bf[2 * nj][0] = t4[0];
                bf[2 * nj][1] = t4[1];
                bf[2 * nj + 1][0] = t4[2];
                bf[2 * nj + 1][1] = t4[3];
            }
            tc_mma_slice(acc, af, bf);
        }
    }
    cp_async_wait<0>();

    // Epilogue: rows are out-channels, columns taps; RSC is even (C % 8 == 0), so pairs are 8-byte stores.
    float* out = partial + (long long)z * k * RSC;
#pragma unroll
    for (int mi = 0; mi < 4; mi++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int m = m0 + wm * 64 + 16 * mi + (lane >> 2) + 8 * half;
            if (m >= k) continue;
#pragma unroll
            for (int ni = 0; ni < 4; ni++) {
                const int col = n0 + wn * 32 + 8 * ni + 2 * (lane & 3);
                if (col >= RSC) continue;
                TcFloat2* o = reinterpret_cast<TcFloat2*>(out + (long long)m * RSC + col);
                TcFloat2 v{acc[mi][ni][2 * half], acc[mi][ni][2 * half + 1]};
                if (accumulate) {
                    const TcFloat2 old = *o;
                    v.x += old.x;
                    v.y += old.y;
                }
                *o = v;
            }
        }
    }
}
EMU_KERNEL(conv_tc_wgrad_bf16)

// dw (K,C,R,S) += sum over zz = 0 .. z-1, in that order, of partial[zz][k][(r*S+s)*Cp+c]: the partials were
// computed with the channels padded to Cp >= C (zeros), only the C real ones are written.
extern "C" __global__ void conv_tc_wgrad_reduce(const float* partial, float* dw, int z, int k, int c, int cp, int r,
                                                int s) {
    KERNEL_REQUIRE(cp >= c);
    const long long rscp = (long long)r * s * cp, total = (long long)k * c * r * s, slice = (long long)k * rscp;
    GRID_STRIDE_LOOP(i, total) {
        const int ss = (int)(i % s);
        long long t = i / s;
        const int rr = (int)(t % r);
        t /= r;
        const int cc = (int)(t % c);
        const long long kk = t / c;
        const long long src = kk * rscp + ((long long)rr * s + ss) * cp + cc;
        float sum = 0.0f;
        for (int zz = 0; zz < z; zz++) sum += partial[zz * slice + src];
        dw[i] += sum;
    }
}
EMU_KERNEL_NOSYNC(conv_tc_wgrad_reduce)

// ------------------------------------------------------------------ layouts (elementwise, over the output)

// wp (K,R,S,Cp) bf16 = w (K,C,R,S) f32, rounded to nearest even; channels C .. Cp-1 are zero (Cp >= C)
extern "C" __global__ void conv_tc_pack_weights_bf16(const float* w, uint16_t* wp, int k, int c, int cp, int r,
                                                     int s) {
    KERNEL_REQUIRE(cp >= c);
    const long long total = (long long)k * cp * r * s;
    GRID_STRIDE_LOOP(i, total) {
        const int cc = (int)(i % cp);
        long long t = i / cp;
        const int ss = (int)(t % s);
        t /= s;
        const int rr = (int)(t % r);
        const long long kk = t / r;
        wp[i] = cc < c ? bf16_bits(w[((kk * c + cc) * r + rr) * s + ss]) : (uint16_t)0;
    }
}
EMU_KERNEL_NOSYNC(conv_tc_pack_weights_bf16)

// wt (C,R,S,K) bf16 = w (K,C,R,S) f32 flipped in space: wt[c][r][s][k] = w[k][c][R-1-r][S-1-s], the weights of
// backward-data as a forward convolution of dy (in-channels K, out-channels C).
extern "C" __global__ void conv_tc_flip_weights_bf16(const float* w, uint16_t* wt, int k, int c, int r, int s) {
    const long long total = (long long)k * c * r * s;
    GRID_STRIDE_LOOP(i, total) {
        const int kk = (int)(i % k);
        long long t = i / k;
        const int ss = (int)(t % s);
        t /= s;
        const int rr = (int)(t % r);
        const long long cc = t / r;
        wt[i] = bf16_bits(w[(((long long)kk * c + cc) * r + (r - 1 - rr)) * s + (s - 1 - ss)]);
    }
}
EMU_KERNEL_NOSYNC(conv_tc_flip_weights_bf16)

// y (N,HW,Cp) bf16 = x (N,C,HW) f32, rounded to nearest even; channels C .. Cp-1 are zero (Cp >= C)
extern "C" __global__ void nchw_to_nhwc_bf16(const float* x, uint16_t* y, int n, int c, int cp, int hw) {
    KERNEL_REQUIRE(cp >= c);
    const long long total = (long long)n * cp * hw;
    GRID_STRIDE_LOOP(i, total) {
        const int cc = (int)(i % cp);
        const long long t = i / cp;
        const int p = (int)(t % hw);
        const long long img = t / hw;
        y[i] = cc < c ? bf16_bits(x[(img * c + cc) * hw + p]) : (uint16_t)0;
    }
}
EMU_KERNEL_NOSYNC(nchw_to_nhwc_bf16)

// out (N,K,PQ) = y (N,PQ,K), f32
extern "C" __global__ void nhwc_to_nchw_f32(const float* y, float* out, int n, int k, int pq) {
    const long long total = (long long)n * k * pq;
    GRID_STRIDE_LOOP(i, total) {
        const int p = (int)(i % pq);
        const long long t = i / pq;
        const int kk = (int)(t % k);
        const long long img = t / k;
        out[i] = y[(img * pq + p) * k + kk];
    }
}
EMU_KERNEL_NOSYNC(nhwc_to_nchw_f32)
