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

/* The AVX-512 float GEMM tile: 8 x 16 (narrow) or 8 x 32 (wide, two zmm per row).
 * AMD's Zen 4 runs a 512-bit FMA as two 256-bit halves, one per cycle: eight chains
 * of 4-cycle latency keep it at its peak (measured), and the narrow tile's 16 KiB B
 * panel leaves room in its 32 KiB L1. Intel's AVX-512 server cores have two 512-bit
 * FMA ports: eight chains are just enough in theory and lose 15-30% in practice,
 * sixteen keep them near the peak (ukernel 147 -> 172 GFLOP/s on a 213 GFLOP/s core,
 * conv layers 5-16% faster). So: wide on Intel, narrow elsewhere. */
static int fc_wide = -1;

int fc_wide_tile_default(void)
{
#if defined(FC_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_is("intel") ? 1 : 0;
#else
    return 0;
#endif
}

int fc_wide_tile_set(int wide)
{
    fc_wide = wide < 0 ? fc_wide_tile_default() : wide != 0;
    return fc_wide;
}

int fc_wide_tile_get(void)
{
    if (fc_wide < 0)
        fc_wide = fc_wide_tile_default();
    return fc_wide;
}

const fc_kernels *fc_kernels_narrow(const fc_kernels *kt)
{
#ifdef FC_HAVE_X86_KERNELS
    if (kt == &fc_kernels__avx512w)
        return &fc_kernels__avx512;
#endif
    return kt;
}

const fc_kernels *fc_active_kernels(void)
{
    switch (fc_simd_get()) {
#ifdef FC_HAVE_X86_KERNELS
    case FC_SIMD_AVX512: return fc_wide_tile_get() ? &fc_kernels__avx512w : &fc_kernels__avx512;
    case FC_SIMD_AVX2: return &fc_kernels__avx2;
#endif
    default: return &fc_kernels__ref;
    }
}

double fc_fma_probe(int level, int64_t iters, double *flops)
{
    const fc_kernels *kt = &fc_kernels__ref;
#ifdef FC_HAVE_X86_KERNELS
    if (level > fc_simd_best())
        level = fc_simd_best();
    if (level == FC_SIMD_AVX512)
        kt = &fc_kernels__avx512;
    else if (level == FC_SIMD_AVX2)
        kt = &fc_kernels__avx2;
#endif
    *flops = (double)kt->fma_probe_flops * (double)(iters > 0 ? iters : 0);
    return kt->fma_probe(iters);
}

const char *fc_sgemm_tile(void)
{
    return fc_active_kernels()->stile;
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
