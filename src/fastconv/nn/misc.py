"""Sigmoid, Softmax and Dropout, plus the input checks the NumPy-only layers share."""
import numbers
import warnings

import numpy as np

from .. import _ops
from .._runtime import get_num_threads
from .module import Module, is_grad_enabled

__all__ = ["Sigmoid", "Softmax", "Dropout"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# -- checks shared by the layers written in NumPy (batchnorm, avgpool, loss) ------------
def _float_dtype(fn, dtype):
    """``dtype`` as a numpy dtype, float32 or float64, else TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in _FLOATS:
        raise TypeError(f"{fn}: dtype must be float32 or float64, got {dtype!r}")
    return dt


def _check_input(fn, x, ndim=None, name="input"):
    """``x`` itself when it is a float32/float64 ndarray of ``ndim`` dimensions."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in _FLOATS:
        raise TypeError(f"{fn}: {name} must be float32 or float64, got dtype {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        what = " (N, C, H, W)" if ndim == 4 else ""
        raise ValueError(f"{fn}: {name} must be {ndim}-D{what}, got shape {x.shape}")
    return x


def _check_grad(fn, grad_output, shape):
    """``grad_output`` as an array of the forward output's shape, else ValueError."""
    g = np.asarray(grad_output)
    if g.shape != tuple(shape):
        raise ValueError(f"{fn}.backward: grad_output has shape {g.shape}, expected {tuple(shape)} "
                         "(the shape of the forward output)")
    return g


def _real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


# -- layers ----------------------------------------------------------------------------
class Sigmoid(Module):
    r"""Logistic sigmoid :math:`1 / (1 + e^{-x})` elementwise, as ``torch.nn.Sigmoid``
    (https://pytorch.org/docs/stable/generated/torch.nn.Sigmoid.html).

    Computed as ``1 / (1 + exp(-x))``, which keeps its relative accuracy for very
    negative x (``exp`` overflowing to inf gives the limit 0, silently); NaN stays NaN.
    The forward pass keeps its output ``y``; backward returns ``grad * y * (1 - y)``.

    Shape
    -----
    Input any shape (float32 or float64), output the same shape and dtype.
    """

    def forward(self, x):
        _check_input("Sigmoid", x)
        out = np.negative(x, out=np.empty_like(x))  # (0-d input stays an array)
        with np.errstate(over="ignore"):    # exp(-x) = inf for x << 0 gives 1/inf = 0
            np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)         # 1 / (1 + exp(-x)), PyTorch's formula
        self._y = out.copy() if is_grad_enabled() else None
        return out

    def backward(self, grad_output):
        y = self._saved("_y")
        g = _check_grad("Sigmoid", grad_output, y.shape)
        if not self._needs_input_grad():
            return None
        return (g * (y * (1 - y))).astype(y.dtype, copy=False)


class Softmax(Module):
    r"""Softmax along ``dim``, :math:`e^{x_i} / \sum_j e^{x_j}`, as ``torch.nn.Softmax``
    (https://pytorch.org/docs/stable/generated/torch.nn.Softmax.html).

    Parameters
    ----------
    dim : int
        The axis the outputs sum to 1 along (negative counts from the end); for
        logits ``(N, C)`` or images ``(N, C, H, W)`` that is ``dim=1``.

    Notes
    -----
    Pass ``dim``. As in PyTorch, ``dim=None`` is a deprecated implicit choice that
    warns: dimension 0 for 0-, 1- and 3-D input, dimension 1 otherwise.

    Computed stably (the maximum is subtracted first). Backward uses the stored output
    ``y``: ``y * (grad - sum(grad * y, dim))``. To train a classifier, feed the logits
    to :class:`~fastconv.nn.CrossEntropyLoss` instead, which fuses the two.

    Shape
    -----
    Input any shape (float32 or float64), output the same shape and dtype.
    """

    def __init__(self, dim=None):
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer))):
            raise TypeError(f"Softmax: dim must be an int or None, got {dim!r}")
        self.dim = None if dim is None else int(dim)

    def _axis(self, x):
        if self.dim is None:
            axis = 0 if x.ndim in (0, 1, 3) else 1
            warnings.warn("Softmax: implicit dimension choice is deprecated (as in PyTorch); "
                          f"pass dim= explicitly (using dim={axis})", UserWarning, stacklevel=3)
            return axis
        if not -max(x.ndim, 1) <= self.dim < max(x.ndim, 1):
            raise ValueError(f"Softmax: dim={self.dim} is out of range for input of shape "
                             f"{x.shape}")
        return self.dim % max(x.ndim, 1)

    def forward(self, x):
        _check_input("Softmax", x)
        if x.ndim == 0:
            axis = self._axis(x)
            out = np.ones_like(x) if np.isfinite(x) else np.full_like(x, np.nan)
        else:
            axis = self._axis(x)
            z = x - x.max(axis=axis, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=axis, keepdims=True)
            out = z
        self._y, self._axis_used = (out.copy(), axis) if is_grad_enabled() else (None, None)
        return out

    def backward(self, grad_output):
        y = self._saved("_y")
        g = _check_grad("Softmax", grad_output, y.shape)
        if not self._needs_input_grad():
            return None
        if y.ndim == 0:
            return np.zeros_like(y)
        gy = g * y
        return (gy - y * gy.sum(axis=self._axis_used, keepdims=True)).astype(y.dtype, copy=False)

    def extra_repr(self):
        return "" if self.dim is None else f"dim={self.dim}"


