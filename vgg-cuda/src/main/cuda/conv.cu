// conv.cu -- 2-D convolution (stride 1, square zero padding, any R x S: 3x3, 1x1, 7x7 ...) as implicit GEMM.
//
// Dimension legend: N batch, C in-channels, K out-channels, H/W input height/width, P/Q output height/width
// (P = H + 2 pad - R + 1), R/S kernel height/width. All tensors dense NCHW float32; w is (K,C,R,S).
//
// Each pass is one GEMM whose operand gather (im2col) happens inside the tile load of gemm_tile.cuh, so no
// im2col buffer is ever written:
//   forward          y (K x N*P*Q)   = w (K x C*R*S) * im2col(x) (C*R*S x N*P*Q)      (+ bias[k])
//   backward-data    dx (C x N*H*W)  = w^T (C x K*R*S) * col(dy) (K*R*S x N*H*W)      (overwrites dx)
//   backward-filter  dw (K x C*R*S) += dy (K x N*P*Q) * im2col(x)^T (N*P*Q x C*R*S)   (accumulates, SPI rule)
// Kernels: conv_fwd_{f32,tf32,bf16}, conv_bwd_data_{...}, conv_bwd_filter_{...}; launch 256 threads,
// grid (ceil(cols/64), ceil(rows/64), splits) of the GEMM above. Backward-filter takes a workspace for split-K:
// with splits > 1 each z-slice of the grid sums a chunk of N*P*Q into workspace[z] and splitk_accumulate
// (elementwise.cu) adds the slices to dw in order. The db of backward-filter is bias_backward (reduce.cu).
// Versions: v1: one 64x64x16 tile per block, FP32 default, TF32/BF16 on tensor cores on a GPU, their twin on the
// emulator (gemm_tile.cuh). v1.1: deterministic split-K for backward-filter (VGG's first layers have 1..9 output
// tiles but sum over N*P*Q = 3.2 million at batch 64, 224x224); im2col index divisions as multiply-shifts
// (FastDivmod), which cut the integer work of a tile load several-fold.
// Check: ConvKernelTest (emulator, vs the reference backend; exact on small integers); on a GPU the same suite via
// scripts/gpu-check.sh, which also benchmarks these kernels (TFLOP/s per layer shape).
#include "gemm_tile.cuh"

struct ConvGeom {
    int n, c, h, w, k, r, s, p, q, pad;
    // divisions of element indices by the geometry, as multiply-shifts (kernel_common.cuh)
    FastDivmod byS, byRS, byQ, byPQ, byW, byHW;
};

// y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C,R,S)) + b (K) or no bias when b == nullptr
struct ConvForward {
    int m, n, kd;
    bool aKFast, bKFast;
    ConvGeom g;
    const float* x;
    const float* wt;
    const float* b;
    float* y;
    __device__ float loadA(int kk, int j) const { return wt[(long long)kk * kd + j]; }
    __device__ float loadB(int j, int col) const {
        const int c = g.byRS.div(j), rs = j - c * g.r * g.s;
        const int r = g.byS.div(rs), s = rs - r * g.s;
        const int img = g.byPQ.div(col), pq = col - img * g.p * g.q;
        const int p = g.byQ.div(pq), q = pq - p * g.q;
        const int hh = p + r - g.pad, ww = q + s - g.pad;
        if (hh < 0 || hh >= g.h || ww < 0 || ww >= g.w) return 0.0f;  // zero padding
        return x[(((long long)img * g.c + c) * g.h + hh) * g.w + ww];
    }
    __device__ void store(int kk, int col, float v) const {
        const int pq = g.p * g.q;
        const int img = g.byPQ.div(col), pix = col - img * pq;
        y[((long long)img * g.k + kk) * pq + pix] = b != nullptr ? v + b[kk] : v;
    }
};

// dx (N,C,H,W) = sum over k,r,s of dy[n,k,h+pad-r,w+pad-s] * w[k,c,r,s]
struct ConvBackwardData {
    int m, n, kd;
    bool aKFast, bKFast;
    ConvGeom g;
    const float* dy;
    const float* wt;
    float* dx;
    __device__ float loadA(int c, int j) const {  // j = (k, r, s)
        const int rs = g.r * g.s;
        const int kk = g.byRS.div(j), rr = j - kk * rs;
        return wt[((long long)kk * g.c + c) * rs + rr];
    }
    __device__ float loadB(int j, int col) const {  // col = (img, h, w)
        const int kk = g.byRS.div(j), rs = j - kk * g.r * g.s;
        const int r = g.byS.div(rs), s = rs - r * g.s;
        const int img = g.byHW.div(col), hw = col - img * g.h * g.w;
        const int hh = g.byW.div(hw), ww = hw - hh * g.w;
        const int p = hh + g.pad - r, q = ww + g.pad - s;
        if (p < 0 || p >= g.p || q < 0 || q >= g.q) return 0.0f;
        return dy[(((long long)img * g.k + kk) * g.p + p) * g.q + q];
    }
    __device__ void store(int c, int col, float v) const {
        const int hw = g.h * g.w;
        const int img = g.byHW.div(col), pix = col - img * hw;
        dx[((long long)img * g.c + c) * hw + pix] = v;
    }
};

