/* internal.h — shared by the C sources of fastconv; not installed.
 * Kernel table (one per SIMD level, registered in gemm/ukernel_<isa>.c),
 * per-thread workspace, OpenMP helpers. */
#ifndef FASTCONV_INTERNAL_H
#define FASTCONV_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "fastconv.h"

#ifdef _OPENMP
#include <omp.h>
/* A work-item loop over `n` items, dynamic so that a busy core does not stall the
 * others. The thread count must be in a variable named `nt`. With nt == 1 no
 * team is formed (the if clause), which keeps a forked child off the thread pool. */
#define FC_PRAGMA_PARALLEL_FOR _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)")
#else
#define FC_PRAGMA_PARALLEL_FOR
#endif

/* Functions of plain vectorisable loops get AVX-512 and AVX2 clones next to the
 * baseline one where the compiler can dispatch at load time (GNU ifunc), picked by the
 * CPU (not by FASTCONV_SIMD). Loops that only add, subtract, compare or move give the
 * same bits in every clone; the avx512f clone may fuse a multiply with an add (FMA),
 * so a multiply-add may round differently from one CPU to another (never from one
 * thread count to another). Not on functions that contain an OpenMP region (the
 * outlined body would not be cloned). */
#if defined(FC_HAVE_X86_KERNELS) && defined(__GNUC__) && !defined(__clang__) \
    && defined(__linux__) && defined(__x86_64__)
#define FC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FC_CLONES
#endif

#define FC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define FC_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

/* Whether the n values at v are all finite (x - x is 0 exactly when x is finite);
 * fc_all_finite picks the float or double one by the type of v. */
#define FC_ALL_FINITE_DEFINE(T, SUF)                                                      \
    static inline int fc_all_finite##SUF(const T *v, int64_t n)                           \
    {                                                                                     \
        int finite = 1;                                                                   \
        for (int64_t t = 0; t < n; t++)                                                   \
            finite &= v[t] - v[t] == 0;                                                   \
        return finite;                                                                    \
    }
FC_ALL_FINITE_DEFINE(float, _f32)
FC_ALL_FINITE_DEFINE(double, _f64)
#undef FC_ALL_FINITE_DEFINE
#define fc_all_finite(v, n)                                                               \
    _Generic((v), float *: fc_all_finite_f32, const float *: fc_all_finite_f32,          \
             double *: fc_all_finite_f64, const double *: fc_all_finite_f64)(v, n)
#define FC_ALIGN 64
#define FC_MR_MAX 16
#define FC_NR_MAX 32

/* Micro-kernel contract: see gemm/ukernel_ref.c. */
typedef void (*fc_ukr_f32)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                           int accumulate);
typedef void (*fc_ukr_f64)(int64_t kc, const double *a, const double *b, double *c, int64_t ldc,
                           int accumulate);
/* npos independent MR x NR products in one call: for p < npos,
 * C_p = A_p B_p (not accumulated) with A_p at a + p*as, B_p at b + p*bs (packed as for
 * fc_ukr_f32) and C_p at c + p*cs (row stride ldc); every element the same FMA chain
 * as fc_ukr_f32's. For many short products (Winograd positions of few channels). */
typedef void (*fc_ukr_pos_f32)(int64_t npos, int64_t kc, const float *a, int64_t as,
                               const float *b, int64_t bs, float *c, int64_t cs, int64_t ldc);
typedef void (*fc_ukr_pos_f64)(int64_t npos, int64_t kc, const double *a, int64_t as,
                               const double *b, int64_t bs, double *c, int64_t cs,
                               int64_t ldc);

/* Direct convolution of one (image, group), output rows [oh0, oh1), from an input
 * the caller zero-padded (see direct/direct_impl.inc):
 *   out: [OC/G][OH][OW] of that image and group, xp: [C/G][rows][WP] holding padded
 *   rows oh0*SH onwards (with SW > 1 each row split into its SW phases, see
 *   direct_impl.inc), weight: the group's weights as the pack function lays them out
 *   (same size and group offsets as [OC/G][C/G][KH][KW]), bias: [OC/G] or NULL.
 *   Overwrites those output rows. The width function gives the WP the kernel reads. */
