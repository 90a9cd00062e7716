"""fastconv.relu and fastconv.linear against the reference (and PyTorch when installed)."""

import numpy as np
import pytest

import fastconv
from reference import assert_close_scaled, linear_ref, relu_ref

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
# (N, IN, OUT): 1s, sizes that are not multiples of any tile, and a few full blocks.
LINEAR_SHAPES = [(1, 1, 1), (1, 7, 13), (5, 33, 17), (17, 64, 10), (3, 300, 5), (64, 128, 96)]
GRID_SHAPES = [(5, 33, 17), (64, 128, 96)]


def relu_input(shape, dtype, seed=0):
    """Normal values plus zeros of both signs, NaN, +-inf and (in f64) subnormals."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    flat = x.reshape(-1)
    specials = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-310, -1e-310]
    flat[:min(len(specials), flat.size)] = specials[:flat.size]
    rng.shuffle(flat)
    return x.astype(dtype)


def check_relu(x):
    out = fastconv.relu(x)
    assert isinstance(out, np.ndarray) and out.dtype == x.dtype and out.shape == x.shape
    assert out is not x
    np.testing.assert_array_equal(out, relu_ref(x).astype(x.dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4, 5), (1, 1, 1, 1), (2, 3, 17, 19)])
def test_relu(shape, dtype):
    check_relu(relu_input(shape, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relu_simd_threads(dtype, simd, threads):
    """Long enough (odd length) to hit full vectors, the scalar tail and thread splits."""
    check_relu(relu_input((3, 7, 61, 83), dtype, seed=1))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relu_layouts_readonly_unchanged(dtype):
    x = relu_input((2, 5, 9, 7), dtype)
    copy = x.copy()
    want = fastconv.relu(x)
    np.testing.assert_array_equal(x, copy)  # input unchanged (not in place)
    ro = x.copy()
    ro.flags.writeable = False
    variants = {
        "channels_last": np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
        "reversed": np.ascontiguousarray(x[::-1, :, ::-1])[::-1, :, ::-1],
        "sliced": np.repeat(x, 2, axis=3)[..., ::2],
        "readonly": ro,
    }
    for name, xv in variants.items():
        np.testing.assert_array_equal(xv, x)
        np.testing.assert_array_equal(fastconv.relu(xv), want, err_msg=name)


def linear_inputs(n, n_in, n_out, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, n_in)).astype(dtype),
            rng.standard_normal((n_out, n_in)).astype(dtype),
            rng.standard_normal(n_out).astype(dtype))


def check_linear(x, w, b):
    out = fastconv.linear(x, w, b)
    assert isinstance(out, np.ndarray) and out.dtype == x.dtype
    assert out.shape == (x.shape[0], w.shape[0])
    scale = linear_ref(np.abs(x), np.abs(w), None if b is None else np.abs(b))
    assert_close_scaled(out, linear_ref(x, w, b), scale, x.shape[1], x.dtype)
    return out


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=[f"{n}x{i}to{o}" for n, i, o in LINEAR_SHAPES])
def test_linear(shape, dtype, bias, one_thread):
    x, w, b = linear_inputs(*shape, dtype)
    check_linear(x, w, b if bias else None)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", GRID_SHAPES, ids=[f"{n}x{i}to{o}" for n, i, o in GRID_SHAPES])
def test_linear_simd_threads(shape, dtype, simd, threads):
    check_linear(*linear_inputs(*shape, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_linear_bit_identical_across_threads(dtype, simd):
    x, w, b = linear_inputs(96, 515, 130, dtype, seed=2)
    previous = fastconv.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            fastconv.set_num_threads(n)
            outs.append(fastconv.linear(x, w, b))
    finally:
        fastconv.set_num_threads(previous)
    assert np.array_equal(outs[1], outs[0]) and np.array_equal(outs[2], outs[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_linear_layouts_readonly_unchanged(dtype):
    x, w, b = linear_inputs(6, 19, 11, dtype)
    copies = [a.copy() for a in (x, w, b)]
    want = fastconv.linear(x, w, b)
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)

    def ro(a):
        a = a.copy()
        a.flags.writeable = False
        return a

    variants = {
        "transposed": (np.ascontiguousarray(x.T).T, np.ascontiguousarray(w.T).T, b),
        "reversed": (np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1],
                     np.ascontiguousarray(w[::-1])[::-1], np.ascontiguousarray(b[::-1])[::-1]),
        "sliced": (np.repeat(x, 2, axis=1)[:, ::2], np.repeat(w, 3, axis=0)[::3],
                   np.repeat(b, 2)[::2]),
        "readonly": (ro(x), ro(w), ro(b)),
    }
    for name, (xv, wv, bv) in variants.items():
        np.testing.assert_array_equal(fastconv.linear(xv, wv, bv), want, err_msg=name)


# ---------------------------------------------------------------------------
# PyTorch as a second oracle
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relu_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    x = relu_input((2, 3, 9, 11), dtype)
    np.testing.assert_array_equal(fastconv.relu(x), torch.relu(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=[f"{n}x{i}to{o}" for n, i, o in LINEAR_SHAPES])
def test_linear_matches_torch(shape, dtype):
    torch = pytest.importorskip("torch")
    x, w, b = linear_inputs(*shape, dtype)
    want = torch.nn.functional.linear(*(torch.from_numpy(a) for a in (x, w, b))).numpy()
    scale = linear_ref(np.abs(x), np.abs(w), np.abs(b))
    assert_close_scaled(fastconv.linear(x, w, b), want.astype(np.float64), scale, shape[1],
                        dtype, factor=2.0)
