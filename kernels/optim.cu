// The optimizer step over the whole flat parameter buffer: ONE launch per step.
// Launch: 1-D grid-stride over the n parameters, any grid and block size (gpunn: 256).
// The buffer holds all weights first (n_weights of them), then all biases, so L2 decay
// applies to the leading span only. Scalars come from the host (bias-corrected Adam rate
// included), so no step ever waits for the device. The rules are in optim_rules.cuh.
// With acc (non-null), the step also adds penalty_scale * sum(w^2) of the weights before
// the update to *acc: the L2 term of the batch loss, without a pass of its own. Block
// size a multiple of 32 (whole warps), for the block reduction.
#include "common.cuh"
#include "optim_rules.cuh"

template <typename T>
__global__ void finish_grad(const T* params, T* grads, long long n, long long n_weights, T l2,
                            T grad_scale) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        grads[i] = effective_grad(grads[i], params[i], i < n_weights ? l2 : T(0), grad_scale);
}

// This thread's share of sum(w^2), read before the update; added to *acc once per block.
// acc is null or not for the whole launch, so every thread reaches the barriers or none.
__device__ __forceinline__ void add_penalty(double squares, double* acc, double penalty_scale) {
    __shared__ double scratch[32];
    if (acc == nullptr) return;
    squares = block_reduce(squares, false, scratch);
    if (threadIdx.x == 0) atomicAdd(acc, penalty_scale * squares);
}

template <typename T>
__global__ void fused_sgd(T* params, const T* grads, T* velocity, long long n,
                          long long n_weights, T lr, T momentum, T l2, T grad_scale,
                          int nesterov, double* acc, double penalty_scale) {
    double squares = 0.0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        if (i < n_weights) squares += (double)params[i] * (double)params[i];
        const T g = effective_grad(grads[i], params[i], i < n_weights ? l2 : T(0), grad_scale);
        sgd_rule(params[i], velocity[i], g, lr, momentum, nesterov);
    }
    add_penalty(squares, acc, penalty_scale);
}

template <typename T>
__global__ void fused_adam(T* params, const T* grads, T* m, T* v, long long n,
                           long long n_weights, T lr, T beta_1, T one_minus_beta_1, T beta_2,
                           T one_minus_beta_2, T epsilon, T l2, T grad_scale, double* acc,
                           double penalty_scale) {
    double squares = 0.0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        if (i < n_weights) squares += (double)params[i] * (double)params[i];
        const T g = effective_grad(grads[i], params[i], i < n_weights ? l2 : T(0), grad_scale);
        adam_rule(params[i], m[i], v[i], g, lr, beta_1, one_minus_beta_1, beta_2,
                  one_minus_beta_2, epsilon);
    }
    add_penalty(squares, acc, penalty_scale);
}
