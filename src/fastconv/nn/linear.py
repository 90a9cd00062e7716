"""Linear and Flatten."""
import math

import numpy as np

from .. import functional as F
from .module import Module, Parameter, is_grad_enabled

__all__ = ["Linear", "Flatten"]


class Linear(Module):
    """Fully connected layer ``x @ weight.T + bias``, as ``torch.nn.Linear``
    (https://pytorch.org/docs/stable/generated/torch.nn.Linear.html).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : numpy dtype, float32 (default) or float64
    rng : numpy.random.Generator, optional

    Shape
    -----
    Input (*, in_features), output (*, out_features).

    Attributes
    ----------
    weight : Parameter (out_features, in_features), U(-1/sqrt(in), 1/sqrt(in))
    bias : Parameter (out_features,) or None, same distribution
    """

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Linear: {name} must be a positive int, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = np.dtype(dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        """PyTorch's default: weight and bias U(-1/sqrt(in_features), 1/sqrt(in_features))."""
        rng = np.random.default_rng() if rng is None else rng
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight.data = rng.uniform(-bound, bound, self.weight.shape).astype(self.weight.dtype)
        if self.bias is not None:
            self.bias.data = rng.uniform(-bound, bound, self.bias.shape).astype(self.bias.dtype)

    def forward(self, x):
        if np.ndim(x) < 1 or np.shape(x)[-1] != self.in_features:
            raise ValueError(f"Linear: the input's last dimension must be in_features="
                             f"{self.in_features}, got shape {np.shape(x)}")
        lead = np.shape(x)[:-1]
        x2 = x.reshape(-1, self.in_features) if np.ndim(x) != 2 else x
        out = F.linear(x2, self.weight.data, None if self.bias is None else self.bias.data)
        self._x = x2 if is_grad_enabled() else None
        return out.reshape(lead + (self.out_features,))

    def backward(self, grad_output):
        x = self._saved("_x")
        needs = self._weight_bias_needs()
        if not any(needs):
            return None
        lead = grad_output.shape[:-1]
        gx, gw, gb = F.linear_backward(grad_output.reshape(-1, self.out_features), x,
                                       self.weight.data, needs=needs)
        self._add_weight_bias_grads(gw, gb)
        return None if gx is None else gx.reshape(lead + (self.in_features,))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}"
                + ("" if self.bias is not None else ", bias=False"))


class Flatten(Module):
    """Flattens dimensions ``start_dim..end_dim`` into one, as ``torch.nn.Flatten``."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        shape = x.shape
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        self._shape = shape if is_grad_enabled() else None
        return x.reshape(shape[:start] + (-1,) + shape[end + 1:])

    def backward(self, grad_output):
        if not self._needs_input_grad():
            return None
        return grad_output.reshape(self._saved("_shape"))

    def extra_repr(self):
        return "" if (self.start_dim, self.end_dim) == (1, -1) else \
            f"start_dim={self.start_dim}, end_dim={self.end_dim}"
