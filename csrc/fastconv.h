/* fastconv.h — the public C interface of the fastconv kernels.
 *
 * Plain C11, no Python. Every kernel takes raw pointers, sizes (or a geometry
 * struct) and a thread count, returns an fc_status, and allocates nothing the
 * caller sees: scratch space comes from a per-thread workspace that is kept and
 * reused between calls (see workspace.c).
 *
 * Dimension letters, fixed here for the whole library:
 *   N batch, C input channels, OC output channels, G groups,
 *   H, W input height/width, KH, KW kernel, SH, SW stride, PH, PW padding,
 *   DH, DW dilation, OH, OW output height/width.
 * Layouts are NCHW and written in index notation:
 *   inp[N][C][H][W], weight[OC][C/G][KH][KW], bias[OC], out[N][OC][OH][OW].
 * Output size (one formula, used by the Python layer too):
 *   OH = floor((H + 2*PH - DH*(KH-1) - 1) / SH) + 1   (ceil for pooling's ceil_mode)
 *
 * Every kernel exists for float (_f32) and double (_f64).
 * Results never depend on num_threads: work is split into items whose
 * boundaries depend on the shape only, and every output element is reduced in
 * one fixed order.
 */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FC_OK = 0,
    FC_EINVAL = 1,   /* a size or geometry the kernel cannot take */
    FC_ENOMEM = 2,   /* the workspace could not be allocated */
} fc_status;

/* SIMD levels, in increasing order. */
enum { FC_SIMD_PORTABLE = 0, FC_SIMD_AVX2 = 1, FC_SIMD_AVX512 = 2, FC_SIMD_COUNT = 3 };

/* Returns the highest level this CPU (and this build) supports. */
int fc_simd_best(void);
/* Selects the kernel set; level is capped at fc_simd_best(). Returns the level in use.
 * Not thread-safe with respect to running kernels: call it at start-up or in tests. */
int fc_simd_set(int level);
int fc_simd_get(void);
const char *fc_simd_name(int level);
/* The AVX-512 float GEMM micro-tile: 1 = wide (8 x 32, for cores with two 512-bit FMA
 * ports: Intel's), 0 = narrow (8 x 16, e.g. AMD Zen 4). Each element of a product is
 * the same sum either way; only speed, and the column tiles of the im2col weight
 * gradient (NR-aligned), depend on it. Other SIMD levels have one tile. _set: a
 * negative value restores the CPU's default; returns the setting in use. Not
 * thread-safe with respect to running kernels. */
int fc_wide_tile_default(void);
int fc_wide_tile_set(int wide);
int fc_wide_tile_get(void);
/* The FMA-rate probe of the kernel set of a SIMD level (capped at fc_simd_best()):
 * runs iters iterations of independent float FMA chains on the calling thread, sets
 * *flops to the floating-point operations done, and returns a checksum. Time it to
 * get the single-thread FP32 peak (fastconv bench's percent of peak). */
double fc_fma_probe(int level, int64_t iters, double *flops);
/* "MRxNR" of the float GEMM micro-tile in use (SIMD level and tile). */
const char *fc_sgemm_tile(void);
/* 1 when the library was compiled with OpenMP. */
int fc_openmp_enabled(void);
/* Sets glibc malloc's mmap and trim thresholds (bytes; see workspace.c). Returns 1
 * when set, 0 where the C library has no such setting. Call it at start-up. */
int fc_malloc_keep(size_t mmap_threshold, size_t trim_threshold);
/* Streaming (non-temporal) stores for large outputs. An output of at least
 * FC_STREAM_MIN_BYTES does not stay in a core's share of the last-level cache until
 * the next layer reads it, and a streaming store writes a line without first reading
 * it from memory. Fresh pages get ordinary stores: the first touch faults each in
 * zeroed and cached, where a streaming store would evict it. Returns 1 when the kernels
 * that stage their output rows (the polyphase Winograd forward) write out[0, bytes)
 * with streaming stores: bytes >= FC_STREAM_MIN_BYTES, its first and last pages are
 * resident, and the CPU has SSE2 (x86-64; Linux only, 0 elsewhere). */
