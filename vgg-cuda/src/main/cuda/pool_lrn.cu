// pool_lrn.cu -- the spatial / cross-channel window ops: 2x2 stride-2 max-pool forward and backward, local
// response normalisation (across channels) forward and backward.
//
// Dimension legend: N batch, C channels, H/W input height/width, P = H/2, Q = W/2 (rounded down).
// Kernels, grid-stride, 256 threads, no barriers:
//   maxpool_fwd   one thread per output (N,C,P,Q)
//   maxpool_bwd   one thread per INPUT (N,C,H,W): writes dy to the window's winner and 0 elsewhere, so dx is fully
//                 overwritten without atomics or a separate clear (ties go to the first element, row-major, as the
//                 SPI defines; the winner is recomputed from x with the forward's rule)
//   lrn_fwd/bwd   one thread per element, looping over its channel window (size is small: 5 in the paper)
// Versions: v1. Max-pool results are exact; LRN uses powf in float (the reference uses double): ~1e-6 relative.
// Check: PoolLrnKernelTest (emulator).
#include "kernel_common.cuh"

// Offset inside the plane of the FIRST max of window (i, j): a later element wins only when strictly greater.
__device__ __forceinline__ int argmax2x2(const float* plane, int w, int i, int j) {
    int best = (2 * i) * w + 2 * j;
    for (int di = 0; di < 2; di++)
        for (int dj = 0; dj < 2; dj++) {
            const int idx = (2 * i + di) * w + 2 * j + dj;
            if (plane[idx] > plane[best]) best = idx;
        }
    return best;
}

// x (NC,H,W) -> y (NC,P,Q)
extern "C" __global__ void maxpool_fwd(const float* x, float* y, int nc, int h, int w) {
    const int p = h / 2, q = w / 2;
    GRID_STRIDE_LOOP(o, (long long)nc * p * q) {
        const long long plane = o / (p * q);
        const int i = (int)((o / q) % p), j = (int)(o % q);
        const float* xp = x + plane * h * w;
        y[o] = xp[argmax2x2(xp, w, i, j)];
    }
}
EMU_KERNEL_NOSYNC(maxpool_fwd)

// dy (NC,P,Q) -> dx (NC,H,W), overwritten
extern "C" __global__ void maxpool_bwd(const float* x, const float* dy, float* dx, int nc, int h, int w) {
    const int p = h / 2, q = w / 2;
    GRID_STRIDE_LOOP(e, (long long)nc * h * w) {
        const long long plane = e / (h * w);
        const int hh = (int)((e / w) % h), ww = (int)(e % w);
        const int i = hh / 2, j = ww / 2;
        float v = 0.0f;  // losers and an ignored odd last row / column
        if (i < p && j < q && argmax2x2(x + plane * h * w, w, i, j) == hh * w + ww) {
            v = dy[(plane * p + i) * q + j];
        }
        dx[e] = v;
    }
}
EMU_KERNEL_NOSYNC(maxpool_bwd)

// scale = k + alpha/size * sum of x^2 over channels [c - size/2, c + (size-1)/2]; y = x * scale^-beta.
// x, y, scale (N,C,HW)
extern "C" __global__ void lrn_fwd(const float* x, float* y, float* scale, int n, int c, int hw, int size, float alpha,
                                   float beta, float k) {
    GRID_STRIDE_LOOP(e, (long long)n * c * hw) {
        const int ch = (int)((e / hw) % c);
        const long long base = e - (long long)ch * hw;  // element (n, 0, i)
        const int lo = max(0, ch - size / 2), hi = min(c - 1, ch + (size - 1) / 2);
        float sum = 0.0f;
        for (int cc = lo; cc <= hi; cc++) {
            const float v = x[base + (long long)cc * hw];
            sum = fmaf(v, v, sum);
        }
        const float s = k + alpha / size * sum;
        scale[e] = s;
        y[e] = x[e] * powf(s, -beta);
    }
}
EMU_KERNEL_NOSYNC(lrn_fwd)

// dx_c = dy_c s_c^-beta - (2 alpha beta / size) x_c * sum over c' in [c-(size-1)/2, c+size/2] of dy' y' / s'
extern "C" __global__ void lrn_bwd(const float* x, const float* y, const float* scale, const float* dy, float* dx,
                                   int n, int c, int hw, int size, float alpha, float beta) {
    const float factor = 2.0f * alpha * beta / size;
    GRID_STRIDE_LOOP(e, (long long)n * c * hw) {
        const int ch = (int)((e / hw) % c);
        const long long base = e - (long long)ch * hw;
        const int lo = max(0, ch - (size - 1) / 2), hi = min(c - 1, ch + size / 2);
        float acc = 0.0f;
        for (int cc = lo; cc <= hi; cc++) {
            const long long j = base + (long long)cc * hw;
            acc += dy[j] * y[j] / scale[j];
        }
        dx[e] = dy[e] * powf(scale[e], -beta) - factor * x[e] * acc;
    }
}
EMU_KERNEL_NOSYNC(lrn_bwd)
