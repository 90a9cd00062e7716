"""Plain NumPy reference implementations: the test oracle.

Nothing here is optimised. Every function computes in float64 and returns
float64 (indices are int64), whatever the input dtype; tests compare against it
with tolerances. Layout is NCHW: x ``(N, C, H, W)``, weight
``(OC, C/groups, KH, KW)``, output ``(N, OC, OH, OW)``.
"""

import math

import numpy as np


def _pair(v):
    """An int or a pair -> a tuple of two ints."""
    if isinstance(v, (tuple, list)):
        a, b = v
        return int(a), int(b)
    return int(v), int(v)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def conv_out_size(size, kernel, stride, padding, dilation):
    """``floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _conv_geometry(x_shape, w_shape, stride, padding, dilation, groups):
    N, C, H, W = x_shape
    OC, Cg, KH, KW = w_shape
    (SH, SW), (PH, PW), (DH, DW) = _pair(stride), _pair(padding), _pair(dilation)
    if C != Cg * groups or OC % groups:
        raise ValueError(f"bad channels: x {x_shape}, w {w_shape}, groups {groups}")
    OH = conv_out_size(H, KH, SH, PH, DH)
    OW = conv_out_size(W, KW, SW, PW, DW)
    if OH <= 0 or OW <= 0:
        raise ValueError(f"empty output {OH}x{OW}")
    return OH, OW, (SH, SW), (PH, PW), (DH, DW)


def _tap(xp, c0, c1, i, j, OH, OW, stride, dilation):
    """The strided view of the padded input that meets kernel tap (i, j)."""
    (SH, SW), (DH, DW) = stride, dilation
    h0, w0 = i * DH, j * DW
    return xp[:, c0:c1, h0:h0 + SH * (OH - 1) + 1:SH, w0:w0 + SW * (OW - 1) + 1:SW]


def conv2d_ref(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """2-D cross-correlation with zero padding, as ``torch.nn.functional.conv2d``.

    ``out[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] *
    xpad[n, g*C/groups + c, oh*SH + i*DH, ow*SW + j*DW]`` where ``g`` is the group
    of output channel ``o``. Loops over groups and kernel taps, contracting channels
    with ``tensordot``.
    """
    x, w = _f64(x), _f64(w)
    OH, OW, stride, (PH, PW), dilation = _conv_geometry(
        x.shape, w.shape, stride, padding, dilation, groups)
    N, C = x.shape[:2]
    OC, Cg, KH, KW = w.shape
    OCg = OC // groups
    xp = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    out = np.zeros((N, OC, OH, OW))
    for g in range(groups):
        for i in range(KH):
            for j in range(KW):
                patch = _tap(xp, g * Cg, (g + 1) * Cg, i, j, OH, OW, stride, dilation)
                wg = w[g * OCg:(g + 1) * OCg, :, i, j]                     # (OCg, Cg)
                out[:, g * OCg:(g + 1) * OCg] += np.einsum("nchw,oc->nohw", patch, wg)
    if b is not None:
        out += _f64(b)[None, :, None, None]
    return out


def conv2d_backward_ref(gout, x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """Gradients of :func:`conv2d_ref` given ``gout = dL/dout``: ``(gx, gw, gb)``.

    Direct scatter over kernel taps: each tap's input view receives
    ``w[:, :, i, j]^T gout`` (into a padded buffer, cropped at the end), and
    ``gw[:, :, i, j]`` is the correlation of ``gout`` with that view.
    """
    gout, x, w = _f64(gout), _f64(x), _f64(w)
    OH, OW, stride, (PH, PW), dilation = _conv_geometry(
        x.shape, w.shape, stride, padding, dilation, groups)
    N, C, H, W = x.shape
    OC, Cg, KH, KW = w.shape
    if gout.shape != (N, OC, OH, OW):
        raise ValueError(f"gout shape {gout.shape}, expected {(N, OC, OH, OW)}")
    OCg = OC // groups
    xp = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for g in range(groups):
        go = gout[:, g * OCg:(g + 1) * OCg]                                # (N, OCg, OH, OW)
        for i in range(KH):
            for j in range(KW):
                patch = _tap(xp, g * Cg, (g + 1) * Cg, i, j, OH, OW, stride, dilation)
                gpatch = _tap(gxp, g * Cg, (g + 1) * Cg, i, j, OH, OW, stride, dilation)
                wg = w[g * OCg:(g + 1) * OCg, :, i, j]
                gpatch += np.einsum("nohw,oc->nchw", go, wg)                # a view: writes gxp
                gw[g * OCg:(g + 1) * OCg, :, i, j] = np.einsum("nohw,nchw->oc", go, patch)
    gx = gxp[:, :, PH:PH + H, PW:PW + W].copy()
    gb = gout.sum(axis=(0, 2, 3))
    return gx, gw, gb


def pool_out_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output size.

    ``floor`` (or ``ceil`` with ``ceil_mode``) of
    ``(size + 2*padding - dilation*(kernel-1) - 1) / stride``, plus 1. With
    ``ceil_mode`` the last window must start inside the input or the left padding:
    if ``(out-1)*stride >= size + padding`` the last window is dropped.
    """
    num = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def max_pool2d_ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling with argmax, following PyTorch's CPU kernel exactly.

    Returns ``(out, indices)``: float64 values and int64 flat positions
    ``h*W + w`` within each ``H x W`` plane.

    - Padding counts as ``-inf``; ``stride=None`` means ``kernel_size``; output
      size as :func:`pool_out_size`.
    - Each window is scanned in row-major order over its in-bounds taps; a tap
      replaces the running maximum when ``value > max`` or ``value`` is NaN. So among
      equal maxima the first one wins, and a NaN anywhere makes the output NaN with
      the index of the *last* NaN in scan order (``isnan`` keeps replacing).
    - The index starts at the first in-bounds tap, so a window that is all ``-inf``
      gives ``-inf`` with that tap's index.
    - A window with no in-bounds tap (possible only with large dilation) has no
      defined answer in PyTorch; this reference raises ``ValueError`` instead.
    """
    x = _f64(x)
    N, C, H, W = x.shape
    (KH, KW), (PH, PW), (DH, DW) = _pair(kernel_size), _pair(padding), _pair(dilation)
    SH, SW = (KH, KW) if stride is None else _pair(stride)
    OH = pool_out_size(H, KH, SH, PH, DH, ceil_mode)
    OW = pool_out_size(W, KW, SW, PW, DW, ceil_mode)
    if OH <= 0 or OW <= 0:
        raise ValueError(f"empty output {OH}x{OW}")
    planes = x.reshape(N * C, H * W)
    out = np.empty((N * C, OH, OW))
    idx = np.empty((N * C, OH, OW), dtype=np.int64)
    for oh in range(OH):
        for ow in range(OW):
            taps = [(h, v) for h in range(oh * SH - PH, oh * SH - PH + KH * DH, DH)
                    for v in range(ow * SW - PW, ow * SW - PW + KW * DW, DW)
                    if 0 <= h < H and 0 <= v < W]
            if not taps:
                raise ValueError(f"pooling window ({oh}, {ow}) lies entirely in the padding")
            best = np.full(N * C, -np.inf)
            arg = np.full(N * C, taps[0][0] * W + taps[0][1], dtype=np.int64)
            for h, v in taps:
                val = planes[:, h * W + v]
                take = (val > best) | np.isnan(val)
                best = np.where(take, val, best)
                arg = np.where(take, h * W + v, arg)
            out[:, oh, ow] = best
            idx[:, oh, ow] = arg
    return out.reshape(N, C, OH, OW), idx.reshape(N, C, OH, OW)


def max_pool2d_backward_ref(gout, indices, input_shape):
    """Gradient of max pooling: scatter-add ``gout`` into each plane at ``indices``."""
    gout = _f64(gout)
    N, C, H, W = input_shape
    gx = np.zeros((N * C, H * W))
    planes = np.repeat(np.arange(N * C), gout[0, 0].size)
    np.add.at(gx, (planes, np.asarray(indices).reshape(-1)), gout.reshape(-1))
    return gx.reshape(N, C, H, W)


def relu_ref(x):
    """``max(x, 0)`` elementwise; NaN stays NaN (as ``torch.relu``)."""
    x = _f64(x)
    return np.where(np.isnan(x) | (x > 0), x, 0.0)


def relu_backward_ref(gout, x):
    """``gout`` where ``x > 0``, else 0. NaN in ``x`` passes the gradient through,
    as PyTorch's ``threshold_backward`` (it zeroes only where ``x <= 0``)."""
    gout, x = _f64(gout), _f64(x)
    return np.where(x <= 0, 0.0, gout)


