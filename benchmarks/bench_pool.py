"""max_pool2d forward, 64x32x28x28 float32, kernel 2, stride 2 (the pooling after
the first Fashion-MNIST conv layer): fastconv next to a NumPy reshape-max and,
when installed, ``torch.nn.functional.max_pool2d``."""

import numpy as np
import pytest

import fastconv

from benchutil import record, to_numpy, torch
from numpy_baseline import max_pool2d_reshape

X_SHAPE = (64, 32, 28, 28)
KERNEL = 2


def _pool_fn(impl, x):
    if impl == "fastconv":
        return lambda: fastconv.max_pool2d(x, KERNEL)
    if impl == "numpy-reshape":
        return lambda: max_pool2d_reshape(x, KERNEL)
    if impl == "torch":
        tx = torch.from_numpy(x)
        return lambda: torch.nn.functional.max_pool2d(tx, KERNEL)
    raise ValueError(f"unknown impl {impl!r}")


@pytest.mark.benchmark(group="max_pool2d-forward-64x32x28x28-k2s2")
@pytest.mark.parametrize("impl", [
    "fastconv",
    "numpy-reshape",
    pytest.param("torch", marks=pytest.mark.skipif(torch is None, reason="torch is not installed")),
])
def test_max_pool2d_forward(benchmark, impl):
    x = np.random.default_rng(0).standard_normal(X_SHAPE, dtype=np.float32)
    fn = _pool_fn(impl, x)

    # A maximum is exact: every implementation must agree bit for bit.
    expected = max_pool2d_reshape(x.astype(np.float64), KERNEL)
    result = to_numpy(fn())
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, expected)

    benchmark(fn)
    record(benchmark, impl, nbytes=x.nbytes + expected.size * x.itemsize)


@pytest.mark.benchmark(group="max_pool2d-forward-indices-64x32x28x28-k2s2")
@pytest.mark.parametrize("impl", [
    "fastconv",
    pytest.param("torch", marks=pytest.mark.skipif(torch is None, reason="torch is not installed")),
])
def test_max_pool2d_forward_with_indices(benchmark, impl):
    """The forward pass of a training step: values and the int64 index of each maximum
    (what backward needs)."""
    x = np.random.default_rng(0).standard_normal(X_SHAPE, dtype=np.float32)
    if impl == "fastconv":
        def fn():
            return fastconv.max_pool2d(x, KERNEL, return_indices=True)
    else:
        tx = torch.from_numpy(x)

        def fn():
            return torch.nn.functional.max_pool2d(tx, KERNEL, return_indices=True)

    expected = max_pool2d_reshape(x.astype(np.float64), KERNEL)
    out, idx = (to_numpy(a) for a in fn())
    np.testing.assert_array_equal(out, expected)
    # Each index names the input element that holds the maximum (flat within its plane).
    planes = x.reshape(X_SHAPE[0] * X_SHAPE[1], -1)
    picked = np.take_along_axis(planes, idx.reshape(planes.shape[0], -1), axis=1)
    np.testing.assert_array_equal(picked.reshape(out.shape), out)
    assert idx.dtype == np.int64

    benchmark(fn)
    record(benchmark, impl, nbytes=x.nbytes + expected.size * (x.itemsize + 8))
