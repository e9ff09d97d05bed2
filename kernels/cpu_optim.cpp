// The fused optimizer step for the CPU: one pass over the flat buffers where NumPy needs
// about fourteen. gpunn/cpu_kernels.py compiles this file at first use for the machine's
// own CPU and calls it through ctypes. The rules are the CUDA kernels' own
// (optim_rules.cuh); this file only loops, over the weights with L2 and then the biases
// without, so that each loop vectorises.
#include <cmath>
using std::sqrt;
#define GPUNN_HD static inline
#include "optim_rules.cuh"

template <typename T>
static void fused_sgd(T* p, const T* grads, T* velocity, long long n, long long n_weights,
                      T lr, T momentum, T l2, T grad_scale, int nesterov) {
    for (long long i = 0; i < n_weights; ++i)
        sgd_rule(p[i], velocity[i], effective_grad(grads[i], p[i], l2, grad_scale), lr,
                 momentum, nesterov);
    for (long long i = n_weights; i < n; ++i)
        sgd_rule(p[i], velocity[i], effective_grad(grads[i], p[i], T(0), grad_scale), lr,
                 momentum, nesterov);
}

template <typename T>
static void fused_adam(T* p, const T* grads, T* m, T* v, long long n, long long n_weights,
                       T lr, T beta_1, T one_minus_beta_1, T beta_2, T one_minus_beta_2,
                       T epsilon, T l2, T grad_scale) {
    for (long long i = 0; i < n_weights; ++i)
        adam_rule(p[i], m[i], v[i], effective_grad(grads[i], p[i], l2, grad_scale), lr, beta_1,
                  one_minus_beta_1, beta_2, one_minus_beta_2, epsilon);
    for (long long i = n_weights; i < n; ++i)
        adam_rule(p[i], m[i], v[i], effective_grad(grads[i], p[i], T(0), grad_scale), lr,
                  beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon);
}

// The entry points gpunn/cpu_kernels.py binds: gpunn_<rule>_<dtype>.
extern "C" {
void gpunn_sgd_float32(float* p, const float* g, float* vel, long long n, long long nw,
                       float lr, float mu, float l2, float scale, int nesterov) {
    fused_sgd(p, g, vel, n, nw, lr, mu, l2, scale, nesterov);
}
void gpunn_sgd_float64(double* p, const double* g, double* vel, long long n, long long nw,
                       double lr, double mu, double l2, double scale, int nesterov) {
    fused_sgd(p, g, vel, n, nw, lr, mu, l2, scale, nesterov);
}
void gpunn_adam_float32(float* p, const float* g, float* m, float* v, long long n, long long nw,
                        float lr, float b1, float omb1, float b2, float omb2, float eps, float l2,
                        float scale) {
    fused_adam(p, g, m, v, n, nw, lr, b1, omb1, b2, omb2, eps, l2, scale);
}
void gpunn_adam_float64(double* p, const double* g, double* m, double* v, long long n,
                        long long nw, double lr, double b1, double omb1, double b2, double omb2,
                        double eps, double l2, double scale) {
    fused_adam(p, g, m, v, n, nw, lr, b1, omb1, b2, omb2, eps, l2, scale);
}
}
