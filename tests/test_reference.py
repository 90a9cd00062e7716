"""Tests of the NumPy references themselves.

Against PyTorch when it is installed, and, without it, against finite
differences, adjoint identities and hand-worked examples.
"""

import importlib.util
import itertools
import pathlib

import numpy as np
import pytest

from gradcheck import check_backward, numerical_grad
from reference import (
    conv2d_backward_ref,
    conv2d_ref,
    linear_backward_ref,
    linear_ref,
    max_pool2d_backward_ref,
    max_pool2d_ref,
    pool_out_size,
    relu_backward_ref,
    relu_ref,
)

try:
    from fastconv.shapes import AWKWARD, POOL_CASES
except ImportError:  # package not built yet: shapes.py is stdlib-only, load it by path
    _path = pathlib.Path(__file__).parents[1] / "src" / "fastconv" / "shapes.py"
    _spec = importlib.util.spec_from_file_location("_fastconv_shapes", _path)
    _shapes = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_shapes)
    AWKWARD, POOL_CASES = _shapes.AWKWARD, _shapes.POOL_CASES


def ids(cases):
    return [c["id"] for c in cases]


def conv_kwargs(case):
    return {k: case[k] for k in ("stride", "padding", "dilation", "groups")}


def pool_kwargs(case):
    return {k: case[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}


def conv_inputs(case, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x"])
    w = rng.standard_normal(case["w"])
    b = rng.standard_normal(case["w"][0])
    return x, w, b


def pool_input(shape, kind, seed=0):
    """Random data; 'ties' uses few distinct integers; 'nan' adds NaNs and infinities."""
    rng = np.random.default_rng(seed)
    if kind == "ties":
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    x = rng.standard_normal(shape)
    if kind == "nan":
        flat = x.reshape(-1)
        flat[rng.random(flat.size) < 0.1] = np.nan
        flat[rng.random(flat.size) < 0.05] = -np.inf
        flat[rng.random(flat.size) < 0.02] = np.inf
    return x


# ---------------------------------------------------------------------------
# (a) PyTorch as oracle
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", AWKWARD, ids=ids(AWKWARD))
def test_conv2d_ref_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, w, b = conv_inputs(case)
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **conv_kwargs(case))
    np.testing.assert_allclose(conv2d_ref(x, w, b, **conv_kwargs(case)), expected.numpy(),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", AWKWARD, ids=ids(AWKWARD))
def test_conv2d_backward_ref_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, w, b = conv_inputs(case)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = torch.nn.functional.conv2d(tx, tw, tb, **conv_kwargs(case))
    gout = np.random.default_rng(1).standard_normal(tuple(y.shape))
    y.backward(torch.from_numpy(gout))
    gx, gw, gb = conv2d_backward_ref(gout, x, w, **conv_kwargs(case))
    for name, mine, theirs in (("x", gx, tx), ("w", gw, tw), ("b", gb, tb)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-10, atol=1e-10,
                                   err_msg=f"grad {name}")


@pytest.mark.parametrize("kind", ["random", "ties", "nan"])
@pytest.mark.parametrize("case", POOL_CASES, ids=ids(POOL_CASES))
def test_max_pool2d_ref_matches_torch(case, kind):
    torch = pytest.importorskip("torch")
    x = pool_input(case["x"], kind)
    out, idx = max_pool2d_ref(x, **pool_kwargs(case))
    t_out, t_idx = torch.nn.functional.max_pool2d(
        torch.from_numpy(x), return_indices=True, **pool_kwargs(case))
    assert out.shape == tuple(t_out.shape)
    np.testing.assert_array_equal(out, t_out.numpy())  # NaNs compare equal here
    np.testing.assert_array_equal(idx, t_idx.numpy())
    assert idx.dtype == np.int64


def test_max_pool2d_ref_nan_and_ties_match_torch_hand_cases():
    torch = pytest.importorskip("torch")
    nan, inf = np.nan, np.inf
    x = np.array([[[[1.0, nan, 3.0, nan],
                    [5.0, 5.0, 0.0, 0.0],
                    [-inf, -inf, 7.0, 7.0],
                    [-inf, -inf, 7.0, 2.0]]]])
    for kw in ({"kernel_size": 2}, {"kernel_size": (2, 4)}, {"kernel_size": 3, "stride": 1},
               {"kernel_size": 2, "padding": 1}, {"kernel_size": 3, "padding": 1, "stride": 2}):
        out, idx = max_pool2d_ref(x, **kw)
        t_out, t_idx = torch.nn.functional.max_pool2d(torch.from_numpy(x), return_indices=True,
                                                      **kw)
        np.testing.assert_array_equal(out, t_out.numpy(), err_msg=str(kw))
        np.testing.assert_array_equal(idx, t_idx.numpy(), err_msg=str(kw))


def test_pool_out_size_matches_torch():
    torch = pytest.importorskip("torch")
    for H, K, S, D, ceil in itertools.product(range(1, 10), range(1, 5), range(1, 5),
                                              (1, 2), (False, True)):
        for P in range(K // 2 + 1):
            num = H + 2 * P - D * (K - 1) - 1
            if num < 0:
                continue
            t = torch.nn.functional.max_pool2d(torch.zeros(1, 1, H, 1), (K, 1), (S, 1), (P, 0),
                                               (D, 1), ceil_mode=ceil)
            assert pool_out_size(H, K, S, P, D, ceil) == t.shape[2], (H, K, S, P, D, ceil)


def test_max_pool2d_backward_ref_matches_torch():
    torch = pytest.importorskip("torch")
    for case in POOL_CASES:
        x = pool_input(case["x"], "ties", seed=3)  # ties: gradient goes to the first maximum
        tx = torch.tensor(x, requires_grad=True)
        y = torch.nn.functional.max_pool2d(tx, **pool_kwargs(case))
        gout = np.random.default_rng(2).standard_normal(tuple(y.shape))
        y.backward(torch.from_numpy(gout))
        _, idx = max_pool2d_ref(x, **pool_kwargs(case))
        np.testing.assert_allclose(max_pool2d_backward_ref(gout, idx, x.shape),
                                   tx.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=case["id"])


def test_relu_ref_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([-2.0, -0.0, 0.0, 1e-310, -1e-310, 3.5, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(relu_ref(x), torch.relu(torch.from_numpy(x)).numpy())
    tx = torch.tensor(x, requires_grad=True)
    gout = np.arange(1.0, x.size + 1)
    torch.relu(tx).backward(torch.from_numpy(gout))
    np.testing.assert_array_equal(relu_backward_ref(gout, x), tx.grad.numpy())


@pytest.mark.parametrize("n, n_in, n_out", [(1, 1, 1), (5, 7, 13), (17, 64, 33), (3, 300, 2)])
def test_linear_ref_matches_torch(n, n_in, n_out):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((n, n_in)), rng.standard_normal((n_out, n_in)), \
        rng.standard_normal(n_out)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = torch.nn.functional.linear(tx, tw, tb)
    np.testing.assert_allclose(linear_ref(x, w, b), y.detach().numpy(), rtol=1e-12, atol=1e-12)
    gout = rng.standard_normal((n, n_out))
    y.backward(torch.from_numpy(gout))
    for mine, theirs in zip(linear_backward_ref(gout, x, w), (tx, tw, tb)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# (b) Without PyTorch: hand-worked examples, finite differences, adjoints
# ---------------------------------------------------------------------------

def test_conv2d_ref_hand_example():
    # All-ones input and 3x3 kernel with padding 1: each output counts its in-bounds taps.
    out = conv2d_ref(np.ones((1, 1, 3, 4)), np.ones((1, 1, 3, 3)), np.array([0.5]), padding=1)
    expected = np.array([[4, 6, 6, 4], [6, 9, 9, 6], [4, 6, 6, 4]]) + 0.5
    np.testing.assert_array_equal(out[0, 0], expected)
    # Cross-correlation, not convolution: the kernel is not flipped.
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0
    assert conv2d_ref(x, w)[0, 0, 0, 0] == 0.0
    # Groups: output channel o sees only its group's input channels.
    x = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 10.0)])[None]
    out = conv2d_ref(x, np.ones((2, 1, 1, 1)), groups=2)
    np.testing.assert_array_equal(out[0, :, 0, 0], [1.0, 10.0])
    # Stride and dilation pick input positions oh*SH + i*DH.
    x = np.arange(7.0).reshape(1, 1, 1, 7)
    out = conv2d_ref(x, np.ones((1, 1, 1, 2)), stride=(1, 3), dilation=(1, 2))
    np.testing.assert_array_equal(out[0, 0, 0], [0 + 2, 3 + 5])


def test_conv2d_ref_output_size_and_errors():
    x = np.zeros((1, 2, 11, 8))
    assert conv2d_ref(x, np.zeros((3, 2, 3, 2)), stride=(3, 2), padding=(1, 0),
                      dilation=(2, 3)).shape == (1, 3, 3, 3)
    with pytest.raises(ValueError):
        conv2d_ref(x, np.zeros((3, 2, 12, 1)))
    with pytest.raises(ValueError):
        conv2d_ref(x, np.zeros((3, 1, 3, 3)), groups=2)  # 3 output channels, 2 groups


def test_pool_out_size_hand_examples():
    assert pool_out_size(8, 2, 2, 0, 1, False) == 4
    assert pool_out_size(7, 3, 2, 0, 1, False) == 3
    assert pool_out_size(6, 3, 2, 0, 1, True) == 3    # ceil((6-3)/2)+1 = 3
    assert pool_out_size(9, 2, 2, 1, 1, False) == 5
    # ceil gives 6, but the 6th window would start at 10 >= H + P = 10: dropped.
    assert pool_out_size(9, 2, 2, 1, 1, True) == 5


def test_max_pool2d_ref_semantics():
    nan, inf = np.nan, np.inf
    x = np.array([[[[5.0, 5.0, 1.0, nan, 2.0, nan],
                    [-inf, -inf, 0.0, 0.0, 0.0, 0.0]]]])
    out, idx = max_pool2d_ref(x, (2, 2))
    np.testing.assert_array_equal(out[0, 0, 0], [5.0, nan, nan])
    np.testing.assert_array_equal(idx[0, 0, 0], [0, 3, 5])   # first of ties; NaN wins
    x2 = np.array([[[[nan, 1.0, nan, 2.0]]]])
    _, idx = max_pool2d_ref(x2, (1, 4))
    assert idx[0, 0, 0, 0] == 2                               # the last NaN in scan order
    out, idx = max_pool2d_ref(np.full((1, 1, 2, 2), -inf), 2, padding=1)
    assert np.all(out == -inf)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1], [2, 3]])  # first in-bounds tap
    # stride defaults to the kernel size
    assert max_pool2d_ref(np.zeros((1, 1, 6, 6)), 3)[0].shape == (1, 1, 2, 2)
    with pytest.raises(ValueError):                           # window fully in padding
        max_pool2d_ref(np.zeros((1, 1, 2, 2)), 2, padding=1, dilation=3)


