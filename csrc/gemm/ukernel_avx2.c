/* ukernel_avx2.c — AVX2+FMA micro-kernels (compiled with -mavx2 -mfma only).
 * Contract: see ukernel_ref.c. 6 x 16 floats / 6 x 8 doubles: 12 ymm accumulators,
 * two B loads and six broadcasts per k step, which keeps both FMA pipes busy
 * (12 independent chains cover the 4-cycle FMA latency). */
#include <immintrin.h>
#include "../internal.h"

static void fc_sgemm_ukernel_6x16__avx2(int64_t kc, const float *restrict a,
                                        const float *restrict b, float *restrict c, int64_t ldc,
                                        int accumulate)
{
    __m256 t[6][2];
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++)
        t[i][0] = t[i][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            t[i][0] = _mm256_fmadd_ps(ai, b0, t[i][0]);
            t[i][1] = _mm256_fmadd_ps(ai, b1, t[i][1]);
        }
        a += 6;
        b += 16;
    }
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            t[i][0] = _mm256_add_ps(_mm256_loadu_ps(ci), t[i][0]);
            t[i][1] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), t[i][1]);
        }
        _mm256_storeu_ps(ci, t[i][0]);
        _mm256_storeu_ps(ci + 8, t[i][1]);
    }
}

static void fc_dgemm_ukernel_6x8__avx2(int64_t kc, const double *restrict a,
                                       const double *restrict b, double *restrict c, int64_t ldc,
                                       int accumulate)
{
    __m256d t[6][2];
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++)
        t[i][0] = t[i][1] = _mm256_setzero_pd();
    for (int64_t k = 0; k < kc; k++) {
        const __m256d b0 = _mm256_loadu_pd(b);
        const __m256d b1 = _mm256_loadu_pd(b + 4);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            const __m256d ai = _mm256_broadcast_sd(a + i);
            t[i][0] = _mm256_fmadd_pd(ai, b0, t[i][0]);
            t[i][1] = _mm256_fmadd_pd(ai, b1, t[i][1]);
        }
        a += 6;
        b += 8;
    }
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        double *ci = c + i * ldc;
        if (accumulate) {
            t[i][0] = _mm256_add_pd(_mm256_loadu_pd(ci), t[i][0]);
            t[i][1] = _mm256_add_pd(_mm256_loadu_pd(ci + 4), t[i][1]);
        }
        _mm256_storeu_pd(ci, t[i][0]);
        _mm256_storeu_pd(ci + 4, t[i][1]);
    }
}

void fc_sconv2d_direct__avx2(const fc_conv2d_geom *g, float *out, const float *xp,
                             int64_t rows, int64_t WP, const float *weight, const float *bias,
                             int64_t oh0, int64_t oh1);
void fc_dconv2d_direct__avx2(const fc_conv2d_geom *g, double *out, const double *xp,
                             int64_t rows, int64_t WP, const double *weight, const double *bias,
                             int64_t oh0, int64_t oh1);
int64_t fc_sconv2d_direct__avx2_width(const fc_conv2d_geom *g);
int64_t fc_dconv2d_direct__avx2_width(const fc_conv2d_geom *g);

/* Zen 4 / Haswell-class caches: 32 KiB L1d, >= 256 KiB L2.
 * KC = 256: a 256 x 16 float B micro-panel is 16 KiB (half of L1).
 * MC = 120: a 120 x 256 float A block is 120 KiB. */
const fc_kernels fc_kernels__avx2 = {
    .name = "avx2",
    .s = {.mr = 6, .nr = 16, .kc = 256, .mc = 120, .nc = 2048},
    .sgemm_ukr = fc_sgemm_ukernel_6x16__avx2,
    .d = {.mr = 6, .nr = 8, .kc = 256, .mc = 60, .nc = 1024},
    .dgemm_ukr = fc_dgemm_ukernel_6x8__avx2,
    .sconv_direct = fc_sconv2d_direct__avx2,
    .sconv_direct_width = fc_sconv2d_direct__avx2_width,
    .dconv_direct = fc_dconv2d_direct__avx2,
    .dconv_direct_width = fc_dconv2d_direct__avx2_width,
};
