/* maxpool2d.c — 2-D max pooling with argmax indices, float and double. */
#include <math.h>
#include <string.h>
#include "internal.h"

/* Planes per work item: enough input that scheduling costs nothing next to it. */
#define FC_POOL_ITEM_ELEMS 16384

/* 2x2 windows at stride 2 without dilation, all inside the image (2*OW <= W). The same
 * result as the general loop: the taps a = r0[2ow], b = r0[2ow+1], c = r1[2ow],
 * d = r1[2ow+1] are taken in row-major order and a later one replaces the running
 * maximum when it is greater or NaN, which keeps the first maximum and, with NaN, the
 * last NaN. Written with 16-byte vectors of L outputs (this file is built for the
 * baseline ISA, where that is SSE2) and selects, not branches: the winning tap is
 * unpredictable. A row of OW >= L outputs is cut into vectors from the left, the last
 * one starting at OW - L and overlapping its neighbour (the shared outputs are
 * computed by the same operations, so both write the same bits); rows narrower than L
 * take the scalar loop. Every read stays inside the two input rows: the last vector
 * reads up to column 2*OW - 1 < W. */
#define FC_MAXPOOL_2X2_DEFINE(T, SUF, L, MI, EVEN, ODD)                                      \
    typedef T fc_pool_v##SUF __attribute__((vector_size(16)));                               \
    typedef T fc_pool_uv##SUF __attribute__((vector_size(16), aligned(sizeof(T)), may_alias)); \
    typedef MI fc_pool_m##SUF __attribute__((vector_size(16)));                              \
    typedef int64_t fc_pool_i##SUF __attribute__((vector_size(8 * L)));                      \
    typedef int64_t fc_pool_ui##SUF                                                          \
        __attribute__((vector_size(8 * L), aligned(8), may_alias));                          \
    static void fc_maxpool_2x2##SUF(T *restrict dst, int64_t *restrict idx,                   \
                                    const T *restrict src, int64_t W, int64_t OH, int64_t OW) \
    {                                                                                         \
        typedef fc_pool_v##SUF V;                                                             \
        typedef fc_pool_m##SUF M;                                                             \
        const M even = EVEN, odd = ODD;                                                       \
        fc_pool_i##SUF lane2 = {0};                                                           \
        for (int l = 0; l < L; l++)                                                           \
            lane2[l] = 2 * l;                                                                 \
        for (int64_t oh = 0; oh < OH; oh++) {                                                 \
            const T *r0 = src + 2 * oh * W, *r1 = r0 + W;                                     \
            T *drow = dst + oh * OW;                                                          \
            if (OW < L) {                                                                     \
                for (int64_t ow = 0; ow < OW; ow++) {                                         \
                    T m = r0[2 * ow];                                                         \
                    int64_t k = 0;                                                            \
                    const T b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];           \
                    if (b > m || b != b) {                                                    \
                        m = b;                                                                \
                        k = 1;                                                                \
                    }                                                                         \
                    if (c > m || c != c) {                                                    \
                        m = c;                                                                \
                        k = W;                                                                \
                    }                                                                         \
                    if (d > m || d != d) {                                                    \
                        m = d;                                                                \
                        k = W + 1;                                                            \
                    }                                                                         \
                    drow[ow] = m;                                                             \
                    if (idx)                                                                  \
                        idx[oh * OW + ow] = 2 * oh * W + 2 * ow + k;                          \
                }                                                                             \
                continue;                                                                     \
            }                                                                                 \
            for (int64_t ow = 0;; ow += L) {                                                  \
                if (ow > OW - L)                                                              \
                    ow = OW - L;                                                              \
                const V p0 = *(const fc_pool_uv##SUF *)(r0 + 2 * ow);                         \
                const V p1 = *(const fc_pool_uv##SUF *)(r0 + 2 * ow + L);                     \
                const V q0 = *(const fc_pool_uv##SUF *)(r1 + 2 * ow);                         \
                const V q1 = *(const fc_pool_uv##SUF *)(r1 + 2 * ow + L);                     \
                const V b = __builtin_shuffle(p0, p1, odd), c = __builtin_shuffle(q0, q1, even); \
                const V d = __builtin_shuffle(q0, q1, odd);                                   \
                V m = __builtin_shuffle(p0, p1, even);                                        \
                M k = {0}, s;                                                                 \
                s = (b > m) | (b != b);                                                       \
                m = (V)((s & (M)b) | (~s & (M)m));                                            \
                k = (s & 1) | (~s & k);                                                       \
                s = (c > m) | (c != c);                                                       \
                m = (V)((s & (M)c) | (~s & (M)m));                                            \
                k = (s & (MI)W) | (~s & k);                                                   \
                s = (d > m) | (d != d);                                                       \
                m = (V)((s & (M)d) | (~s & (M)m));                                            \
                k = (s & (MI)(W + 1)) | (~s & k);                                             \
                *(fc_pool_uv##SUF *)(drow + ow) = m;                                          \
                if (idx)                                                                      \
                    *(fc_pool_ui##SUF *)(idx + oh * OW + ow) =                                \
                        __builtin_convertvector(k, fc_pool_i##SUF) + lane2                    \
                        + (2 * oh * W + 2 * ow);                                              \
                if (ow == OW - L)                                                             \
                    break;                                                                    \
            }                                                                                 \
        }                                                                                     \
    }
FC_MAXPOOL_2X2_DEFINE(float, _f32, 4, int32_t, ((fc_pool_m_f32){0, 2, 4, 6}),
                      ((fc_pool_m_f32){1, 3, 5, 7}))
FC_MAXPOOL_2X2_DEFINE(double, _f64, 2, int64_t, ((fc_pool_m_f64){0, 2}),
                      ((fc_pool_m_f64){1, 3}))

#define FC_MAXPOOL_DEFINE(T, SUF)                                                             \
    fc_status fc_maxpool2d_forward##SUF(T *out, int64_t *argmax, const T *inp,                \
                                        const fc_pool2d_geom *g, int nt)                      \
    {                                                                                         \
        const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, HW = H * W;                 \
        const int64_t planes = g->N * g->C;                                                   \
        const int64_t per_item = FC_MAX((int64_t)1, FC_POOL_ITEM_ELEMS / FC_MAX(HW, (int64_t)1)); \
        const int64_t items = FC_CEIL_DIV(planes, per_item);                                  \
        /* The most common pooling, 2x2 windows at stride 2 inside the image, has its  \
         * own loop without bounds or window loops. */                                        \
        const int k2s2 = g->KH == 2 && g->KW == 2 && g->SH == 2 && g->SW == 2 && g->PH == 0   \
                         && g->PW == 0 && g->DH == 1 && g->DW == 1 && 2 * OH <= H             \
                         && 2 * OW <= W && W < INT32_MAX; /* tap offsets fit int32 lanes */   \
        nt = fc_threads_for((double)planes * OH * OW * g->KH * g->KW * 4, nt);                \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t it = 0; it < items; it++) {                                              \
            const int64_t q1 = FC_MIN(planes, (it + 1) * per_item);                           \
            for (int64_t q = it * per_item; q < q1; q++) {                                    \
                const T *src = inp + q * HW;                                                  \
                T *dst = out + q * OH * OW;                                                   \
                int64_t *idx = argmax ? argmax + q * OH * OW : NULL;                          \
                if (k2s2) {                                                                   \
                    fc_maxpool_2x2##SUF(dst, idx, src, W, OH, OW);                            \
                    continue;                                                                 \
                }                                                                             \
                for (int64_t oh = 0; oh < OH; oh++) {                                         \
                    int64_t ih0 = oh * g->SH - g->PH;                                         \
                    const int64_t ih1 = FC_MIN(ih0 + (g->KH - 1) * g->DH + 1, H);             \
                    if (ih0 < 0) /* first tap inside the image */                            \
                        ih0 += FC_CEIL_DIV(-ih0, g->DH) * g->DH;                              \
                    for (int64_t ow = 0; ow < OW; ow++) {                                     \
                        int64_t iw0 = ow * g->SW - g->PW;                                     \
                        const int64_t iw1 = FC_MIN(iw0 + (g->KW - 1) * g->DW + 1, W);         \
                        if (iw0 < 0)                                                          \
                            iw0 += FC_CEIL_DIV(-iw0, g->DW) * g->DW;                          \
                        T m = -(T)INFINITY;                                                   \
                        int64_t mi = ih0 * W + iw0;                                           \
                        for (int64_t ih = ih0; ih < ih1; ih += g->DH)                         \
                            for (int64_t iw = iw0; iw < iw1; iw += g->DW) {                   \
                                const T v = src[ih * W + iw];                                 \
                                if (v > m || isnan(v)) {                                      \
                                    m = v;                                                    \
                                    mi = ih * W + iw;                                         \
                                }                                                             \
                            }                                                                 \
                        dst[oh * OW + ow] = m;                                                \
                        if (idx)                                                              \
                            idx[oh * OW + ow] = mi;                                           \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        return FC_OK;                                                                         \
    }

FC_MAXPOOL_DEFINE(float, _f32)
FC_MAXPOOL_DEFINE(double, _f64)

/* fc_maxpool2d_backward_{f32,f64}
 *   dinp[n][c][argmax[n][c][o]] += dout[n][c][o] for every o < OH*OW, from zero
 *   (a scatter-add, so overlapping windows accumulate, in increasing o).
 *   dinp: [N*C][HW], dout, argmax: [N*C][OHW]. Every argmax is checked as it is read:
 *   one outside [0, HW) is never used, and the call returns FC_EINVAL with dinp
 *   partly written (the caller then discards it). Overwrites dinp. Parallel over
 *   the planes. */
#define FC_MAXPOOL_BWD_DEFINE(T, SUF)                                                         \
    fc_status fc_maxpool2d_backward##SUF(T *dinp, const T *dout, const int64_t *argmax,       \
                                         int64_t planes, int64_t HW, int64_t OHW, int nt)     \
    {                                                                                         \
        const int64_t per_item = FC_MAX((int64_t)1, FC_POOL_ITEM_ELEMS / FC_MAX(HW, OHW));    \
        const int64_t items = FC_CEIL_DIV(planes, per_item);                                  \
        int bad = 0;                                                                          \
        nt = fc_threads_for((double)planes * (HW + OHW) * 4, nt);                             \
        FC_PRAGMA_PARALLEL_FOR                                                                \
        for (int64_t it = 0; it < items; it++) {                                              \
            const int64_t q1 = FC_MIN(planes, (it + 1) * per_item);                           \
            for (int64_t q = it * per_item; q < q1; q++) {                                    \
                T *dst = dinp + q * HW;                                                       \
                const T *src = dout + q * OHW;                                                \
                const int64_t *idx = argmax + q * OHW;                                        \
                memset(dst, 0, (size_t)HW * sizeof(T));                                       \
                for (int64_t o = 0; o < OHW; o++) {                                           \
                    const uint64_t i = (uint64_t)idx[o];                                      \
                    if (__builtin_expect(i >= (uint64_t)HW, 0)) {                             \
                        bad = 1;                                                              \
                        break;                                                                \
                    }                                                                         \
                    dst[i] += src[o];                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        return bad ? FC_EINVAL : FC_OK;                                                       \
    }

FC_MAXPOOL_BWD_DEFINE(float, _f32)
FC_MAXPOOL_BWD_DEFINE(double, _f64)
