"""BatchNorm2d."""
import numpy as np

from .. import _ops
from .._runtime import get_num_threads
from .misc import _check_grad, _check_input, _float_dtype, _real
from .module import Module, Parameter, is_grad_enabled

__all__ = ["BatchNorm2d"]


class BatchNorm2d(Module):
    r"""Batch normalisation over the channels of NCHW images, as ``torch.nn.BatchNorm2d``
    (https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html).

    .. math:: y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \, \gamma + \beta

    per channel, with the mean and variance over ``(N, H, W)``.

    In training mode the layer normalises with the batch's mean and biased variance,
    and (with ``track_running_stats``) updates the running statistics with the batch
    mean and the *unbiased* variance:
    ``running = (1 - momentum) * running + momentum * batch`` and increments
    ``num_batches_tracked``. In eval mode it normalises with the running statistics
    (with the batch's when it tracks none).

    Parameters
    ----------
    num_features : int
        C, the number of channels.
    eps : float
        Added to the variance for stability.
    momentum : float in [0, 1] or None
        Weight of the new batch in the running statistics; None gives the cumulative
        moving average (the factor is ``1 / num_batches_tracked``).
    affine : bool
        Learn a per-channel scale ``weight`` (gamma) and shift ``bias`` (beta).
    track_running_stats : bool
        Keep ``running_mean``, ``running_var`` and ``num_batches_tracked``.
    dtype : numpy dtype, float32 (default) or float64

    Shape
    -----
    Input (N, C, H, W), output (N, C, H, W), of the layer's dtype.

    Attributes
    ----------
    weight : Parameter (C,), ones; None unless ``affine``
    bias : Parameter (C,), zeros; None unless ``affine``
    running_mean : buffer (C,), zeros; None unless ``track_running_stats``
    running_var : buffer (C,), ones; likewise
    num_batches_tracked : buffer, 0-d int64 array, 0; likewise

    Notes
    -----
    Statistics and the per-channel sums of backward are accumulated in float64 over
    the batch (pairwise or vectorised in the input's dtype within each plane), the
    variance in two passes. The forward pass keeps a reference to its input ``x`` (with
    running statistics, only when the weight trains), the mean and ``1/sqrt(var + eps)``,
    and backward forms ``x_hat = (x - mean) / sqrt(var + eps)`` as it reads ``x``, the
    same way each time; so ``x`` must not be changed in place before backward, as for
    Conv2d, Linear and ReLU, which keep their inputs too. Backward is the full
    batch-norm gradient when batch statistics were used, and the per-channel affine map
    ``grad * weight / sqrt(running_var + eps)`` otherwise (eval mode, or a layer pinned
    by :func:`fastconv.nn.freeze_bn`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> bn = nn.BatchNorm2d(8)
    >>> bn(np.ones((4, 8, 5, 5), np.float32)).shape
    (4, 8, 5, 5)
    >>> int(bn.num_batches_tracked)
    1
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, dtype=np.float32):
        super().__init__()
        fn = "BatchNorm2d"
        if (isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer))
                or num_features < 1):
            raise ValueError(f"{fn}: num_features must be a positive int, got {num_features!r}")
        if not _real(eps) or not 0.0 <= eps < np.inf:
            raise ValueError(f"{fn}: eps must be a non-negative number, got {eps!r}")
        if momentum is not None and (not _real(momentum) or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"{fn}: momentum must be None or a number in [0, 1], got "
                             f"{momentum!r}")
        dtype = _float_dtype(fn, dtype)
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self._dtype = dtype
        C = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(C, dtype))
            self.bias = Parameter(np.zeros(C, dtype))
        else:
            self.weight = None
            self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(C, dtype))
            self.register_buffer("running_var", np.ones(C, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        """running_mean = 0, running_var = 1, num_batches_tracked = 0 (in place)."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self):
        """Reset the running statistics, weight = 1 and bias = 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data = np.ones_like(self.weight.data)
            self.bias.data = np.zeros_like(self.bias.data)

    def forward(self, x):
        fn = "BatchNorm2d"
        _check_input(fn, x, ndim=4)
        C = self.num_features
        if x.shape[1] != C:
            raise ValueError(f"{fn}: input has {x.shape[1]} channels (shape {x.shape}), "
                             f"expected num_features={C}")
        if x.dtype != self._dtype:
            raise TypeError(f"{fn}: input dtype {x.dtype} does not match the layer's dtype "
                            f"{self._dtype}")
        dt = x.dtype
        x = np.ascontiguousarray(x)
        nt = get_num_threads()
        batch_stats = self.training or self.running_mean is None or self.running_var is None
        keep = is_grad_enabled()
        w = self.weight.data.astype(np.float64) if self.affine else None
        b = self.bias.data.astype(np.float64) if self.affine else None
        if batch_stats:
            m = x.size // C
            if self.training and m <= 1:
                raise ValueError(f"{fn}: expected more than 1 value per channel when training, "
                                 f"got input of shape {x.shape}")
            # biased variance, two passes in double; each channel normalised right after
            out, mean, var, invstd = _ops.batchnorm2d_forward(x, w, b, self.eps, nt)
            if self.training and self.track_running_stats and self.running_mean is not None:
                self._update_running_stats(mean, var, m)
            want_xhat = keep
        else:
            # Running statistics: one affine map per channel. x_hat is needed only for
            # the weight's gradient (not for a frozen layer, e.g. under freeze_bn).
            mean, var = self.running_mean.astype(np.float64), self.running_var.astype(np.float64)
            want_xhat = keep and self.affine and self.weight.requires_grad
            invstd = 1.0 / np.sqrt(var + self.eps)
            scale = invstd * (w if self.affine else 1.0)
            shift = b if self.affine else np.zeros(C)
            out = _ops.batchnorm2d_apply(x, mean, scale, shift, nt)
        # backward forms x_hat = (x - mean) * invstd from x as it reads it: keeping x
        # costs no pass over memory, where writing x_hat out here would cost one
        self._cache = ((x if want_xhat else None), mean, invstd, batch_stats, x.shape) \
            if keep else None
        return out

    def _update_running_stats(self, mean, var, m):
        """PyTorch's update: the unbiased variance; momentum None averages cumulatively."""
        if self.num_batches_tracked is not None:
            self.num_batches_tracked += 1
        if self.momentum is None:  # cumulative moving average
            factor = 1.0 / float(self.num_batches_tracked if self.num_batches_tracked is not None
                                 else 1)
        else:
            factor = self.momentum
        unbiased = var * (m / (m - 1))
        self.running_mean[...] = (1 - factor) * self.running_mean + factor * mean
        self.running_var[...] = (1 - factor) * self.running_var + factor * unbiased

    def backward(self, grad_output):
        x, mean, invstd, batch_stats, shape = self._saved("_cache")
        g = _check_grad("BatchNorm2d", grad_output, shape)
        dt = self._dtype
        need_w = self.affine and self.weight.requires_grad
        need_b = self.affine and self.bias.requires_grad
        need_x = self._needs_input_grad()
        if need_w and x is None:
            raise RuntimeError("BatchNorm2d.backward: weight.requires_grad was turned on after "
                               "the forward pass; run forward again")
        g = np.ascontiguousarray(g)
        nt = get_num_threads()
        scale = invstd * (self.weight.data.astype(np.float64) if self.affine else 1.0)
        gx = None
        if need_x and batch_stats:
            # dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat)), per channel; both
            # passes over a channel run together, while its data is in cache
            gx, gsum, gxsum = _ops.batchnorm2d_backward(g, x, mean, invstd, scale, nt)
        else:
            gsum, gxsum = _ops.batchnorm2d_backward_reduce(g, x, mean, invstd, need_b, need_w,
                                                           nt)
            if need_x:  # running statistics: the per-channel affine map
                gx = _ops.batchnorm2d_backward_apply(g, None, None, None, scale, scale,
                                                     np.zeros_like(scale), nt)
        if need_w:
            self.weight.accumulate_grad(gxsum.astype(dt))   # dL/dweight = sum g * xhat
        if need_b:
            self.bias.accumulate_grad(gsum.astype(dt))      # dL/dbias = sum g
        return gx

    def extra_repr(self):
        s = f"{self.num_features}"
        if self.eps != 1e-5:
            s += f", eps={self.eps}"
        if self.momentum != 0.1:
            s += f", momentum={self.momentum}"
        if not self.affine:
            s += ", affine=False"
        if not self.track_running_stats:
            s += ", track_running_stats=False"
        return s
