// gpunn's CPU kernels: the optimizer step; bias + activation where the arithmetic is
// exact (identity, ReLU; the float32 logistic around NumPy's tanh); the activation
// gradients (products and differences only), with the bias gradient's column sums in
// the same pass; softmax's row maximum and row sum, which NumPy takes one row per call;
// and the gather of a batch's rows. Each is one pass over memory where NumPy needs two
// or more. gpunn/cpu_kernels.py compiles this file at first use for the machine's own
// CPU and calls it through ctypes. The maths is the CUDA kernels' own
// (activation_rules.cuh, optim_rules.cuh); this file only loops, so that each loop
// vectorises: over the weights with L2 and then the biases without; row by row.
#include <cmath>
#include <cstring>
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

// The float32 logistic in its tanh form, 0.5 + 0.5 tanh((z + bias) / 2), in the order of
// the NumPy code (numpy_backend._logistic), with NumPy's own tanh between two passes
// here: out = (z + bias) * 0.5 before it, x = x * 0.5 + 0.5 after it.
template <typename T>
static void bias_halve(const T* z, const T* bias, T* out, long long n_rows, long long n_cols) {
    for (long long r = 0; r < n_rows; ++r)
        for (long long c = 0; c < n_cols; ++c)
            out[r * n_cols + c] = (z[r * n_cols + c] + bias[c]) * T(0.5);
}

template <typename T>
static void half_plus_half(T* x, long long n_rows, long long n_cols) {
    for (long long i = 0; i < n_rows * n_cols; ++i) x[i] = x[i] * T(0.5) + T(0.5);
}

// delta *= f'(z), from the layer's output a. With sums, the same pass also writes the
// column sums of the new delta there (the layer's bias gradient), added row by row from
// 0, as np.add.reduce(delta, axis=0) adds them.
template <typename T, int ACT>
static void act_grad(T* delta, const T* a, T* sums, long long n_rows, long long n_cols) {
    if (sums == nullptr) {
        for (long long i = 0; i < n_rows * n_cols; ++i) delta[i] = backprop(delta[i], a[i], ACT);
        return;
    }
    for (long long c = 0; c < n_cols; ++c) sums[c] = T(0);
    for (long long r = 0; r < n_rows; ++r)
        for (long long c = 0; c < n_cols; ++c) {
            const long long i = r * n_cols + c;
            delta[i] = backprop(delta[i], a[i], ACT);
            sums[c] += delta[i];
        }
}

// out = z - max(z) row by row: softmax's shift, before NumPy's exp. A NaN in a row
// becomes the row's maximum, as with np.maximum.
template <typename T>
static void sub_row_max(const T* z, T* out, long long n_rows, long long n_cols) {
    for (long long r = 0; r < n_rows; ++r) {
        const T* row = z + r * n_cols;
        T peak = row[0];
        for (long long c = 1; c < n_cols; ++c)
            if (row[c] > peak || row[c] != row[c]) peak = row[c];
        for (long long c = 0; c < n_cols; ++c) out[r * n_cols + c] = row[c] - peak;
    }
}

// The sum of n contiguous values in NumPy's order (its pairwise summation: eight running
// sums over blocks of up to 128 values, and halves of longer runs), so that a row sum
// here equals np.add.reduce's bitwise. gpunn/cpu_kernels.py checks that it does.
template <typename T>
static T pairwise_sum(const T* a, long long n) {
    if (n < 8) {
        T sum = T(0);
        for (long long i = 0; i < n; ++i) sum += a[i];
        return sum;
    }
    if (n <= 128) {
        T r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        long long i = 8;
        for (; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + j];
        T sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) sum += a[i];
        return sum;
    }
    long long half = n / 2;
    half -= half % 8;
    return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

// x /= sum(x) row by row (softmax's normalisation, after NumPy's exp); a reduction starts
// from its identity, 0, as NumPy's does.
template <typename T>
static void div_row_sum(T* x, long long n_rows, long long n_cols) {
    for (long long r = 0; r < n_rows; ++r) {
        T* row = x + r * n_cols;
        const T sum = T(0) + pairwise_sum(row, n_cols);
        for (long long c = 0; c < n_cols; ++c) row[c] /= sum;
    }
}

