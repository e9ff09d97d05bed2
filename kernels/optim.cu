// The optimizer step over the whole flat parameter buffer: ONE launch per step.
// Launch: 1-D grid-stride over the n parameters, any grid and block size (gpunn: 256).
// The buffer holds all weights first (n_weights of them), then all biases, so L2 decay
// applies to the leading span only. Scalars come from the host (bias-corrected Adam rate
// included), so no step ever waits for the device. The rules are in optim_rules.cuh.
#include "common.cuh"
#include "optim_rules.cuh"

template <typename T>
__global__ void finish_grad(const T* params, T* grads, long long n, long long n_weights, T l2,
                            T grad_scale) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        grads[i] = effective_grad(grads[i], params[i], i < n_weights ? l2 : T(0), grad_scale);
}

template <typename T>
__global__ void fused_sgd(T* params, const T* grads, T* velocity, long long n,
                          long long n_weights, T lr, T momentum, T l2, T grad_scale,
                          int nesterov) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const T g = effective_grad(grads[i], params[i], i < n_weights ? l2 : T(0), grad_scale);
        sgd_rule(params[i], velocity[i], g, lr, momentum, nesterov);
    }
}

template <typename T>
__global__ void fused_adam(T* params, const T* grads, T* m, T* v, long long n,
                           long long n_weights, T lr, T beta_1, T one_minus_beta_1, T beta_2,
                           T one_minus_beta_2, T epsilon, T l2, T grad_scale) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const T g = effective_grad(grads[i], params[i], i < n_weights ? l2 : T(0), grad_scale);
        adam_rule(params[i], m[i], v[i], g, lr, beta_1, one_minus_beta_1, beta_2,
                  one_minus_beta_2, epsilon);
    }
}
