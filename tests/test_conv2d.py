"""fastconv.conv2d against the NumPy reference (and PyTorch when installed).

The full awkward grid runs at the default SIMD level on one thread; a subset runs
across every SIMD level and thread count, which keeps the cross product small.
"""

import functools

import numpy as np
import pytest

import checks
import fastconv
from fastconv.shapes import AWKWARD, LAYERS
from reference import assert_close_scaled, conv2d_ref, conv2d_scale_ref

DTYPES = [np.float32, np.float64]
ALGOS = ["direct", "im2col", "auto"]
CASES = {c["id"]: c for c in AWKWARD}
# Subset for the SIMD x threads grid: edge tiles, groups, depthwise, stride+dilation, >1 block.
GRID_IDS = ["odd_nonsquare", "k1x1", "dil_stride_pad", "groups2", "depthwise_mult2_s2",
            "gemm_blocks"]
# Cases big enough that several threads get work, for the bit-identity test.
THREAD_LAYERS = {
    "gemm_blocks": CASES["gemm_blocks"],
    "depthwise": CASES["depthwise"],
    "fmnist_c2_n4": LAYERS["fmnist_c2"].scaled(N=4),
    "r18_conv1_n2_64": LAYERS["r18_conv1"].scaled(N=2, H=64, W=64),
    "down_s2_n2": LAYERS["down_s2"].scaled(N=2),
    "dw_3x3_n2": LAYERS["dw_3x3"].scaled(N=2),
}


def conv_kwargs(case):
    """conv2d keyword arguments of an AWKWARD dict or a ConvLayer."""
    if isinstance(case, dict):
        return {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
    return case.kwargs()


def shapes_of(case):
    if isinstance(case, dict):
        return case["x"], case["w"]
    return case.x_shape, case.w_shape


def make_inputs(case, dtype, seed=0):
    """Deterministic x, w, b in ``dtype`` (drawn in float64, then rounded)."""
    x_shape, w_shape = shapes_of(case)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b


def reduction_length(w_shape):
    return w_shape[1] * w_shape[2] * w_shape[3]


@functools.lru_cache(maxsize=None)
def expected(case_id, dtype, bias=True):
    """Reference output and tolerance scale for an AWKWARD case (cached)."""
    case = CASES[case_id]
    x, w, b = make_inputs(case, dtype)
    b = b if bias else None
    return (conv2d_ref(x, w, b, **conv_kwargs(case)),
            conv2d_scale_ref(x, w, b, **conv_kwargs(case)))


def check_case(case_id, dtype, algo, bias=True):
    case = CASES[case_id]
    x, w, b = make_inputs(case, dtype)
    out = fastconv.conv2d(x, w, b if bias else None, **conv_kwargs(case), algo=algo)
    ref, scale = expected(case_id, np.dtype(dtype), bias)
    assert isinstance(out, np.ndarray)
    assert out.dtype == dtype
    assert out.shape == ref.shape
    assert_close_scaled(out, ref, scale, reduction_length(w.shape), dtype)


# ---------------------------------------------------------------------------
# Against the reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_conv2d_awkward(case_id, dtype, algo, one_thread):
    check_case(case_id, dtype, algo)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", GRID_IDS)
def test_conv2d_simd_threads(case_id, dtype, algo, simd, threads):
    check_case(case_id, dtype, algo)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case_id", ["basic_3x3", "pad_gt_kernel", "groups3_1x1", "depthwise"])
def test_conv2d_without_bias(case_id, algo):
    check_case(case_id, np.float32, algo, bias=False)


def small_layer(name):
    """A named layer at batch 1 (and a 64x64 image for the ResNet stem)."""
    layer = LAYERS[name].scaled(N=1)
    return layer.scaled(H=64, W=64) if name == "r18_conv1" else layer


@functools.lru_cache(maxsize=None)
def expected_layer(name):
    layer = small_layer(name)
    x, w, b = make_inputs(layer, np.float32)
    return conv2d_ref(x, w, b, **layer.kwargs()), conv2d_scale_ref(x, w, b, **layer.kwargs())


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("name", list(LAYERS))
def test_conv2d_named_layers(name, algo):
    layer = small_layer(name)
    x, w, b = make_inputs(layer, np.float32)
    out = fastconv.conv2d(x, w, b, **layer.kwargs(), algo=algo)
    assert out.shape == (1, layer.OC) + layer.out_hw
    ref, scale = expected_layer(name)
    assert_close_scaled(out, ref, scale, reduction_length(w.shape), np.float32)


# ---------------------------------------------------------------------------
# Consistency between algorithms, SIMD levels and thread counts
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_conv2d_algorithms_agree(case_id, dtype):
    case = CASES[case_id]
    x, w, b = make_inputs(case, dtype)
    outs = {a: fastconv.conv2d(x, w, b, **conv_kwargs(case), algo=a) for a in ALGOS}
    _, scale = expected(case_id, np.dtype(dtype))
    for a in ALGOS[1:]:
        # Both sides are within tolerance of the truth, so allow twice the tolerance.
        assert_close_scaled(outs[a], outs["direct"].astype(np.float64), scale,
                            reduction_length(w.shape), dtype, factor=2.0)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(THREAD_LAYERS))
