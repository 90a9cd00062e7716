/* batchnorm2d.c — the per-channel passes of 2-D batch normalisation, float and double.
 * Layout: x, out, g, gx: [N][C][HW]; every per-channel vector (C) is double. The
 * normalised input xhat = (x - mean) * invstd is never stored: the backward passes form
 * it from x as they read it.
 * Each channel is one work item, reduced by one thread in a fixed order (images in
 * order, each plane in FC_BN_LANES interleaved partial sums, its last HW % FC_BN_LANES
 * values into the first of them, the partial sums added in order at the end), so the
 * results do not depend on the thread count. Sums run in double. */
#include <math.h>
#include "internal.h"

/* 32 partial sums: four AVX-512 vectors of doubles per sum. With 8 (one vector) the
 * compiler left the gradient's plain sum scalar and every sum was one chain of
 * dependent adds; 32 took 0.75-0.90 of the time of BatchNorm's forward and backward on
 * the demo's 128 x 32 x 28 x 28 and 128 x 64 x 14 x 14 (Intel Xeon VM, 1 thread; 64 was
 * no faster). */
#define FC_BN_LANES 32

/* sum over (n, p) of f(n, p) for channel c, with the fixed order above */
#define FC_BN_CHANNEL_SUM(RESULT, EXPR)                                                       \
    do {                                                                                      \
        double lane_[FC_BN_LANES] = {0}, sum_ = 0;                                            \
        const int64_t pv_ = HW / FC_BN_LANES * FC_BN_LANES;                                   \
        for (int64_t n = 0; n < N; n++) {                                                     \
            const int64_t base = (n * C + c) * HW;                                            \
            for (int64_t p0 = 0; p0 < pv_; p0 += FC_BN_LANES)                                 \
                for (int l = 0; l < FC_BN_LANES; l++) {                                       \
                    const int64_t i = base + p0 + l;                                          \
                    lane_[l] += (EXPR);                                                       \
                }                                                                             \
            for (int64_t p = pv_; p < HW; p++) {                                              \
                const int64_t i = base + p;                                                   \
                lane_[p - pv_] += (EXPR);                                                     \
            }                                                                                 \
        }                                                                                     \
        for (int l = 0; l < FC_BN_LANES; l++)                                                 \
            sum_ += lane_[l];                                                                 \
        RESULT = sum_;                                                                        \
    } while (0)

