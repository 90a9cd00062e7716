/* test_kernels.c — calls the C kernels straight from C, without Python, against
 * naive loops written here. Built and run by tests/test_c_kernels.py, once with
 * the x86 kernels and once with the portable kernels alone (the configuration of
 * a non-x86 machine). Exit status 0 when every check passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastconv.h"
#include "internal.h" /* the kernel tables, for the micro-kernel checks */

static int failures = 0;

static void check(const char *what, const float *got, const double *want, int64_t n, double tol)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (1.0 + fabs(want[i]));
        worst = e > worst ? e : worst;
    }
    if (!(worst <= tol)) {
        printf("FAIL %s: worst relative error %g\n", what, worst);
        failures++;
    }
}

static float *random_array(int64_t n, unsigned *seed)
{
    float *a = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        a[i] = (float)((*seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    return a;
}

static void conv_naive(double *out, const float *inp, const float *weight, const float *bias,
                       const fc_conv2d_geom *g)
{
    const int64_t Cg = g->C / g->G, OCg = g->OC / g->G;
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t oc = 0; oc < g->OC; oc++)
            for (int64_t oh = 0; oh < g->OH; oh++)
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    double s = bias ? bias[oc] : 0;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t i = 0; i < g->KH; i++)
                            for (int64_t j = 0; j < g->KW; j++) {
                                int64_t ih = oh * g->SH - g->PH + i * g->DH;
                                int64_t iw = ow * g->SW - g->PW + j * g->DW;
                                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
                                    continue;
                                int64_t ic = (oc / OCg) * Cg + c;
                                s += (double)weight[((oc * Cg + c) * g->KH + i) * g->KW + j]
                                     * inp[((n * g->C + ic) * g->H + ih) * g->W + iw];
                            }
                    out[((n * g->OC + oc) * g->OH + oh) * g->OW + ow] = s;
                }
}

static void test_conv(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t K,
                      int64_t S, int64_t P, int64_t D, int64_t G, unsigned seed)
{
    fc_conv2d_geom g = {.N = N, .C = C, .H = H, .W = W, .OC = OC, .KH = K, .KW = K,
                        .SH = S, .SW = S, .PH = P, .PW = P, .DH = D, .DW = D, .G = G};
    if (fc_out_size(H, K, S, P, D, 0, &g.OH) != FC_OK || fc_out_size(W, K, S, P, D, 0, &g.OW) != FC_OK) {
        printf("FAIL fc_out_size\n");
        failures++;
        return;
    }
    int64_t nin = N * C * H * W, nw = OC * (C / G) * K * K, nout = N * OC * g.OH * g.OW;
    float *inp = random_array(nin, &seed), *weight = random_array(nw, &seed);
    float *bias = random_array(OC, &seed), *out = malloc((size_t)nout * sizeof(float));
    double *want = malloc((size_t)nout * sizeof(double));
    conv_naive(want, inp, weight, bias, &g);
    for (int threads = 1; threads <= 2; threads++) {
        if (fc_conv2d_forward_im2col_f32(out, inp, weight, bias, &g, threads) != FC_OK) failures++;
        check("conv2d im2col", out, want, nout, 1e-5);
        if (fc_conv2d_forward_direct_f32(out, inp, weight, bias, &g, threads) != FC_OK) failures++;
        check("conv2d direct", out, want, nout, 1e-5);
        if (K == 3 && S == 1 && D == 1) {
            if (fc_conv2d_forward_winograd_f32(out, inp, weight, bias, &g, threads) != FC_OK)
                failures++;
            check("conv2d winograd", out, want, nout, 4e-5);
        } else if (fc_conv2d_forward_winograd_f32(out, inp, weight, bias, &g, threads)
                   != FC_EINVAL) {
            printf("FAIL winograd accepted a %dx%d stride-%d kernel\n", (int)K, (int)K, (int)S);
            failures++;
        }
    }
    free(inp); free(weight); free(bias); free(out); free(want);
}

