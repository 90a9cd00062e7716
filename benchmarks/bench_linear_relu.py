"""Small benchmarks of relu and linear (float32), fastconv next to NumPy and torch.

Shapes are those of a Fashion-MNIST CNN: relu on the 64x32x28x28 activation
after its first conv, and a linear layer 64x3136 -> 128.
"""

import numpy as np
import pytest

import fastconv

from benchutil import check_close, record, to_numpy, torch

RELU_SHAPE = (64, 32, 28, 28)
LINEAR_N, LINEAR_IN, LINEAR_OUT = 64, 3136, 128

IMPLS = [
    "fastconv",
    "numpy",
    pytest.param("torch", marks=pytest.mark.skipif(torch is None, reason="torch is not installed")),
]


def _relu_fn(impl, x):
    if impl == "fastconv":
        return lambda: fastconv.relu(x)
    if impl == "numpy":
        return lambda: np.maximum(x, 0)
    tx = torch.from_numpy(x)
    return lambda: torch.relu(tx)


def _linear_fn(impl, x, weight, bias):
    if impl == "fastconv":
        return lambda: fastconv.linear(x, weight, bias)
    if impl == "numpy":
        return lambda: x @ weight.T + bias
    tx, tweight, tbias = (torch.from_numpy(a) for a in (x, weight, bias))
    return lambda: torch.nn.functional.linear(tx, tweight, tbias)


@pytest.mark.benchmark(group="relu-forward-64x32x28x28")
@pytest.mark.parametrize("impl", IMPLS)
def test_relu_forward(benchmark, impl):
    x = np.random.default_rng(0).standard_normal(RELU_SHAPE, dtype=np.float32)
    fn = _relu_fn(impl, x)

    result = to_numpy(fn())
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, np.maximum(x, 0))  # exact

    benchmark(fn)
    record(benchmark, impl, nbytes=2 * x.nbytes)


@pytest.mark.benchmark(group=f"linear-forward-{LINEAR_N}x{LINEAR_IN}-{LINEAR_OUT}")
@pytest.mark.parametrize("impl", IMPLS)
def test_linear_forward(benchmark, impl):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((LINEAR_N, LINEAR_IN), dtype=np.float32)
    weight = rng.uniform(-1, 1, (LINEAR_OUT, LINEAR_IN)).astype(np.float32)
    weight /= np.float32(np.sqrt(LINEAR_IN))
    bias = rng.uniform(-1, 1, LINEAR_OUT).astype(np.float32)
    fn = _linear_fn(impl, x, weight, bias)

    reference = x.astype(np.float64) @ weight.T.astype(np.float64) + bias
    check_close(fn(), reference)

    benchmark(fn)
    record(benchmark, impl, flops=2 * LINEAR_N * LINEAR_IN * LINEAR_OUT)
