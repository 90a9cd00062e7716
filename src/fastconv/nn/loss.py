"""Losses: CrossEntropyLoss, BCEWithLogitsLoss and MSELoss.

A loss is a Module called with two arrays, ``loss(input, target)``; ``forward``
returns a Python float and keeps what ``backward`` needs, and ``backward()`` returns
the gradient of the loss with respect to ``input`` (the logits), ready for
``model.backward``. Everything is computed in float64; the gradient comes back in the
input's dtype.
"""
import numpy as np

from .misc import _check_input, _real
from .module import Module, is_grad_enabled

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss"]

_REDUCTIONS = ("mean", "sum")


def _optional_weight(fn, name, weight, ndim=None):
    """``weight`` as a float64 array (or None), with a clear error for bad values."""
    if weight is None:
        return None
    try:
        w = np.array(weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {name} must be an array of numbers or None, got "
                        f"{type(weight).__name__}") from None
    if ndim is not None and w.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got shape {w.shape}")
    return w


def _numeric_target(fn, target, shape):
    """A real-valued target of exactly ``shape``, as float64."""
    t = np.asarray(target)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: target must be a numeric array, got dtype {t.dtype}")
    if t.shape != tuple(shape):
        raise ValueError(f"{fn}: target has shape {t.shape}, expected the input's shape "
                         f"{tuple(shape)}")
    return t.astype(np.float64)


