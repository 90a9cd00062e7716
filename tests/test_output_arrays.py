"""The arrays the library allocates for its results: C-contiguous, writeable, of the
result's dtype and shape, on a 64-byte boundary from 16 KiB on (as PyTorch's CPU
tensors), and alive for as long as the caller holds them.

np.empty gives 16-byte alignment; the wrappers' _empty asks for 64 bytes more and
starts the array on the first 64-byte boundary in it. With plain np.empty, about three
in four of the large results below would start off a boundary (checked: 8 of these 9
tests fail then). Oracles: the address itself, and copies of the results taken at once.
"""

import gc
import pickle

import numpy as np
import pytest

import fastconv
from fastconv import nn

ALIGN = 64
MIN_BYTES = 16384


def _results(batch, dtype):
    """(name, array) for every array the public functions and layers return, on
    inputs of `batch` images."""
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 3, 20, 20)).astype(dtype)
    w = rng.standard_normal((8, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    out = fastconv.conv2d(x, w, b, padding=1)
    g = rng.standard_normal(out.shape).astype(dtype)
    gx, gw, gb = fastconv.conv2d_backward(g, x, w, padding=1)
    pooled, idx = fastconv.max_pool2d(out, 2, return_indices=True)
    gpool = fastconv.max_pool2d_backward(pooled, idx, out.shape)
    r = fastconv.relu(out)
    gr = fastconv.relu_backward(g, out)
    flat = out.reshape(batch, -1)
    lw = rng.standard_normal((16, flat.shape[1])).astype(dtype)
    lin = fastconv.linear(flat, lw)
    lgx, lgw, _ = fastconv.linear_backward(np.ones_like(lin), flat, lw)
    bn = nn.BatchNorm2d(8, dtype=dtype)
    bn_out = bn(out)
    bn_gx = bn.backward(g)
    bn.eval()
    bn_eval = bn(out)
    drop = nn.Dropout(0.5)
    drop_out = drop(out)
    return [("conv2d", out), ("conv2d_backward x", gx), ("conv2d_backward w", gw),
            ("conv2d_backward b", gb), ("max_pool2d", pooled), ("max_pool2d indices", idx),
            ("max_pool2d_backward", gpool), ("relu", r), ("relu_backward", gr),
            ("linear", lin), ("linear_backward x", lgx), ("linear_backward w", lgw),
            ("BatchNorm2d train", bn_out), ("BatchNorm2d backward", bn_gx),
            ("BatchNorm2d eval", bn_eval), ("Dropout", drop_out)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 3, 16])
def test_results_from_16_kib_on_start_on_a_cache_line(batch, dtype):
    large = 0
    for name, a in _results(batch, dtype):
        assert isinstance(a, np.ndarray), name
        assert a.flags.c_contiguous and a.flags.writeable, name
        if a.nbytes >= MIN_BYTES:
            large += 1
            assert a.ctypes.data % ALIGN == 0, (name, a.shape, a.ctypes.data % ALIGN)
    if batch == 16:
        assert large >= 10  # the sizes reach the threshold, so the test says something


def test_matmul_result_starts_on_a_cache_line():
    from fastconv import _ops
    rng = np.random.default_rng(0)
    for m in (63, 64, 65, 130):
        a = rng.standard_normal((m, 70)).astype(np.float32)
        b = rng.standard_normal((70, 67)).astype(np.float32)
        c = _ops.matmul(a, b, 1)
        assert c.shape == (m, 67) and c.dtype == np.float32 and c.flags.c_contiguous
        assert c.ctypes.data % ALIGN == 0
        np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_results_outlive_everything_else_and_behave_like_plain_arrays():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 3, 20, 20)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    y = fastconv.conv2d(x, w, padding=1)
    assert y.nbytes >= MIN_BYTES and y.ctypes.data % ALIGN == 0
    want = y.copy()
    del x, w
    gc.collect()
    # reuse of freed memory would show here: fresh arrays of every size written over
    junk = [np.full(n, 7.0, np.float32) for n in (y.size, y.size + 64, 4096, y.size * 2)]
    np.testing.assert_array_equal(y, want)
    del junk
    # a plain ndarray for everything a user does with it
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(y)), want)
    y += 1
    np.testing.assert_array_equal(y, want + 1)
    z = y.reshape(16, -1)
    assert np.shares_memory(z, y) and z.flags.c_contiguous
    assert y.copy().ctypes.data != y.ctypes.data


def test_empty_batches_and_small_results_stay_plain():
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    y = fastconv.conv2d(x, w)
    assert y.shape == (0, 4, 6, 6)
    small = fastconv.conv2d(np.ones((1, 3, 8, 8), np.float32), w)
    assert small.nbytes < MIN_BYTES and small.flags.owndata
    np.testing.assert_array_equal(small, np.full((1, 4, 6, 6), 27.0, np.float32))
