/* ukernel_avx2.c — AVX2+FMA micro-kernels (compiled with -mavx2 -mfma only).
 * Contract: see ukernel_ref.c. 6 x 16 floats / 6 x 8 doubles: 12 ymm accumulators,
 * two B loads and six broadcasts per k step, which keeps both FMA pipes busy
 * (12 independent chains cover the 4-cycle FMA latency). */
#include <immintrin.h>
#include "../internal.h"

/* One kernel body for both dtypes: V is the vector type, L its lanes, P the
 * intrinsic suffix (ps/pd), BC the broadcast (ss/sd). NR = 2*L. */
#define FC_CAT3(a, b, c) a##b##c
#define FC_MM(op, P) FC_CAT3(_mm256_, op, P)
#define FC_AVX2_UKERNEL(NAME, T, V, L, P, BC, R)                                               \
    static void NAME(int64_t kc, const T *restrict a, const T *restrict b, T *restrict c,     \
                     int64_t ldc, int accumulate)                                             \
    {                                                                                         \
        V t[R][2];                                                                            \
        _Pragma("GCC unroll 6") for (int i = 0; i < R; i++) {                                \
            t[i][0] = t[i][1] = FC_MM(setzero_, P)();                                         \
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);                           \
            _mm_prefetch((const char *)(c + i * ldc + 2 * L - 1), _MM_HINT_T0);               \
        }                                                                                     \
        _Pragma("GCC unroll 4") for (int64_t k = 0; k < kc; k++) {                            \
            const V b0 = FC_MM(loadu_, P)(b);                                                 \
            const V b1 = FC_MM(loadu_, P)(b + L);                                             \
            _Pragma("GCC unroll 6") for (int i = 0; i < R; i++) {                            \
                const V ai = FC_MM(broadcast_, BC)(a + i);                                    \
                t[i][0] = FC_MM(fmadd_, P)(ai, b0, t[i][0]);                                  \
                t[i][1] = FC_MM(fmadd_, P)(ai, b1, t[i][1]);                                  \
            }                                                                                 \
            a += 6;                                                                           \
            b += 2 * L;                                                                       \
        }                                                                                     \
        _Pragma("GCC unroll 6") for (int i = 0; i < R; i++) {                                \
            T *ci = c + i * ldc;                                                              \
            if (accumulate) {                                                                 \
                t[i][0] = FC_MM(add_, P)(FC_MM(loadu_, P)(ci), t[i][0]);                      \
                t[i][1] = FC_MM(add_, P)(FC_MM(loadu_, P)(ci + L), t[i][1]);                  \
            }                                                                                 \
            FC_MM(storeu_, P)(ci, t[i][0]);                                                   \
            FC_MM(storeu_, P)(ci + L, t[i][1]);                                               \
        }                                                                                     \
    }

FC_AVX2_UKERNEL(fc_sgemm_ukernel_6x16__avx2, float, __m256, 8, ps, ss, 6)
FC_AVX2_UKERNEL(fc_dgemm_ukernel_6x8__avx2, double, __m256d, 4, pd, sd, 6)

/* The half-width kernels, for a last panel of at most NR/2 columns: 6 x L from the
 * left half of the 2L-wide packed panel, the same FMA chain per element as the full
 * kernel (six chains cover the FMA latency of one ymm FMA per cycle). */
#define FC_AVX2_UKERNEL_HALF(NAME, T, V, L, P, BC)                                            \
    static void NAME(int64_t kc, const T *restrict a, const T *restrict b, T *restrict c,     \
                     int64_t ldc, int accumulate)                                             \
    {                                                                                         \
        V t[6];                                                                               \
        _Pragma("GCC unroll 6") for (int i = 0; i < 6; i++) t[i] = FC_MM(setzero_, P)();      \
        _Pragma("GCC unroll 4") for (int64_t k = 0; k < kc; k++) {                            \
            const V b0 = FC_MM(loadu_, P)(b);                                                 \
            _Pragma("GCC unroll 6") for (int i = 0; i < 6; i++)                              \
                t[i] = FC_MM(fmadd_, P)(FC_MM(broadcast_, BC)(a + i), b0, t[i]);              \
            a += 6;                                                                           \
            b += 2 * L;                                                                       \
        }                                                                                     \
        _Pragma("GCC unroll 6") for (int i = 0; i < 6; i++) {                                \
            T *ci = c + i * ldc;                                                              \
            if (accumulate)                                                                   \
                t[i] = FC_MM(add_, P)(FC_MM(loadu_, P)(ci), t[i]);                            \
            FC_MM(storeu_, P)(ci, t[i]);                                                      \
        }                                                                                     \
    }

FC_AVX2_UKERNEL_HALF(fc_sgemm_ukernel_6x8__avx2, float, __m256, 8, ps, ss)
FC_AVX2_UKERNEL_HALF(fc_dgemm_ukernel_6x4__avx2, double, __m256d, 4, pd, sd)