// dw (K,C,R,S) += sum over n,p,q of dy[n,k,p,q] * x[n,c,p+r-pad,q+s-pad]
struct ConvBackwardFilter {
    int m, n, kd;
    bool aKFast, bKFast;
    ConvGeom g;
    const float* x;
    const float* dy;
    float* dw;
    __device__ float loadA(int kk, int j) const {  // j = (img, p, q)
        const int pq = g.p * g.q;
        const int img = g.byPQ.div(j), pix = j - img * pq;
        return dy[((long long)img * g.k + kk) * pq + pix];
    }
    __device__ float loadB(int j, int col) const {  // col = (c, r, s)
        const int img = g.byPQ.div(j), pq = j - img * g.p * g.q;
        const int p = g.byQ.div(pq), q = pq - p * g.q;
        const int c = g.byRS.div(col), rs = col - c * g.r * g.s;
        const int r = g.byS.div(rs), s = rs - r * g.s;
        const int hh = p + r - g.pad, ww = q + s - g.pad;
        if (hh < 0 || hh >= g.h || ww < 0 || ww >= g.w) return 0.0f;
        return x[(((long long)img * g.c + c) * g.h + hh) * g.w + ww];
    }
    __device__ void store(int kk, int col, float v) const { dw[(long long)kk * n + col] += v; }
};

__device__ __forceinline__ ConvGeom geom(int n, int c, int h, int w, int k, int r, int s, int pad) {
    const int p = h + 2 * pad - r + 1, q = w + 2 * pad - s + 1;
    return ConvGeom{n, c, h, w, k, r, s, p, q, pad, FastDivmod(s), FastDivmod(r * s), FastDivmod(q),
                    FastDivmod(p * q), FastDivmod(w), FastDivmod(h * w)};
}

template <int PREC>
__device__ __forceinline__ void conv_fwd(const float* x, const float* wt, const float* b, float* y, int n, int c, int h,
                                         int w, int k, int r, int s, int pad) {
    ConvGeom g = geom(n, c, h, w, k, r, s, pad);
    ConvForward pb{k, n * g.p * g.q, c * r * s, true, false, g, x, wt, b, y};
    gemm_tile<PREC>(pb);
}

template <int PREC>
__device__ __forceinline__ void conv_bwd_data(const float* dy, const float* wt, float* dx, int n, int c, int h, int w,
                                              int k, int r, int s, int pad) {
    ConvGeom g = geom(n, c, h, w, k, r, s, pad);
    ConvBackwardData pb{c, n * h * w, k * r * s, true, false, g, dy, wt, dx};
    gemm_tile<PREC>(pb);
}

// workspace == nullptr: dw += the whole sum; else split-K partials into workspace (splitk_accumulate adds them).
template <int PREC>
__device__ __forceinline__ void conv_bwd_filter(const float* x, const float* dy, float* dw, int n, int c, int h, int w,
                                                int k, int r, int s, int pad, float* workspace, int kChunk) {
    ConvGeom g = geom(n, c, h, w, k, r, s, pad);
    ConvBackwardFilter pb{k, c * r * s, n * g.p * g.q, true, true, g, x, dy, dw};
    gemm_tile_maybe_split<PREC>(pb, workspace, kChunk);
}

#define CONV_KERNELS(suffix, PREC)                                                                                   \
    extern "C" __global__ void __launch_bounds__(256) conv_fwd_##suffix(const float* x, const float* wt,           \
                                                                        const float* b, float* y, int n, int c,     \
                                                                        int h, int w, int k, int r, int s,          \
                                                                        int pad) {                                  \
        conv_fwd<PREC>(x, wt, b, y, n, c, h, w, k, r, s, pad);                                                       \
    }                                                                                                                \
    EMU_KERNEL(conv_fwd_##suffix)                                                                                    \
    extern "C" __global__ void __launch_bounds__(256) conv_bwd_data_##suffix(const float* dy, const float* wt,     \
                                                                             float* dx, int n, int c, int h, int w,  \
                                                                             int k, int r, int s, int pad) {         \
        conv_bwd_data<PREC>(dy, wt, dx, n, c, h, w, k, r, s, pad);                                                   \
    }                                                                                                                \
    EMU_KERNEL(conv_bwd_data_##suffix)                                                                               \
    extern "C" __global__ void __launch_bounds__(256) conv_bwd_filter_##suffix(                                    \
        const float* x, const float* dy, float* dw, int n, int c, int h, int w, int k, int r, int s, int pad,        \
        float* workspace, int kChunk) {                                                                              \
        conv_bwd_filter<PREC>(x, dy, dw, n, c, h, w, k, r, s, pad, workspace, kChunk);                               \
    }                                                                                                                \
    EMU_KERNEL(conv_bwd_filter_##suffix)

CONV_KERNELS(f32, PREC_FP32)
CONV_KERNELS(tf32, PREC_TF32)
CONV_KERNELS(bf16, PREC_BF16)
