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

// delta *= f'(a) as act_grad, and col_sums[j] = sum over rows of the new delta[:, j] (the
// layer's bias gradient), in one pass; act 0 (identity) only sums, and a may be null.
// Launch: one block per 32 columns, any multiple of 32 threads up to 1024: each warp
// walks every (blockDim.x / 32)-th row, its 32 threads reading one row's 32 adjacent
// columns, and the warps' partial sums (in double) meet in shared memory.
template <typename T>
__global__ void act_grad_col_sum(T* delta, const T* a, int n_rows, int n_cols, int act,
                                 T* col_sums) {
    __shared__ double partial[32][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    const int col = blockIdx.x * 32 + lane;
    double sum = 0.0;
    if (col < n_cols) {
        for (int row = warp; row < n_rows; row += n_warps) {
            const long long i = (long long)row * n_cols + col;
            T d = delta[i];
            if (act != 0) delta[i] = d = backprop(d, a[i], act);
            sum += d;
        }
    }
    partial[warp][lane] = sum;
    __syncthreads();
    if (warp == 0 && col < n_cols) {
        for (int w = 1; w < n_warps; ++w) sum += partial[w][lane];
        col_sums[col] = (T)sum;
    }
}
