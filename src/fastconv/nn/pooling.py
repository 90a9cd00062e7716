"""Pooling layers: MaxPool2d (AvgPool2d and AdaptiveAvgPool2d live beside it)."""
from .. import _ops
from .. import functional as F
from .._runtime import get_num_threads
from ..functional import _pair
from .module import Module, is_grad_enabled

__all__ = ["MaxPool2d"]


class MaxPool2d(Module):
    """2-D max pooling, as ``torch.nn.MaxPool2d``
    (https://pytorch.org/docs/stable/generated/torch.nn.MaxPool2d.html).

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional (defaults to kernel_size)
    padding : int or (int, int), at most half the kernel (counts as -inf)
    dilation : int or (int, int)
    ceil_mode : bool

    Shape
    -----
    Input (N, C, H, W), output (N, C, OH, OW),
    ``OH = floor_or_ceil((H + 2*PH - DH*(KH-1) - 1) / SH) + 1``.
    The forward pass keeps the argmax indices; backward scatters through them.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        fn = "MaxPool2d"
        self.kernel_size = _pair(fn, "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(fn, "stride", stride)
        self.padding = _pair(fn, "padding", padding)
        self.dilation = _pair(fn, "dilation", dilation)
        self.ceil_mode = bool(ceil_mode)
        if min(self.kernel_size + self.stride + self.dilation) < 1:
            raise ValueError(f"{fn}: kernel_size, stride and dilation must be positive, got "
                             f"{self.kernel_size}, {self.stride}, {self.dilation}")
        if any(p < 0 or 2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{fn}: padding must be between 0 and half the kernel size "
                             f"{self.kernel_size}, got {self.padding}")

    def forward(self, x):
        if not is_grad_enabled():
            self._idx = self._shape = None
            return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                self.ceil_mode)
        # The indices never leave the layer, so one array serves every step.
        out, self._idx = _ops.max_pool2d_forward(
            x, *F._pool_args("MaxPool2d", self.kernel_size, self.stride, self.padding,
                             self.dilation), self.ceil_mode, True, get_num_threads(),
            indices_out=self.__dict__.get("_idx_buffer"))
        self._idx_buffer = self._idx
        self._shape = x.shape
        return out

    def backward(self, grad_output):
        idx = self._saved("_idx")
        if not self._needs_input_grad():
            return None
        return F.max_pool2d_backward(grad_output, idx, self._shape)

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}"
        if self.stride != self.kernel_size:
            s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        return s