typedef void (*fc_direct_f32)(const fc_conv2d_geom *g, float *out, const float *xp, int64_t rows,
                              int64_t WP, const float *weight, const float *bias, int64_t oh0,
                              int64_t oh1);
typedef void (*fc_direct_f64)(const fc_conv2d_geom *g, double *out, const double *xp,
                              int64_t rows, int64_t WP, const double *weight, const double *bias,
                              int64_t oh0, int64_t oh1);
typedef int64_t (*fc_direct_width)(const fc_conv2d_geom *g);
/* Lays out all G groups of weight ([OC][C/G][KH][KW]) for the direct kernel, into dst
 * of the same size. */
typedef void (*fc_direct_pack_f32)(const fc_conv2d_geom *g, float *dst, const float *weight);
typedef void (*fc_direct_pack_f64)(const fc_conv2d_geom *g, double *dst, const double *weight);
/* Weight gradient of one (image, group) for output channels [oc0, oc1), accumulated
 * into dweight ([OC/G][C/G][KH][KW] of the group) from dout ([OC/G][OH][OW]) and the
 * padded input xp ([C/G][rows][WP] from padded row 0); dt is scratch of
 * FC_WGRAD_DT_LANES * OH * OW elements. */
#define FC_WGRAD_DT_LANES 32
typedef void (*fc_direct_bwd_w_f32)(const fc_conv2d_geom *g, float *dweight, const float *dout,
                                    float *dt, const float *xp, int64_t rows, int64_t WP,
                                    int64_t oc0, int64_t oc1);
typedef void (*fc_direct_bwd_w_f64)(const fc_conv2d_geom *g, double *dweight,
                                    const double *dout, double *dt, const double *xp,
                                    int64_t rows, int64_t WP, int64_t oc0, int64_t oc1);

/* Depthwise convolution (C/G == 1), one source plane per call (direct/depthwise_impl.inc).
 * The source plane src [H][W] may be zero-stuffed by UH x UW (input gradient of a
 * strided convolution): conceptual x(r, q) = src[r/UH][q/UW] where both divide and land
 * inside, otherwise not a tap; g->SH.. g->OW describe a convolution of that x.
 *   fwd: out [nout][OH][OW] (+)= bias[m] + sum over real taps of weight[m][i][j] * x(..),
 *     accumulate: add to out (bias ignored) instead of overwriting; bias may be NULL.
 *   bwd_w: dweight [nout][KH][KW] = sum_{oh, ow} dout[m][oh][ow] * x(..) (UH = UW = 1),
 *     dbias[m] = sum_{oh, ow} dout[m][oh][ow] in double; either may be NULL.
 * ws: fc_dw_ws_len(g, sizeof(T)) elements of scratch. Padding never meets a
 * non-finite value (PyTorch's answer); every sum has a fixed order. */
typedef void (*fc_dw_fwd_f32)(const fc_conv2d_geom *g, int64_t UH, int64_t UW, float *out,
                              const float *src, const float *weight, const float *bias,
                              int64_t nout, int accumulate, float *ws);
typedef void (*fc_dw_fwd_f64)(const fc_conv2d_geom *g, int64_t UH, int64_t UW, double *out,
                              const double *src, const double *weight, const double *bias,
                              int64_t nout, int accumulate, double *ws);
typedef void (*fc_dw_bwd_w_f32)(const fc_conv2d_geom *g, float *dweight, double *dbias,
                                const float *dout, const float *src, int64_t nout, float *ws);
typedef void (*fc_dw_bwd_w_f64)(const fc_conv2d_geom *g, double *dweight, double *dbias,
                                const double *dout, const double *src, int64_t nout,
                                double *ws);
