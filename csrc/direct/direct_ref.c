/* direct_ref.c — direct convolution kernels for the baseline ISA (SSE2 on x86-64, NEON on arm64): 16-byte vectors. */
#include "../internal.h"

#define FC_VBYTES 16
#define FC_OCB 4
#define FC_VW 2
/* Taps per weight-gradient tile: 2 x FC_WTAPS accumulators. */
#define FC_WTAPS 6
/* Output vectors per depthwise register tile. */
/* Output rows per depthwise register tile. */
#define FC_DW_RB 2
#define FC_DW_VW 4
#define FC_VW1 4

#define T float
#define FC_DIRECT_FN fc_sconv2d_direct__ref
#include "direct_impl.inc"
#define FC_DW_FWD fc_sconv2d_depthwise__ref
#define FC_DW_BWD_W fc_sconv2d_depthwise_bwd_w__ref
#include "depthwise_impl.inc"
#undef FC_DW_FWD
#undef FC_DW_BWD_W
#undef T
#undef FC_DIRECT_FN

#define T double
#define FC_DIRECT_FN fc_dconv2d_direct__ref
#include "direct_impl.inc"
#define FC_DW_FWD fc_dconv2d_depthwise__ref
#define FC_DW_BWD_W fc_dconv2d_depthwise_bwd_w__ref
#include "depthwise_impl.inc"
#undef FC_DW_FWD
#undef FC_DW_BWD_W
#undef T
#undef FC_DIRECT_FN
