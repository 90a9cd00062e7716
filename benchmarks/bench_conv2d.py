"""conv2d forward on the named real layers: fastconv's algorithms next to the peers.

One benchmark group per layer (``conv2d-forward-<layer>``) holds fastconv
``direct``, ``im2col`` and ``auto``, the NumPy im2col + ``np.matmul`` baseline
and, when installed, ``torch.nn.functional.conv2d``. All run in float32 on the
same arrays; each result is checked once against a float64 reference before it
is timed. Select with -k, e.g. ``-k "r18_l2 and (auto or torch)"``.
"""

import functools

import numpy as np
import pytest

import fastconv
from fastconv.shapes import LAYERS

from benchutil import check_close, layer_inputs, record, torch
from numpy_baseline import conv2d_im2col

IMPLS = ["fastconv-direct", "fastconv-im2col", "fastconv-auto", "numpy-im2col", "torch"]


def _params():
    for layer in LAYERS:
        for impl in IMPLS:
            marks = [pytest.mark.benchmark(group=f"conv2d-forward-{layer}")]
            if impl == "torch" and torch is None:
                marks.append(pytest.mark.skip(reason="torch is not installed"))
            yield pytest.param(layer, impl, marks=marks, id=f"{layer}-{impl}")


@functools.lru_cache(maxsize=1)  # parameters run layer by layer: keep one layer's data
def _layer_data(name):
    """float32 (x, weight, bias) for a layer and the float64 reference output."""
    layer = LAYERS[name]
    x, weight, bias, rng = layer_inputs(layer)
    reference = conv2d_im2col(x.astype(np.float64), weight.astype(np.float64),
                              bias.astype(np.float64), **layer.kwargs())
    return x, weight, bias, reference


def _conv_fn(impl, x, weight, bias, kwargs):
    """A no-argument callable running one forward convolution with ``impl``."""
    if impl.startswith("fastconv-"):
        algo = impl.removeprefix("fastconv-")
        return lambda: fastconv.conv2d(x, weight, bias, algo=algo, **kwargs)
    if impl == "numpy-im2col":
        return lambda: conv2d_im2col(x, weight, bias, **kwargs)
    if impl == "torch":
        tx, tweight, tbias = (torch.from_numpy(a) for a in (x, weight, bias))
        return lambda: torch.nn.functional.conv2d(tx, tweight, tbias, **kwargs)
    raise ValueError(f"unknown impl {impl!r}")


@pytest.mark.parametrize("layer_name, impl", _params())
def test_conv2d_forward(benchmark, layer_name, impl):
    layer = LAYERS[layer_name]
    x, weight, bias, reference = _layer_data(layer_name)
    fn = _conv_fn(impl, x, weight, bias, layer.kwargs())

    check_close(fn(), reference)
    benchmark(fn)

    benchmark.extra_info["layer"] = repr(layer)
    record(benchmark, impl, flops=layer.flops)