class Dropout(Module):
    r"""Inverted dropout, as ``torch.nn.Dropout``
    (https://pytorch.org/docs/stable/generated/torch.nn.Dropout.html).

    In training mode each element is zeroed with probability ``p`` and the survivors
    are scaled by ``1 / (1 - p)``, so the expected output equals the input; in eval
    mode the layer is the identity. The forward pass keeps the scaled mask, and
    backward multiplies the gradient by it.

    Parameters
    ----------
    p : float in [0, 1]
        Probability of zeroing an element (``p = 1`` zeroes everything).
    rng : numpy.random.Generator or int, optional
        Source of the masks (an int seeds a new Generator); the same seed gives the
        same masks, call after call.

    Shape
    -----
    Input any shape (float32 or float64), output the same shape and dtype.

    Notes
    -----
    Each training call takes one 64-bit key from ``rng``; the kernel derives every
    element's 24-bit uniform draw from the key and the element's index, so the mask
    does not depend on the thread count, and the element is kept when the draw is at
    least ``p * 2**24``. PyTorch draws its masks from its own generator, so the two
    libraries' masks differ even with the same seed; the distribution is the same.
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        if not _real(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p (the dropout probability) must be a number between 0 "
                             f"and 1, got {p!r}")
        if rng is not None and not isinstance(rng, (np.random.Generator, int, np.integer)):
            raise TypeError(f"Dropout: rng must be a numpy.random.Generator, an int seed or None, "
                            f"got {type(rng).__name__}")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)

    def forward(self, x):
        _check_input("Dropout", x)
        if not self.training or self.p == 0.0:
            self._mask = 1.0 if is_grad_enabled() else None
            return x.copy()
        if self.p == 1.0:
            mask = np.zeros(x.shape, x.dtype)
            out = x * mask
        else:
            # one draw from the Generator per call keys the mask; the kernel derives each
            # element's draw from the key and the element's index, on any thread count
            key = int(self.rng.integers(0, 2**64, dtype=np.uint64))
            out, mask = _ops.dropout_forward(x, self.p, key, get_num_threads())
        self._mask = mask if is_grad_enabled() else None
        return out

    def backward(self, grad_output):
        mask = self._saved("_mask")
        if not self._needs_input_grad():
            return None
        if isinstance(mask, np.ndarray):
            g = _check_grad("Dropout", grad_output, mask.shape)
            return (g * mask).astype(mask.dtype, copy=False)
        return np.array(grad_output, copy=True)

    def extra_repr(self):
        return "" if self.p == 0.5 else f"p={self.p}"
