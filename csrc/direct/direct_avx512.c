/* direct_avx512.c — direct convolution kernels for -mavx512f: 64-byte vectors, 8 x 1 tile (16 pixels a row keeps small images efficient). */
#include "../internal.h"

#define FC_VBYTES 64
#define FC_OCB 8
#define FC_VW 1
/* Taps per weight-gradient tile: 2 x FC_WTAPS accumulators. */
#define FC_WTAPS 12
/* Output vectors per depthwise register tile. */
/* Output rows per depthwise register tile. */
#define FC_DW_RB 4
#define FC_DW_VW 2
#define FC_VW1 2

#define T float
#define FC_DIRECT_FN fc_sconv2d_direct__avx512
#include "direct_impl.inc"
#define FC_DW_FWD fc_sconv2d_depthwise__avx512
#define FC_DW_BWD_W fc_sconv2d_depthwise_bwd_w__avx512
#include "depthwise_impl.inc"
#undef FC_DW_FWD
#undef FC_DW_BWD_W
#undef T
#undef FC_DIRECT_FN

#define T double
#define FC_DIRECT_FN fc_dconv2d_direct__avx512
#include "direct_impl.inc"
#define FC_DW_FWD fc_dconv2d_depthwise__avx512
#define FC_DW_BWD_W fc_dconv2d_depthwise_bwd_w__avx512
#include "depthwise_impl.inc"
#undef FC_DW_FWD
#undef FC_DW_BWD_W
#undef T
#undef FC_DIRECT_FN
