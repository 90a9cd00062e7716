/* winograd.c — 3x3 stride-1 convolution by Winograd F(2x2, 3x3), float and double. */
#include <string.h>
#include "internal.h"

/* fc_wino_run's answer when some output is not finite (never returned to callers). */
#define FC_WINO_RETRY ((fc_status)-1)

#define T float
#define FC_SUF _f32
#define FC_BS(kt) (&(kt)->s)
#include "winograd_impl.inc"
#undef T
#undef FC_SUF
#undef FC_BS

#define T double
#define FC_SUF _f64
#define FC_BS(kt) (&(kt)->d)
#include "winograd_impl.inc"