/* The first R < 6 rows of a 6 x 16 tile (the last row panel of an M that 6 does not
 * divide: 64 = 10 x 6 + 4), straight into C: the kernel above with R rows of
 * accumulators (A's panels stay 6 wide), the same FMA chain and final add of C per
 * element (the full kernel would compute 6 rows into scratch for the caller to copy R). */
FC_AVX2_UKERNEL(fc_sgemm_ukernel_6x16_r1__avx2, float, __m256, 8, ps, ss, 1)
FC_AVX2_UKERNEL(fc_sgemm_ukernel_6x16_r2__avx2, float, __m256, 8, ps, ss, 2)
FC_AVX2_UKERNEL(fc_sgemm_ukernel_6x16_r3__avx2, float, __m256, 8, ps, ss, 3)
FC_AVX2_UKERNEL(fc_sgemm_ukernel_6x16_r4__avx2, float, __m256, 8, ps, ss, 4)
FC_AVX2_UKERNEL(fc_sgemm_ukernel_6x16_r5__avx2, float, __m256, 8, ps, ss, 5)

/* fc_ukr_pos_f32 for the 6 x 16 tile: the positions' products one after another in
 * one call, each with the k loop unrolled whole where its depth is known when
 * compiling (1-16: the polyphase first layers, e.g. ResNet's of depth 12, 6 and 3):
 * no loop counter, call or C prefetch per product. Each element is the same FMA chain
 * as in fc_sgemm_ukernel_6x16__avx2 with accumulate = 0. */
#define FC_POS_BODY(KC)                                                                   \
    do {                                                                                  \
        for (int64_t x = 0; x < npos; x++) {                                              \
            const float *restrict ax = a + x * as, *restrict bx = b + x * bs;             \
            float *restrict cx = c + x * cs;                                              \
            __m256 t[6][2];                                                               \
            _Pragma("GCC unroll 6") for (int i = 0; i < 6; i++)                          \
                t[i][0] = t[i][1] = _mm256_setzero_ps();                                  \
            _Pragma("GCC unroll 16") for (int64_t k = 0; k < (KC); k++) {                 \
                const __m256 b0 = _mm256_loadu_ps(bx + 16 * k);                           \
                const __m256 b1 = _mm256_loadu_ps(bx + 16 * k + 8);                       \
                _Pragma("GCC unroll 6") for (int i = 0; i < 6; i++) {                    \
                    const __m256 ai = _mm256_broadcast_ss(ax + 6 * k + i);                \
                    t[i][0] = _mm256_fmadd_ps(ai, b0, t[i][0]);                           \
                    t[i][1] = _mm256_fmadd_ps(ai, b1, t[i][1]);                           \
                }                                                                         \
            }                                                                             \
            _Pragma("GCC unroll 6") for (int i = 0; i < 6; i++) {                        \
                _mm256_storeu_ps(cx + i * ldc, t[i][0]);                                  \
                _mm256_storeu_ps(cx + i * ldc + 8, t[i][1]);                              \
            }                                                                             \
        }                                                                                 \
    } while (0)
#define FC_POS(KC)                                                                        \
    static void fc_pos_k##KC(int64_t npos, const float *a, int64_t as, const float *b,    \
                             int64_t bs, float *c, int64_t cs, int64_t ldc)               \
    {                                                                                     \
        FC_POS_BODY(KC);                                                                  \
    }
FC_POS(1) FC_POS(2) FC_POS(3) FC_POS(4) FC_POS(5) FC_POS(6) FC_POS(7) FC_POS(8)
FC_POS(9) FC_POS(10) FC_POS(11) FC_POS(12) FC_POS(13) FC_POS(14) FC_POS(15) FC_POS(16)
typedef void (*fc_pos_fn)(int64_t, const float *, int64_t, const float *, int64_t, float *,
                          int64_t, int64_t);
static const fc_pos_fn fc_pos_fixed[17] = {
    NULL,       fc_pos_k1,  fc_pos_k2,  fc_pos_k3,  fc_pos_k4,  fc_pos_k5,
    fc_pos_k6,  fc_pos_k7,  fc_pos_k8,  fc_pos_k9,  fc_pos_k10, fc_pos_k11,
    fc_pos_k12, fc_pos_k13, fc_pos_k14, fc_pos_k15, fc_pos_k16};

static void fc_sgemm_ukernel_6x16_pos__avx2(int64_t npos, int64_t kc, const float *a,
                                            int64_t as, const float *b, int64_t bs, float *c,
                                            int64_t cs, int64_t ldc)
{
    if (kc >= 1 && kc <= 16) {
        fc_pos_fixed[kc](npos, a, as, b, bs, c, cs, ldc);
        return;
    }
    for (int64_t x = 0; x < npos; x++)
        fc_sgemm_ukernel_6x16__avx2(kc, a + x * as, b + x * bs, c + x * cs, ldc, 0);
}
#undef FC_POS
#undef FC_POS_BODY