#define FC_STREAM_MIN_BYTES ((size_t)16 << 20)
int fc_stream_output(const void *out, size_t bytes);
/* omp_get_max_threads(), or 1 without OpenMP. */
int fc_max_threads(void);
/* Convolutions and GEMMs of fewer flops than this run on one thread (default 2e7:
 * waking a team costs tens of microseconds per parallel region on a virtual machine,
 * more than a smaller call saves). Sets it when flops >= 0; returns the value before.
 * Not thread-safe with respect to running kernels: call it at start-up or in tests. */
double fc_parallel_min_flops(double flops);

/* Output size of one spatial dimension of a convolution or pooling window.
 *   out = floor_or_ceil((in + 2*pad - dil*(k-1) - 1) / stride) + 1
 * With ceil_mode, a last window that would start in the right padding is
 * dropped (PyTorch's rule). Returns FC_EINVAL when the result is < 1 or an
 * argument is out of range. */
fc_status fc_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                      int ceil_mode, int64_t *out);

typedef struct {
    int64_t N, C, H, W;        /* input */
    int64_t OC, KH, KW;        /* weight: [OC][C/G][KH][KW] */
    int64_t SH, SW, PH, PW, DH, DW;
    int64_t G;                 /* groups; C % G == 0 and OC % G == 0 */
    int64_t OH, OW;            /* output, from fc_out_size */
} fc_conv2d_geom;

/* fc_conv2d_forward_{im2col,direct}_{f32,f64}
 *   out[n][oc][oh][ow] = bias[oc] + sum_{c<C/G, i<KH, j<KW}
 *       weight[oc][c][i][j] * inp[n][g*C/G + c][oh*SH - PH + i*DH][ow*SW - PW + j*DW]
 *   with g = oc / (OC/G) and zero padding. bias may be NULL. Overwrites out.
 * im2col: per (image, group, column tile) an im2col tile of at most ~512 KiB
 *   feeds the packed GEMM; 1x1 stride-1 unpadded convolutions read the image
 *   directly. The packed weights are shared by all threads.
 * direct: no im2col buffer; register tiles of output channels x output pixels,
 *   reduced over (c, i, j) in that order.
 * Both: parallel over (image, group, tile) items, dynamic schedule. */
fc_status fc_conv2d_forward_im2col_f32(float *out, const float *inp, const float *weight,
                                       const float *bias, const fc_conv2d_geom *g, int num_threads);
fc_status fc_conv2d_forward_im2col_f64(double *out, const double *inp, const double *weight,
                                       const double *bias, const fc_conv2d_geom *g, int num_threads);
fc_status fc_conv2d_forward_direct_f32(float *out, const float *inp, const float *weight,
                                       const float *bias, const fc_conv2d_geom *g, int num_threads);
fc_status fc_conv2d_forward_direct_f64(double *out, const double *inp, const double *weight,
                                       const double *bias, const fc_conv2d_geom *g, int num_threads);

/* fc_conv2d_backward_{im2col,direct}_{f32,f64}
 *   dinp[n][c][h][w]      = sum over (oc, oh, ow, i, j) that read inp[n][c][h][w] in the
 *                           forward pass of weight[oc][c'][i][j] * dout[n][oc][oh][ow]
 *   dweight[oc][c][i][j]  = sum_{n, oh, ow} dout[n][oc][oh][ow] * inp[n][g*C/G + c][ih][iw]
 *   dbias[oc]             = sum_{n, oh, ow} dout[n][oc][oh][ow] (accumulated in double)
 *   dout: [N][OC][OH][OW]; shapes as the forward. Any of dinp, dweight, dbias may be NULL
 *   and is then not computed (inp is read only for dweight, weight only for dinp).
 *   Overwrites what it computes. g may carry OH, OW larger than the formula gives
 *   (padding='same' with an even kernel pads the bottom/right by one more).
 * im2col: dinp per (image, group) as weight^T dout per column tile, then col2im;
 *   dweight as dout col^T over (image, tile) pairs cut into at most 16 chunks by shape
 *   alone (fewer when the partial sums would pass 64 MiB), each chunk its own partial
 *   sum, the partial sums added in chunk order. Workspace: one im2col tile and packed
 *   panels per thread, plus the partial sums.
 * direct: dinp as a stride-1 direct convolution of dout spread by the stride, with
 *   the flipped kernel (no im2col buffer); dweight per (group, 32 output channels),
 *   reducing over the images in order (with fewer such blocks than threads, per
 *   image into its own copy, up to 64 MiB of copies, added in image order: the same
 *   sums).
 * Both: the same bits for any num_threads. */
