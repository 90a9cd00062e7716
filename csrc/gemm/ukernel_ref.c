/* ukernel_ref.c — the portable micro-kernels and the micro-kernel contract.
 *
 * Contract of every fc_{s,d}gemm_ukernel_<MR>x<NR>__<isa>(kc, a, b, c, ldc, accumulate):
 *   a: packed A micro-panel, MR x kc, column-major: a[k*MR + i] = A[i][k]
 *   b: packed B micro-panel, kc x NR, row-major:    b[k*NR + j] = B[k][j]
 *   c: the MR x NR tile of C, row-major with row stride ldc (column stride 1)
 *   t[i][j] = sum over k = 0, 1, ..., kc-1 of a[k*MR+i] * b[k*NR+j], summed from zero
 *   in increasing k (each step may be a fused multiply-add);
 *   accumulate == 0: c[i][j] = t[i][j] and c is not read (it may hold garbage or NaN);
 *   accumulate != 0: c[i][j] = c[i][j] + t[i][j].
 *   kc may be 0. a and b need no particular alignment. The kernel always computes a
 *   full tile: the framework sends edge tiles to a scratch tile and copies the valid
 *   part, so the kernels have no edge cases. Because t is always summed from zero,
 *   an element rounds the same in a full tile and in an edge tile.
 *
 * The portable kernels below are plain C that a compiler vectorizes for the baseline
 * ISA (SSE2 on x86-64); they are also the oracle for the SIMD kernels in tests. */
#include "../internal.h"

#define FC_REF_UKERNEL(NAME, T, MR, NR)                                                    \
    static void NAME(int64_t kc, const T *restrict a, const T *restrict b, T *restrict c,  \
                     int64_t ldc, int accumulate)                                          \
    {                                                                                      \
        T t[MR][NR];                                                                       \
        for (int i = 0; i < MR; i++)                                                       \
            for (int j = 0; j < NR; j++)                                                   \
                t[i][j] = 0;                                                               \
        for (int64_t k = 0; k < kc; k++) {                                                 \
            for (int i = 0; i < MR; i++) {                                                 \
                const T ai = a[k * MR + i];                                                \
                for (int j = 0; j < NR; j++)                                               \
                    t[i][j] += ai * b[k * NR + j];                                         \
            }                                                                              \
        }                                                                                  \
        for (int i = 0; i < MR; i++) {                                                     \
            T *ci = c + i * ldc;                                                           \
            if (accumulate)                                                                \
                for (int j = 0; j < NR; j++)                                               \
                    ci[j] += t[i][j];                                                      \
            else                                                                           \
                for (int j = 0; j < NR; j++)                                               \
                    ci[j] = t[i][j];                                                       \
        }                                                                                  \
    }

FC_REF_UKERNEL(fc_sgemm_ukernel_4x8__ref, float, 4, 8)
FC_REF_UKERNEL(fc_dgemm_ukernel_4x4__ref, double, 4, 4)

void fc_sconv2d_direct__ref(const fc_conv2d_geom *g, float *out, const float *xp,
                            int64_t rows, int64_t WP, const float *weight, const float *bias,
                            int64_t oh0, int64_t oh1);
void fc_dconv2d_direct__ref(const fc_conv2d_geom *g, double *out, const double *xp,
                            int64_t rows, int64_t WP, const double *weight, const double *bias,
                            int64_t oh0, int64_t oh1);
int64_t fc_sconv2d_direct__ref_width(const fc_conv2d_geom *g);
int64_t fc_dconv2d_direct__ref_width(const fc_conv2d_geom *g);
void fc_sconv2d_direct__ref_pack(const fc_conv2d_geom *g, float *dst, const float *weight);
void fc_dconv2d_direct__ref_pack(const fc_conv2d_geom *g, double *dst, const double *weight);
void fc_sconv2d_direct__ref_bwd_w(const fc_conv2d_geom *g, float *dweight, const float *dout,
        float *dt, const float *xp, int64_t rows, int64_t WP, int64_t oc0, int64_t oc1);
void fc_dconv2d_direct__ref_bwd_w(const fc_conv2d_geom *g, double *dweight, const double *dout,
        double *dt, const double *xp, int64_t rows, int64_t WP, int64_t oc0, int64_t oc1);
void fc_sconv2d_depthwise__ref(const fc_conv2d_geom *g, int64_t UH, int64_t UW, float *out,
        const float *src, const float *weight, const float *bias, int64_t nout, int accumulate, float *ws);
void fc_sconv2d_depthwise_bwd_w__ref(const fc_conv2d_geom *g, float *dweight, double *dbias,
        const float *dout, const float *src, int64_t nout, float *ws);
void fc_dconv2d_depthwise__ref(const fc_conv2d_geom *g, int64_t UH, int64_t UW, double *out,
        const double *src, const double *weight, const double *bias, int64_t nout, int accumulate, double *ws);
void fc_dconv2d_depthwise_bwd_w__ref(const fc_conv2d_geom *g, double *dweight, double *dbias,
        const double *dout, const double *src, int64_t nout, double *ws);

/* Block sizes: KC so that a B micro-panel (KC x NR) stays in a 32 KiB L1,
 * MC so that an A block (MC x KC) stays well inside L2. */
FC_FMA_PROBE(fc_fma_probe__ref, 16, 12)

const fc_kernels fc_kernels__ref = {
    .name = "portable",
    .fma_probe = fc_fma_probe__ref,
    .fma_probe_flops = fc_fma_probe__ref_flops,
    .stile = "4x8",
    .s = {.mr = 4, .nr = 8, .kc = 256, .mc = 128, .nc = 2048},
    .sgemm_ukr = fc_sgemm_ukernel_4x8__ref,
    .d = {.mr = 4, .nr = 4, .kc = 256, .mc = 128, .nc = 1024},
    .dgemm_ukr = fc_dgemm_ukernel_4x4__ref,
    .sconv_direct = fc_sconv2d_direct__ref,
    .sconv_direct_width = fc_sconv2d_direct__ref_width,
    .sconv_direct_pack = fc_sconv2d_direct__ref_pack,
    .sconv_direct_bwd_w = fc_sconv2d_direct__ref_bwd_w,
    .dconv_direct = fc_dconv2d_direct__ref,
    .dconv_direct_width = fc_dconv2d_direct__ref_width,
    .dconv_direct_pack = fc_dconv2d_direct__ref_pack,
    .dconv_direct_bwd_w = fc_dconv2d_direct__ref_bwd_w,
    .sconv_dw_fwd = fc_sconv2d_depthwise__ref,
    .sconv_dw_bwd_w = fc_sconv2d_depthwise_bwd_w__ref,
    .dconv_dw_fwd = fc_dconv2d_depthwise__ref,
    .dconv_dw_bwd_w = fc_dconv2d_depthwise_bwd_w__ref,
};
