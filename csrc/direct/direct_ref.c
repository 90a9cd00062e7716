/* direct_ref.c — direct convolution kernels for the baseline ISA (SSE2 on x86-64, NEON on arm64): 16-byte vectors. */
#include "../internal.h"

#define FC_VBYTES 16
#define FC_OCB 4
#define FC_VW 2
/* Taps per weight-gradient tile: 2 x FC_WTAPS accumulators. */
#define FC_WTAPS 6
#define FC_VW1 4

#define T float
#define FC_DIRECT_FN fc_sconv2d_direct__ref
#include "direct_impl.inc"
#undef T
#undef FC_DIRECT_FN

#define T double
#define FC_DIRECT_FN fc_dconv2d_direct__ref
#include "direct_impl.inc"
#undef T
#undef FC_DIRECT_FN