// out[i, :] = x[idx[i], :] for a row-major x of n_rows rows (a negative index counts from
// the end, as in NumPy). Rows are copied eight at a time, one 64-byte line of each in
// turn, so that eight rows' cache misses are in flight where a row-by-row copy waits on
// one (256 random rows of 784 floats out of 60,000, not in cache: np.take 136 us, row by
// row with the next rows prefetched 84, eight interleaved 63). Returns the position of
// the first index out of range, before writing anything, or -1.
template <typename T>
static long long take_rows(const T* x, long long n_rows, long long n_cols, const long long* idx,
                           long long n_idx, T* out) {
    constexpr int GROUP = 8;
    constexpr long long LINE = 64;
    for (long long i = 0; i < n_idx; ++i)
        if (idx[i] < -n_rows || idx[i] >= n_rows) return i;
    const long long row_bytes = n_cols * (long long)sizeof(T);
    auto row = [&](long long i) {
        return reinterpret_cast<const char*>(x + (idx[i] < 0 ? idx[i] + n_rows : idx[i]) * n_cols);
    };
    char* to = reinterpret_cast<char*>(out);
    long long i = 0;
    for (; i + GROUP <= n_idx; i += GROUP, to += GROUP * row_bytes) {
        const char* from[GROUP];
        for (int g = 0; g < GROUP; ++g) from[g] = row(i + g);
        long long b = 0;
        for (; b + LINE <= row_bytes; b += LINE)
            for (int g = 0; g < GROUP; ++g) std::memcpy(to + g * row_bytes + b, from[g] + b, LINE);
        for (int g = 0; g < GROUP; ++g)
            std::memcpy(to + g * row_bytes + b, from[g] + b, row_bytes - b);
    }
    for (; i < n_idx; ++i, to += row_bytes) std::memcpy(to, row(i), row_bytes);
    return -1;
}

// One optimizer step: update(i, l2) for every parameter, the weights (the first
// n_weights, with L2) then the biases (without). With acc, the same loop also sums the
// squares of the weights as it reads them, before updating them, so the L2 term of the
// loss costs no pass of its own: *acc += penalty_scale * sum(w^2). The sum is in double;
// `omp simd` (-fopenmp-simd: no OpenMP runtime) lets it vectorise in lanes, a fixed
// order for a given build; nothing else in the loop may be reordered.
template <bool PENALTY, typename T, typename Update>
static double update_weights(const T* p, long long n_weights, T l2, Update update) {
    double squares = 0.0;
#pragma omp simd reduction(+ : squares)
    for (long long i = 0; i < n_weights; ++i) {
        if (PENALTY) squares += double(p[i]) * double(p[i]);
        update(i, l2);
    }
    return squares;
}

template <typename T, typename Update>
static void step_all(const T* p, long long n, long long n_weights, T l2, double* acc,
                     double penalty_scale, Update update) {
    if (acc != nullptr)
        *acc += penalty_scale * update_weights<true>(p, n_weights, l2, update);
    else
        update_weights<false>(p, n_weights, l2, update);
    for (long long i = n_weights; i < n; ++i) update(i, T(0));
}

// Calls rule(scale) with scale(x) = x / grad_scale. A power of two (the usual batch
// sizes: 32, 128, 256, ...) multiplies by its reciprocal instead: both round the same
// exact quotient, and a vector divide costs as much as several multiplies, where Adam
// already pays one divide and one square root per parameter.
template <typename T, typename Rule>
static void with_grad_scale(T grad_scale, Rule rule) {
    int exponent;
    if (std::frexp(grad_scale, &exponent) == T(0.5))
        rule([inverse = T(1) / grad_scale](T x) { return x * inverse; });
    else
        rule([grad_scale](T x) { return x / grad_scale; });
}

template <typename T>
static void fused_sgd(T* p, const T* grads, T* velocity, long long n, long long n_weights,
                      T lr, T momentum, T l2, T grad_scale, int nesterov, double* acc,
                      double penalty_scale) {
    with_grad_scale(grad_scale, [=](auto scale) {
        step_all(p, n, n_weights, l2, acc, penalty_scale, [=](long long i, T decay) {
            sgd_rule(p[i], velocity[i], scale(penalized(grads[i], p[i], decay)), lr, momentum,
                     nesterov);
        });
    });
}

