/* ukernel_avx512.c — AVX-512F micro-kernels (compiled with -mavx512f -mavx2 -mfma only).
 * Contract: see ukernel_ref.c. 8 x 16 floats / 8 x 8 doubles: one zmm row of B per
 * k step and eight broadcast FMAs into eight zmm accumulators. NR = 16 keeps the
 * edge waste of small images (14 x 14 = 196 pixels) as low as the AVX2 kernel's,
 * and MR = 8 divides the usual channel counts. */
#include <immintrin.h>
#include "../internal.h"

/* One kernel body for both dtypes and both widths: V is the vector type, L its lanes,
 * W the intrinsic prefix (_mm512_ or _mm256_), P the suffix (ps/pd), BS the distance
 * between B's rows (NR). The full kernels are 8 x NR with L = NR; the half-width ones,
 * for a last panel of at most NR/2 columns, are 8 x NR/2 with ymm rows of B read from
 * the same NR-wide packed panel. */
#define FC_CAT3(a, b, c) a##b##c
#define FC_AVX512_UKERNEL(NAME, T, V, L, W, P, BS)                                            \
    static void NAME(int64_t kc, const T *restrict a, const T *restrict b, T *restrict c,     \
                     int64_t ldc, int accumulate)                                             \
    {                                                                                         \
        V t[8];                                                                               \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {                                \
            t[i] = FC_CAT3(W, setzero_, P)();                                                 \
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);                           \
            _mm_prefetch((const char *)(c + i * ldc + L - 1), _MM_HINT_T0);                   \
        }                                                                                     \
        _Pragma("GCC unroll 4") for (int64_t k = 0; k < kc; k++) {                            \
            const V b0 = FC_CAT3(W, loadu_, P)(b);                                            \
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                              \
                t[i] = FC_CAT3(W, fmadd_, P)(FC_CAT3(W, set1_, P)(a[i]), b0, t[i]);           \
            a += 8;                                                                           \
            b += BS;                                                                          \
        }                                                                                     \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {                                \
            T *ci = c + i * ldc;                                                              \
            if (accumulate)                                                                   \
                t[i] = FC_CAT3(W, add_, P)(FC_CAT3(W, loadu_, P)(ci), t[i]);                  \
            FC_CAT3(W, storeu_, P)(ci, t[i]);                                                 \
        }                                                                                     \
    }

/* 8 x 32 floats: two zmm rows of B per k step and sixteen accumulators. A core with
 * two 512-bit FMA ports (4-cycle latency) needs at least eight FMAs in flight, and
 * with only eight accumulators every hiccup of the loads stalls it; sixteen chains,
 * and 10 loads per 16 FMAs instead of 9 per 8, keep it near its peak. Each element
 * is still one FMA chain in increasing k, so the sums are those of the 8 x 16 kernel. */
static void fc_sgemm_ukernel_8x32__avx512(int64_t kc, const float *restrict a,
                                          const float *restrict b, float *restrict c,
                                          int64_t ldc, int accumulate)
{
    __m512 t0[8], t1[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t0[i] = _mm512_setzero_ps();
        t1[i] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 31), _MM_HINT_T0);
    }
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            t0[i] = _mm512_fmadd_ps(ai, b0, t0[i]);
            t1[i] = _mm512_fmadd_ps(ai, b1, t1[i]);
        }
        a += 8;
        b += 32;
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            t0[i] = _mm512_add_ps(_mm512_loadu_ps(ci), t0[i]);
            t1[i] = _mm512_add_ps(_mm512_loadu_ps(ci + 16), t1[i]);
        }
        _mm512_storeu_ps(ci, t0[i]);
        _mm512_storeu_ps(ci + 16, t1[i]);
    }
}

