"""Average pooling: AvgPool2d and AdaptiveAvgPool2d, in NumPy."""
import numpy as np

from ..functional import _int, _pair
from .misc import _check_grad, _check_input
from .module import Module, is_grad_enabled

__all__ = ["AvgPool2d", "AdaptiveAvgPool2d"]


def _pool_out_size(size, k, s, p, ceil_mode):
    """PyTorch's pooling output size; with ceil_mode the last window must start inside
    the input or the left padding."""
    num = size + 2 * p - k
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _window_counts(size, out, k, s, p, count_include_pad):
    """Per output position, the window length PyTorch divides by: the window clipped to
    the padded input (count_include_pad) or to the input itself."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


class AvgPool2d(Module):
    r"""2-D average pooling, as ``torch.nn.AvgPool2d``
    (https://pytorch.org/docs/stable/generated/torch.nn.AvgPool2d.html).

    Each output is the sum of a ``kernel_size`` window (zero padding included) divided
    by the window's size: the whole window clipped to the padded input when
    ``count_include_pad``, only its part inside the input otherwise, or
    ``divisor_override`` when given.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to kernel_size.
    padding : int or (int, int)
        Implicit zero padding on both sides, at most half the kernel size.
    ceil_mode : bool
        Round the output size up; a window must still start inside the input or the
        left padding.
    count_include_pad : bool
        Count the zero padding in the divisor.
    divisor_override : int, optional
        Divide every window sum by this instead.

    Shape
    -----
    Input (N, C, H, W), output (N, C, OH, OW),
    ``OH = floor_or_ceil((H + 2*PH - KH) / SH) + 1``, likewise OW.

    Notes
    -----
    Vectorised over the batch and channels: forward adds one strided view of the
    padded input per kernel tap; backward scatter-adds ``grad / divisor`` through the
    same views. The forward pass keeps only the input shape and the divisors.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        fn = "AvgPool2d"
        self.kernel_size = _pair(fn, "kernel_size", kernel_size)
        if min(self.kernel_size) < 1:
            raise ValueError(f"{fn}: kernel_size must be positive, got {kernel_size!r}")
        self.stride = self.kernel_size if stride is None else _pair(fn, "stride", stride)
        if min(self.stride) < 1:
            raise ValueError(f"{fn}: stride must be positive, got {stride!r}")
        self.padding = _pair(fn, "padding", padding)
        if min(self.padding) < 0:
            raise ValueError(f"{fn}: padding must be non-negative, got {padding!r}")
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{fn}: padding={padding!r} must be at most half of "
                             f"kernel_size={kernel_size!r}")
        if divisor_override is not None:
            divisor_override = _int(fn, "divisor_override", divisor_override, divisor_override,
                                    "a non-zero int or None")
            if divisor_override == 0:
                raise ValueError(f"{fn}: divisor_override must be non-zero, got 0")
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def _geometry(self, shape):
        H, W = shape[2:]
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        OH = _pool_out_size(H, KH, SH, PH, self.ceil_mode)
        OW = _pool_out_size(W, KW, SW, PW, self.ceil_mode)
        if OH < 1 or OW < 1:
            raise ValueError(f"AvgPool2d: input of shape {tuple(shape)} gives an empty output "
                             f"({OH}x{OW}) for kernel_size={self.kernel_size}, "
                             f"stride={self.stride}, padding={self.padding}")
        # The padded plane every window fits in: PH on top, enough at the bottom.
        HP = max(H + PH, (OH - 1) * SH + KH)
        WP = max(W + PW, (OW - 1) * SW + KW)
        return OH, OW, HP, WP

    def _divisor(self, H, W, OH, OW, dtype):
        if self.divisor_override is not None:
            return dtype.type(self.divisor_override)
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        dh = _window_counts(H, OH, KH, SH, PH, self.count_include_pad)
        dw = _window_counts(W, OW, KW, SW, PW, self.count_include_pad)
        return (dh[:, None] * dw[None, :]).astype(dtype)

    def _taps(self, plane, OH, OW):
        """The strided view of the padded ``plane`` under each kernel tap."""
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        for i in range(KH):
            for j in range(KW):
                yield plane[:, :, i:i + SH * (OH - 1) + 1:SH, j:j + SW * (OW - 1) + 1:SW]

    def forward(self, x):
        _check_input("AvgPool2d", x, ndim=4)
        N, C, H, W = x.shape
        OH, OW, HP, WP = self._geometry(x.shape)
        PH, PW = self.padding
        if (HP, WP) == (H, W):
            xp = x
        else:
            xp = np.zeros((N, C, HP, WP), x.dtype)
            xp[:, :, PH:PH + H, PW:PW + W] = x
        out = np.zeros((N, C, OH, OW), x.dtype)
        for view in self._taps(xp, OH, OW):
            out += view
        divisor = self._divisor(H, W, OH, OW, x.dtype)
        out /= divisor
        self._geom = (x.shape, OH, OW, HP, WP, divisor) if is_grad_enabled() else None
        return out

    def backward(self, grad_output):
        shape, OH, OW, HP, WP, divisor = self._saved("_geom")
        N, C, H, W = shape
        g = _check_grad("AvgPool2d", grad_output, (N, C, OH, OW))
        if not self._needs_input_grad():
            return None
        dt = divisor.dtype
        g = (g / divisor).astype(dt, copy=False)
        gxp = np.zeros((N, C, HP, WP), dt)
        for view in self._taps(gxp, OH, OW):
            view += g  # distinct positions within one tap: a plain strided add
        PH, PW = self.padding
        if (HP, WP) == (H, W):
            return gxp
        return np.ascontiguousarray(gxp[:, :, PH:PH + H, PW:PW + W])

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}"
        if self.stride != self.kernel_size:
            s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        if self.divisor_override is not None:
            s += f", divisor_override={self.divisor_override}"
        return s


