// collective.cu -- the arithmetic of the ring all-reduce between devices (org.vgg4j.cuda.RingAllReduce): one
// reduction step in float32, the same step for 16-bit wire formats, and the conversions to and from those formats.
//
// Dimension legend: n elements of one chunk (a 1/N share of a bucket) or of one bucket.
// Wire formats (fmt): 0 = bfloat16, 1 = IEEE binary16; both round to nearest, ties to even, written here in integer
// arithmetic so nvcc and the emulator's g++ give the same bits (no __half intrinsics).
// Exactness: every step rounds once per element, in a fixed order chosen by the caller, so the results depend
// only on the inputs; the ring makes ONE device round the final mean and copies those bits to the others.
// Versions: v1, scalar grid-stride loops. Check: RingAllReduceTest, WireFormatTest (emulator).
#include "kernel_common.cuh"

// float -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN, infinities stay infinite.
__device__ __forceinline__ unsigned short bf16_bits(float v) {
    const unsigned int u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x0040u);
    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float bf16_value(unsigned short h) {
    return __uint_as_float((unsigned int)h << 16);
}

// float -> binary16 bits, round to nearest even, with subnormals; >= 65520 in magnitude becomes infinity.
__device__ __forceinline__ unsigned short f16_bits(float v) {
    const unsigned int u = __float_as_uint(v);
    const unsigned int sign = (u >> 16) & 0x8000u;
    const unsigned int a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (unsigned short)(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // 65520 = halfway above 65504: ties to inf
    if (a <= 0x33000000u) return (unsigned short)sign;              // <= 2^-25: rounds to zero (2^-25 ties to 0)
    if (a < 0x38800000u) {                                          // below 2^-14: a subnormal half
        const unsigned int m = (a & 0x7fffffu) | 0x800000u;         // value = m * 2^(e-150)
        const int shift = 126 - (int)(a >> 23);                     // round(value * 2^24) = m >> shift, rounded
        unsigned int q = m >> shift;
        const unsigned int rem = m & ((1u << shift) - 1u);
        const unsigned int half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;           // may carry into the smallest normal: right
        return (unsigned short)(sign | q);
    }
    unsigned int h = ((((a >> 23) - 127u + 15u)) << 10) | ((a & 0x7fffffu) >> 13);
    const unsigned int rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;         // a carry into the exponent is right too
    return (unsigned short)(sign | h);
}

__device__ __forceinline__ float f16_value(unsigned short h) {
    const unsigned int sign = ((unsigned int)h & 0x8000u) << 16;
    const unsigned int e = ((unsigned int)h >> 10) & 0x1fu;
    const unsigned int m = (unsigned int)h & 0x3ffu;
    if (e == 0) {
        const float f = (float)m * 0x1p-24f;  // exact: m < 2^10
        return sign ? -f : f;
    }
    if (e == 31) return __uint_as_float(sign | 0x7f800000u | (m << 13));
    return __uint_as_float(sign | ((e - 15u + 127u) << 23) | (m << 13));
}

__device__ __forceinline__ unsigned short to_wire(float v, int fmt) {
    return fmt == 0 ? bf16_bits(v) : f16_bits(v);
}

__device__ __forceinline__ float from_wire(unsigned short h, int fmt) {
    return fmt == 0 ? bf16_value(h) : f16_value(h);
}

// One reduce-scatter step in float32: acc = (recv + acc) * scale, in double, rounded once. recv is the partial sum
// that came from the left neighbour (the earlier ranks of this chunk's fixed order), acc this device's gradients;
// scale is 1 except in the last step, where it is 1/N and the sum becomes the mean.
extern "C" __global__ void ring_reduce_f32(float* acc, const float* recv, long long n, double scale) {
    GRID_STRIDE_LOOP(i, n) acc[i] = (float)(((double)recv[i] + (double)acc[i]) * scale);
}
EMU_KERNEL_NOSYNC(ring_reduce_f32)

// The same step with a 16-bit wire: wire = to_wire((from_wire(recv) + local) * scale). local stays float32 (this
// device's own gradients); the partial sum is rounded to the wire format once per step, before it travels on.
extern "C" __global__ void ring_reduce_wire(unsigned short* wire, const unsigned short* recv, const float* local,
                                           long long n, double scale, int fmt) {
    KERNEL_REQUIRE(fmt == 0 || fmt == 1);
    GRID_STRIDE_LOOP(i, n) {
        wire[i] = to_wire((float)(((double)from_wire(recv[i], fmt) + (double)local[i]) * scale), fmt);
    }
}
EMU_KERNEL_NOSYNC(ring_reduce_wire)

// wire (n, 16-bit) = x (n, float32) rounded to the wire format.
extern "C" __global__ void f32_to_wire(const float* x, unsigned short* wire, long long n, int fmt) {
    KERNEL_REQUIRE(fmt == 0 || fmt == 1);
    GRID_STRIDE_LOOP(i, n) wire[i] = to_wire(x[i], fmt);
}
EMU_KERNEL_NOSYNC(f32_to_wire)

// x (n, float32) = wire (n, 16-bit), exactly.
extern "C" __global__ void wire_to_f32(const unsigned short* wire, float* x, long long n, int fmt) {
    KERNEL_REQUIRE(fmt == 0 || fmt == 1);
    GRID_STRIDE_LOOP(i, n) x[i] = from_wire(wire[i], fmt);
}
EMU_KERNEL_NOSYNC(wire_to_f32)