def linear_ref(x, w, b=None):
    """``x @ w.T + b`` with x ``(N, IN)``, w ``(OUT, IN)``, b ``(OUT,)``."""
    out = _f64(x) @ _f64(w).T
    if b is not None:
        out = out + _f64(b)
    return out


def linear_backward_ref(gout, x, w):
    """Gradients of :func:`linear_ref`: ``(gout @ w, gout.T @ x, gout.sum(0))``."""
    gout, x, w = _f64(gout), _f64(x), _f64(w)
    return gout @ w, gout.T @ x, gout.sum(axis=0)


# ---------------------------------------------------------------------------
# Comparison helpers
# ---------------------------------------------------------------------------

#: Relative tolerance per unit of sqrt(reduction length), by dtype.
BASE_TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def conv2d_scale_ref(x, w, b=None, **kwargs):
    """Magnitude of each output's terms: ``conv2d(|x|, |w|) + |b|``.

    Rounding error of a sum is bounded relative to the sum of the absolute values
    of its terms, so this is the right scale for tolerances (outputs near zero
    from cancellation get a meaningful bound).
    """
    return conv2d_ref(np.abs(_f64(x)), np.abs(_f64(w)),
                      None if b is None else np.abs(_f64(b)), **kwargs)


def assert_close_scaled(actual, expected, scale, k, dtype, factor=1.0):
    """Assert ``|actual - expected| <= BASE_TOL[dtype] * sqrt(k) * scale`` elementwise.

    ``k`` is the reduction length (e.g. ``C/groups*KH*KW``); ``scale`` comes from
    :func:`conv2d_scale_ref` or the linear analogue.
    """
    actual = np.asarray(actual)
    assert actual.shape == np.shape(expected), (actual.shape, np.shape(expected))
    tol = factor * BASE_TOL[np.dtype(dtype)] * math.sqrt(max(k, 1)) * np.asarray(scale)
    tol = tol + np.finfo(dtype).tiny
    err = np.abs(actual.astype(np.float64) - expected)
    bad = ~(err <= tol)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(
            f"{bad.sum()} of {bad.size} elements out of tolerance; first at {first}: "
            f"got {actual[first]!r}, expected {expected[first]!r}, tol {tol[first]:.3g}; "
            f"max err/tol {np.nanmax(err / tol):.3g}")
