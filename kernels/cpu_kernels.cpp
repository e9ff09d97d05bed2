// gpunn's CPU kernels: the optimizer step, and bias + activation and its gradient for
// the activations whose arithmetic is exact (identity, ReLU), each one pass over memory
// where NumPy needs two or more. gpunn/cpu_kernels.py compiles this file at first use
// for the machine's own CPU and calls it through ctypes. The maths is the CUDA kernels'
// own (activation_rules.cuh, optim_rules.cuh); this file only loops, so that each loop
// vectorises: over the weights with L2 and then the biases without; row by row.
#include <cmath>
using std::exp;
using std::sqrt;
using std::tanh;
#define GPUNN_HD static inline
#include "activation_rules.cuh"
#include "optim_rules.cuh"

// out[i, j] = f(z[i, j] + bias[j]) with f fixed at compile time; out may alias z.
template <typename T, int ACT>
static void bias_act(const T* z, const T* bias, T* out, long long n_rows, long long n_cols) {
    for (long long r = 0; r < n_rows; ++r)
        for (long long c = 0; c < n_cols; ++c)
            out[r * n_cols + c] = activate(z[r * n_cols + c] + bias[c], ACT);
}

// delta *= f'(z), from the layer's output a.
template <typename T, int ACT>
static void act_grad(T* delta, const T* a, long long size) {
    for (long long i = 0; i < size; ++i) delta[i] = delta[i] * derivative_from_output(a[i], ACT);
}

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

// The entry points gpunn/cpu_kernels.py binds, gpunn_<op>_<dtype>: plain C functions,
// since ctypes cannot call templates; one set per element type.
#define GPUNN_ENTRY_POINTS(T, dtype)                                                         \
    void gpunn_bias_relu_##dtype(const T* z, const T* b, T* out, long long rows,          \
                                 long long cols) {                                       \
        bias_act<T, ACT_RELU>(z, b, out, rows, cols);                                     \
    }                                                                                     \
    void gpunn_bias_identity_##dtype(const T* z, const T* b, T* out, long long rows,      \
                                     long long cols) {                                   \
        bias_act<T, ACT_IDENTITY>(z, b, out, rows, cols);                                 \
    }                                                                                     \
    void gpunn_relu_grad_##dtype(T* delta, const T* a, long long size) {                   \
        act_grad<T, ACT_RELU>(delta, a, size);                                            \
    }                                                                                     \
    void gpunn_sgd_##dtype(T* p, const T* g, T* vel, long long n, long long nw, T lr, T mu, \
                           T l2, T scale, int nesterov) {                                 \
        fused_sgd(p, g, vel, n, nw, lr, mu, l2, scale, nesterov);                         \
    }                                                                                     \
    void gpunn_adam_##dtype(T* p, const T* g, T* m, T* v, long long n, long long nw, T lr,  \
                            T b1, T omb1, T b2, T omb2, T eps, T l2, T scale) {           \
        fused_adam(p, g, m, v, n, nw, lr, b1, omb1, b2, omb2, eps, l2, scale);            \
    }

extern "C" {
GPUNN_ENTRY_POINTS(float, float32)
GPUNN_ENTRY_POINTS(double, float64)
}
