/* winograd.c — 3x3 stride-1 convolution by Winograd F(2x2, 3x3), float and double. */
#include <string.h>
#include "internal.h"

/* The transforms only add and subtract, so every vector width gives the same bits:
 * where the compiler can dispatch at load time (GNU ifunc), they get AVX-512 and AVX2
 * clones next to the baseline one, picked by the CPU, not by FASTCONV_SIMD. */
#if defined(FC_HAVE_X86_KERNELS) && defined(__GNUC__) && !defined(__clang__) \
    && defined(__linux__) && defined(__x86_64__)
#define FC_WINO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FC_WINO_CLONES
#endif

/* fc_wino_run's answer when some output is not finite (never returned to callers). */
#define FC_WINO_RETRY ((fc_status)-1)

#define T float
#define FC_SUF _f32
#define FC_BS(kt) (&(kt)->s)
#include "winograd_impl.inc"
#undef T
#undef FC_SUF
#undef FC_BS

#define T double
#define FC_SUF _f64
#define FC_BS(kt) (&(kt)->d)
#include "winograd_impl.inc"
