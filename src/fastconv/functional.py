"""Stateless NumPy-in, NumPy-out operators, mirroring ``torch.nn.functional``.

This layer turns int-or-pair arguments into pairs, resolves ``padding='same'``
and ``algo='auto'``, and reads the thread count; ``fastconv._ops`` checks the
arrays and calls the C kernels with the GIL released.
"""
import functools
import operator

from . import _ops
from ._runtime import get_num_threads

__all__ = ["conv2d", "conv2d_algo", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "relu",
           "relu_backward", "linear", "linear_backward"]

_ALGOS = ("auto", "direct", "im2col")
# The kernels behind the names; "winograd" is an algorithm of "auto" only.
_ALGO_CODES = {"im2col": 0, "direct": 1, "winograd": 2}


def _pair(fn, name, value):
    """An int or a pair of ints as a tuple of two Python ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{fn}: {name} must be an int or a pair of ints, "
                             f"got {value!r} of length {len(value)}")
        return (_int(fn, name, value[0], value, "an int or a pair of ints"),
                _int(fn, name, value[1], value, "an int or a pair of ints"))
    v = _int(fn, name, value, value, "an int or a pair of ints")
    return (v, v)


def _int(fn, name, v, whole, expected="an int"):
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise TypeError(f"{fn}: {name} must be {expected}, got {whole!r}")
    return operator.index(v)


def _conv_padding(fn, padding, weight, dilation):
    """(top/left padding pair, same) for an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), False
        if padding == "same":
            shape = getattr(weight, "shape", ())
            kh, kw = shape[2:] if len(shape) == 4 else (1, 1)  # a bad weight fails in _ops
            # Total padding d*(k-1) per dimension; an odd remainder goes to the bottom/right,
            # as in PyTorch.
            return (dilation[0] * (kh - 1) // 2, dilation[1] * (kw - 1) // 2), True
        raise ValueError(f"{fn}: padding must be 'valid', 'same', an int or a pair of ints, "
                         f"got {padding!r}")
    return _pair(fn, "padding", padding), False


def conv2d_algo(weight_shape, stride=1, padding=0, dilation=1, groups=1, grad="forward"):
    """The algorithm ``algo='auto'`` runs for a convolution: 'im2col', 'direct' or
    'winograd' (Winograd F(2x2, 3x3), which auto runs on 3x3 stride-1 layers with 16 or
    more channels per group, and F(4x4, 4x4) on the polyphase form of 7x7 and 8x8
    stride-2 kernels, such as ResNet's first layer; it is not a value of ``algo``).

    Parameters
    ----------
    weight_shape : (OC, C/groups, KH, KW)
    stride, padding, dilation, groups
        As in :func:`conv2d`.
    grad : {'forward', 'input', 'weight'}
        The forward pass, the input gradient or the weight (and bias) gradient;
        auto decides for each separately (see the model in ``_choose_algo``).
    """
    if grad not in ("forward", "input", "weight"):
        raise ValueError(f"conv2d_algo: grad must be 'forward', 'input' or 'weight', got {grad!r}")
    shape = tuple(weight_shape)
    if len(shape) != 4:
        raise ValueError(f"conv2d_algo: weight_shape must be (OC, C/groups, KH, KW), got {shape}")
    weight = _Shape(shape)
    dil = _pair("conv2d_algo", "dilation", dilation)
    pad, _ = _conv_padding("conv2d_algo", padding, weight, dil)
    return _choose_algo(weight, _int("conv2d_algo", "groups", groups, groups), pad, dil, grad,
                        _pair("conv2d_algo", "stride", stride))


class _Shape:
    """Stands in for a weight array where only its shape matters."""

    def __init__(self, shape):
        self.shape = shape


def _choose_algo(weight, groups, padding, dilation, grad="forward", stride=(1, 1)):
    """'winograd', 'direct' or 'im2col' for algo='auto'.

    A model of the kernels, measured on the named layers of fastconv.shapes and on
    grids of channel counts (AVX-512 and AVX2, one thread):
    - forward and input gradient of 3x3 kernels with stride 1 and dilation 1 and at
      least 16 input and 16 output channels per group: Winograd F(2x2, 3x3), 2.25
      times fewer multiplies (0.5-0.8 of im2col's time from 16 channels up; below
      that its transforms cost more than the multiplies it saves);
    - forward of kernels that split by stride into 4x4 phases (7x7 or 8x8 at stride 2,
      4x4 at stride 1; dilation 1) with at least 12 polyphase channels per group
      (C/groups * SH * SW: 3 input channels at stride 2) and 16 output channels per
      group: Winograd F(4x4, 4x4) on the polyphase form, 36.75 multiplies per output
      and input channel of a 7x7 stride-2 kernel instead of 147 (0.45-0.85 of the time
      of the faster of direct and im2col in float32, 0.5-0.95 in float64; with fewer
      channels its 49 short GEMMs cost about as much as direct);
    - forward and input gradient: direct on depthwise convolutions (one input channel
      per group, where im2col + GEMM degenerates to tiny products);
    - forward also direct when the reduction C/groups*KH*KW is at most 160 and the
      kernel is not 1x1 (first layers: fmnist_c1, 9; r18_conv1, 147): a GEMM with so
      short a K is dominated by packing and by C/K write traffic, while the direct
      kernel stays near its FMA peak (1.1-2x faster over C <= 16, K 3..7, strides 1-2);
      the input gradient of such layers stays im2col (its direct form has C/groups
      output channels, too few to fill the register tile, and strides spread zeros),
      but for one input channel at stride 1 (a grayscale first layer), where direct
      takes half of im2col's time (measured 0.49x on fmnist_c1; 1.1-1.9x for 2-4
      channels);
    - im2col + GEMM everywhere else;
    - weight gradient: Winograd (16 GEMMs over the tiles) for the Winograd-shaped
      layers with at least 32 input and 32 output channels per group and 64 of one of
      them (0.6-0.87 of direct's CPU time; 1.0 at 32 x 32, worse below, where its
      transforms cost more than they save);
      direct (vectors over output channels, no im2col) for other kernels larger than
      1x1, im2col + GEMM for 1x1 kernels, where no im2col is needed.
    The direct and Winograd kernels work on padded copies of their input, so a
    padding wider than the dilated kernel always goes to im2col, which never
    materialises the padding.
    """
    shape = getattr(weight, "shape", ())
    if len(shape) != 4:
        return "im2col"  # _ops reports the bad weight
    oc, cg, kh, kw = shape
    if padding[0] > dilation[0] * (kh - 1) or padding[1] > dilation[1] * (kw - 1):
        return "im2col"
    winograd = (kh, kw) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
    ocg = oc // max(groups, 1)
    if grad == "weight":
        if winograd and min(cg, ocg) >= 32 and cg * ocg >= 2048:
            return "winograd"
        return "im2col" if kh * kw == 1 else "direct"
    if winograd and cg >= 16 and ocg >= 16:
        return "winograd"
    if grad == "forward" and _polyphase_4x4(kh, kw, stride, dilation) \
            and cg * stride[0] * stride[1] >= 12 and ocg >= 16:
        return "winograd"
    if grad == "forward" and kh * kw > 1 and cg * kh * kw <= 160:
        return "direct"
    if grad == "input" and cg == 1 and tuple(stride) == (1, 1) and kh * kw > 1:
        return "direct"
    return "direct" if cg == 1 and groups > 1 else "im2col"


def _polyphase_4x4(kh, kw, stride, dilation):
    """Whether the kernel splits by its stride (1 or 2) into 4x4 phase kernels: the
    geometries of the C kernel's Winograd F(4x4, 4x4)."""
    sh, sw = stride
    return (tuple(dilation) == (1, 1) and sh in (1, 2) and sw in (1, 2)
            and -(-kh // sh) == 4 and -(-kw // sw) == 4)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto",
           out=None):
    r"""2-D convolution (cross-correlation) over a batch of images.

    Matches :func:`torch.nn.functional.conv2d`
    (https://pytorch.org/docs/stable/generated/torch.nn.functional.conv2d.html).

    .. math::
        out[n, oc, oh, ow] = bias[oc] + \sum_{c, i, j} weight[oc, c, i, j]
            \, x[n, g \cdot C/G + c, oh \cdot SH - PH + i \cdot DH, ow \cdot SW - PW + j \cdot DW]

    Parameters
    ----------
    x : ndarray, float32 or float64, shape (N, C, H, W)
        Input. Non-contiguous arrays are copied once; x is never modified.
    weight : ndarray, same dtype, shape (OC, C/groups, KH, KW)
    bias : ndarray, same dtype, shape (OC,), optional
    stride, dilation : int or (int, int), positive
    padding : int, (int, int), 'valid' or 'same'
        Zero padding on both sides. 'same' keeps the input size (stride 1 only); an
        odd total padding puts the extra row/column at the bottom/right.
    groups : int
        Splits input and output channels into groups; ``groups == C`` is depthwise.
    algo : {'auto', 'direct', 'im2col'}
        'im2col': per-tile im2col + packed GEMM. 'direct': no im2col buffer.
        'auto' picks the faster for the shape (and runs Winograd F(2x2, 3x3) on 3x3
        stride-1 layers with 16 or more channels per group, F(4x4, 4x4) on 7x7
        stride-2 first layers; see :func:`conv2d_algo`).
        All give the same result to rounding.
    out : ndarray, optional
        Where to write the result: C-contiguous, writeable, of the output's shape and
        x's dtype, sharing no memory with the inputs (as NumPy's ``out=``). Reusing one
        output array across calls saves allocating (and page-faulting) a fresh one.
        It is checked before anything is written; it is returned.

    Returns
    -------
    out : ndarray, shape (N, OC, OH, OW), dtype of x

    Shape
    -----
    ``OH = floor((H + 2*PH - DH*(KH-1) - 1) / SH) + 1``, likewise OW.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.zeros((1, 1, 5, 5), np.float32); x[0, 0, 2:] = 1
    >>> edge = np.array([[[[-1, -1, -1], [0, 0, 0], [1, 1, 1]]]], np.float32)
    >>> fastconv.conv2d(x, edge)[0, 0]
    array([[3., 3., 3.],
           [3., 3., 3.],
           [0., 0., 0.]], dtype=float32)
    """
    stride, pad, dilation, groups, same, code = _conv_args(
        "conv2d", weight, stride, padding, dilation, groups, algo)
    return _ops.conv2d_forward(x, weight, bias, stride, pad, dilation, groups, same, code,
                               get_num_threads(), out)


def _plain(v):
    """An int, str, or tuple of ints of exactly those types (so that equal keys mean
    equal arguments: True == 1 and 1.0 == 1, but they are not valid the same way)."""
    t = type(v)
    return t is int or t is str or (t is tuple and all(type(e) is int for e in v))


@functools.lru_cache(maxsize=512)
def _conv_args_cached(fn, w_shape, stride, padding, dilation, groups, algo):
    return _conv_args_checked(fn, _Shape(w_shape), stride, padding, dilation, groups, algo)


def _conv_args(fn, weight, stride, padding, dilation, groups, algo):
    """Normalised (stride, padding, dilation, groups, same, code) of a convolution,
    code the kernel of _ops (_ALGO_CODES); with algo='auto', what _choose_algo picks for
    the forward pass (for conv2d_backward: the input gradient). Plain arguments are
    answered from a cache: the checks cost more than a small convolution."""
    shape = getattr(weight, "shape", None)
    if (type(shape) is tuple and _plain(shape) and _plain(stride) and _plain(padding)
            and _plain(dilation) and _plain(groups) and _plain(algo)):
        return _conv_args_cached(fn, shape, stride, padding, dilation, groups, algo)
    return _conv_args_checked(fn, weight, stride, padding, dilation, groups, algo)


def _conv_args_checked(fn, weight, stride, padding, dilation, groups, algo):
    stride = _pair(fn, "stride", stride)
    dilation = _pair(fn, "dilation", dilation)
    groups = _int(fn, "groups", groups, groups)
    pad, same = _conv_padding(fn, padding, weight, dilation)
    if not isinstance(algo, str) or algo not in _ALGOS:
        raise ValueError(f"{fn}: algo must be one of {', '.join(map(repr, _ALGOS))}, "
                         f"got {algo!r}")
    if algo == "auto":
        algo = _choose_algo(weight, groups, pad, dilation,
                            "input" if fn == "conv2d_backward" else "forward", stride)
    return stride, pad, dilation, groups, same, _ALGO_CODES[algo]


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    algo="auto", needs=(True, True, True)):
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    The same as PyTorch autograd through ``torch.nn.functional.conv2d``: given
    ``grad_out`` = dL/d(out), returns dL/dx, dL/dweight and dL/dbias.

    Parameters
    ----------
    grad_out : ndarray, shape (N, OC, OH, OW)
        Gradient of the loss with respect to the convolution's output.
    x, weight : ndarray
        The forward pass's input and weight (same dtype as grad_out).
    stride, padding, dilation, groups, algo
        As in :func:`conv2d`; they must be the forward pass's.
    needs : (bool, bool, bool)
        Which of (grad_x, grad_w, grad_b) to compute; the others come back as None
        and cost nothing (a first layer never needs grad_x).

    Returns
    -------
    grad_x : ndarray (N, C, H, W) or None
    grad_w : ndarray (OC, C/groups, KH, KW) or None
    grad_b : ndarray (OC,) or None

    Notes
    -----
    The results are bit-identical for any thread count: the weight and bias
    gradients reduce over the batch in an order fixed by the shape alone.
    """
    fn = "conv2d_backward"
    stride, pad, dilation, groups, same, code_x = _conv_args(
        fn, weight, stride, padding, dilation, groups, algo)
    if algo == "auto":
        algo = _choose_algo(weight, groups, pad, dilation, "weight", stride)
    return _ops.conv2d_backward(grad_out, x, weight, stride, pad, dilation, groups, same,
                                code_x, _ALGO_CODES[algo], needs, get_num_threads())


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling over a batch of images.

    Matches :func:`torch.nn.functional.max_pool2d`
    (https://pytorch.org/docs/stable/generated/torch.nn.functional.max_pool2d.html):
    padding counts as -inf, NaN propagates, the first maximum in row-major order wins.

    Parameters
    ----------
    x : ndarray, float32 or float64, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to kernel_size.
    padding : int or (int, int)
        At most half the kernel size.
    dilation : int or (int, int)
    ceil_mode : bool
        Round the output size up; a window must still start inside the input or the
        left padding.
    return_indices : bool
        Also return the int64 index of each maximum, a flat position ``h*W + w``
        within its (H, W) plane.

    Returns
    -------
    out : ndarray, shape (N, C, OH, OW); and indices, int64, same shape, if asked.

    Shape
    -----
    ``OH = floor_or_ceil((H + 2*PH - DH*(KH-1) - 1) / SH) + 1``, likewise OW.
    """
    return _ops.max_pool2d_forward(x, *_pool_args("max_pool2d", kernel_size, stride, padding,
                                                  dilation), bool(ceil_mode),
                                   bool(return_indices), get_num_threads())


def _pool_args(fn, kernel_size, stride, padding, dilation):
    """(kernel_size, stride, padding, dilation) as pairs; stride defaults to the kernel."""
    kernel_size = _pair(fn, "kernel_size", kernel_size)
    stride = kernel_size if stride is None else _pair(fn, "stride", stride)
    return kernel_size, stride, _pair(fn, "padding", padding), _pair(fn, "dilation", dilation)


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of :func:`max_pool2d` with respect to its input.

    Each ``grad_out`` value is added to the input position its window's maximum came
    from (``indices``, as returned with ``return_indices=True``); overlapping windows
    accumulate. An index outside ``[0, H*W)`` raises ValueError naming the first one
    (the kernel checks each index as it reads it; the partly written gradient is
    dropped, and no array of the caller is written).

    Parameters
    ----------
    grad_out : ndarray, shape (N, C, OH, OW)
    indices : ndarray of int64, shape (N, C, OH, OW)
    input_shape : (N, C, H, W), the forward input's shape

    Returns
    -------
    grad_x : ndarray, shape input_shape, dtype of grad_out
    """
    return _ops.max_pool2d_backward(grad_out, indices, input_shape, get_num_threads())


def relu(x):
    """max(x, 0) elementwise, any shape; NaN stays NaN. Returns a new array.

    Matches :func:`torch.nn.functional.relu`.
    """
    return _ops.relu_forward(x, get_num_threads())


def relu_backward(grad_out, x):
    """Gradient of :func:`relu`: ``grad_out`` where ``x > 0``, else 0.

    As PyTorch's, the gradient passes where x is NaN.
    """
    return _ops.relu_backward(grad_out, x, get_num_threads())


def linear_backward(grad_out, x, weight, *, needs=(True, True, True)):
    """Gradients of :func:`linear`: ``(grad_out @ weight, grad_out.T @ x, grad_out.sum(0))``.

    Parameters
    ----------
    grad_out : ndarray, shape (N, out_features)
    x : ndarray, shape (N, in_features)
    weight : ndarray, shape (out_features, in_features)
    needs : (bool, bool, bool)
        Which of (grad_x, grad_w, grad_b) to compute; the others come back as None.
    """
    return _ops.linear_backward(grad_out, x, weight, needs, get_num_threads())


def linear(x, weight, bias=None):
    """Fully connected layer: ``x @ weight.T + bias``.

    Matches :func:`torch.nn.functional.linear` for 2-D input.

    Parameters
    ----------
    x : ndarray, shape (N, in_features)
    weight : ndarray, shape (out_features, in_features)
    bias : ndarray, shape (out_features,), optional

    Returns
    -------
    out : ndarray, shape (N, out_features)
    """
    return _ops.linear_forward(x, weight, bias, get_num_threads())
