/* maxpool2d.c — 2-D max pooling with argmax indices, float and double. */
#include <math.h>
#include <string.h>
#include "internal.h"

/* Planes per work item: enough input that scheduling costs nothing next to it. */
#define FC_POOL_ITEM_ELEMS 16384

/* 2x2 windows at stride 2 without dilation, all inside the image. The same result as
 * the general loop (the first maximum in row-major order; with NaN, the last NaN),
 * computed without data-dependent branches: the winning tap is unpredictable, and a
 * mispredicted branch per window costs more than the window. */
#define FC_MAXPOOL_2X2_DEFINE(T, SUF)                                                         \
    static void fc_maxpool_2x2##SUF(T *restrict dst, int64_t *restrict idx,                   \
                                    const T *restrict src, int64_t W, int64_t OH, int64_t OW) \
    {                                                                                         \
        if (idx == NULL) { /* values only: selects that vectorize */                         \
            for (int64_t oh = 0; oh < OH; oh++) {                                             \
                const T *r0 = src + 2 * oh * W, *r1 = r0 + W;                                 \
                for (int64_t ow = 0; ow < OW; ow++) {                                         \
                    T m = r0[2 * ow];                                                         \
                    const T b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];           \
                    m = (b > m || b != b) ? b : m;                                            \
                    m = (c > m || c != c) ? c : m;                                            \
                    m = (d > m || d != d) ? d : m;                                            \
                    dst[oh * OW + ow] = m;                                                    \
                }                                                                             \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        for (int64_t oh = 0; oh < OH; oh++) {                                                 \
            const T *r0 = src + 2 * oh * W, *r1 = r0 + W;                                     \
            for (int64_t ow = 0; ow < OW; ow++) {                                             \
                const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1]; \
                const T ab = b > a ? b : a, cd = d > c ? d : c;                               \
                T m = cd > ab ? cd : ab;                                                      \
                /* first tap equal to the maximum */                                          \
                const int64_t ia = a == m, ib = !ia & (b == m), ic = !(ia | ib) & (c == m);   \
                int64_t k = ib + ic * W + !(ia | ib | ic) * (W + 1);                          \
                const int64_t na = a != a, nb = b != b, nc = c != c, nd = d != d;             \
                if (na | nb | nc | nd) { /* rare: NaN wins, the last one */                   \
                    k = nd ? W + 1 : nc ? W : nb ? 1 : 0;                                     \
                    m = nd ? d : nc ? c : nb ? b : a;                                         \
                }                                                                             \
                dst[oh * OW + ow] = m;                                                        \
                idx[oh * OW + ow] = 2 * oh * W + 2 * ow + k;                                  \
            }                                                                                 \
        }                                                                                     \
    }
FC_MAXPOOL_2X2_DEFINE(float, _f32)
FC_MAXPOOL_2X2_DEFINE(double, _f64)

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
                         && 2 * OW <= W;                                                      \
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
