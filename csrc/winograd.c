/* winograd.c — Winograd convolutions, float and double: F(2x2, 3x3) for 3x3 kernels at
 * stride 1, F(4x4, 4x4) for kernels that are 4x4 in polyphase form (7x7 at stride 2). */
#include <string.h>
#include "internal.h"

/* bytes from src to dst with streaming stores where the CPU has them, for the polyphase
 * forward's output rows (see fc_stream_output in fastconv.h): 16-byte stores from the
 * first 16-byte boundary of dst, ordinary ones before it and after the last; the whole
 * 64-byte lines by `lines` (a kernel table's copy_lines) where it is not NULL.
 * fc_stream_fence() makes them visible in order with later stores; call it before the
 * work item ends. */
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
static inline void fc_copy_stream(void *dst, const void *src, size_t bytes,
                                  void (*lines)(void *, const void *, size_t))
{
#if defined(__SSE2__)
    char *d = (char *)dst;
    const char *s = (const char *)src;
    size_t head = (size_t)(-(uintptr_t)d & 15);
    head = head < bytes ? head : bytes;
    memcpy(d, s, head);
    d += head;
    s += head;
    bytes -= head;
    if (lines != NULL) {
        for (; bytes >= 16 && ((uintptr_t)d & 63) != 0; bytes -= 16, d += 16, s += 16)
            _mm_stream_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
        lines(d, s, bytes / 64);
        d += bytes / 64 * 64;
        s += bytes / 64 * 64;
        bytes %= 64;
    }
    for (; bytes >= 16; bytes -= 16, d += 16, s += 16)
        _mm_stream_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
    memcpy(d, s, bytes);
#else
    (void)lines;
    memcpy(dst, src, bytes);
#endif
}
static inline void fc_stream_fence(void)
{
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

/* fc_wino_run's answer when some output is not finite (never returned to callers). */
#define FC_WINO_RETRY ((fc_status)-1)

/* 64-byte vectors of T (GCC's generic vectors: each target clone lowers them to its
 * own instructions) and the selector of the even elements of a pair of them. */
typedef float fc_wv_f32 __attribute__((vector_size(64)));
typedef int32_t fc_wi_f32 __attribute__((vector_size(64)));
typedef double fc_wv_f64 __attribute__((vector_size(64)));
typedef int64_t fc_wi_f64 __attribute__((vector_size(64)));
#define FC_WVL ((int64_t)(sizeof(FC_WV) / sizeof(T))) /* lanes of FC_WV */
/* Half of them, 32 bytes, for shuffles on CPUs without AVX-512: GCC lowers a shuffle
 * of 64-byte vectors there to scalar moves through the stack (whose reloads then
 * wait on store forwarding). */
typedef float fc_wh_f32 __attribute__((vector_size(32)));
typedef int32_t fc_whi_f32 __attribute__((vector_size(32)));
typedef double fc_wh_f64 __attribute__((vector_size(32)));
typedef int64_t fc_whi_f64 __attribute__((vector_size(32)));
/* The even elements of two 32-byte vectors in two steps that stay cheap on CPUs that
 * split 256-bit vectors (Zen 1, where one lane-crossing permute of 32-bit elements
 * costs four cycles): pairs of evens picked within each 128-bit half (FC_WHPAIR), then
 * the 64-bit pairs put in order (FC_WHQ_ORDER on fc_whq). */
typedef int64_t fc_whq __attribute__((vector_size(32)));
#define FC_WHQ_ORDER {0, 2, 1, 3}
#define FC_WHL ((int64_t)(sizeof(FC_WH) / sizeof(T))) /* lanes of FC_WH */
/* Whether the CPU has AVX-512 (so the avx512f target clones run); elsewhere than x86
 * there are no clones, and the 64-byte vectors stay. */
static inline int fc_cpu_avx512(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_supports("avx512f");
#else
    return 1;
#endif
}

#define T float
#define FC_SUF _f32
#define FC_BS(kt) (&(kt)->s)
#define FC_WUKR(kt) ((kt)->sgemm_ukr)
#define FC_WUKR_T fc_ukr_f32
#define FC_WUKR_POS(kt) ((kt)->sgemm_ukr_pos)
#define FC_WUKR_POS_T fc_ukr_pos_f32
#define FC_WV fc_wv_f32
#define FC_WI fc_wi_f32
#define FC_WEVEN {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}
#define FC_WH fc_wh_f32
#define FC_WHI fc_whi_f32
#define FC_WHPAIR {0, 2, 8, 10, 4, 6, 12, 14}
#include "winograd_impl.inc"
#undef T
#undef FC_SUF
#undef FC_BS
#undef FC_WUKR
#undef FC_WUKR_T
#undef FC_WUKR_POS
#undef FC_WUKR_POS_T
#undef FC_WV
#undef FC_WI
#undef FC_WEVEN
#undef FC_WH
#undef FC_WHI
#undef FC_WHPAIR

#define T double
#define FC_SUF _f64
#define FC_BS(kt) (&(kt)->d)
#define FC_WUKR(kt) ((kt)->dgemm_ukr)
#define FC_WUKR_T fc_ukr_f64
#define FC_WUKR_POS(kt) ((fc_ukr_pos_f64)NULL)
#define FC_WUKR_POS_T fc_ukr_pos_f64
#define FC_WV fc_wv_f64
#define FC_WI fc_wi_f64
#define FC_WEVEN {0, 2, 4, 6, 8, 10, 12, 14}
#define FC_WH fc_wh_f64
#define FC_WHI fc_whi_f64
#define FC_WHPAIR {0, 4, 2, 6}
#include "winograd_impl.inc"
