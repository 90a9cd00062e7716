/* linear.c — fully connected layer, ReLU and dropout, float and double. */
#include "internal.h"

/* Elements per work item of the elementwise passes (ReLU, dropout). */
#define FC_ELEM_CHUNK 65536

/* The cost that fc_threads_for weighs for ReLU, per element: a load, a select and a
 * store (the gradient: two loads), like BatchNorm's apply pass. Counted as 1, the
 * demo's 128 x 64 x 14 x 14 (1.6 M elements, 0.48 ms forward and 0.71 ms backward at
 * 1 thread) stayed on one thread. */
#define FC_RELU_COST 4.0

#define FC_LINEAR_DEFINE(T, SUF, GEMM)                                                        \
    fc_status fc_linear_forward##SUF(T *out, const T *inp, const T *weight, const T *bias,    \
                                     int64_t N, int64_t IN, int64_t OUT, int nt)              \
    {                                                                                         \
        /* out[N][OUT] = inp[N][IN] * weight^T: B[k][n] = weight[n][k]. */                    \
        fc_status st = GEMM(N, OUT, IN, inp, IN, 1, weight, 1, IN, out, OUT, 0, nt);          \
        if (st != FC_OK || bias == NULL)                                                      \
            return st;                                                                        \
        for (int64_t n = 0; n < N; n++)                                                       \
            for (int64_t o = 0; o < OUT; o++)                                                 \
                out[n * OUT + o] += bias[o];                                                  \
        return FC_OK;                                                                         \
    }                                                                                         \
                                                                                              \
    fc_status fc_relu_forward##SUF(T *out, const T *inp, int64_t n, int nt)                   \
    {                                                                                         \
        const int64_t items = FC_CEIL_DIV(n, FC_ELEM_CHUNK);                                  \
        nt = fc_threads_for(FC_RELU_COST * n, nt);                                            \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t it = 0; it < items; it++) {                                              \
            const int64_t i1 = FC_MIN(n, (it + 1) * FC_ELEM_CHUNK);                           \
            for (int64_t i = it * FC_ELEM_CHUNK; i < i1; i++) {                               \
                const T v = inp[i];                                                           \
                out[i] = (v > 0 || v != v) ? v : (T)0; /* NaN propagates */                   \
            }                                                                                 \
        }                                                                                     \
        return FC_OK;                                                                         \
    }

#define FC_LINEAR_BWD_DEFINE(T, SUF, GEMM)                                                    \
    fc_status fc_linear_backward##SUF(T *dinp, T *dweight, T *dbias, const T *dout,            \
                                      const T *inp, const T *weight, int64_t N, int64_t IN,    \
                                      int64_t OUT, int nt)                                     \
    {                                                                                         \
        fc_status st = FC_OK;                                                                 \
        if (dinp != NULL) /* dinp[N][IN] = dout[N][OUT] weight[OUT][IN] */                     \
            st = GEMM(N, IN, OUT, dout, OUT, 1, weight, IN, 1, dinp, IN, 0, nt);               \
        if (st == FC_OK && dweight != NULL) /* dweight[OUT][IN] = dout^T inp */               \
            st = GEMM(OUT, IN, N, dout, 1, OUT, inp, IN, 1, dweight, IN, 0, nt);               \
        if (st == FC_OK && dbias != NULL)                                                     \
            for (int64_t o = 0; o < OUT; o++) {                                               \
                double s = 0;                                                                 \
                for (int64_t n = 0; n < N; n++)                                               \
                    s += dout[n * OUT + o];                                                   \
                dbias[o] = (T)s;                                                              \
            }                                                                                 \
        return st;                                                                            \
    }                                                                                         \
                                                                                              \
    fc_status fc_relu_backward##SUF(T *dinp, const T *dout, const T *inp, int64_t n, int nt)  \
    {                                                                                         \
        const int64_t items = FC_CEIL_DIV(n, FC_ELEM_CHUNK);                                  \
        nt = fc_threads_for(FC_RELU_COST * n, nt);                                            \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t it = 0; it < items; it++) {                                              \
            const int64_t i1 = FC_MIN(n, (it + 1) * FC_ELEM_CHUNK);                           \
            for (int64_t i = it * FC_ELEM_CHUNK; i < i1; i++) {                               \
                const T d = dout[i]; /* loaded first, so the select vectorizes */             \
                dinp[i] = inp[i] <= 0 ? (T)0 : d; /* NaN input passes the gradient */         \
            }                                                                                 \
        }                                                                                     \
        return FC_OK;                                                                         \
    }

/* Dropout's keep test for element i: a counter-based draw (two rounds of a 32-bit
 * integer finaliser keyed by the call's key), so an element's draw depends on the key
 * and its index alone, not on the thread that makes it. Its top 24 bits are a uniform
 * integer u in [0, 2^24); the element is kept when u >= thr. */
static inline uint32_t fc_dropout_mix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

#define FC_DROPOUT_DEFINE(T, SUF)                                                             \
    FC_CLONES static void fc_dropout_chunk##SUF(T *restrict out, T *restrict mask,            \
                                                const T *restrict inp, int64_t i0, int64_t i1, \
                                                uint64_t key, uint32_t thr, T scale)          \
    {                                                                                         \
        const uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);                        \
        for (int64_t i = i0; i < i1; i++) {                                                   \
            const uint32_t hi = (uint32_t)((uint64_t)i >> 32);                                \
            const uint32_t h = fc_dropout_mix(fc_dropout_mix((uint32_t)i ^ k0) + (hi ^ k1));  \
            const T m = (h >> 8) >= thr ? scale : (T)0;                                       \
            mask[i] = m;                                                                      \
            out[i] = inp[i] * m;                                                              \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    fc_status fc_dropout_forward##SUF(T *out, T *mask, const T *inp, int64_t n, uint64_t key, \
                                      uint32_t thr, T scale, int nt)                          \
    {                                                                                         \
        const int64_t items = FC_CEIL_DIV(n, FC_ELEM_CHUNK);                                  \
        nt = fc_threads_for(8.0 * (double)n, nt);                                             \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t it = 0; it < items; it++)                                                \
            fc_dropout_chunk##SUF(out, mask, inp, it * FC_ELEM_CHUNK,                         \
                                  FC_MIN(n, (it + 1) * FC_ELEM_CHUNK), key, thr, scale);      \
        return FC_OK;                                                                         \
    }

FC_DROPOUT_DEFINE(float, _f32)
FC_DROPOUT_DEFINE(double, _f64)

FC_LINEAR_DEFINE(float, _f32, fc_sgemm)
FC_LINEAR_DEFINE(double, _f64, fc_dgemm)
FC_LINEAR_BWD_DEFINE(float, _f32, fc_sgemm)
FC_LINEAR_BWD_DEFINE(double, _f64, fc_dgemm)
