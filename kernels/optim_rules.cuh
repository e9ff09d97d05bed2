// The per-parameter optimizer rules, written once and compiled twice: into the CUDA
// kernels of optim.cu, and for the CPU into cpu_kernels.cpp (which defines GPUNN_HD as a
// plain inline function first). The order of operations is scikit-learn's and every
// scalar (1 - beta_1 included) comes from the host already rounded to T, so the CPU
// build agrees bitwise with the NumPy reference. No host headers (NVRTC).
#pragma once

#ifndef GPUNN_HD
#define GPUNN_HD __device__ __forceinline__
#endif

// raw + l2 * p, the gradient sum with its L2 term; callers pass l2 = 0 for biases
// (scikit-learn's), and divide by grad_scale.
template <typename T>
GPUNN_HD T penalized(T raw, T p, T l2) {
    return l2 != T(0) ? raw + l2 * p : raw;
}

// g = (raw + l2 * p) / grad_scale
template <typename T>
GPUNN_HD T effective_grad(T raw, T p, T l2, T grad_scale) {
    return penalized(raw, p, l2) / grad_scale;
}

// v = momentum v - lr g; p += nesterov ? momentum v - lr g : v
template <typename T>
GPUNN_HD void sgd_rule(T& p, T& velocity, T g, T lr, T momentum, int nesterov) {
    const T v = momentum * velocity - lr * g;
    velocity = v;
    p += nesterov ? momentum * v - lr * g : v;
}

// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p += -lr m / (sqrt(v) + eps)
template <typename T>
GPUNN_HD void adam_rule(T& p, T& m, T& v, T g, T lr, T beta_1, T one_minus_beta_1, T beta_2,
                        T one_minus_beta_2, T epsilon) {
    const T mi = beta_1 * m + one_minus_beta_1 * g;
    const T vi = beta_2 * v + one_minus_beta_2 * (g * g);
    m = mi;
    v = vi;
    p += -lr * mi / (sqrt(vi) + epsilon);
}