def _bin_matrix(size, out, dtype):
    """(out, size) matrix averaging each adaptive bin: row i has 1/len on
    ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    i = np.arange(out)
    start = (i * size) // out
    end = -(-((i + 1) * size) // out)
    idx = np.arange(size)
    inside = (idx >= start[:, None]) & (idx < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


class AdaptiveAvgPool2d(Module):
    r"""2-D average pooling to a fixed output size, as ``torch.nn.AdaptiveAvgPool2d``
    (https://pytorch.org/docs/stable/generated/torch.nn.AdaptiveAvgPool2d.html).

    Output row ``i`` averages input rows ``floor(i*H/OH)`` to ``ceil((i+1)*H/OH) - 1``
    (likewise columns), so bins may overlap when OH does not divide H.
    ``AdaptiveAvgPool2d(1)`` is global average pooling.

    Parameters
    ----------
    output_size : int, or pair of (int or None)
        ``(OH, OW)``; an int means ``(n, n)``; None keeps that input dimension.

    Shape
    -----
    Input (N, C, H, W), output (N, C, OH, OW).

    Notes
    -----
    Averaging a bin is separable, so forward is two matrix products with the bin
    matrices, ``Ph @ x @ Pw.T``, and backward ``Ph.T @ grad @ Pw``; the forward pass
    keeps only the two matrices.
    """

    def __init__(self, output_size):
        super().__init__()
        fn = "AdaptiveAvgPool2d"
        sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
        if len(sizes) != 2:
            raise ValueError(f"{fn}: output_size must be an int or a pair, got {output_size!r}")
        checked = []
        for v in sizes:
            if v is None:
                checked.append(None)
                continue
            v = _int(fn, "output_size", v, output_size, "an int, None or a pair of them")
            if v < 1:
                raise ValueError(f"{fn}: output_size must be positive, got {output_size!r}")
            checked.append(v)
        self._sizes = tuple(checked)
        self.output_size = (self._sizes if isinstance(output_size, (tuple, list))
                            else self._sizes[0])

    def forward(self, x):
        _check_input("AdaptiveAvgPool2d", x, ndim=4)
        N, C, H, W = x.shape
        OH = H if self._sizes[0] is None else self._sizes[0]
        OW = W if self._sizes[1] is None else self._sizes[1]
        if H == 0 or W == 0:
            raise ValueError(f"AdaptiveAvgPool2d: input of shape {x.shape} has an empty plane")
        ph, pw = _bin_matrix(H, OH, x.dtype), _bin_matrix(W, OW, x.dtype)
        t = (x.reshape(-1, W) @ pw.T).reshape(N * C, H, OW)   # columns first
        out = np.tensordot(ph, t, axes=([1], [1]))            # (OH, N*C, OW)
        out = np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(N, C, OH, OW)
        self._mats = (x.shape, ph, pw) if is_grad_enabled() else None
        return out

    def backward(self, grad_output):
        shape, ph, pw = self._saved("_mats")
        N, C, H, W = shape
        OH, OW = ph.shape[0], pw.shape[0]
        g = _check_grad("AdaptiveAvgPool2d", grad_output, (N, C, OH, OW))
        if not self._needs_input_grad():
            return None
        g = g.astype(ph.dtype, copy=False)
        t = (g.reshape(-1, OW) @ pw).reshape(N * C, OH, W)
        gx = np.tensordot(ph.T, t, axes=([1], [1]))           # (H, N*C, W)
        return np.ascontiguousarray(gx.transpose(1, 0, 2)).reshape(N, C, H, W)

    def extra_repr(self):
        return f"output_size={self.output_size}"
