/* conv2d.c — 2-D convolution, im2col + GEMM and direct, for float and double. */
#include <string.h>
#include "internal.h"

#define T float
#define FC_SUF _f32
#define FC_BS(kt) (&(kt)->s)
#define FC_DIRECT(kt) ((kt)->sconv_direct)
#define FC_DIRECT_WIDTH(kt) ((kt)->sconv_direct_width)
#define FC_DIRECT_PACK(kt) ((kt)->sconv_direct_pack)
#define FC_DIRECT_T fc_direct_f32
#define FC_DIRECT_BWD_W(kt) ((kt)->sconv_direct_bwd_w)
#define FC_DIRECT_BWD_W_T fc_direct_bwd_w_f32
#define FC_DW_FWD(kt) ((kt)->sconv_dw_fwd)
#define FC_DW_BWD_W(kt) ((kt)->sconv_dw_bwd_w)
#include "conv2d_impl.inc"
#undef T
#undef FC_SUF
#undef FC_BS
#undef FC_DIRECT
#undef FC_DIRECT_WIDTH
#undef FC_DIRECT_PACK
#undef FC_DIRECT_T
#undef FC_DIRECT_BWD_W
#undef FC_DIRECT_BWD_W_T
#undef FC_DW_FWD
#undef FC_DW_BWD_W

#define T double
#define FC_SUF _f64
#define FC_BS(kt) (&(kt)->d)
#define FC_DIRECT(kt) ((kt)->dconv_direct)
#define FC_DIRECT_WIDTH(kt) ((kt)->dconv_direct_width)
#define FC_DIRECT_PACK(kt) ((kt)->dconv_direct_pack)
#define FC_DIRECT_T fc_direct_f64
#define FC_DIRECT_BWD_W(kt) ((kt)->dconv_direct_bwd_w)
#define FC_DIRECT_BWD_W_T fc_direct_bwd_w_f64
#define FC_DW_FWD(kt) ((kt)->dconv_dw_fwd)
#define FC_DW_BWD_W(kt) ((kt)->dconv_dw_bwd_w)
#include "conv2d_impl.inc"