def test_conv2d_bit_identical_across_threads(name, dtype, algo, simd):
    case = THREAD_LAYERS[name]
    x, w, b = make_inputs(case, dtype)
    previous = fastconv.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            fastconv.set_num_threads(n)
            assert fastconv.get_num_threads() == n
            outs.append(fastconv.conv2d(x, w, b, **conv_kwargs(case), algo=algo))
    finally:
        fastconv.set_num_threads(previous)
    for n, out in zip((2, 3), outs[1:]):
        assert np.array_equal(out, outs[0]), f"{n} threads differ from 1 thread"


# ---------------------------------------------------------------------------
# Argument handling: layouts, read-only, unchanged inputs, padding modes
# ---------------------------------------------------------------------------

LAYOUTS = {**checks.LAYOUTS, "fortran": np.asfortranarray}


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_conv2d_layouts_give_same_result(dtype, layout, algo):
    case = CASES["groups2"]
    x, w, b = make_inputs(case, dtype)
    want = fastconv.conv2d(x, w, b, **conv_kwargs(case), algo=algo)
    make = LAYOUTS[layout]
    xs, ws, bs = make(x), make(w), make(b)
    assert np.array_equal(xs, x) and np.array_equal(ws, w) and np.array_equal(bs, b)
    if layout != "readonly":
        assert not xs.flags.c_contiguous and not ws.flags.c_contiguous
    got = fastconv.conv2d(xs, ws, bs, **conv_kwargs(case), algo=algo)
    assert got.dtype == dtype and got.flags.c_contiguous
    assert np.array_equal(got, want)


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_leaves_inputs_unchanged(algo):
    for case_id in ("k_eq_input_pad", "depthwise", "gemm_blocks"):
        x, w, b = make_inputs(CASES[case_id], np.float32)
        copies = [a.copy() for a in (x, w, b)]
        fastconv.conv2d(x, w, b, **conv_kwargs(CASES[case_id]), algo=algo)
        for a, c in zip((x, w, b), copies):
            assert np.array_equal(a, c), case_id


def test_conv2d_int_and_pair_arguments_agree():
    x, w, b = make_inputs(CASES["k5_s2_p2"], np.float64)
    a = fastconv.conv2d(x, w, b, stride=2, padding=2, dilation=1)
    p = fastconv.conv2d(x, w, b, stride=(2, 2), padding=(2, 2), dilation=(1, 1))
    assert np.array_equal(a, p)