fc_status fc_conv2d_backward_im2col_f32(float *dinp, float *dweight, float *dbias,
                                        const float *dout, const float *inp, const float *weight,
                                        const fc_conv2d_geom *g, int num_threads);
fc_status fc_conv2d_backward_im2col_f64(double *dinp, double *dweight, double *dbias,
                                        const double *dout, const double *inp,
                                        const double *weight, const fc_conv2d_geom *g,
                                        int num_threads);
fc_status fc_conv2d_backward_direct_f32(float *dinp, float *dweight, float *dbias,
                                        const float *dout, const float *inp, const float *weight,
                                        const fc_conv2d_geom *g, int num_threads);
fc_status fc_conv2d_backward_direct_f64(double *dinp, double *dweight, double *dbias,
                                        const double *dout, const double *inp,
                                        const double *weight, const fc_conv2d_geom *g,
                                        int num_threads);

/* fc_conv2d_forward_winograd_{f32,f64}: the forward convolution above for 3x3 kernels
 *   with stride 1 and dilation 1 (else FC_EINVAL), by Winograd F(2x2, 3x3): 16 GEMMs
 *   of the transformed weights and input tiles, 2.25 times fewer multiplies. Same
 *   result as the others to rounding; when some output is not finite it is
 *   recomputed by im2col, so inf and NaN come out as the direct sums give them.
 * fc_conv2d_backward_winograd_{f32,f64}: the input gradient only (dweight and dbias
 *   must be NULL), as the same convolution of dout with the flipped kernel; needs
 *   stride 1, dilation 1, a 3x3 kernel and PH, PW <= 2 (else FC_EINVAL).
 * Both: parallel over (group, block of tile rows); the same bits for any num_threads. */
fc_status fc_conv2d_forward_winograd_f32(float *out, const float *inp, const float *weight,
                                         const float *bias, const fc_conv2d_geom *g,
                                         int num_threads);
fc_status fc_conv2d_forward_winograd_f64(double *out, const double *inp, const double *weight,
                                         const double *bias, const fc_conv2d_geom *g,
                                         int num_threads);
fc_status fc_conv2d_backward_winograd_f32(float *dinp, float *dweight, float *dbias,
                                          const float *dout, const float *inp,
                                          const float *weight, const fc_conv2d_geom *g,
                                          int num_threads);
fc_status fc_conv2d_backward_winograd_f64(double *dinp, double *dweight, double *dbias,
                                          const double *dout, const double *inp,
                                          const double *weight, const fc_conv2d_geom *g,
                                          int num_threads);

typedef struct {
    int64_t N, C, H, W;
    int64_t KH, KW, SH, SW, PH, PW, DH, DW;
    int64_t OH, OW;
} fc_pool2d_geom;

/* fc_maxpool2d_forward_{f32,f64}
 *   out[n][c][oh][ow] = max_{i<KH, j<KW} inp[n][c][oh*SH-PH+i*DH][ow*SW-PW+j*DW], padding = -inf
 *   argmax[n][c][oh][ow] = (ih*W + iw) of that maximum (flat index in the H*W plane);
 *   the first maximum in row-major scan order wins, a NaN wins over any number and a
 *   later NaN over an earlier one (PyTorch's rule). argmax may be NULL.
 *   inp: [N][C][H][W]; out, argmax: [N][C][OH][OW]. Overwrites out and argmax.
 *   Parallel over the N*C planes. */
fc_status fc_maxpool2d_forward_f32(float *out, int64_t *argmax, const float *inp,
                                   const fc_pool2d_geom *g, int num_threads);
fc_status fc_maxpool2d_forward_f64(double *out, int64_t *argmax, const double *inp,
                                   const fc_pool2d_geom *g, int num_threads);

