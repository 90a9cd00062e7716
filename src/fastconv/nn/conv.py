"""Conv2d."""
import math

import numpy as np

from .. import functional as F
from ..functional import _pair
from .module import Module, Parameter, is_grad_enabled

__all__ = ["Conv2d"]


def _uniform(rng, bound, shape, dtype):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Conv2d(Module):
    r"""2-D convolution layer, as ``torch.nn.Conv2d``
    (https://pytorch.org/docs/stable/generated/torch.nn.Conv2d.html).

    .. math:: out[n, oc] = bias[oc] + \sum_{c} weight[oc, c] \star x[n, g \cdot C/G + c]

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride, padding, dilation : int or (int, int); padding also 'valid' or 'same'
    groups : int
        Divides both channel counts; ``groups == in_channels`` is depthwise.
    bias : bool
    algo : {'auto', 'im2col', 'direct'}
        Passed to :func:`fastconv.conv2d` and :func:`fastconv.conv2d_backward`.
    dtype : numpy dtype, float32 (default) or float64
    rng : numpy.random.Generator, optional
        For a reproducible initialisation.

    Shape
    -----
    Input (N, C, H, W), output (N, OC, OH, OW) with
    ``OH = floor((H + 2*PH - DH*(KH-1) - 1) / SH) + 1``.

    Attributes
    ----------
    weight : Parameter (OC, C/groups, KH, KW), U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
        fan_in = C/groups * KH * KW (PyTorch's default)
    bias : Parameter (OC,) or None, same distribution

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> conv = nn.Conv2d(1, 32, 3, padding=1)
    >>> conv(np.zeros((8, 1, 28, 28), np.float32)).shape
    (8, 32, 28, 28)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, algo="auto", dtype=np.float32, rng=None):
        super().__init__()
        fn = "Conv2d"
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{fn}: {name} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{fn}: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(fn, "kernel_size", kernel_size)
        if min(self.kernel_size) < 1:
            raise ValueError(f"{fn}: kernel_size must be positive, got {kernel_size!r}")
        self.stride = _pair(fn, "stride", stride)
        self.padding = padding if isinstance(padding, str) else _pair(fn, "padding", padding)
        self.dilation = _pair(fn, "dilation", dilation)
        if min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(f"{fn}: stride and dilation must be positive, got stride="
                             f"{self.stride}, dilation={self.dilation}")
        if isinstance(self.padding, str):
            if self.padding not in ("valid", "same"):
                raise ValueError(f"{fn}: padding must be 'valid', 'same', an int or a pair, "
                                 f"got {padding!r}")
            if self.padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{fn}: padding='same' needs stride 1, got {self.stride}")
        elif min(self.padding) < 0:
            raise ValueError(f"{fn}: padding must be non-negative, got {self.padding}")
        self.groups = int(groups)
        self.algo = algo
        dtype = np.dtype(dtype)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        """PyTorch's default: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        rng = np.random.default_rng() if rng is None else rng
        fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        self.weight.data = _uniform(rng, bound, self.weight.shape, self.weight.dtype)
        if self.bias is not None:
            self.bias.data = _uniform(rng, bound, self.bias.shape, self.bias.dtype)

    def _kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, algo=self.algo)

    def forward(self, x):
        out = F.conv2d(x, self.weight.data, None if self.bias is None else self.bias.data,
                       **self._kwargs())
        self._x = x if is_grad_enabled() else None
        return out

    def backward(self, grad_output):
        x = self._saved("_x")
        needs = self._weight_bias_needs()
        if not any(needs):
            return None
        gx, gw, gb = F.conv2d_backward(grad_output, x, self.weight.data, **self._kwargs(),
                                       needs=needs)
        self._add_weight_bias_grads(gw, gb)
        return gx

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            s += f", stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) \
                else f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