def _same_padding_ref(x, w, b, dilation):
    """'same' as PyTorch: total padding d*(k-1) per axis, the odd pixel at the end."""
    (DH, DW) = dilation
    th, tw = DH * (w.shape[2] - 1), DW * (w.shape[3] - 1)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (th // 2, th - th // 2),
                                       (tw // 2, tw - tw // 2)))
    return conv2d_ref(xp, w, b, dilation=dilation), conv2d_scale_ref(xp, w, b, dilation=dilation)


SAME_ODD = [((3, 3), (1, 1)), ((5, 3), (1, 1)), ((3, 3), (2, 2)), ((1, 5), (1, 2))]
SAME_EVEN = [((2, 2), (1, 1)), ((4, 3), (1, 1)), ((2, 4), (2, 1))]


def _check_same(kernel, dilation, algo):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3) + kernel).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    out = fastconv.conv2d(x, w, b, padding="same", dilation=dilation, algo=algo)
    assert out.shape == (2, 5, 9, 8)
    ref, scale = _same_padding_ref(x, w, b, dilation)
    assert_close_scaled(out, ref, scale, reduction_length(w.shape), np.float32)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("kernel, dilation", SAME_ODD)
def test_conv2d_padding_same_odd_kernel(kernel, dilation, algo):
    _check_same(kernel, dilation, algo)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("kernel, dilation", SAME_EVEN)
def test_conv2d_padding_same_even_kernel(kernel, dilation, algo):
    """Asymmetric: PyTorch puts the extra row/column of padding at the bottom/right."""
    _check_same(kernel, dilation, algo)


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_padding_valid_is_zero_padding(algo):
    x, w, b = make_inputs(CASES["dilation_asym"], np.float64)
    got = fastconv.conv2d(x, w, b, padding="valid", dilation=(2, 3), algo=algo)
    assert np.array_equal(got, fastconv.conv2d(x, w, b, padding=0, dilation=(2, 3), algo=algo))


def test_conv2d_padding_same_rejects_stride():
    x, w, b = make_inputs(CASES["basic_3x3"], np.float32)
    with pytest.raises(ValueError):
        fastconv.conv2d(x, w, b, stride=2, padding="same")


# ---------------------------------------------------------------------------
# PyTorch as a second oracle
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_conv2d_matches_torch(case_id, dtype):
    torch = pytest.importorskip("torch")
    case = CASES[case_id]
    x, w, b = make_inputs(case, dtype)
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                      torch.from_numpy(b), **conv_kwargs(case)).numpy()
    got = fastconv.conv2d(x, w, b, **conv_kwargs(case))
    _, scale = expected(case_id, np.dtype(dtype))
    assert_close_scaled(got, want.astype(np.float64), scale, reduction_length(w.shape), dtype,
                        factor=2.0)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("kernel, dilation", SAME_ODD + SAME_EVEN)
def test_conv2d_padding_same_matches_torch(kernel, dilation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 7, 10))
    w = rng.standard_normal((3, 2) + kernel)
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                      padding="same", dilation=dilation).numpy()
    got = fastconv.conv2d(x, w, padding="same", dilation=dilation)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- out=

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_out_is_written_and_returned(dtype, algo):
    case = CASES["gemm_blocks"]
    x, w, b = make_inputs(case, dtype)
    want = fastconv.conv2d(x, w, b, **conv_kwargs(case), algo=algo)
    out = np.full(want.shape, np.nan, dtype=dtype)
    got = fastconv.conv2d(x, w, b, **conv_kwargs(case), algo=algo, out=out)
    assert got is out
    assert np.array_equal(out, want)
    # reused: the same array again, every element overwritten
    out[...] = 7
    assert fastconv.conv2d(x, w, b, **conv_kwargs(case), algo=algo, out=out) is out
    assert np.array_equal(out, want)


def _bad_outs(x, w, shape):
    return [
        ([1.0], TypeError, "out must be a numpy.ndarray"),
        (np.empty(shape, np.float64), TypeError, "out must have dtype float32"),
        (np.empty(shape[:3] + (shape[3] + 1,), np.float32), ValueError, "shape"),
        (np.empty(shape[::-1], np.float32).T, ValueError, "C-contiguous"),
        (_read_only(np.zeros(shape, np.float32)), ValueError, "writeable"),
    ]