template <typename T>
static void fused_adam(T* p, const T* grads, T* m, T* v, long long n, long long n_weights,
                       T lr, T beta_1, T one_minus_beta_1, T beta_2, T one_minus_beta_2,
                       T epsilon, T l2, T grad_scale, double* acc, double penalty_scale) {
    with_grad_scale(grad_scale, [=](auto scale) {
        step_all(p, n, n_weights, l2, acc, penalty_scale, [=](long long i, T decay) {
            adam_rule(p[i], m[i], v[i], scale(penalized(grads[i], p[i], decay)), lr, beta_1,
                      one_minus_beta_1, beta_2, one_minus_beta_2, epsilon);
        });
    });
}

// The entry points gpunn/cpu_kernels.py binds, gpunn_<op>_<dtype>: plain C functions,
// since ctypes cannot call templates; one set per element type.
#define GPUNN_ACT_GRAD(T, dtype, name, ACT)                                                 \
    void gpunn_##name##_grad_##dtype(T* delta, const T* a, T* sums, long long rows,        \
                                     long long cols) {                                   \
        act_grad<T, ACT>(delta, a, sums, rows, cols);                                     \
    }
#define GPUNN_ENTRY_POINTS(T, dtype)                                                         \
    void gpunn_bias_relu_##dtype(const T* z, const T* b, T* out, long long rows,          \
                                 long long cols) {                                       \
        bias_act<T, ACT_RELU>(z, b, out, rows, cols);                                     \
    }                                                                                     \
    void gpunn_bias_identity_##dtype(const T* z, const T* b, T* out, long long rows,      \
                                     long long cols) {                                   \
        bias_act<T, ACT_IDENTITY>(z, b, out, rows, cols);                                 \
    }                                                                                     \
    long long gpunn_take_rows_##dtype(const T* x, long long n_rows, long long n_cols,       \
                                      const long long* idx, long long n_idx, T* out) {   \
        return take_rows(x, n_rows, n_cols, idx, n_idx, out);                             \
    }                                                                                     \
    void gpunn_sub_row_max_##dtype(const T* z, T* out, long long rows, long long cols) {   \
        sub_row_max(z, out, rows, cols);                                                  \
    }                                                                                     \
    void gpunn_div_row_sum_##dtype(T* x, long long rows, long long cols) {                \
        div_row_sum(x, rows, cols);                                                       \
    }                                                                                     \
    GPUNN_ACT_GRAD(T, dtype, relu, ACT_RELU)                                              \
    GPUNN_ACT_GRAD(T, dtype, logistic, ACT_LOGISTIC)                                      \
    GPUNN_ACT_GRAD(T, dtype, tanh, ACT_TANH)                                              \
    void gpunn_sgd_##dtype(T* p, const T* g, T* vel, long long n, long long nw, T lr, T mu, \
                           T l2, T scale, int nesterov, double* acc, double penalty) {    \
        fused_sgd(p, g, vel, n, nw, lr, mu, l2, scale, nesterov, acc, penalty);           \
    }                                                                                     \
    void gpunn_adam_##dtype(T* p, const T* g, T* m, T* v, long long n, long long nw, T lr,  \
                            T b1, T omb1, T b2, T omb2, T eps, T l2, T scale, double* acc, \
                            double penalty) {                                             \
        fused_adam(p, g, m, v, n, nw, lr, b1, omb1, b2, omb2, eps, l2, scale, acc,         \
                   penalty);                                                              \
    }

extern "C" {
GPUNN_ENTRY_POINTS(float, float32)
GPUNN_ENTRY_POINTS(double, float64)
// float32 only: a float64 logistic stays SciPy's expit, as in scikit-learn
void gpunn_bias_halve_float32(const float* z, const float* b, float* out, long long rows,
                              long long cols) {
    bias_halve(z, b, out, rows, cols);
}
void gpunn_half_plus_half_float32(float* x, long long rows, long long cols) {
    half_plus_half(x, rows, cols);
}
}