/* fc_maxpool2d_backward_{f32,f64}
 *   dinp[q][argmax[q][o]] += dout[q][o], from zero, o in increasing order (overlapping
 *   windows accumulate); q < planes = N*C, dinp: [planes][HW], dout, argmax:
 *   [planes][OHW]. Every argmax is checked as it is read: one outside [0, HW) is
 *   never used, and the call returns FC_EINVAL with dinp partly written (the caller
 *   discards it). Overwrites dinp. Parallel over the planes. */
fc_status fc_maxpool2d_backward_f32(float *dinp, const float *dout, const int64_t *argmax,
                                    int64_t planes, int64_t HW, int64_t OHW, int num_threads);
fc_status fc_maxpool2d_backward_f64(double *dinp, const double *dout, const int64_t *argmax,
                                    int64_t planes, int64_t HW, int64_t OHW, int num_threads);

/* Batch normalisation of [N][C][HW] arrays, per channel c (vectors of C doubles):
 * fc_batchnorm2d_forward: with batch statistics, channel by channel: mean[c] = sum x / M,
 *                         var[c] = sum (x - mean)^2 / M (biased), M = N*HW, two passes
 *                         in double; invstd = 1/sqrt(var + eps); then out as
 *                         fc_batchnorm2d_apply with scale = invstd*weight[c] and shift =
 *                         bias[c] (weight, bias may be NULL: 1 and 0).
 * fc_batchnorm2d_apply:   out = (x - mean[c])*scale[c] + shift[c]. Overwrites out.
 * fc_batchnorm2d_backward_reduce: gsum[c] = sum g, gxsum[c] = sum g*xhat (either may
 *                         be NULL), in double, xhat = (x - mean[c])*invstd[c] formed in T
 *                         as x is read (x, mean, invstd may be NULL when gxsum is).
 * fc_batchnorm2d_backward_apply:  gx = g*a[c] - xhat*b[c] - c0[c], xhat as above (x may
 *                         be NULL: no middle term). Overwrites gx.
 * fc_batchnorm2d_backward: reduce and apply for batch statistics, channel by channel:
 *                         gsum, gxsum, then a = scale[c], b = scale[c]*gxsum[c]/M,
 *                         c0 = scale[c]*gsum[c]/M (all pointers required).
 * Parallel over channels; each channel sums in one fixed order (any num_threads). */
#define FC_BN_DECLS(T, SUF)                                                                   \
    fc_status fc_batchnorm2d_apply##SUF(T *out, const T *x, const double *mean,               \
                                        const double *scale, const double *shift, int64_t N,  \
                                        int64_t C, int64_t HW, int num_threads);              \
    fc_status fc_batchnorm2d_backward_reduce##SUF(double *gsum, double *gxsum, const T *g,    \
                                                  const T *x, const double *mean,             \
                                                  const double *invstd, int64_t N, int64_t C, \
                                                  int64_t HW, int num_threads);               \
    fc_status fc_batchnorm2d_backward_apply##SUF(T *gx, const T *g, const T *x,               \
                                                 const double *mean, const double *invstd,    \
                                                 const double *a, const double *b,            \
                                                 const double *c0, int64_t N, int64_t C,      \
                                                 int64_t HW, int num_threads);                \
    fc_status fc_batchnorm2d_forward##SUF(T *out, double *mean, double *var, double *invstd,  \
                                          const T *x, const double *weight,                   \
                                          const double *bias, double eps, int64_t N,          \
                                          int64_t C, int64_t HW, int num_threads);            \
    fc_status fc_batchnorm2d_backward##SUF(T *gx, double *gsum, double *gxsum, const T *g,     \
                                           const T *x, const double *mean,                    \
                                           const double *invstd, const double *scale,         \
                                           int64_t N, int64_t C, int64_t HW, int num_threads);
FC_BN_DECLS(float, _f32)
FC_BN_DECLS(double, _f64)

