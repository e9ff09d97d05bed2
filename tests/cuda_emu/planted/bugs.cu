// Kernels with planted bugs: the emulator tests must catch each of them.
// (Test fixtures only; never part of gpunn.)

// Sums one block's values into out[0]. `synced` places the barrier the reduction needs;
// without it, thread 0 may read partial[] before the other threads have written it.
template <typename T>
__global__ void block_sum(const T* x, T* out, int n, int synced) {
    __shared__ double partial[1024];
    partial[threadIdx.x] = threadIdx.x < n ? (double)x[threadIdx.x] : 0.0;
    if (synced) __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0.0;
        for (unsigned i = 0; i < blockDim.x; ++i) s += partial[i];
        out[0] = (T)s;
    }
}

// Shifts x into out by one: the last thread writes one element past the end of out.
template <typename T>
__global__ void shift_out_of_bounds(const T* x, T* out, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        out[i + 1] = x[i];
}

// A barrier inside a branch only half the block takes: a deadlock on a real GPU.
template <typename T>
__global__ void divergent_barrier(T* out, int n) {
    if (threadIdx.x < 16) __syncthreads();
    if (threadIdx.x < n) out[threadIdx.x] = T(1);
}