static void test_gemm(int64_t M, int64_t N, int64_t K, unsigned seed)
{
    float *a = random_array(M * K, &seed), *b = random_array(K * N, &seed);
    float *c = malloc((size_t)(M * N) * sizeof(float));
    double *want = malloc((size_t)(M * N) * sizeof(double));
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)a[m * K + k] * b[k * N + n];
            want[m * N + n] = s;
        }
    if (fc_sgemm(M, N, K, a, K, 1, b, N, 1, c, N, 0, 2) != FC_OK) failures++;
    check("sgemm", c, want, M * N, 1e-5);
    free(a); free(b); free(c); free(want);
}

/* The kernel set's batched micro-kernel (sgemm_ukr_pos), where it has one, against its
 * single micro-kernel called once per product: the same bits, and nothing written
 * between the products' C blocks. */
static void test_ukr_pos(int64_t npos, int64_t kc, unsigned seed)
{
    const fc_kernels *kt = fc_active_kernels();
    if (kt->sgemm_ukr_pos == NULL)
        return;
    const int64_t mr = kt->s.mr, nr = kt->s.nr, as = mr * kc + 3, bs = kc * nr + 5;
    const int64_t ldc = npos * (nr + 4), cs = nr + 4, clen = mr * ldc;
    float *a = random_array(npos * as, &seed), *b = random_array(npos * bs, &seed);
    float *got = malloc((size_t)clen * sizeof(float)), *want = malloc((size_t)clen * sizeof(float));
    for (int64_t i = 0; i < clen; i++)
        got[i] = want[i] = -7.0f;
    kt->sgemm_ukr_pos(npos, kc, a, as, b, bs, got, cs, ldc);
    for (int64_t p = 0; p < npos; p++)
        kt->sgemm_ukr(kc, a + p * as, b + p * bs, want + p * cs, ldc, 0);
    if (memcmp(got, want, (size_t)clen * sizeof(float)) != 0) {
        printf("FAIL %s sgemm_ukr_pos: npos %d kc %d differs from sgemm_ukr\n", kt->name,
               (int)npos, (int)kc);
        failures++;
    }
    free(a); free(b); free(got); free(want);
}

int main(void)
{
    int best = fc_simd_best();
    for (int level = 0; level <= best; level++) {
        fc_simd_set(level);
        /* AVX-512 has two float GEMM tiles (narrow 8x16, wide 8x32): both */
        for (int wide = 0; wide <= (level == FC_SIMD_AVX512); wide++) {
            fc_wide_tile_set(wide);
            test_ukr_pos(49, 12, 9u);
            test_ukr_pos(6, 1, 10u);
            test_ukr_pos(1, 13, 11u);
            /* the position groups of ResNet's first layer (winograd4_impl.inc) */
            test_ukr_pos(36, 12, 12u);
            test_ukr_pos(6, 6, 13u);
            test_ukr_pos(1, 3, 14u);
            /* every depth of the unrolled pairs (1..16), and past them */
            for (int64_t kc = 1; kc <= 17; kc++)
                test_ukr_pos(3, kc, 20u + (unsigned)kc);
            test_ukr_pos(4, 40, 15u);
            test_gemm(37, 45, 300, 1u);
            test_gemm(1, 1, 1, 2u);
            test_gemm(17, 50, 9, 8u); /* a full 32-wide panel, then a half one */
            test_conv(2, 3, 11, 9, 7, 3, 1, 1, 1, 1, 3u);
            test_conv(1, 6, 10, 13, 9, 3, 2, 2, 2, 3, 4u);
            test_conv(3, 8, 7, 7, 8, 1, 1, 0, 1, 8, 5u);
            test_conv(2, 4, 12, 12, 17, 5, 3, 2, 1, 1, 6u);
            test_conv(2, 20, 9, 14, 24, 3, 1, 1, 1, 2, 7u);
        }
        fc_wide_tile_set(-1);
    }
    printf("%s: %d failure(s), SIMD levels 0..%d (%s best)\n", failures ? "FAIL" : "ok", failures,
           best, fc_simd_name(best));
    return failures != 0;
}
