// Forward activation with the bias fused in, and the activation gradient.
// Launch: 1-D grid-stride, any grid and block size (gpunn uses 256 threads per block).
#include "common.cuh"

// out[i, j] = f(z[i, j] + bias[j]); bias may be null (plain activation); out may alias z.
template <typename T>
__global__ void bias_act(const T* z, const T* bias, T* out, long long n_rows, int n_cols, int act) {
    const long long size = n_rows * n_cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x) {
        T x = z[i];
        if (bias != nullptr) x += bias[i % n_cols];
        out[i] = activate(x, act);
    }
}

// delta *= f'(z), from the layer's output a: backpropagation through one activation.
template <typename T>
__global__ void act_grad(T* delta, const T* a, long long size, int act) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x)
        delta[i] = backprop(delta[i], a[i], act);
}