/* The per-channel work, outside the OpenMP regions so that it gets SIMD clones. */
#define FC_BN_CHANNEL_DEFINE(T, SUF)                                                          \
    FC_CLONES static void fc_bn_stats_ch##SUF(double *mean, double *var, const T *x,          \
                                              int64_t N, int64_t C, int64_t HW, int64_t c)    \
    {                                                                                         \
        const double M = (double)N * HW;                                                      \
        double s, q;                                                                          \
        FC_BN_CHANNEL_SUM(s, (double)x[i]);                                                   \
        const double mu = s / M;                                                              \
        FC_BN_CHANNEL_SUM(q, ((double)x[i] - mu) * ((double)x[i] - mu));                      \
        mean[c] = mu;                                                                         \
        var[c] = q / M;                                                                       \
    }                                                                                         \
                                                                                              \
    FC_CLONES static void fc_bn_apply_ch##SUF(T *out, const T *x, T mu, T a, T b, int64_t N,  \
                                              int64_t C, int64_t HW, int64_t c)               \
    {                                                                                         \
        for (int64_t n = 0; n < N; n++) {                                                     \
            const int64_t base = (n * C + c) * HW;                                            \
            for (int64_t p = 0; p < HW; p++) /* centred first: no cancellation */            \
                out[base + p] = (x[base + p] - mu) * a + b;                                   \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    /* Both sums in one pass when both are wanted (each still in its own fixed order).       \
     * xhat = (x - mu) * is is formed as it is read, in T, the same way every time. */       \
    FC_CLONES static void fc_bn_reduce_ch##SUF(double *gsum, double *gxsum, const T *g,       \
                                               const T *x, T mu, T is, int64_t N, int64_t C,  \
                                               int64_t HW, int64_t c)                         \
    {                                                                                         \
        if (gsum != NULL && gxsum != NULL) {                                                  \
            double l1[FC_BN_LANES] = {0}, l2[FC_BN_LANES] = {0}, t1 = 0, t2 = 0;              \
            const int64_t pv = HW / FC_BN_LANES * FC_BN_LANES;                                \
            for (int64_t n = 0; n < N; n++) {                                                 \
                const int64_t base = (n * C + c) * HW;                                        \
                for (int64_t p0 = 0; p0 < pv; p0 += FC_BN_LANES)                              \
                    for (int l = 0; l < FC_BN_LANES; l++) {                                   \
                        const double gv = g[base + p0 + l];                                   \
                        l1[l] += gv;                                                          \
                        l2[l] += gv * (double)((x[base + p0 + l] - mu) * is);                 \
                    }                                                                         \
                for (int64_t p = pv; p < HW; p++) {                                           \
                    l1[p - pv] += (double)g[base + p];                                        \
                    l2[p - pv] += (double)g[base + p] * (double)((x[base + p] - mu) * is);    \
                }                                                                             \
            }                                                                                 \
            for (int l = 0; l < FC_BN_LANES; l++) {                                           \
                t1 += l1[l];                                                                  \
                t2 += l2[l];                                                                  \
            }                                                                                 \
            gsum[c] = t1;                                                                     \
            gxsum[c] = t2;                                                                    \
            return;                                                                           \
        }                                                                                     \
        if (gsum != NULL)                                                                     \
            FC_BN_CHANNEL_SUM(gsum[c], (double)g[i]);                                         \
        if (gxsum != NULL)                                                                    \
            FC_BN_CHANNEL_SUM(gxsum[c], (double)g[i] * (double)((x[i] - mu) * is));           \
    }                                                                                         \
                                                                                              \
    FC_CLONES static void fc_bn_bwd_apply_ch##SUF(T *gx, const T *g, const T *x, T mu, T is,  \
                                                  T ta, T tb, T tc, int64_t N, int64_t C,     \
                                                  int64_t HW, int64_t c)                      \
    {                                                                                         \
        for (int64_t n = 0; n < N; n++) {                                                     \
            const int64_t base = (n * C + c) * HW;                                            \
            if (x != NULL)                                                                    \
                for (int64_t p = 0; p < HW; p++) {                                            \
                    const T xh = (x[base + p] - mu) * is;                                     \
                    gx[base + p] = g[base + p] * ta - xh * tb - tc;                           \
                }                                                                             \
            else                                                                              \
                for (int64_t p = 0; p < HW; p++)                                              \
                    gx[base + p] = g[base + p] * ta - tc;                                     \
        }                                                                                     \
    }

