/* direct_avx512.c — direct convolution kernels for -mavx512f: 64-byte vectors, 8 x 3 tile = 24 accumulators + 3 inputs + 1 weight of 32 zmm (8 broadcasts and 3 loads per 24 FMAs; best of 8x2, 8x3, 4x6, 4x7, 6x4 on fmnist_c1 and r18_conv1). */
#include "../internal.h"

#define FC_VBYTES 64
#define FC_OCB 8
#define FC_VW 3
/* Taps per weight-gradient tile: 2 x FC_WTAPS accumulators. */
#define FC_WTAPS 12
/* Depthwise register tile: FC_DW_RB output rows x FC_DW_VW vectors. 7 rows (4 before): 28-row
 * planes in 4 tiles instead of 7, 0.89-0.92 of the time on fmnist_c1's forward and 0.96-0.98
 * on dw_3x3's (Intel Xeon; 8 rows took 1.02-1.10: a last tile mostly empty). */
#define FC_DW_RB 7
#define FC_DW_VW 2
#define FC_VW1 6

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