FD_CONV = [  # small cases for finite differences: x shape, w shape, conv kwargs
    ((2, 3, 5, 4), (4, 3, 3, 2), {}),
    ((1, 2, 7, 6), (3, 2, 3, 3), {"stride": 2, "padding": 1}),
    ((1, 2, 8, 7), (2, 2, 2, 3), {"stride": (3, 2), "padding": (1, 2), "dilation": (2, 1)}),
    ((1, 4, 5, 5), (6, 2, 3, 3), {"padding": 1, "groups": 2}),
    ((2, 3, 4, 4), (3, 1, 3, 3), {"padding": 2, "dilation": 2, "groups": 3}),
    ((1, 3, 3, 3), (2, 3, 3, 3), {}),                                    # kernel = input
    ((1, 5, 1, 1), (7, 5, 1, 1), {}),                                    # 1x1 image
]


@pytest.mark.parametrize("x_shape, w_shape, kw", FD_CONV)
def test_conv2d_backward_ref_finite_differences(x_shape, w_shape, kw):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
               rng.standard_normal(w_shape[0]))
    check_backward(lambda x, w, b: conv2d_ref(x, w, b, **kw),
                   lambda g, x, w, b: conv2d_backward_ref(g, x, w, **kw),
                   [x, w, b])


@pytest.mark.parametrize("case", AWKWARD, ids=ids(AWKWARD))
def test_conv2d_adjoint_identity(case):
    """conv is linear in x and in w: <conv(x, w), y> == <x, gx(y)> == <w, gw(y)>."""
    x, w, _ = conv_inputs(case)
    kw = conv_kwargs(case)
    out = conv2d_ref(x, w, **kw)
    y = np.random.default_rng(5).standard_normal(out.shape)
    gx, gw, gb = conv2d_backward_ref(y, x, w, **kw)
    lhs = np.vdot(out, y)
    scale = np.vdot(np.abs(conv2d_ref(np.abs(x), np.abs(w), **kw)), np.abs(y))
    assert abs(lhs - np.vdot(x, gx)) <= 1e-12 * scale
    assert abs(lhs - np.vdot(w, gw)) <= 1e-12 * scale
    np.testing.assert_allclose(gb, y.sum(axis=(0, 2, 3)), rtol=1e-12)