#define FC_BN_DEFINE(T, SUF)                                                                  \
    FC_BN_CHANNEL_DEFINE(T, SUF)                                                              \
    fc_status fc_batchnorm2d_apply##SUF(T *out, const T *x, const double *mean,               \
                                        const double *scale, const double *shift, int64_t N,  \
                                        int64_t C, int64_t HW, int nt)                        \
    {                                                                                         \
        nt = fc_threads_for(4.0 * N * C * HW, nt);                                            \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t c = 0; c < C; c++)                                                       \
            fc_bn_apply_ch##SUF(out, x, (T)mean[c], (T)scale[c], (T)shift[c], N, C, HW, c);   \
        return FC_OK;                                                                         \
    }                                                                                         \
                                                                                              \
    fc_status fc_batchnorm2d_backward_reduce##SUF(double *gsum, double *gxsum, const T *g,    \
                                                  const T *x, const double *mean,             \
                                                  const double *invstd, int64_t N, int64_t C, \
                                                  int64_t HW, int nt)                         \
    {                                                                                         \
        nt = fc_threads_for(4.0 * N * C * HW, nt);                                            \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t c = 0; c < C; c++)                                                       \
            fc_bn_reduce_ch##SUF(gsum, gxsum, g, x, x ? (T)mean[c] : 0, x ? (T)invstd[c] : 0, \
                                 N, C, HW, c);                                                \
        return FC_OK;                                                                         \
    }                                                                                         \
                                                                                              \
    fc_status fc_batchnorm2d_backward_apply##SUF(T *gx, const T *g, const T *x,               \
                                                 const double *mean, const double *invstd,    \
                                                 const double *a, const double *b,            \
                                                 const double *c0, int64_t N, int64_t C,      \
                                                 int64_t HW, int nt)                          \
    {                                                                                         \
        nt = fc_threads_for(4.0 * N * C * HW, nt);                                            \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t c = 0; c < C; c++)                                                       \
            fc_bn_bwd_apply_ch##SUF(gx, g, x, x ? (T)mean[c] : 0, x ? (T)invstd[c] : 0,       \
                                    (T)a[c], (T)b[c], (T)c0[c], N, C, HW, c);                 \
        return FC_OK;                                                                         \
    }                                                                                         \
                                                                                              \
    /* Batch statistics and the normalisation of a channel in one work item, its data    \
     * still in cache for the second pass: mean, var (biased) in two passes, invstd =       \
     * 1/sqrt(var + eps), then out as fc_batchnorm2d_apply with scale = invstd*weight      \
     * (invstd without weight) and shift = bias (0 without). */                            \
    fc_status fc_batchnorm2d_forward##SUF(T *out, double *mean, double *var, double *invstd,  \
                                          const T *x, const double *weight,                   \
                                          const double *bias, double eps, int64_t N,          \
                                          int64_t C, int64_t HW, int nt)                      \
    {                                                                                         \
        nt = fc_threads_for(8.0 * N * C * HW, nt);                                            \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t c = 0; c < C; c++) {                                                     \
            fc_bn_stats_ch##SUF(mean, var, x, N, C, HW, c);                                   \
            invstd[c] = 1.0 / sqrt(var[c] + eps);                                             \
            const double a = weight ? invstd[c] * weight[c] : invstd[c];                      \
            fc_bn_apply_ch##SUF(out, x, (T)mean[c], (T)a, (T)(bias ? bias[c] : 0.0), N, C,    \
                                HW, c);                                                       \
        }                                                                                     \
        return FC_OK;                                                                         \
    }                                                                                         \
                                                                                              \
    /* Both backward passes of a channel in one work item: its data is still in cache for \
     * the second (the same operations, in the same order, as the two calls above). */       \
    fc_status fc_batchnorm2d_backward##SUF(T *gx, double *gsum, double *gxsum, const T *g,     \
                                           const T *x, const double *mean,                    \
                                           const double *invstd, const double *scale,         \
                                           int64_t N, int64_t C, int64_t HW, int nt)          \
    {                                                                                         \
        const double M = (double)N * (double)HW;                                              \
        nt = fc_threads_for(8.0 * N * C * HW, nt);                                            \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t c = 0; c < C; c++) {                                                     \
            const T mu = (T)mean[c], is = (T)invstd[c];                                       \
            fc_bn_reduce_ch##SUF(gsum, gxsum, g, x, mu, is, N, C, HW, c);                     \
            fc_bn_bwd_apply_ch##SUF(gx, g, x, mu, is, (T)scale[c],                            \
                                    (T)(scale[c] * gxsum[c] / M), (T)(scale[c] * gsum[c] / M), \
                                    N, C, HW, c);                                             \
        }                                                                                     \
        return FC_OK;                                                                         \
    }

FC_BN_DEFINE(float, _f32)
FC_BN_DEFINE(double, _f64)
