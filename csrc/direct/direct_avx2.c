/* direct_avx2.c — direct convolution kernels for -mavx2 -mfma: 32-byte vectors, 4 x 3 tile = 12 accumulators + 3 inputs + 1 weight of 16 ymm (measured best of 4x2, 4x3, 6x2, 3x4 on the small-C layers). */
#include "../internal.h"

#define FC_VBYTES 32
#define FC_OCB 4
#define FC_VW 3
/* Taps per weight-gradient tile: 2 x FC_WTAPS accumulators. */
#define FC_WTAPS 6
/* Depthwise register tile: FC_DW_RB output rows x FC_DW_VW vectors (Zen 1, 1 thread,
 * against 2 x 4: dw_3x3 forward 0.94-0.95 of the time, backward 0.94-0.98, fmnist_c1
 * 0.92-0.96 both ways; 3 x 2 within 2% of 4 x 2). */
#define FC_DW_RB 4
#define FC_DW_VW 2
/* The weight gradient's: 4 x 1 (its 9 tap sums stay in registers beside 4 output-gradient
 * vectors; 4 x 2 spills). Zen 1, 1 thread, one plane 28 x 28 (C harness, TSC ticks per
 * plane): 1016 against 1155. */
#define FC_DW_WRB 4
#define FC_DW_WVW 1
#define FC_VW1 6

#define T float
#define FC_DIRECT_FN fc_sconv2d_direct__avx2
#include "direct_impl.inc"
#define FC_DW_FWD fc_sconv2d_depthwise__avx2
#define FC_DW_BWD_W fc_sconv2d_depthwise_bwd_w__avx2
#include "depthwise_impl.inc"
#undef FC_DW_FWD
#undef FC_DW_BWD_W
#undef T
#undef FC_DIRECT_FN

#define T double
#define FC_DIRECT_FN fc_dconv2d_direct__avx2
#include "direct_impl.inc"
#define FC_DW_FWD fc_dconv2d_depthwise__avx2
#define FC_DW_BWD_W fc_dconv2d_depthwise_bwd_w__avx2
#include "depthwise_impl.inc"
#undef FC_DW_FWD
#undef FC_DW_BWD_W
#undef T
#undef FC_DIRECT_FN
