// Shared device code of gpunn's kernels: activations, limits and block reductions.
// No host headers: NVRTC compiles this with no system include path. Every kernel is a
// template on the element type T (float, double) and is instantiated by name
// ("bias_act<float>") when the module is loaded.
#pragma once

#include "activation_rules.cuh"

// Largest finite value of a type, and -infinity, without <limits> or -INFINITY.
template <typename T> __device__ __forceinline__ T neg_inf();
template <> __device__ __forceinline__ float neg_inf<float>() { return __int_as_float(0xff800000); }
template <> __device__ __forceinline__ double neg_inf<double>() {
    return __longlong_as_double(0xfff0000000000000ULL);
}
template <typename T> __device__ __forceinline__ T machine_eps();
template <> __device__ __forceinline__ float machine_eps<float>() { return 1.1920928955078125e-07f; }
template <> __device__ __forceinline__ double machine_eps<double>() { return 2.220446049250313e-16; }

// Reductions over a block whose size is a multiple of 32 (whole warps). Values are
// carried as double: exact for float inputs, and one code path for sums and maxima.
__device__ __forceinline__ double combine(double a, double b, bool is_max) {
    return is_max ? fmax(a, b) : a + b;
}

__device__ __forceinline__ double warp_reduce(double v, bool is_max) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v = combine(v, __shfl_xor_sync(0xffffffffu, v, offset), is_max);
    return v;
}

// Every thread gets the block's total. `scratch` is __shared__ double[32]. The first
// barrier protects scratch from a previous call still being read.
__device__ __forceinline__ double block_reduce(double v, bool is_max, double* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int n_warps = (blockDim.x + 31) >> 5;
    v = warp_reduce(v, is_max);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        double identity = is_max ? neg_inf<double>() : 0.0;
        v = warp_reduce(lane < n_warps ? scratch[lane] : identity, is_max);
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}
