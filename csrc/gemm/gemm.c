/* gemm.c — GEMM framework instantiated for float (fc_sgemm) and double (fc_dgemm). */
#include <string.h>
#include "../internal.h"

#define T float
#define FC_SUF _f32
#define FC_BS(kt) (&(kt)->s)
#define FC_UKR(kt) ((kt)->sgemm_ukr)
#define FC_UKR_HALF(kt) ((kt)->sgemm_ukr_half)
#define FC_UKR_ROWS(kt, m) ((kt)->sgemm_ukr_rows[m])
#define FC_UKR_T fc_ukr_f32
#include "gemm_impl.inc"
#undef T
#undef FC_SUF
#undef FC_BS
#undef FC_UKR
#undef FC_UKR_HALF
#undef FC_UKR_ROWS
#undef FC_UKR_T

#define T double
#define FC_SUF _f64
#define FC_BS(kt) (&(kt)->d)
#define FC_UKR(kt) ((kt)->dgemm_ukr)
#define FC_UKR_HALF(kt) ((kt)->dgemm_ukr_half)
#define FC_UKR_ROWS(kt, m) ((fc_ukr_f64)NULL)
#define FC_UKR_T fc_ukr_f64
#include "gemm_impl.inc"
#undef T
#undef FC_SUF
#undef FC_BS
#undef FC_UKR
#undef FC_UKR_HALF
#undef FC_UKR_ROWS
#undef FC_UKR_T

fc_status fc_sgemm(int64_t M, int64_t N, int64_t K, const float *a, int64_t rsa, int64_t csa,
                   const float *b, int64_t rsb, int64_t csb, float *c, int64_t ldc,
                   int accumulate, int num_threads)
{
    return fc_gemm_f32(M, N, K, a, rsa, csa, b, rsb, csb, c, ldc, accumulate, num_threads);
}

fc_status fc_dgemm(int64_t M, int64_t N, int64_t K, const double *a, int64_t rsa, int64_t csa,
                   const double *b, int64_t rsb, int64_t csb, double *c, int64_t ldc,
                   int accumulate, int num_threads)
{
    return fc_gemm_f64(M, N, K, a, rsa, csa, b, rsb, csb, c, ldc, accumulate, num_threads);
}
