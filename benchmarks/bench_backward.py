"""Backward passes on the named real layers: fastconv next to PyTorch autograd.

- ``conv2d-backward-<layer>`` (every layer of ``fastconv.shapes.LAYERS``): all three
  gradients (input, weight, bias) with fastconv ``im2col``, ``direct`` and ``auto``,
  and torch autograd through ``torch.nn.functional.conv2d`` (only the backward is
  timed: ``torch.autograd.grad`` on a forward graph built once and retained). The
  ``fmnist_c1`` group also holds fastconv ``auto`` with ``needs=(False, True, True)``,
  what a first layer needs, next to torch's full backward.
- ``max_pool2d-backward-64x32x28x28-k2s2``: the scatter from the saved indices, next
  to torch autograd through ``torch.nn.functional.max_pool2d``.

All in float32 on the same arrays. Every result is checked once before it is timed:
against torch autograd in float64 or, without torch, against fastconv's own float64
result. GFLOP/s count a full backward as twice the forward's FLOPs (the input and the
weight gradient each cost one forward) and a weight-only backward as one forward.
Select with -k, e.g. ``-k "r18_l2 and (auto or torch)"``.
"""

import functools

import numpy as np
import pytest

import fastconv
from fastconv.shapes import LAYERS

from benchutil import check_close, layer_inputs, record, to_numpy, torch

IMPLS = ["fastconv-im2col", "fastconv-direct", "fastconv-auto", "torch"]
WEIGHT_ONLY = "fastconv-auto-weight-only"   # needs=(False, True, True)
FIRST_LAYER = "fmnist_c1"


def _params():
    for layer in LAYERS:
        impls = IMPLS + ([WEIGHT_ONLY] if layer == FIRST_LAYER else [])
        for impl in impls:
            marks = [pytest.mark.benchmark(group=f"conv2d-backward-{layer}")]
            if impl == "torch" and torch is None:
                marks.append(pytest.mark.skip(reason="torch is not installed"))
            yield pytest.param(layer, impl, marks=marks, id=f"{layer}-{impl}")


def _conv_grads_torch(x, weight, bias, gout, kwargs):
    """(grad_x, grad_w, grad_b) by torch autograd, in the arrays' dtype."""
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    y = torch.nn.functional.conv2d(tx, tw, tb, **kwargs)
    return tuple(g.numpy() for g in torch.autograd.grad(y, (tx, tw, tb), torch.from_numpy(gout)))


@functools.lru_cache(maxsize=1)  # parameters run layer by layer: keep one layer's data
def _layer_data(name):
    """float32 (x, weight, bias, grad_out) of a layer and the float64 reference gradients."""
    layer = LAYERS[name]
    x, weight, bias, rng = layer_inputs(layer)
    gout = rng.standard_normal((layer.N, layer.OC) + layer.out_hw, dtype=np.float32)
    args64 = [a.astype(np.float64) for a in (x, weight, bias, gout)]
    if torch is not None:
        reference = _conv_grads_torch(*args64, layer.kwargs())
    else:
        reference = fastconv.conv2d_backward(args64[3], args64[0], args64[1], **layer.kwargs(),
                                             algo="im2col")
    return x, weight, bias, gout, reference


def _backward_fn(impl, x, weight, bias, gout, kwargs):
    """A no-argument callable running one backward with ``impl``, and the needs it meets."""
    if impl == WEIGHT_ONLY:
        needs = (False, True, True)
        return (lambda: fastconv.conv2d_backward(gout, x, weight, **kwargs, algo="auto",
                                                 needs=needs)), needs
    if impl.startswith("fastconv-"):
        algo = impl.removeprefix("fastconv-")
        return (lambda: fastconv.conv2d_backward(gout, x, weight, **kwargs, algo=algo)), \
            (True, True, True)
    if impl == "torch":
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
        y = torch.nn.functional.conv2d(tx, tw, tb, **kwargs)  # the forward, outside the timing
        tgout = torch.from_numpy(gout)
        return (lambda: torch.autograd.grad(y, (tx, tw, tb), tgout, retain_graph=True)), \
            (True, True, True)
    raise ValueError(f"unknown impl {impl!r}")


@pytest.mark.parametrize("layer_name, impl", _params())
def test_conv2d_backward(benchmark, layer_name, impl):
    layer = LAYERS[layer_name]
    x, weight, bias, gout, reference = _layer_data(layer_name)
    fn, needs = _backward_fn(impl, x, weight, bias, gout, layer.kwargs())

    grads = fn()
    assert len(grads) == 3
    for name, got, want, asked in zip(("grad_x", "grad_w", "grad_b"), grads, reference, needs):
        if not asked:
            assert got is None, f"{name} was not asked for"
            continue
        try:
            check_close(got, want)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
    benchmark(fn)

    benchmark.extra_info["layer"] = repr(layer)
    benchmark.extra_info["needs"] = list(needs)
    record(benchmark, impl, flops=(2 if needs[0] else 1) * layer.flops)


# ----------------------------------------------------------------- max_pool2d

POOL_X_SHAPE = (64, 32, 28, 28)
POOL_KERNEL = 2


@pytest.mark.benchmark(group="max_pool2d-backward-64x32x28x28-k2s2")
@pytest.mark.parametrize("impl", [
    "fastconv",
    pytest.param("torch", marks=pytest.mark.skipif(torch is None, reason="torch is not installed")),
])
def test_max_pool2d_backward(benchmark, impl):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(POOL_X_SHAPE, dtype=np.float32)
    out, indices = fastconv.max_pool2d(x, POOL_KERNEL, return_indices=True)
    gout = rng.standard_normal(out.shape, dtype=np.float32)
    if impl == "fastconv":
        fn = lambda: fastconv.max_pool2d_backward(gout, indices, x.shape)  # noqa: E731
    else:
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.max_pool2d(tx, POOL_KERNEL)  # the forward, outside the timing
        tgout = torch.from_numpy(gout)
        fn = lambda: torch.autograd.grad(ty, tx, tgout, retain_graph=True)[0]  # noqa: E731

    # Windows do not overlap: each input gets at most one gradient, so the result is
    # exact: grad_out at the argmax of each window, 0 elsewhere.
    expected = np.zeros((x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]), np.float32)
    planes = np.repeat(np.arange(expected.shape[0]), out.shape[2] * out.shape[3])
    expected[planes, indices.reshape(-1)] = gout.reshape(-1)
    result = to_numpy(fn())
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, expected.reshape(x.shape))

    benchmark(fn)
    # Read grad_out and indices, write (zero, then scatter into) grad_x.
    record(benchmark, impl, nbytes=gout.nbytes + indices.nbytes + x.nbytes)
