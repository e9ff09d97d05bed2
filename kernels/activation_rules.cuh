// The activation functions and their derivatives, written once and compiled twice: into
// the CUDA kernels (through common.cuh) and for the CPU into cpu_kernels.cpp (which
// defines GPUNN_HD as a plain inline function first). No host headers (NVRTC).
#pragma once

#ifndef GPUNN_HD
#define GPUNN_HD __device__ __forceinline__
#endif

// Activation codes, shared with gpunn/backends/cupy_backend.py.
#define ACT_IDENTITY 0
#define ACT_LOGISTIC 1
#define ACT_TANH 2
#define ACT_RELU 3
#define ACT_EXP 4

// logistic(x) = 1 / (1 + e^-x), evaluated so that e^(...) never overflows: for x < 0 use
// e^x / (1 + e^x). Finite and within [0, 1] for every finite x.
template <typename T> GPUNN_HD T logistic(T x) {
    if (x >= T(0)) return T(1) / (T(1) + exp(-x));
    T e = exp(x);
    return e / (T(1) + e);
}

template <typename T> GPUNN_HD T activate(T x, int act) {
    switch (act) {
        case ACT_LOGISTIC: return logistic(x);
        case ACT_TANH: return tanh(x);
        case ACT_RELU: return x <= T(0) ? T(0) : x;  // NaN stays NaN, as np.maximum
        case ACT_EXP: return exp(x);
        default: return x;
    }
}

// delta * f'(z), with f' written in terms of the output a = f(z) (the forward pass keeps
// only outputs), multiplied in the order of the NumPy reference and scikit-learn
// (delta *= a; delta *= 1 - a), so that every build of it rounds alike.
template <typename T> GPUNN_HD T backprop(T delta, T a, int act) {
    switch (act) {
        case ACT_LOGISTIC: return delta * a * (T(1) - a);
        case ACT_TANH: return delta * (T(1) - a * a);
        case ACT_RELU: return delta * (a > T(0) ? T(1) : T(0));
        default: return delta;
    }
}