/* Row length of one column phase of the depthwise plane copy: output columns rounded up
 * to the widest vector (64 bytes, so every SIMD level fits) plus the largest tap shift,
 * rounded up to whole 64-byte lines. */
static inline int64_t fc_dw_padded_width(const fc_conv2d_geom *g, size_t esize)
{
    const int64_t vl = 64 / (int64_t)esize;
    return FC_CEIL_DIV(FC_CEIL_DIV(g->OW, vl) * vl + (g->KW - 1) * g->DW / g->SW, vl) * vl;
}
/* Rows of zeros (each SW phases long) kept above and below the forward's plane copy, so
 * that the row blocks at the edges of a plane read consecutive rows like the others. */
#define FC_DW_ZROWS 8
static inline int64_t fc_dw_ws_len(const fc_conv2d_geom *g, size_t esize)
{
    const int64_t wph = fc_dw_padded_width(g, esize);
    return (g->H + 2 * FC_DW_ZROWS) * g->SW * wph + FC_MAX(g->W, g->SW * wph) + g->KH * g->KW;
}

/* The FMA-rate probe of a kernel set (the peak of fastconv bench): CH independent
 * chains of W-byte float vectors, t = t * m + a, iters times; with the ISA's FMA and
 * -ffp-contract=fast each step is one fused multiply-add, in plain SSE2 a multiply and
 * an add. CH covers the FMA ports times their latency. Returns the chains' sum, so
 * that none is optimised away; NAME_flops: its flops per iteration, CH * W / 4 * 2. */
