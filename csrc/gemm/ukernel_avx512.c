/* ukernel_avx512.c — AVX-512F micro-kernels (compiled with -mavx512f -mavx2 -mfma only).
 * Contract: see ukernel_ref.c. 8 x 16 floats / 8 x 8 doubles: one zmm row of B per
 * k step and eight broadcast FMAs into eight zmm accumulators. NR = 16 keeps the
 * edge waste of small images (14 x 14 = 196 pixels) as low as the AVX2 kernel's,
 * and MR = 8 divides the usual channel counts. */
#include <immintrin.h>
#include "../internal.h"

static void fc_sgemm_ukernel_8x16__avx512(int64_t kc, const float *restrict a,
                                          const float *restrict b, float *restrict c,
                                          int64_t ldc, int accumulate)
{
    __m512 t[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        t[i] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            t[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, t[i]);
        a += 8;
        b += 16;
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        float *ci = c + i * ldc;
        if (accumulate)
            t[i] = _mm512_add_ps(_mm512_loadu_ps(ci), t[i]);
        _mm512_storeu_ps(ci, t[i]);
    }
}

static void fc_dgemm_ukernel_8x8__avx512(int64_t kc, const double *restrict a,
                                         const double *restrict b, double *restrict c,
                                         int64_t ldc, int accumulate)
{
    __m512d t[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        t[i] = _mm512_setzero_pd();
    for (int64_t k = 0; k < kc; k++) {
        const __m512d b0 = _mm512_loadu_pd(b);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            t[i] = _mm512_fmadd_pd(_mm512_set1_pd(a[i]), b0, t[i]);
        a += 8;
        b += 8;
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        double *ci = c + i * ldc;
        if (accumulate)
            t[i] = _mm512_add_pd(_mm512_loadu_pd(ci), t[i]);
        _mm512_storeu_pd(ci, t[i]);
    }
}

void fc_sconv2d_direct__avx512(const fc_conv2d_geom *g, float *out, const float *xp,
                               int64_t rows, int64_t WP, const float *weight, const float *bias,
                               int64_t oh0, int64_t oh1);
void fc_dconv2d_direct__avx512(const fc_conv2d_geom *g, double *out, const double *xp,
                               int64_t rows, int64_t WP, const double *weight, const double *bias,
                               int64_t oh0, int64_t oh1);
int64_t fc_sconv2d_direct__avx512_width(const fc_conv2d_geom *g);
int64_t fc_dconv2d_direct__avx512_width(const fc_conv2d_geom *g);

/* Zen 4: 32 KiB L1d, 1 MiB L2. KC = 256: a 256 x 16 float B micro-panel is 16 KiB.
 * MC = 240: a 240 x 256 float A block is 240 KiB of L2. */
const fc_kernels fc_kernels__avx512 = {
    .name = "avx512",
    .s = {.mr = 8, .nr = 16, .kc = 256, .mc = 240, .nc = 2048},
    .sgemm_ukr = fc_sgemm_ukernel_8x16__avx512,
    .d = {.mr = 8, .nr = 8, .kc = 256, .mc = 120, .nc = 1024},
    .dgemm_ukr = fc_dgemm_ukernel_8x8__avx512,
    .sconv_direct = fc_sconv2d_direct__avx512,
    .sconv_direct_width = fc_sconv2d_direct__avx512_width,
    .dconv_direct = fc_dconv2d_direct__avx512,
    .dconv_direct_width = fc_dconv2d_direct__avx512_width,
};