FC_AVX512_UKERNEL(fc_sgemm_ukernel_8x16__avx512, float, __m512, 16, _mm512_, ps, 16)
FC_AVX512_UKERNEL(fc_dgemm_ukernel_8x8__avx512, double, __m512d, 8, _mm512_, pd, 8)
FC_AVX512_UKERNEL(fc_sgemm_ukernel_8x8__avx512, float, __m256, 8, _mm256_, ps, 16)
/* the wide tile's half: 8 x 16 from the 32-wide panels */
FC_AVX512_UKERNEL(fc_sgemm_ukernel_8x16w__avx512, float, __m512, 16, _mm512_, ps, 32)
FC_AVX512_UKERNEL(fc_dgemm_ukernel_8x4__avx512, double, __m256d, 4, _mm256_, pd, 8)

/* fc_ukr_pos_f32 for the 8 x 16 tile: two products at a time, so that sixteen FMA
 * chains are in flight even when kc is small (12 for ResNet's first layer in
 * polyphase Winograd form, where one product of eight chains is mostly latency).
 * FC_POS2(KC) is the pair for a depth known when compiling: the k loop unrolled
 * whole, no loop counter or pointer steps (a harness of the first layer's products,
 * 36 positions of depth 12, 12 of 6 and one of 3 per panel: 0.90 of the time of the
 * loop over a run-time kc; the layer 0.94-0.98). Depths past 16 run the same body
 * with the run-time kc. Each element is the same FMA chain either way. */
#define FC_POS2_BODY(KC)                                                                  \
    do {                                                                                  \
        __m512 t0[8], t1[8];                                                              \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                              \
        {                                                                                 \
            t0[i] = _mm512_setzero_ps();                                                  \
            t1[i] = _mm512_setzero_ps();                                                  \
        }                                                                                 \
        _Pragma("GCC unroll 16") for (int64_t k = 0; k < (KC); k++)                      \
        {                                                                                 \
            const __m512 v0 = _mm512_loadu_ps(b0 + 16 * k), v1 = _mm512_loadu_ps(b1 + 16 * k); \
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                          \
            {                                                                             \
                t0[i] = _mm512_fmadd_ps(_mm512_set1_ps(a0[8 * k + i]), v0, t0[i]);        \
                t1[i] = _mm512_fmadd_ps(_mm512_set1_ps(a1[8 * k + i]), v1, t1[i]);        \
            }                                                                             \
        }                                                                                 \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                              \
        {                                                                                 \
            _mm512_storeu_ps(c0 + i * ldc, t0[i]);                                        \
            _mm512_storeu_ps(c1 + i * ldc, t1[i]);                                        \
        }                                                                                 \
    } while (0)
#define FC_POS2(KC)                                                                       \
    static void fc_pos2_k##KC(const float *restrict a0, const float *restrict a1,        \
                              const float *restrict b0, const float *restrict b1,        \
                              float *restrict c0, float *restrict c1, int64_t ldc)        \
    {                                                                                     \
        FC_POS2_BODY(KC);                                                                 \
    }
FC_POS2(1) FC_POS2(2) FC_POS2(3) FC_POS2(4) FC_POS2(5) FC_POS2(6) FC_POS2(7) FC_POS2(8)
FC_POS2(9) FC_POS2(10) FC_POS2(11) FC_POS2(12) FC_POS2(13) FC_POS2(14) FC_POS2(15)
FC_POS2(16)
typedef void (*fc_pos2_fn)(const float *, const float *, const float *, const float *, float *,
                           float *, int64_t);
static const fc_pos2_fn fc_pos2_fixed[17] = {
    NULL,          fc_pos2_k1,  fc_pos2_k2,  fc_pos2_k3,  fc_pos2_k4,  fc_pos2_k5,
    fc_pos2_k6,    fc_pos2_k7,  fc_pos2_k8,  fc_pos2_k9,  fc_pos2_k10, fc_pos2_k11,
    fc_pos2_k12,   fc_pos2_k13, fc_pos2_k14, fc_pos2_k15, fc_pos2_k16};

static void fc_pos2_any(int64_t kc, const float *restrict a0, const float *restrict a1,
                        const float *restrict b0, const float *restrict b1, float *restrict c0,
                        float *restrict c1, int64_t ldc)
{
    FC_POS2_BODY(kc);
}

