// Row-wise softmax, and softmax fused with the categorical cross-entropy and its gradient.
// Launch: one block per row (grid-stride over rows), block size a multiple of 32 (gpunn
// uses min(256, columns rounded up to 32)), no dynamic shared memory. Works for 1 column
// and for thousands: each thread strides over the row's columns.
#include "common.cuh"

// Writes exp(z - max) into out and returns the row's sum of it (every thread gets it).
// Subtracting the row max makes every exponent <= 0: no overflow for any finite z.
template <typename T>
__device__ double exp_shifted_row(const T* z, T* out, int n_cols, double* scratch) {
    double m = neg_inf<double>();
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) m = fmax(m, (double)z[j]);
    const T row_max = (T)block_reduce(m, true, scratch);
    double s = 0.0;
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) {
        T e = exp(z[j] - row_max);
        out[j] = e;
        s += (double)e;
    }
    return block_reduce(s, false, scratch);
}

template <typename T>
__global__ void softmax_rows(const T* z, T* out, int n_rows, int n_cols) {
    __shared__ double scratch[32];
    for (int row = blockIdx.x; row < n_rows; row += gridDim.x) {
        const long long base = (long long)row * n_cols;
        const T total = (T)exp_shifted_row(z + base, out + base, n_cols, scratch);
        for (int j = threadIdx.x; j < n_cols; j += blockDim.x) out[base + j] /= total;
    }
}

// delta = (softmax(z) - y) * w; acc += scale * w * sum_j -y_j log(clip(p_j)), with p
// clipped to [eps, 1 - eps] like scikit-learn, so log never sees 0. sw may be null.
template <typename T>
__global__ void loss_grad_softmax(const T* z, const T* y, T* delta, const T* sw, double* acc,
                                  double scale, int n_rows, int n_cols) {
    __shared__ double scratch[32];
    const T eps = machine_eps<T>();
    for (int row = blockIdx.x; row < n_rows; row += gridDim.x) {
        const long long base = (long long)row * n_cols;
        const T total = (T)exp_shifted_row(z + base, delta + base, n_cols, scratch);
        const T w = sw != nullptr ? sw[row] : T(1);
        double loss = 0.0;
        for (int j = threadIdx.x; j < n_cols; j += blockDim.x) {
            const T p = delta[base + j] / total, target = y[base + j];
            const T clipped = fmin(fmax(p, eps), T(1) - eps);
            if (target != T(0)) loss -= (double)target * (double)log(clipped);
            delta[base + j] = (p - target) * w;
        }
        loss = block_reduce(loss, false, scratch);
        if (threadIdx.x == 0) atomicAdd(acc, scale * (double)w * loss);
    }
}
