/* direct_avx512.c — direct convolution kernels for -mavx512f: 64-byte vectors, 8 x 1 tile (16 pixels a row keeps small images efficient). */
#include "../internal.h"

#define FC_VBYTES 64
#define FC_OCB 8
#define FC_VW 3
/* Taps per weight-gradient tile: 2 x FC_WTAPS accumulators. */
#define FC_WTAPS 12
#define FC_VW1 4

#define T float
#define FC_DIRECT_FN fc_sconv2d_direct__avx512
#include "direct_impl.inc"
#undef T
#undef FC_DIRECT_FN

#define T double
#define FC_DIRECT_FN fc_dconv2d_direct__avx512
#include "direct_impl.inc"
#undef T
#undef FC_DIRECT_FN