void fc_sconv2d_direct__avx2(const fc_conv2d_geom *g, float *out, const float *xp,
                             int64_t rows, int64_t WP, const float *weight, const float *bias,
                             int64_t oh0, int64_t oh1);
void fc_dconv2d_direct__avx2(const fc_conv2d_geom *g, double *out, const double *xp,
                             int64_t rows, int64_t WP, const double *weight, const double *bias,
                             int64_t oh0, int64_t oh1);
int64_t fc_sconv2d_direct__avx2_width(const fc_conv2d_geom *g);
int64_t fc_dconv2d_direct__avx2_width(const fc_conv2d_geom *g);
void fc_sconv2d_direct__avx2_pack(const fc_conv2d_geom *g, float *dst, const float *weight);
void fc_dconv2d_direct__avx2_pack(const fc_conv2d_geom *g, double *dst, const double *weight);
void fc_sconv2d_direct__avx2_bwd_w(const fc_conv2d_geom *g, float *dweight, const float *dout,
        float *dt, const float *xp, int64_t rows, int64_t WP, int64_t oc0, int64_t oc1);
void fc_dconv2d_direct__avx2_bwd_w(const fc_conv2d_geom *g, double *dweight, const double *dout,
        double *dt, const double *xp, int64_t rows, int64_t WP, int64_t oc0, int64_t oc1);
void fc_sconv2d_depthwise__avx2(const fc_conv2d_geom *g, int64_t UH, int64_t UW, float *out,
        const float *src, const float *weight, const float *bias, int64_t nout, int accumulate, float *ws);
void fc_sconv2d_depthwise_bwd_w__avx2(const fc_conv2d_geom *g, float *dweight, double *dbias,
        const float *dout, const float *src, int64_t nout, float *ws);
void fc_dconv2d_depthwise__avx2(const fc_conv2d_geom *g, int64_t UH, int64_t UW, double *out,
        const double *src, const double *weight, const double *bias, int64_t nout, int accumulate, double *ws);
void fc_dconv2d_depthwise_bwd_w__avx2(const fc_conv2d_geom *g, double *dweight, double *dbias,
        const double *dout, const double *src, int64_t nout, double *ws);

FC_FMA_PROBE(fc_fma_probe__avx2, 32, 12)

/* Zen 4 / Haswell-class caches: 32 KiB L1d, >= 256 KiB L2.
 * KC = 256: a 256 x 16 float B micro-panel is 16 KiB (half of L1).
 * MC = 120: a 120 x 256 float A block is 120 KiB. */
const fc_kernels fc_kernels__avx2 = {
    .name = "avx2",
    .fma_probe = fc_fma_probe__avx2,
    .fma_probe_flops = fc_fma_probe__avx2_flops,
    .stile = "6x16",
    .s = {.mr = 6, .nr = 16, .kc = 256, .mc = 120, .nc = 2048},
    .sgemm_ukr = fc_sgemm_ukernel_6x16__avx2,
    .sgemm_ukr_half = fc_sgemm_ukernel_6x8__avx2,
    .sgemm_ukr_pos = fc_sgemm_ukernel_6x16_pos__avx2,
    .sgemm_ukr_rows = {NULL, fc_sgemm_ukernel_6x16_r1__avx2, fc_sgemm_ukernel_6x16_r2__avx2,
                       fc_sgemm_ukernel_6x16_r3__avx2, fc_sgemm_ukernel_6x16_r4__avx2,
                       fc_sgemm_ukernel_6x16_r5__avx2},
    .d = {.mr = 6, .nr = 8, .kc = 256, .mc = 60, .nc = 1024},
    .dgemm_ukr = fc_dgemm_ukernel_6x8__avx2,
    .dgemm_ukr_half = fc_dgemm_ukernel_6x4__avx2,
    .sconv_direct = fc_sconv2d_direct__avx2,
    .sconv_direct_width = fc_sconv2d_direct__avx2_width,
    .sconv_direct_pack = fc_sconv2d_direct__avx2_pack,
    .sconv_direct_bwd_w = fc_sconv2d_direct__avx2_bwd_w,
    .dconv_direct = fc_dconv2d_direct__avx2,
    .dconv_direct_width = fc_dconv2d_direct__avx2_width,
    .dconv_direct_pack = fc_dconv2d_direct__avx2_pack,
    .dconv_direct_bwd_w = fc_dconv2d_direct__avx2_bwd_w,
    .sconv_dw_fwd = fc_sconv2d_depthwise__avx2,
    .sconv_dw_bwd_w = fc_sconv2d_depthwise_bwd_w__avx2,
    .dconv_dw_fwd = fc_dconv2d_depthwise__avx2,
    .dconv_dw_bwd_w = fc_dconv2d_depthwise_bwd_w__avx2,
};
