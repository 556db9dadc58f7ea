// fastdiv_check.cu -- TEST-ONLY kernel (test build of the emulator only): FastDivmod (kernel_common.cuh) applied to
// every pair (numerator[i], divisor[j]), so FastDivmodTest can compare it with Java's integer division.
// quotient / remainder (D, N): row j holds numerator i divided by divisor j.
#include "kernel_common.cuh"

extern "C" __global__ void fastdiv_check(const int* numerators, int count, const int* divisors, int dcount,
                                         int* quotient, int* remainder) {
    GRID_STRIDE_LOOP(e, (long long)count * dcount) {
        const int j = (int)(e / count), i = (int)(e % count);
        const FastDivmod f(divisors[j]);
        quotient[e] = f.div(numerators[i]);
        remainder[e] = f.mod(numerators[i]);
    }
}
EMU_KERNEL_NOSYNC(fastdiv_check)
