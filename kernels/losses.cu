// Elementwise output layers fused with their losses, and the L2 sum of squares.
// Launch: 1-D grid-stride, block size a multiple of 32 (gpunn uses 256), no dynamic
// shared memory. Each block reduces its partial loss and adds it with one atomicAdd.
#include "common.cuh"

// Per-element loss of output `output` at prediction f and target t (scikit-learn's):
//   logistic: -(t log p + (1 - t) log(1 - p)) with p clipped to [eps, 1 - eps]
//   identity: 0.5 (f - t)^2 / n_cols   (the squared error is averaged over outputs)
//   exp:      t log(t / f) - t + f     (half Poisson deviance; 0 log 0 = 0)
template <typename T>
__device__ __forceinline__ double element_loss(T f, T t, int output, int n_cols) {
    if (output == ACT_LOGISTIC) {
        const T eps = machine_eps<T>();
        const T p = fmin(fmax(f, eps), T(1) - eps);
        double l = 0.0;
        if (t != T(0)) l -= (double)t * (double)log(p);
        if (t != T(1)) l -= (double)(T(1) - t) * (double)log(T(1) - p);
        return l;
    }
    if (output == ACT_EXP) {
        const double xlogy = t != T(0) ? (double)t * (double)log(t / f) : 0.0;
        return xlogy - (double)t + (double)f;
    }
    const double d = (double)f - (double)t;
    return 0.5 * d * d / n_cols;
}

// delta = (f(z) - y) * w and acc += scale * sum_i w_i sum_j loss_ij; sw may be null.
template <typename T>
__global__ void loss_grad_elementwise(const T* z, const T* y, T* delta, const T* sw, double* acc,
                                      double scale, int n_rows, int n_cols, int output) {
    __shared__ double scratch[32];
    const long long size = (long long)n_rows * n_cols;
    double partial = 0.0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x) {
        const T f = activate(z[i], output), t = y[i];
        const T w = sw != nullptr ? sw[i / n_cols] : T(1);
        partial += (double)w * element_loss(f, t, output, n_cols);
        delta[i] = (f - t) * w;
    }
    partial = block_reduce(partial, false, scratch);
    if (threadIdx.x == 0) atomicAdd(acc, scale * partial);
}

// acc += scale * sum x^2, accumulated in double (the L2 penalty of the weights).
template <typename T>
__global__ void sum_squares(const T* x, long long n, double* acc, double scale) {
    __shared__ double scratch[32];
    double partial = 0.0;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        partial += (double)x[i] * (double)x[i];
    partial = block_reduce(partial, false, scratch);
    if (threadIdx.x == 0) atomicAdd(acc, scale * partial);
}