static void fc_sgemm_ukernel_8x16_pos__avx512(int64_t npos, int64_t kc, const float *a,
                                              int64_t as, const float *b, int64_t bs,
                                              float *c, int64_t cs, int64_t ldc)
{
    const fc_pos2_fn fixed = kc >= 1 && kc <= 16 ? fc_pos2_fixed[kc] : NULL;
    int64_t p = 0;
    for (; p + 1 < npos; p += 2) {
        const float *a0 = a + p * as, *b0 = b + p * bs;
        float *c0 = c + p * cs;
        if (fixed != NULL)
            fixed(a0, a0 + as, b0, b0 + bs, c0, c0 + cs, ldc);
        else
            fc_pos2_any(kc, a0, a0 + as, b0, b0 + bs, c0, c0 + cs, ldc);
    }
    if (p < npos)
        fc_sgemm_ukernel_8x16__avx512(kc, a + p * as, b + p * bs, c + p * cs, ldc, 0);
}
#undef FC_POS2
#undef FC_POS2_BODY

void fc_sconv2d_direct__avx512(const fc_conv2d_geom *g, float *out, const float *xp,
                               int64_t rows, int64_t WP, const float *weight, const float *bias,
                               int64_t oh0, int64_t oh1);
void fc_dconv2d_direct__avx512(const fc_conv2d_geom *g, double *out, const double *xp,
                               int64_t rows, int64_t WP, const double *weight, const double *bias,
                               int64_t oh0, int64_t oh1);
int64_t fc_sconv2d_direct__avx512_width(const fc_conv2d_geom *g);
int64_t fc_dconv2d_direct__avx512_width(const fc_conv2d_geom *g);
void fc_sconv2d_direct__avx512_pack(const fc_conv2d_geom *g, float *dst, const float *weight);
void fc_dconv2d_direct__avx512_pack(const fc_conv2d_geom *g, double *dst, const double *weight);
void fc_sconv2d_direct__avx512_bwd_w(const fc_conv2d_geom *g, float *dweight, const float *dout,
        float *dt, const float *xp, int64_t rows, int64_t WP, int64_t oc0, int64_t oc1);
void fc_dconv2d_direct__avx512_bwd_w(const fc_conv2d_geom *g, double *dweight, const double *dout,
        double *dt, const double *xp, int64_t rows, int64_t WP, int64_t oc0, int64_t oc1);
void fc_sconv2d_depthwise__avx512(const fc_conv2d_geom *g, int64_t UH, int64_t UW, float *out,
        const float *src, const float *weight, const float *bias, int64_t nout, int accumulate, float *ws);
void fc_sconv2d_depthwise_bwd_w__avx512(const fc_conv2d_geom *g, float *dweight, double *dbias,
        const float *dout, const float *src, int64_t nout, float *ws);
void fc_dconv2d_depthwise__avx512(const fc_conv2d_geom *g, int64_t UH, int64_t UW, double *out,
        const double *src, const double *weight, const double *bias, int64_t nout, int accumulate, double *ws);
void fc_dconv2d_depthwise_bwd_w__avx512(const fc_conv2d_geom *g, double *dweight, double *dbias,
        const double *dout, const double *src, int64_t nout, double *ws);

FC_FMA_PROBE(fc_fma_probe__avx512, 64, 24)

/* copy_lines (internal.h): one 64-byte streaming store per line. winograd.c's
 * fc_copy_stream streams the pieces of a row's end lines in 16 bytes, so every piece of
 * a line goes out by streaming stores (a line written partly by ordinary stores and
 * partly by streaming ones, as a 64-byte head of ordinary stores did, took ResNet's
 * first layer 0.45 ms longer). The polyphase forward's output rows, Intel Xeon VM:
 * its layer 0.98 of the time of 16-byte stores throughout. */