def _read_only(a):
    a.flags.writeable = False
    return a


def test_conv2d_bad_out_is_refused_before_anything_is_written():
    x, w, b = make_inputs(CASES["basic_3x3"], np.float32)
    shape = fastconv.conv2d(x, w, b, padding=1).shape
    for out, exc, pattern in _bad_outs(x, w, shape):
        before = out.copy() if isinstance(out, np.ndarray) else None
        checks.raises_unmodified(exc, pattern, fastconv.conv2d, x, w, b, padding=1, out=out)
        if before is not None:
            assert np.array_equal(out, before, equal_nan=True)


def test_conv2d_out_sharing_memory_with_an_input_is_refused():
    # a 1x1 convolution keeps the shape, so x itself would be a well-formed out
    x = checks.arr((2, 4, 5, 5))
    w = checks.arr((4, 4, 1, 1))
    before = x.copy()
    checks.raises_unmodified(ValueError, "share memory", fastconv.conv2d, x, w, out=x)
    assert np.array_equal(x, before)
    buf = checks.arr(300)
    x2, out = buf[:200].reshape(2, 4, 5, 5), buf[100:].reshape(2, 4, 5, 5)  # overlapping
    before = buf.copy()
    checks.raises_unmodified(ValueError, "share memory", fastconv.conv2d, x2, w, out=out)
    assert np.array_equal(buf, before)


def test_conv2d_argument_cache_keeps_every_check():
    """Plain arguments are answered from a cache; bools, floats and lists must still be
    refused or accepted exactly as without it."""
    x, w, b = make_inputs(CASES["basic_3x3"], np.float32)
    want = fastconv.conv2d(x, w, b, stride=1, padding=1)
    for _ in range(2):  # the second round hits the cache
        assert np.array_equal(fastconv.conv2d(x, w, b, stride=1, padding=1), want)
        assert np.array_equal(fastconv.conv2d(x, w, b, stride=[1, 1], padding=(1, 1)), want)
        assert np.array_equal(fastconv.conv2d(x, w, b, stride=np.int64(1), padding=1), want)
        for bad in (True, 1.0, (1, True), (1, 1.0)):
            with pytest.raises(TypeError, match="stride"):
                fastconv.conv2d(x, w, b, stride=bad, padding=1)
        with pytest.raises(ValueError, match="algo"):
            fastconv.conv2d(x, w, b, padding=1, algo="winograd")


def test_conv2d_geometry_cache_answers_only_what_was_checked():
    """Output sizes are cached per (shapes, stride, padding, dilation, groups); a new
    shape or geometry is checked again, and a bad one raises on every call."""
    x, w, b = make_inputs(CASES["basic_3x3"], np.float32)
    N, C, H, W = x.shape
    for _ in range(2):
        assert fastconv.conv2d(x, w, b, padding=1).shape == (N, w.shape[0], H, W)
        assert fastconv.conv2d(x, w, b).shape == (N, w.shape[0], H - 2, W - 2)
        small = np.ascontiguousarray(x[:, :, :2, :2])
        with pytest.raises(ValueError, match="kernel"):
            fastconv.conv2d(small, w, b)        # the same arguments, an input too small
        with pytest.raises(ValueError, match="kernel"):
            fastconv.conv2d(x, w, b, dilation=H)  # the same shapes, a window too wide
        gx, gw, gb = fastconv.conv2d_backward(np.ones((N, w.shape[0], H, W), np.float32),
                                              x, w, padding=1)
        assert gx.shape == x.shape and gw.shape == w.shape
        with pytest.raises(ValueError):
            fastconv.conv2d_backward(np.ones((N, w.shape[0], H, W), np.float32), x, w)