#define FC_FMA_PROBE(NAME, W, CH)                                                        \
    enum { NAME##_flops = (CH) * (W) / 4 * 2 };                                          \
    static double NAME(int64_t iters)                                                    \
    {                                                                                    \
        typedef float fc_pv_ __attribute__((vector_size(W)));                            \
        const fc_pv_ zero = {0}, m = zero + 0.999999f, a = zero + 1e-6f;                  \
        fc_pv_ t[CH];                                                                    \
        for (int i = 0; i < (CH); i++)                                                   \
            t[i] = zero + (float)i;                                                      \
        for (int64_t k = 0; k < iters; k++) {                                            \
            _Pragma("GCC unroll 32") for (int i = 0; i < (CH); i++) t[i] = t[i] * m + a; \
        }                                                                                \
        double s = 0;                                                                    \
        for (int i = 0; i < (CH); i++)                                                   \
            for (int j = 0; j < (W) / 4; j++)                                            \
                s += t[i][j];                                                            \
        return s;                                                                        \
    }

/* GEMM block sizes: MR x NR micro-tile, KC depth of a packed panel, MC rows of a
 * packed A block, NC columns of a packed B block (MC % MR == 0, NC % NR == 0). */
typedef struct {
    int mr, nr, kc, mc, nc;
} fc_blocking;

typedef struct {
    const char *name;
    const char *stile;      /* "MRxNR" of the float GEMM micro-tile */
    double (*fma_probe)(int64_t iters); /* FC_FMA_PROBE: */
    int fma_probe_flops;                /* its flops per iteration */
    fc_blocking s;          /* float */
    fc_ukr_f32 sgemm_ukr;
    fc_ukr_f32 sgemm_ukr_half; /* MR x NR/2 from NR-wide B panels, or NULL */
    fc_ukr_pos_f32 sgemm_ukr_pos; /* sgemm_ukr over several products, or NULL */
    /* [m]: the first m < MR rows of an MR x NR tile (the last row panel), into C
     * directly, with the same sums as sgemm_ukr; NULL where the tile goes through
     * scratch */
    fc_ukr_f32 sgemm_ukr_rows[FC_MR_MAX];
    /* Tiles per block of the Winograd F(2x2, 3x3) forward and input gradient, float
     * and double; 0: from a cache target (winograd_impl.inc, fc_wino_slice) */
    int wino_tiles;
    fc_blocking d;          /* double */
    fc_ukr_f64 dgemm_ukr;
    fc_ukr_f64 dgemm_ukr_half;
    fc_direct_f32 sconv_direct;
    fc_direct_width sconv_direct_width;
    fc_direct_pack_f32 sconv_direct_pack;
    fc_direct_bwd_w_f32 sconv_direct_bwd_w;
    fc_direct_f64 dconv_direct;
    fc_direct_width dconv_direct_width;
    fc_direct_pack_f64 dconv_direct_pack;
    fc_direct_bwd_w_f64 dconv_direct_bwd_w;
    fc_dw_fwd_f32 sconv_dw_fwd;
    fc_dw_bwd_w_f32 sconv_dw_bwd_w;
    fc_dw_fwd_f64 dconv_dw_fwd;
    fc_dw_bwd_w_f64 dconv_dw_bwd_w;
    /* lines 64-byte lines from src to dst (64-byte aligned) with 64-byte streaming
     * stores, or NULL (winograd.c's fc_copy_stream then streams 16 bytes at a time) */
    void (*copy_lines)(void *dst, const void *src, size_t lines);
} fc_kernels;

extern const fc_kernels fc_kernels__ref;
#ifdef FC_HAVE_X86_KERNELS
extern const fc_kernels fc_kernels__avx2;
extern const fc_kernels fc_kernels__avx512;
extern const fc_kernels fc_kernels__avx512w;
#endif

/* The table of the SIMD level in use (dispatch.c). */
const fc_kernels *fc_active_kernels(void);
/* kt with its narrow float GEMM tile (the same table at every level but AVX-512). */
const fc_kernels *fc_kernels_narrow(const fc_kernels *kt);

/* The size of one core's L2 cache in bytes as the C library reports it, 0 where it
 * does not (workspace.c). */
int64_t fc_l2_bytes(void);

/* Per-thread workspace: a 64-byte aligned block of at least `bytes`, owned by the
 * calling OS thread, kept between calls and grown when too small (so repeated calls
 * pay no page faults). Slot 0 is for work inside a parallel loop, slot 1 for data
 * the calling thread shares with its team, slot 2 for the direct kernel's packed
 * weights (which may be made from data in slot 1). Returns NULL when out of memory. */
void *fc_workspace(int slot, size_t bytes);
enum { FC_WS_PRIVATE = 0, FC_WS_SHARED = 1, FC_WS_WEIGHTS = 2, FC_WS_SLOTS = 3 };

/* Below this many flops a call runs on one thread: a team costs more than it saves. */
#define FC_PARALLEL_MIN_FLOPS 2e6
static inline int fc_threads_for(double flops, int nt)
{
    return (nt < 1 || flops < FC_PARALLEL_MIN_FLOPS) ? 1 : nt;
}

/* The same for a whole convolution or GEMM, against fc_parallel_min_flops (dispatch.c). */
extern double fc_compute_min_flops;
static inline int fc_threads_for_compute(double flops, int nt)
{
    return (nt < 1 || flops < fc_compute_min_flops) ? 1 : nt;
}

/* Rows per block when each of `items` equal items of a parallel loop may also be
 * split into blocks of its M rows (MR-aligned): all M rows (no split) when the items
 * already spread evenly enough over a team of nt, else the height of the fewest
 * blocks per item whose busiest thread does at most 1.1 times the even share,
 * or of the most even split tried. */
static inline int64_t fc_row_step(int64_t items, int64_t M, int64_t mr, int nt)
{
    if (nt <= 1 || items <= 0 || M <= mr)
        return M > 0 ? M : 1;
    const int64_t panels = (M + mr - 1) / mr, most = panels < 4 * (int64_t)nt ? panels
                                                                              : 4 * (int64_t)nt;
    const double even = (double)items / nt;
    int64_t best_mb = 1;
    double best = -1;
    for (int64_t mb = 1; mb <= most; mb++) {
        const double load = (double)((items * mb + nt - 1) / nt) / (double)mb;
        if (best < 0 || load < best) {
            best = load;
            best_mb = mb;
        }
        if (load <= 1.1 * even)
            break;
    }
    const int64_t rows = (M + best_mb - 1) / best_mb;
    return (rows + mr - 1) / mr * mr;
}

/* Nominal flops of a convolution: 2 per multiply-add of the direct sums. */
static inline double fc_conv2d_geom_flops(const fc_conv2d_geom *g)
{
    return 2.0 * g->N * g->OC * g->OH * g->OW * (g->C / g->G) * g->KH * g->KW;
}

/* Type-generic code (*.inc) is written once and included per dtype with
 * T, FC_SUF (_f32/_f64), FC_BS(kt) and FC_UKR(kt) defined. */
/* Hides the value of pointer p from the optimiser at this point: a pointer stepped
 * through rows (p += stride; FC_OPAQUE(p);) then stays one register, where GCC would
 * otherwise hold an index register per row of a fully unrolled tile and spill them
 * (Zen 1, AVX2, depthwise 3x3 tiles: 0.85x the time). */
#define FC_OPAQUE(p) __asm__("" : "+r"(p))
#define FC_CAT_(a, b) a##b
#define FC_CAT(a, b) FC_CAT_(a, b)

/* GEMM building blocks (gemm/gemm.c), used by the convolution and linear kernels.
 *   fc_packed_a_len: elements of a fully packed A (M rounded up to MR, times K).
 *   fc_pack_a: packs all of A (A[m][k] at a[m*rsa + k*csa]); for each KC chunk of
 *     K starting at k0, its MR-row panels are at ap + k0*Mpad, panel p at +p*MR*kc.
 *   fc_gemm_rows: C[m][0:nc] (+)= sum_k A[m][k] B[k][0:nc] for m0 <= m < m1
 *     (m0 a multiple of MR, nc <= NC), A packed by fc_pack_a, B[k][n] at
 *     b[k*rsb + n*csb], c pointing at C[0][0] of those columns; bp is scratch of
 *     fc_packed_b_len elements. Every element is reduced in KC chunks in order.
 *   fc_gemm_packed: C[m0:m1][0:nc] (+)= A B (m0 a multiple of MR, A of M rows) with B
 *     packed too, over all of K: KC chunk k0 at bp + k0*ncpad (ncpad = nc rounded up
 *     to NR), NR-column panels [p][k][NR] as fc_gemm_rows packs them; the same
 *     reduction order as fc_gemm_rows. */
#define FC_GEMM_DECLS(T, SUF)                                                              \
    int64_t FC_CAT(fc_packed_a_len, SUF)(const fc_kernels *kt, int64_t M, int64_t K);      \
    int64_t FC_CAT(fc_packed_b_len, SUF)(const fc_kernels *kt, int64_t nc);                \
    void FC_CAT(fc_pack_a, SUF)(const fc_kernels *kt, int64_t M, int64_t K, const T *a,    \
                                int64_t rsa, int64_t csa, T *ap);                          \
    void FC_CAT(fc_gemm_rows, SUF)(const fc_kernels *kt, int64_t M, int64_t m0, int64_t m1, \
                                   int64_t nc, int64_t K, const T *ap, const T *b,         \
                                   int64_t rsb, int64_t csb, T *c, int64_t ldc,            \
                                   int accumulate, T *bp);                                \
    void FC_CAT(fc_gemm_packed, SUF)(const fc_kernels *kt, int64_t M, int64_t m0, int64_t m1, \
                                     int64_t nc, int64_t K, const T *ap, const T *bp, T *c, \
                                     int64_t ldc, int accumulate);
FC_GEMM_DECLS(float, _f32)
FC_GEMM_DECLS(double, _f64)

#endif
