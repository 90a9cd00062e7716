# Declarations of csrc/fastconv.h, one per C prototype, same names.
from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef extern from "fastconv.h" nogil:
    ctypedef enum fc_status:
        FC_OK
        FC_EINVAL
        FC_ENOMEM

    int fc_simd_best()
    int fc_simd_set(int level)
    int fc_simd_get()
    const char *fc_simd_name(int level)
    int fc_wide_tile_default()
    int fc_wide_tile_set(int wide)
    int fc_wide_tile_get()
    const char *fc_sgemm_tile()
    double fc_fma_probe(int level, int64_t iters, double *flops)
    int fc_openmp_enabled()
    int fc_malloc_keep(size_t mmap_threshold, size_t trim_threshold)
    size_t FC_STREAM_MIN_BYTES
    int fc_stream_output(const void *out, size_t bytes)
    int fc_max_threads()
    double fc_parallel_min_flops(double flops)
    fc_status fc_out_size(int64_t inp, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                          int ceil_mode, int64_t *out)

    ctypedef struct fc_conv2d_geom:
        int64_t N, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW

    fc_status fc_conv2d_forward_im2col_f32(float *out, const float *inp, const float *weight,
                                           const float *bias, const fc_conv2d_geom *g, int num_threads)
    fc_status fc_conv2d_forward_im2col_f64(double *out, const double *inp, const double *weight,
                                           const double *bias, const fc_conv2d_geom *g, int num_threads)
    fc_status fc_conv2d_forward_direct_f32(float *out, const float *inp, const float *weight,
                                           const float *bias, const fc_conv2d_geom *g, int num_threads)
    fc_status fc_conv2d_forward_direct_f64(double *out, const double *inp, const double *weight,
                                           const double *bias, const fc_conv2d_geom *g, int num_threads)

    fc_status fc_conv2d_backward_im2col_f32(float *dinp, float *dweight, float *dbias,
                                            const float *dout, const float *inp,
                                            const float *weight, const fc_conv2d_geom *g,
                                            int num_threads)
    fc_status fc_conv2d_backward_im2col_f64(double *dinp, double *dweight, double *dbias,
                                            const double *dout, const double *inp,
                                            const double *weight, const fc_conv2d_geom *g,
                                            int num_threads)
    fc_status fc_conv2d_backward_direct_f32(float *dinp, float *dweight, float *dbias,
                                            const float *dout, const float *inp,
                                            const float *weight, const fc_conv2d_geom *g,
                                            int num_threads)
    fc_status fc_conv2d_backward_direct_f64(double *dinp, double *dweight, double *dbias,
                                            const double *dout, const double *inp,
                                            const double *weight, const fc_conv2d_geom *g,
                                            int num_threads)

    fc_status fc_conv2d_forward_winograd_f32(float *out, const float *inp, const float *weight,
                                             const float *bias, const fc_conv2d_geom *g,
                                             int num_threads)
    fc_status fc_conv2d_forward_winograd_f64(double *out, const double *inp,
                                             const double *weight, const double *bias,
                                             const fc_conv2d_geom *g, int num_threads)
    fc_status fc_conv2d_backward_winograd_f32(float *dinp, float *dweight, float *dbias,
                                              const float *dout, const float *inp,
                                              const float *weight, const fc_conv2d_geom *g,
                                              int num_threads)
    fc_status fc_conv2d_backward_winograd_f64(double *dinp, double *dweight, double *dbias,
                                              const double *dout, const double *inp,
                                              const double *weight, const fc_conv2d_geom *g,
                                              int num_threads)

    ctypedef struct fc_pool2d_geom:
        int64_t N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW

    fc_status fc_maxpool2d_forward_f32(float *out, int64_t *argmax, const float *inp,
                                       const fc_pool2d_geom *g, int num_threads)
    fc_status fc_maxpool2d_forward_f64(double *out, int64_t *argmax, const double *inp,
                                       const fc_pool2d_geom *g, int num_threads)

    fc_status fc_maxpool2d_backward_f32(float *dinp, const float *dout, const int64_t *argmax,
                                        int64_t planes, int64_t HW, int64_t OHW, int num_threads)
    fc_status fc_maxpool2d_backward_f64(double *dinp, const double *dout, const int64_t *argmax,
                                        int64_t planes, int64_t HW, int64_t OHW, int num_threads)

    fc_status fc_relu_backward_f32(float *dinp, const float *dout, const float *inp, int64_t n,
                                   int num_threads)
    fc_status fc_relu_backward_f64(double *dinp, const double *dout, const double *inp, int64_t n,
                                   int num_threads)
    fc_status fc_linear_backward_f32(float *dinp, float *dweight, float *dbias, const float *dout,
                                     const float *inp, const float *weight, int64_t N, int64_t IN,
                                     int64_t OUT, int num_threads)
    fc_status fc_linear_backward_f64(double *dinp, double *dweight, double *dbias,
                                     const double *dout, const double *inp, const double *weight,
                                     int64_t N, int64_t IN, int64_t OUT, int num_threads)

    fc_status fc_batchnorm2d_apply_f32(float *out, const float *x, const double *mean,
                                       const double *scale, const double *shift, int64_t N,
                                       int64_t C, int64_t HW, int num_threads)
    fc_status fc_batchnorm2d_apply_f64(double *out, const double *x, const double *mean,
                                       const double *scale, const double *shift, int64_t N,
                                       int64_t C, int64_t HW, int num_threads)
    fc_status fc_batchnorm2d_backward_reduce_f32(double *gsum, double *gxsum, const float *g,
                                                 const float *x, const double *mean,
                                                 const double *invstd, int64_t N, int64_t C,
                                                 int64_t HW, int num_threads)
    fc_status fc_batchnorm2d_backward_reduce_f64(double *gsum, double *gxsum, const double *g,
                                                 const double *x, const double *mean,
                                                 const double *invstd, int64_t N, int64_t C,
                                                 int64_t HW, int num_threads)
    fc_status fc_batchnorm2d_backward_apply_f32(float *gx, const float *g, const float *x,
                                                const double *mean, const double *invstd,
                                                const double *a, const double *b,
                                                const double *c0, int64_t N, int64_t C,
                                                int64_t HW, int num_threads)
    fc_status fc_batchnorm2d_forward_f32(float *out, double *mean, double *var, double *invstd,
                                         const float *x, const double *weight, const double *bias,
                                         double eps, int64_t N, int64_t C, int64_t HW,
                                         int num_threads)
    fc_status fc_batchnorm2d_backward_f32(float *gx, double *gsum, double *gxsum, const float *g,
                                          const float *x, const double *mean,
                                          const double *invstd, const double *scale,
                                          int64_t N, int64_t C, int64_t HW, int num_threads)
    fc_status fc_batchnorm2d_backward_apply_f64(double *gx, const double *g, const double *x,
                                                const double *mean, const double *invstd,
                                                const double *a, const double *b,
                                                const double *c0, int64_t N, int64_t C,
                                                int64_t HW, int num_threads)
    fc_status fc_batchnorm2d_forward_f64(double *out, double *mean, double *var, double *invstd,
                                         const double *x, const double *weight, const double *bias,
                                         double eps, int64_t N, int64_t C, int64_t HW,
                                         int num_threads)
    fc_status fc_batchnorm2d_backward_f64(double *gx, double *gsum, double *gxsum, const double *g,
                                          const double *x, const double *mean,
                                          const double *invstd, const double *scale,
                                          int64_t N, int64_t C, int64_t HW, int num_threads)

    fc_status fc_dropout_forward_f32(float *out, float *mask, const float *inp, int64_t n,
                                     uint64_t key, uint32_t thr, float scale, int num_threads)
    fc_status fc_dropout_forward_f64(double *out, double *mask, const double *inp, int64_t n,
                                     uint64_t key, uint32_t thr, double scale, int num_threads)
    fc_status fc_relu_forward_f32(float *out, const float *inp, int64_t n, int num_threads)
    fc_status fc_relu_forward_f64(double *out, const double *inp, int64_t n, int num_threads)

    fc_status fc_linear_forward_f32(float *out, const float *inp, const float *weight,
                                    const float *bias, int64_t N, int64_t IN, int64_t OUT,
                                    int num_threads)
    fc_status fc_linear_forward_f64(double *out, const double *inp, const double *weight,
                                    const double *bias, int64_t N, int64_t IN, int64_t OUT,
                                    int num_threads)

    fc_status fc_sgemm(int64_t M, int64_t N, int64_t K, const float *a, int64_t rsa, int64_t csa,
                       const float *b, int64_t rsb, int64_t csb, float *c, int64_t ldc,
                       int accumulate, int num_threads)
    fc_status fc_dgemm(int64_t M, int64_t N, int64_t K, const double *a, int64_t rsa, int64_t csa,
                       const double *b, int64_t rsb, int64_t csb, double *c, int64_t ldc,
                       int accumulate, int num_threads)
