"""Plain NumPy peers for the benchmarks: im2col + ``np.matmul`` and reshape-max.

These are the "what you get with NumPy alone" baselines that fastconv is
compared against. They are written for clarity, not cleverness: build the
column matrix from a strided window view, then one matrix product per group.
In float64 they also serve as the reference the benchmarks validate against.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_im2col(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of x (N, C, H, W) with weight (OC, C/groups, KH, KW).

    Same output as ``torch.nn.functional.conv2d`` for int or pair arguments.
    """
    N, C, H, W = x.shape
    OC, CG, KH, KW = weight.shape
    SH, SW = _pair(stride)
    PH, PW = _pair(padding)
    DH, DW = _pair(dilation)
    OCG = OC // groups

    if PH or PW:
        x = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    # Every (dilated) KH x KW window, then keep the taps and output positions
    # we need: windows[n, c, oh, ow, kh, kw] = x[n, c, oh*SH + kh*DH, ow*SW + kw*DW]
    span = (DH * (KH - 1) + 1, DW * (KW - 1) + 1)
    windows = sliding_window_view(x, span, axis=(2, 3))[:, :, ::SH, ::SW, ::DH, ::DW]
    OH, OW = windows.shape[2:4]

    # cols[g, n*OH*OW + p, c*KH*KW + k]: one row per output pixel (this copies).
    windows = windows.reshape(N, groups, CG, OH, OW, KH, KW)
    cols = windows.transpose(1, 0, 3, 4, 2, 5, 6).reshape(groups, N * OH * OW, CG * KH * KW)
    # w[g, c*KH*KW + k, oc]
    w = weight.reshape(groups, OCG, CG * KH * KW).transpose(0, 2, 1)

    out = np.matmul(cols, w)  # (groups, N*OH*OW, OCG): one GEMM per group
    out = out.reshape(groups, N, OH, OW, OCG).transpose(1, 0, 4, 2, 3).reshape(N, OC, OH, OW)
    if bias is not None:
        out = out + bias.reshape(1, OC, 1, 1)
    return np.ascontiguousarray(out)


def max_pool2d_reshape(x, kernel_size):
    """Non-overlapping max pooling (stride == kernel_size, no padding, floor mode)."""
    N, C, H, W = x.shape
    KH, KW = _pair(kernel_size)
    OH, OW = H // KH, W // KW
    tiles = x[:, :, : OH * KH, : OW * KW].reshape(N, C, OH, KH, OW, KW)
    return tiles.max(axis=(3, 5))
