"""fastconv.max_pool2d against the reference: values and int64 indices, exactly.

Pooling does no arithmetic, so every comparison is exact (NaN equal to NaN).
The reference follows PyTorch's CPU kernel: first of equal maxima wins, a NaN in
the window wins (the last NaN in row-major scan order).
"""

import numpy as np
import pytest

import fastconv
from fastconv.shapes import POOL_CASES
from reference import max_pool2d_ref

DTYPES = [np.float32, np.float64]
CASES = {c["id"]: c for c in POOL_CASES}
KINDS = ["random", "ties", "nan"]
GRID_IDS = ["k3_s2_p1", "asym_ceil", "k3_p1_d2", "resnet_c17"]


def pool_kwargs(case):
    return {k: case[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}


def make_input(shape, dtype, kind, seed=0):
    """'random' normal values; 'ties' few distinct integers; 'nan' with NaN and +-inf."""
    rng = np.random.default_rng(seed)
    if kind == "ties":
        return rng.integers(-2, 3, size=shape).astype(dtype)
    x = rng.standard_normal(shape)
    if kind == "nan":
        flat = x.reshape(-1)
        flat[rng.random(flat.size) < 0.1] = np.nan
        flat[rng.random(flat.size) < 0.05] = -np.inf
        flat[rng.random(flat.size) < 0.02] = np.inf
    return x.astype(dtype)


def check_pool(x, **kw):
    out, idx = fastconv.max_pool2d(x, return_indices=True, **kw)
    ref, ref_idx = max_pool2d_ref(x, **kw)
    assert isinstance(out, np.ndarray) and isinstance(idx, np.ndarray)
    assert out.dtype == x.dtype and idx.dtype == np.int64
    assert out.shape == ref.shape and idx.shape == ref.shape
    np.testing.assert_array_equal(out, ref.astype(x.dtype))  # treats NaN == NaN
    np.testing.assert_array_equal(idx, ref_idx)
    return out, idx


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_max_pool2d_cases(case_id, dtype, kind, one_thread):
    case = CASES[case_id]
    check_pool(make_input(case["x"], dtype, kind), **pool_kwargs(case))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", GRID_IDS)
def test_max_pool2d_simd_threads(case_id, dtype, simd, threads):
    case = CASES[case_id]
    check_pool(make_input(case["x"], dtype, "nan"), **pool_kwargs(case))


@pytest.mark.parametrize("kw", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                                {"kernel_size": 3, "stride": 2, "ceil_mode": True}],
                         ids=["k2", "k3s2p1", "k3s2_ceil"])
def test_max_pool2d_bigger_planes(kw, simd, threads):
    """Enough planes and rows that threads and vector loops both get full blocks."""
    check_pool(make_input((2, 24, 29, 31), np.float32, "nan", seed=4), **kw)


def test_max_pool2d_nan_hand_case():
    nan = np.nan
    x = np.array([[[[1.0, nan, 3.0, nan],
                    [5.0, 5.0, 0.0, 0.0]]]], dtype=np.float32)
    out, idx = fastconv.max_pool2d(x, (2, 4), return_indices=True)
    assert np.isnan(out[0, 0, 0, 0])
    assert idx[0, 0, 0, 0] == 3  # PyTorch: the last NaN in scan order
    out, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1
    assert np.isnan(out[0, 0, 0, 1]) and idx[0, 0, 0, 1] == 3


def test_max_pool2d_ties_take_first():
    x = np.zeros((1, 1, 4, 4))
    out, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])
    out, idx = fastconv.max_pool2d(np.full((1, 1, 2, 2), -np.inf), 2, padding=1,
                                   return_indices=True)
    assert np.all(out == -np.inf)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1], [2, 3]])  # first in-bounds tap


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_max_pool2d_return_indices_false(dtype):
    case = CASES["k3_s2_p1"]
    x = make_input(case["x"], dtype, "nan")
    out = fastconv.max_pool2d(x, **pool_kwargs(case))
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    both = fastconv.max_pool2d(x, return_indices=True, **pool_kwargs(case))
    assert isinstance(both, tuple) and len(both) == 2
    np.testing.assert_array_equal(out, both[0])


