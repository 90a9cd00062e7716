/* dispatch.c — picks the kernel table once, from CPU detection.
 * The Python layer applies FASTCONV_SIMD (a cap) through fc_simd_set. */
#include "internal.h"

static int fc_level = -1;

static int fc_detect(void)
{
#if defined(FC_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    /* libgcc's checks include the OS's support of the register state (XGETBV). */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")
        && __builtin_cpu_supports("fma"))
        return FC_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FC_SIMD_AVX2;
#endif
    return FC_SIMD_PORTABLE;
}

int fc_simd_best(void)
{
    static int best = -1;
    if (best < 0)
        best = fc_detect();
    return best;
}

int fc_simd_set(int level)
{
    int best = fc_simd_best();
    if (level < 0)
        level = 0;
    fc_level = level > best ? best : level;
    return fc_level;
}

int fc_simd_get(void)
{
    if (fc_level < 0)
        fc_level = fc_simd_best();
    return fc_level;
}

const char *fc_simd_name(int level)
{
    switch (level) {
    case FC_SIMD_PORTABLE: return "portable";
    case FC_SIMD_AVX2: return "avx2";
    case FC_SIMD_AVX512: return "avx512";
    default: return "unknown";
    }
}

const fc_kernels *fc_active_kernels(void)
{
    switch (fc_simd_get()) {
#ifdef FC_HAVE_X86_KERNELS
    case FC_SIMD_AVX512: return &fc_kernels__avx512;
    case FC_SIMD_AVX2: return &fc_kernels__avx2;
#endif
    default: return &fc_kernels__ref;
    }
}

int fc_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

double fc_compute_min_flops = 2e7;

double fc_parallel_min_flops(double flops)
{
    const double before = fc_compute_min_flops;
    if (flops >= 0)
        fc_compute_min_flops = flops;
    return before;
}

int fc_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

fc_status fc_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                      int ceil_mode, int64_t *out)
{
    if (in < 1 || k < 1 || stride < 1 || pad < 0 || dil < 1)
        return FC_EINVAL;
    int64_t span = in + 2 * pad - dil * (k - 1) - 1;
    if (span < 0)
        return FC_EINVAL;
    int64_t o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    /* A last window must start inside the input or the left padding. */
    if (ceil_mode && (o - 1) * stride >= in + pad)
        o--;
    *out = o;
    return FC_OK;
}