/* fc_dropout_forward_{f32,f64}: mask[i] = scale when element i is kept, else 0, and
 * out[i] = inp[i] * mask[i], i < n. Element i is kept when the top 24 bits of a hash of
 * (key, i) are >= thr (so with probability 1 - thr / 2^24, thr <= 2^24); the same key
 * gives the same mask whatever num_threads. */
fc_status fc_dropout_forward_f32(float *out, float *mask, const float *inp, int64_t n,
                                 uint64_t key, uint32_t thr, float scale, int num_threads);
fc_status fc_dropout_forward_f64(double *out, double *mask, const double *inp, int64_t n,
                                 uint64_t key, uint32_t thr, double scale, int num_threads);

/* fc_relu_forward_{f32,f64}: out[i] = inp[i] > 0 ? inp[i] : 0 (NaN stays NaN), i < n.
 * out may equal inp. Parallel over chunks of the array. */
fc_status fc_relu_forward_f32(float *out, const float *inp, int64_t n, int num_threads);
fc_status fc_relu_forward_f64(double *out, const double *inp, int64_t n, int num_threads);

/* fc_relu_backward_{f32,f64}: dinp[i] = inp[i] <= 0 ? 0 : dout[i] (a NaN input passes
 * the gradient, as PyTorch's threshold_backward), i < n. Overwrites dinp. */
fc_status fc_relu_backward_f32(float *dinp, const float *dout, const float *inp, int64_t n,
                               int num_threads);
fc_status fc_relu_backward_f64(double *dinp, const double *dout, const double *inp, int64_t n,
                               int num_threads);

/* fc_linear_forward_{f32,f64}
 *   out[n][o] = bias[o] + sum_{i<IN} inp[n][i] * weight[o][i]
 *   inp: [N][IN], weight: [OUT][IN], bias: [OUT] or NULL, out: [N][OUT]. Overwrites out.
 *   One GEMM, parallel over its blocks of rows and columns. */
fc_status fc_linear_forward_f32(float *out, const float *inp, const float *weight,
                                const float *bias, int64_t N, int64_t IN, int64_t OUT,
                                int num_threads);
fc_status fc_linear_forward_f64(double *out, const double *inp, const double *weight,
                                const double *bias, int64_t N, int64_t IN, int64_t OUT,
                                int num_threads);

/* fc_linear_backward_{f32,f64}
 *   dinp[n][i] = sum_o dout[n][o] weight[o][i];  dweight[o][i] = sum_n dout[n][o] inp[n][i];
 *   dbias[o] = sum_n dout[n][o] (in double). Any output may be NULL and is then skipped.
 *   Two GEMMs, parallel over blocks of their outputs. Overwrites what it computes. */
fc_status fc_linear_backward_f32(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *weight, int64_t N, int64_t IN,
                                 int64_t OUT, int num_threads);
fc_status fc_linear_backward_f64(double *dinp, double *dweight, double *dbias,
                                 const double *dout, const double *inp, const double *weight,
                                 int64_t N, int64_t IN, int64_t OUT, int num_threads);

/* fc_{s,d}gemm
 *   C[m][n] = sum_k A[m][k] * B[k][n]            (accumulate == 0: overwrites C)
 *   C[m][n] = C[m][n] + sum_k A[m][k] * B[k][n]  (accumulate != 0)
 *   A[m][k] is at a[m*rsa + k*csa], B[k][n] at b[k*rsb + n*csb] (any strides, so
 *   transposes cost nothing), C row-major with leading dimension ldc.
 *   BLIS-shaped: packed panels and an MR x NR micro-kernel of the active SIMD level.
 *   Parallel over blocks of C; every element is reduced in the same order whatever
 *   num_threads is. */
fc_status fc_sgemm(int64_t M, int64_t N, int64_t K, const float *a, int64_t rsa, int64_t csa,
                   const float *b, int64_t rsb, int64_t csb, float *c, int64_t ldc,
                   int accumulate, int num_threads);
fc_status fc_dgemm(int64_t M, int64_t N, int64_t K, const double *a, int64_t rsa, int64_t csa,
                   const double *b, int64_t rsb, int64_t csb, double *c, int64_t ldc,
                   int accumulate, int num_threads);

#ifdef __cplusplus
}
#endif
#endif /* FASTCONV_H */