static void fc_copy_lines__avx512(void *dst, const void *src, size_t lines)
{
    float *d = (float *)dst;
    const float *s = (const float *)src;
    for (size_t i = 0; i < lines; i++)
        _mm512_stream_ps(d + 16 * i, _mm512_loadu_ps(s + 16 * i));
}

/* Everything but the float GEMM tile, shared by the two AVX-512 tables. */
#define FC_AVX512_COMMON                                                                  \
    .fma_probe = fc_fma_probe__avx512,                                                    \
    .fma_probe_flops = fc_fma_probe__avx512_flops,                                        \
    .d = {.mr = 8, .nr = 8, .kc = 256, .mc = 120, .nc = 1024},                            \
    .dgemm_ukr = fc_dgemm_ukernel_8x8__avx512,                                            \
    .dgemm_ukr_half = fc_dgemm_ukernel_8x4__avx512,                                       \
    .sconv_direct = fc_sconv2d_direct__avx512,                                            \
    .sconv_direct_width = fc_sconv2d_direct__avx512_width,                                \
    .sconv_direct_pack = fc_sconv2d_direct__avx512_pack,                                  \
    .sconv_direct_bwd_w = fc_sconv2d_direct__avx512_bwd_w,                                \
    .dconv_direct = fc_dconv2d_direct__avx512,                                            \
    .dconv_direct_width = fc_dconv2d_direct__avx512_width,                                \
    .dconv_direct_pack = fc_dconv2d_direct__avx512_pack,                                  \
    .dconv_direct_bwd_w = fc_dconv2d_direct__avx512_bwd_w,                                \
    .sconv_dw_fwd = fc_sconv2d_depthwise__avx512,                                         \
    .sconv_dw_bwd_w = fc_sconv2d_depthwise_bwd_w__avx512,                                 \
    .dconv_dw_fwd = fc_dconv2d_depthwise__avx512,                                         \
    .dconv_dw_bwd_w = fc_dconv2d_depthwise_bwd_w__avx512,                               \
    .copy_lines = fc_copy_lines__avx512

/* Zen 4: 32 KiB L1d, 1 MiB L2. KC = 256: a 256 x 16 float B micro-panel is 16 KiB.
 * MC = 240: a 240 x 256 float A block is 240 KiB of L2. */
const fc_kernels fc_kernels__avx512 = {
    .name = "avx512",
    .stile = "8x16",
    .s = {.mr = 8, .nr = 16, .kc = 256, .mc = 240, .nc = 2048},
    .sgemm_ukr = fc_sgemm_ukernel_8x16__avx512,
    .sgemm_ukr_half = fc_sgemm_ukernel_8x8__avx512,
    .sgemm_ukr_pos = fc_sgemm_ukernel_8x16_pos__avx512,
    FC_AVX512_COMMON,
};

/* The wide tile (dispatch.c says when): Intel's AVX-512 cores have 48 KiB of L1d and
 * 2 MiB of L2, so the 32 KiB B micro-panel of KC = 256 still fits L1 beside an A
 * micro-panel. KC as in the narrow table: every element is the same sum (a KC of 128
 * was no faster).
 * Winograd blocks of 96 tiles (three 32-wide panels), whatever the channel counts: on
 * the Intel Xeon the cache target's 192 KiB per position (512 tiles on fmnist_c2, 192
 * on r18_l2) made V and M of all 16 positions outgrow L2; 96 tiles took 0.73-0.82 of
 * the time on fmnist_c2 and 0.89-0.94 on r18_l2, forward and backward, 1 and 2
 * threads (r18_l3 already had 96); 64 and 128 were no better. */
const fc_kernels fc_kernels__avx512w = {
    .name = "avx512",
    .stile = "8x32",
    .s = {.mr = 8, .nr = 32, .kc = 256, .mc = 240, .nc = 2048},
    .wino_tiles = 96,
    .sgemm_ukr = fc_sgemm_ukernel_8x32__avx512,
    .sgemm_ukr_half = fc_sgemm_ukernel_8x16w__avx512,
    FC_AVX512_COMMON,
};
