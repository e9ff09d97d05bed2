// The optimizer step over the whole flat parameter buffer: ONE launch per step.
// Launch: 1-D grid-stride over the n parameters, any grid and block size (gpunn: 256).
// The buffer holds all weights first (n_weights of them), then all biases, so L2 decay
// applies to the leading span only. Scalars come from the host (bias-corrected Adam rate
// included), so no step ever waits for the device.
#include "common.cuh"

// g = (raw + l2 * p) / grad_scale on weights, raw / grad_scale on biases (scikit-learn's).
template <typename T>
__device__ __forceinline__ T effective_grad(const T* params, const T* grads, long long i,
                                            long long n_weights, T l2, T grad_scale) {
    T g = grads[i];
    if (i < n_weights) g = g + l2 * params[i];
    return g / grad_scale;
}

template <typename T>
__global__ void finish_grad(const T* params, T* grads, long long n, long long n_weights, T l2,
                            T grad_scale) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        grads[i] = effective_grad(params, grads, i, n_weights, l2, grad_scale);
}

// v = momentum v - lr g; p += nesterov ? momentum v - lr g : v
template <typename T>
__global__ void fused_sgd(T* params, T* grads, T* velocity, long long n, long long n_weights,
                          T lr, T momentum, T l2, T grad_scale, int nesterov) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const T g = effective_grad(params, grads, i, n_weights, l2, grad_scale);
        const T v = momentum * velocity[i] - lr * g;
        velocity[i] = v;
        params[i] += nesterov ? momentum * v - lr * g : v;
    }
}

// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p += -lr m / (sqrt(v) + eps)
template <typename T>
__global__ void fused_adam(T* params, T* grads, T* m, T* v, long long n, long long n_weights,
                           T lr, T beta_1, T beta_2, T epsilon, T l2, T grad_scale) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const T g = effective_grad(params, grads, i, n_weights, l2, grad_scale);
        const T mi = beta_1 * m[i] + (T(1) - beta_1) * g;
        const T vi = beta_2 * v[i] + (T(1) - beta_2) * (g * g);
        m[i] = mi;
        v[i] = vi;
        params[i] += -lr * mi / (sqrt(vi) + epsilon);
    }
}