FD_POOL = [  # small cases for finite differences: x shape, pool kwargs
    ((1, 2, 4, 6), {"kernel_size": 2}),
    ((1, 1, 7, 6), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ((1, 1, 6, 7), {"kernel_size": (2, 3), "stride": 1, "padding": (1, 1), "dilation": (2, 1)}),
]


@pytest.mark.parametrize("x_shape, kw", FD_POOL)
def test_max_pool2d_backward_ref_finite_differences(x_shape, kw):
    x = pool_input(x_shape, "random", seed=1)  # distinct values: argmax is stable under eps
    out, idx = max_pool2d_ref(x, **kw)
    gout = np.random.default_rng(2).standard_normal(out.shape)
    numeric = numerical_grad(lambda a: np.sum(max_pool2d_ref(a, **kw)[0] * gout), x)
    np.testing.assert_allclose(max_pool2d_backward_ref(gout, idx, x.shape), numeric,
                               atol=1e-6, rtol=1e-6)


def test_relu_backward_ref_finite_differences():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # stay away from the kink
    check_backward(relu_ref, lambda g, x: (relu_backward_ref(g, x),), [x])
    assert relu_backward_ref(np.ones(3), np.array([0.0, -0.0, np.nan]))[:2].tolist() == [0, 0]


def test_relu_ref_values():
    x = np.array([-1.0, 0.0, 2.0, np.nan, -np.inf, np.inf], dtype=np.float32)
    out = relu_ref(x)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [0.0, 0.0, 2.0, np.nan, 0.0, np.inf])


@pytest.mark.parametrize("n, n_in, n_out", [(1, 1, 1), (3, 4, 5), (2, 7, 3)])
def test_linear_backward_ref_finite_differences(n, n_in, n_out):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((n, n_in)), rng.standard_normal((n_out, n_in)), \
        rng.standard_normal(n_out)
    check_backward(linear_ref, lambda g, x, w, b: linear_backward_ref(g, x, w), [x, w, b])


def test_numerical_grad_on_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_allclose(numerical_grad(lambda a: np.sum(a ** 3), x), 3 * x ** 2,
                               rtol=1e-8)
    assert x[0, 0] == 1.0  # input untouched
