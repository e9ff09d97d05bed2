// Gathering the rows of a shuffled mini-batch.
// Launch: 1-D grid-stride, any grid and block size (gpunn uses 256 threads per block).
#include "common.cuh"

// out[r, :] = x[idx[r], :] for r < n_idx; x and out are row-major with n_cols columns
// (1 for a vector), and every idx[r] is a row of x.
template <typename T>
__global__ void take_rows(const T* x, const long long* idx, T* out, long long n_idx,
                          int n_cols) {
    const long long size = n_idx * n_cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x) {
        const long long row = i / n_cols;
        out[i] = x[idx[row] * n_cols + (i - row * n_cols)];
    }
}