def test_max_pool2d_argument_forms():
    x = make_input((1, 2, 9, 9), np.float64, "random")
    a = fastconv.max_pool2d(x, 3)
    b = fastconv.max_pool2d(x, (3, 3), stride=(3, 3), padding=(0, 0), dilation=(1, 1))
    c = fastconv.max_pool2d(x, 3, stride=None)
    assert a.shape == (1, 2, 3, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def _noncontiguous(x):
    return {
        "channels_last": np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
        "reversed": np.ascontiguousarray(x[:, :, ::-1, ::-1])[:, :, ::-1, ::-1],
        "sliced": np.pad(x, ((0, 0), (0, 1), (0, 0), (2, 0)))[:, :-1, :, 2:],
        "fortran": np.asfortranarray(x),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_max_pool2d_layouts_and_readonly(dtype):
    case = CASES["asym_ceil"]
    x = make_input(case["x"], dtype, "nan")
    want_out, want_idx = fastconv.max_pool2d(x, return_indices=True, **pool_kwargs(case))
    variants = _noncontiguous(x)
    ro = x.copy()
    ro.flags.writeable = False
    variants["readonly"] = ro
    for name, xv in variants.items():
        np.testing.assert_array_equal(xv, x)
        out, idx = fastconv.max_pool2d(xv, return_indices=True, **pool_kwargs(case))
        np.testing.assert_array_equal(out, want_out, err_msg=name)
        np.testing.assert_array_equal(idx, want_idx, err_msg=name)


def test_max_pool2d_leaves_input_unchanged():
    x = make_input((2, 3, 11, 10), np.float32, "nan")
    copy = x.copy()
    fastconv.max_pool2d(x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(x, copy)


# ---------------------------------------------------------------------------
# PyTorch as a second oracle
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_max_pool2d_matches_torch(case_id, dtype, kind):
    torch = pytest.importorskip("torch")
    case = CASES[case_id]
    x = make_input(case["x"], dtype, kind, seed=7)
    want, want_idx = torch.nn.functional.max_pool2d(torch.from_numpy(x), return_indices=True,
                                                    **pool_kwargs(case))
    got, idx = fastconv.max_pool2d(x, return_indices=True, **pool_kwargs(case))
    np.testing.assert_array_equal(got, want.numpy())
    np.testing.assert_array_equal(idx, want_idx.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hw, ceil_mode", [((8, 8), False), ((7, 9), False), ((7, 9), True),
                                          ((2, 2), False), ((6, 6), False), ((14, 14), False),
                                          ((4, 31), False), ((3, 58), True)])
def test_max_pool2d_2x2_stride2_fast_path(dtype, hw, ceil_mode):
    """2x2 windows at stride 2 take their own loop, in vectors of outputs with the last
    one overlapping its neighbour when the row is not a whole number of vectors (output
    widths 1, 3, 4, 7, 15 and 29 here; narrower than a vector takes a scalar loop): same
    values, indices, NaN and tie rules as the reference (ceil_mode on odd sizes leaves it
    for the general loop)."""
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (3, 4) + hw).astype(dtype)  # many ties
    x[rng.random(x.shape) < 0.05] = np.nan                # NaN in every lane position
    x[0, 0, 0, 1] = np.nan
    x[1, 2, 0, 0] = x[1, 2, 1, 1] = np.nan               # two NaN in one window
    x[2, 1] = -np.inf
    x[2, 3, 0] = -0.0                                     # -0.0 ties with 0.0: first wins
    x[2, 3, 1] = 0.0
    out, idx = fastconv.max_pool2d(x, 2, ceil_mode=ceil_mode, return_indices=True)
    ref_out, ref_idx = max_pool2d_ref(x, 2, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(out, ref_out.astype(dtype))
    np.testing.assert_array_equal(idx, ref_idx)