class _Loss(Module):
    """Common part: ``reduction`` and the two-argument call."""

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean' or 'sum', got "
                             f"{reduction!r} (forward returns one number, so 'none' is not "
                             "supported)")
        self.reduction = reduction

    def __call__(self, input, target):
        return self.forward(input, target)

    def forward(self, input, target):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, grad_output=1.0):
        """d loss / d input for the last forward, times ``grad_output`` (a number)."""
        grad, dtype = self._saved("_grad")
        if not _real(grad_output):
            raise TypeError(f"{type(self).__name__}.backward: grad_output must be a number "
                            f"(the loss is a scalar), got {type(grad_output).__name__}")
        return (grad * grad_output).astype(dtype)

    def _keep(self, grad, dtype):
        self._grad = (grad, dtype) if is_grad_enabled() else None

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    r"""Softmax cross-entropy of logits against class indices, as
    ``torch.nn.CrossEntropyLoss``
    (https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html).

    .. math:: \ell_n = -w_{y_n} \log \frac{e^{x_{n,y_n}}}{\sum_c e^{x_{n,c}}}

    With label smoothing :math:`\varepsilon` the target is
    :math:`(1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon/C`, each term weighted as
    PyTorch does. ``'mean'`` divides by the summed weights of the non-ignored samples
    (by their number without ``weight``), ``'sum'`` by nothing.

    Parameters
    ----------
    weight : array of C numbers, optional
        A weight per class (a buffer named ``weight``, as in PyTorch).
    ignore_index : int
        Samples with this target contribute nothing (and get a zero gradient).
    reduction : {'mean', 'sum'}
    label_smoothing : float in [0, 1]

    Shape
    -----
    input: logits (N, C), float32 or float64. target: (N,) integer class indices in
    ``[0, C)`` (or ``ignore_index``). Output: a Python float.

    Notes
    -----
    Stable: the log-sum-exp subtracts each row's maximum. Softmax and cross-entropy are
    fused: forward keeps the gradient ``(softmax(x) - target) * scale`` (llm.c's
    ``crossentropy_softmax_backward``), and ``backward()`` returns it.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> loss = nn.CrossEntropyLoss()
    >>> round(loss(np.zeros((2, 4), np.float32), np.array([0, 3])), 6)  # log(4)
    1.386294
    >>> loss.backward().shape
    (2, 4)
    """

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(reduction)
        fn = "CrossEntropyLoss"
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"{fn}: ignore_index must be an int, got {ignore_index!r}")
        if not _real(label_smoothing) or not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"{fn}: label_smoothing must be a number between 0.0 and 1.0, got "
                             f"{label_smoothing!r}")
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weight", _optional_weight(fn, "weight", weight, ndim=1))

    def forward(self, input, target):
        fn = "CrossEntropyLoss"
        x = _check_input(fn, input, ndim=2, name="input (logits (N, C))")
        N, C = x.shape
        t = np.asarray(target)
        if t.dtype.kind not in "iu":
            raise TypeError(f"{fn}: target must hold integer class indices (e.g. int64), got "
                            f"dtype {t.dtype}")
        if t.shape != (N,):
            raise ValueError(f"{fn}: target must have shape ({N},) (one class index per row "
                             f"of the logits {x.shape}), got {t.shape}")
        valid = t != self.ignore_index
        bad = valid & ((t < 0) | (t >= C))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{fn}: target[{i}] = {int(t[i])} is out of range for {C} classes "
                             f"(expected 0 <= target < {C}"
                             f" or ignore_index={self.ignore_index})")
        w = np.ones(C) if self.weight is None else self.weight
        if w.shape != (C,):
            raise ValueError(f"{fn}: weight has shape {w.shape}, expected ({C},) for logits "
                             f"{x.shape}")
        z = x.astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        rows, tc = np.arange(N), np.where(valid, t, 0).astype(np.intp)
        wy = w[tc] * valid                                  # each sample's weight, 0 if ignored
        eps = self.label_smoothing
        nll = -(wy * logp[rows, tc]).sum()
        smooth = -((logp * w).sum(axis=1) * valid).sum()
        denom = wy.sum() if self.reduction == "mean" else 1.0
        with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: NaN, as PyTorch
            loss = ((1 - eps) * nll + (eps / C) * smooth) / denom
        if is_grad_enabled():
            p = np.exp(logp)
            grad = (1 - eps) * wy[:, None] * p
            grad[rows, tc] -= (1 - eps) * wy
            if eps:
                grad += (eps / C) * valid[:, None] * (p * w.sum() - w)
            with np.errstate(invalid="ignore", divide="ignore"):
                grad /= denom
            self._keep(grad, x.dtype)
        else:
            self._keep(None, None)
        return float(loss)

    def extra_repr(self):
        parts = []
        if self.weight is not None:
            parts.append("weight=...")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.reduction != "mean":
            parts.append(f"reduction={self.reduction!r}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


class BCEWithLogitsLoss(_Loss):
    r"""Sigmoid and binary cross-entropy in one, for multi-label targets, as
    ``torch.nn.BCEWithLogitsLoss``
    (https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html).

    .. math:: \ell = -w \left[ p\, t \log \sigma(x) + (1 - t) \log (1 - \sigma(x)) \right]

    computed stably as ``(1 - t) x + (1 + (p - 1) t) softplus(-x)``.

    Parameters
    ----------
    weight : array, optional
        Rescales each element's loss; broadcast to the input's shape.
    reduction : {'mean', 'sum'}
        ``'mean'`` divides by the number of elements.
    pos_weight : array, optional
        Weight ``p`` of the positive term, per class (broadcast along the last axis).

    Shape
    -----
    input: logits of any shape, float32 or float64. target: the same shape, numbers in
    [0, 1] (0/1 labels or soft targets). Output: a Python float.

    Notes
    -----
    The forward pass keeps the gradient ``w * (sigma(x) (1 + (p - 1) t) - p t)``
    (divided by the element count for ``'mean'``), which ``backward()`` returns.
    """

    def __init__(self, weight=None, *, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        fn = "BCEWithLogitsLoss"
        self.register_buffer("weight", _optional_weight(fn, "weight", weight))
        self.register_buffer("pos_weight", _optional_weight(fn, "pos_weight", pos_weight))

    def forward(self, input, target):
        fn = "BCEWithLogitsLoss"
        x = _check_input(fn, input, name="input (logits)")
        t = _numeric_target(fn, target, x.shape)
        z = x.astype(np.float64)
        for name, arr in (("weight", self.weight), ("pos_weight", self.pos_weight)):
            if arr is not None:
                try:
                    np.broadcast_shapes(arr.shape, x.shape)
                except ValueError:
                    raise ValueError(f"{fn}: {name} of shape {arr.shape} does not broadcast to "
                                     f"the input's shape {x.shape}") from None
                if np.broadcast_shapes(arr.shape, x.shape) != x.shape:
                    raise ValueError(f"{fn}: {name} of shape {arr.shape} broadcasts beyond the "
                                     f"input's shape {x.shape}")
        softplus_neg = np.logaddexp(0.0, -z)                 # -log sigmoid(z), stable
        if self.pos_weight is None:
            loss = (1 - t) * z + softplus_neg
            grad = np.exp(-softplus_neg) - t                 # sigmoid(z) - t
        else:
            lw = 1 + (self.pos_weight - 1) * t
            loss = (1 - t) * z + lw * softplus_neg
            grad = np.exp(-softplus_neg) * lw - self.pos_weight * t
        if self.weight is not None:
            loss = loss * self.weight
            grad = grad * self.weight
        total = loss.sum()
        if self.reduction == "mean":
            total = total / x.size if x.size else np.nan
            grad = grad / max(x.size, 1)
        self._keep(np.broadcast_to(grad, x.shape), x.dtype)
        return float(total)

    def extra_repr(self):
        parts = []
        if self.weight is not None:
            parts.append("weight=...")
        if self.reduction != "mean":
            parts.append(f"reduction={self.reduction!r}")
        if self.pos_weight is not None:
            parts.append("pos_weight=...")
        return ", ".join(parts)


class MSELoss(_Loss):
    r"""Mean squared error, as ``torch.nn.MSELoss``
    (https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html):
    :math:`\sum (x - t)^2`, divided by the element count for ``'mean'``.

    Parameters
    ----------
    reduction : {'mean', 'sum'}

    Shape
    -----
    input: any shape, float32 or float64. target: the same shape (no broadcasting).
    Output: a Python float.

    Notes
    -----
    The forward pass keeps the gradient ``2 (x - t)`` (divided by the element count for
    ``'mean'``), which ``backward()`` returns.
    """

    def forward(self, input, target):
        fn = "MSELoss"
        x = _check_input(fn, input)
        t = _numeric_target(fn, target, x.shape)
        d = x.astype(np.float64) - t
        total = np.dot(d.ravel(), d.ravel())
        n = x.size
        if self.reduction == "mean":
            total = total / n if n else np.nan
        if is_grad_enabled():
            grad = 2 * d
            if self.reduction == "mean" and n:
                grad /= n
            self._keep(grad, x.dtype)
        else:
            self._keep(None, None)
        return float(total)
