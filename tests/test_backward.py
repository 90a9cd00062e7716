"""Backward passes: conv2d_backward, max_pool2d_backward, relu_backward, linear_backward.

Oracles, from the most independent to the most specific:

- central finite differences in float64 of fastconv's own forward (gradcheck.py);
- the plain NumPy backward references of reference.py, on the whole awkward grid,
  both dtypes and every algorithm, with tolerances scaled by the magnitude of the
  terms summed (the same reference run on absolute values);
- adjoint identities <conv2d(x, w), y> == <x, grad_x(y)> == <w, grad_w(y)>, which
  catch transposed or flipped kernels whatever the shapes;
- PyTorch autograd, when installed.

Then the properties DESIGN.md and issue 3 promise: the same bits for 1, 2 and 3
threads at every SIMD level (forward and backward), correct results from several
Python threads at once, `needs=` subsets that return None for what was not asked
and the same values for the rest, inputs never modified, any layout accepted.
"""

import itertools
import threading

import numpy as np
import pytest

import checks
import fastconv
from fastconv.shapes import AWKWARD, LAYERS, POOL_CASES
from gradcheck import check_backward
from reference import (
    assert_close_scaled,
    conv2d_backward_ref,
    linear_backward_ref,
    max_pool2d_backward_ref,
    max_pool2d_ref,
    relu_backward_ref,
)

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
ALGOS = ["im2col", "direct", "auto"]
EXPLICIT_ALGOS = ["im2col", "direct"]
NEEDS = list(itertools.product((False, True), repeat=3))


# ---------------------------------------------------------------------------
# Cases: the awkward grid plus padding='same' (even kernels pad one more at the
# bottom/right, as PyTorch does)
# ---------------------------------------------------------------------------

def _same(id, x, w, dilation=(1, 1), groups=1):
    return {"id": id, "x": x, "w": w, "stride": (1, 1), "padding": "same",
            "dilation": dilation, "groups": groups}


SAME_CASES = [
    _same("same_k2", (2, 3, 7, 6), (4, 3, 2, 2)),
    _same("same_k4x3", (1, 3, 9, 8), (5, 3, 4, 3)),
    _same("same_k2x4_dil2x1", (2, 2, 9, 8), (3, 2, 2, 4), dilation=(2, 1)),
    _same("same_k3_dil2", (1, 3, 8, 7), (4, 3, 3, 3), dilation=(2, 2)),
    _same("same_k1x5_dil1x2", (1, 2, 6, 11), (3, 2, 1, 5), dilation=(1, 2)),
    _same("same_k2x3_groups2", (2, 4, 7, 8), (6, 2, 2, 3), groups=2),
    _same("same_k4_depthwise", (1, 5, 8, 9), (5, 1, 4, 4), groups=5),
]

CASES = {c["id"]: c for c in AWKWARD + SAME_CASES}
# Finite differences cost two forward calls per element of x, w and b: small cases only.
FD_IDS = [i for i, c in CASES.items() if np.prod(c["x"]) + np.prod(c["w"]) <= 2000]


def conv_kwargs(case):
    return {k: case[k] for k in ("stride", "padding", "dilation", "groups")}


def _layer_case(id, layer):
    """A ConvLayer of fastconv.shapes as a case dict."""
    return {"id": id, "x": layer.x_shape, "w": layer.w_shape,
            "stride": (layer.stride,) * 2, "padding": (layer.padding,) * 2,
            "dilation": (1, 1), "groups": layer.groups}


def _explicit_padding(case):
    """((top, bottom), (left, right)) zero padding of a case, 'same' resolved as PyTorch."""
    if case["padding"] != "same":
        (ph, pw) = case["padding"]
        return (ph, ph), (pw, pw)
    (DH, DW), (KH, KW) = case["dilation"], case["w"][2:]
    th, tw = DH * (KH - 1), DW * (KW - 1)
    return (th // 2, th - th // 2), (tw // 2, tw - tw // 2)


def out_shape(case):
    (pt, pb), (pl, pr) = _explicit_padding(case)
    N, _, H, W = case["x"]
    OC, _, KH, KW = case["w"]
    (SH, SW), (DH, DW) = case["stride"], case["dilation"]
    return (N, OC, (H + pt + pb - DH * (KH - 1) - 1) // SH + 1,
            (W + pl + pr - DW * (KW - 1) - 1) // SW + 1)


def ref_backward(case, gout, x, w):
    """(gx, gw, gb) in float64 from reference.py, with asymmetric padding done by hand."""
    (pt, pb), (pl, pr) = _explicit_padding(case)
    H, W = x.shape[2:]
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    gxp, gw, gb = conv2d_backward_ref(gout, xp, w, stride=case["stride"], padding=0,
                                      dilation=case["dilation"], groups=case["groups"])
    return gxp[:, :, pt:pt + H, pl:pl + W], gw, gb


def ref_scales(case, gout, x, w):
    """Magnitudes of the terms each gradient sums: the reference on absolute values."""
    return ref_backward(case, np.abs(np.asarray(gout, np.float64)),
                        np.abs(np.asarray(x, np.float64)), np.abs(np.asarray(w, np.float64)))


def reduction_lengths(case):
    """Terms per element of (gx, gw, gb)."""
    N, OC, OH, OW = out_shape(case)
    _, _, KH, KW = case["w"]
    return (OC // case["groups"]) * KH * KW, N * OH * OW, N * OH * OW


def make_inputs(case, dtype, seed=0):
    """(grad_out, x, w) of a case in dtype (drawn in float64, then rounded)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    gout = rng.standard_normal(out_shape(case)).astype(dtype)
    return gout, x, w


def check_grads(case, grads, gout, x, w, dtype, factor=1.0, needs=(True, True, True)):
    """Each gradient asked for has the right type and matches the reference."""
    refs = ref_backward(case, gout, x, w)
    scales = ref_scales(case, gout, x, w)
    shapes = (x.shape, w.shape, (w.shape[0],))
    for k, (got, ref, scale, n, shape, asked) in enumerate(
            zip(grads, refs, scales, reduction_lengths(case), shapes, needs)):
        if not asked:
            assert got is None, f"gradient {k} not asked for, got {type(got)}"
            continue
        assert isinstance(got, np.ndarray), f"gradient {k}: {type(got)}"
        assert got.dtype == dtype and got.shape == shape and got.flags.c_contiguous, \
            (k, got.dtype, got.shape)
        assert_close_scaled(got, ref, scale, n, dtype, factor)


# ---------------------------------------------------------------------------
# This file's output-size helper agrees with fastconv's forward ('same' cases)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case_id", [c["id"] for c in SAME_CASES])
def test_same_cases_keep_the_input_size(case_id):
    case = CASES[case_id]
    assert out_shape(case)[2:] == case["x"][2:]
    _, x, w = make_inputs(case, np.float64)
    assert fastconv.conv2d(x, w, **conv_kwargs(case)).shape == out_shape(case)


# ---------------------------------------------------------------------------
# Finite differences (float64)
# ---------------------------------------------------------------------------

def _conv_fd(case, algo):
    kw = conv_kwargs(case)
    _, x, w = make_inputs(case, np.float64, seed=1)
    b = np.random.default_rng(2).standard_normal(case["w"][0])
    check_backward(
        lambda x, w, b: fastconv.conv2d(x, w, b, **kw, algo=algo),
        lambda g, x, w, b: fastconv.conv2d_backward(g, x, w, **kw, algo=algo),
        [x, w, b], seed=3)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case_id", FD_IDS)
def test_conv2d_backward_finite_differences(case_id, algo, one_thread):
    _conv_fd(CASES[case_id], algo)


POOL = {c["id"]: c for c in POOL_CASES}


def pool_kwargs(case):
    return {k: case[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}


def distinct_values(shape, seed=0, spacing=1e-2):
    """A random permutation of evenly spaced values: no ties, gaps far above FD's eps."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * spacing - n * spacing / 2) \
        .reshape(shape)


@pytest.mark.parametrize("case_id", list(POOL))
def test_max_pool2d_backward_finite_differences(case_id):
    case = POOL[case_id]
    kw = pool_kwargs(case)
    x = distinct_values(case["x"])

    def backward(g, x):
        _, idx = fastconv.max_pool2d(x, **kw, return_indices=True)
        return (fastconv.max_pool2d_backward(g, idx, x.shape),)

    check_backward(lambda x: fastconv.max_pool2d(x, **kw), backward, [x], seed=1)


def test_relu_backward_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 7))
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # FD needs no kink within eps
    check_backward(fastconv.relu, lambda g, x: (fastconv.relu_backward(g, x),), [x])


@pytest.mark.parametrize("n, fin, fout", [(1, 1, 1), (5, 7, 3), (9, 33, 17)])
def test_linear_backward_finite_differences(n, fin, fout):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s) for s in ((n, fin), (fout, fin), (fout,)))
    check_backward(fastconv.linear, lambda g, x, w, b: fastconv.linear_backward(g, x, w),
                   [x, w, b])


# ---------------------------------------------------------------------------
# Against reference.py on the whole grid
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case_id", list(CASES))
def test_conv2d_backward_matches_reference(case_id, dtype, algo, one_thread):
    case = CASES[case_id]
    gout, x, w = make_inputs(case, dtype)
    grads = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case), algo=algo)
    assert isinstance(grads, tuple) and len(grads) == 3
    check_grads(case, grads, gout, x, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("KW", [2, 3, 4, 7])
def test_im2col_input_gradient_stride_2_every_edge(KW, dtype):
    """The im2col input gradient adds neighbouring kernel columns of a stride-2
    convolution as one run of (even, odd) pairs, by vectors where both columns are
    inside the image and one at a time at the edges. Every width from below a vector
    to several, and every padding, so that either column of a pair may start later or
    end earlier. Small integers make every sum exact: the result must equal the
    reference exactly."""
    rng = np.random.default_rng(KW)
    for W in range(KW, KW + 19):
        for PW in range(KW):
            x = rng.integers(-3, 4, (1, 2, 3, W)).astype(dtype)
            w = rng.integers(-3, 4, (3, 2, 2, KW)).astype(dtype)
            kw = dict(stride=(1, 2), padding=(1, PW))
            gout = rng.integers(-3, 4, fastconv.conv2d(x, w, **kw).shape).astype(dtype)
            gx, _, _ = fastconv.conv2d_backward(gout, x, w, **kw, algo="im2col",
                                                needs=(True, False, False))
            ref, _, _ = conv2d_backward_ref(gout, x, w, **kw)
            np.testing.assert_array_equal(gx, ref, err_msg=f"W={W} PW={PW}")


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case_id", list(CASES))
def test_conv2d_backward_needs_subsets(case_id, dtype, algo):
    """Every one of the 8 subsets: None exactly where not asked, the full call's bits
    elsewhere."""
    case = CASES[case_id]
    gout, x, w = make_inputs(case, dtype)
    kw = conv_kwargs(case)
    full = fastconv.conv2d_backward(gout, x, w, **kw, algo=algo)
    check_grads(case, full, gout, x, w, dtype)
    for needs in NEEDS:
        got = fastconv.conv2d_backward(gout, x, w, **kw, algo=algo, needs=needs)
        assert isinstance(got, tuple) and len(got) == 3
        for k in range(3):
            if needs[k]:
                assert isinstance(got[k], np.ndarray), (needs, k)
                assert np.array_equal(got[k], full[k]), (needs, k)
            else:
                assert got[k] is None, (needs, k)


@pytest.mark.parametrize("needs", [[True, False, True], (np.bool_(False), np.bool_(True),
                                                         np.bool_(False))],
                         ids=["list", "numpy-bools"])
def test_conv2d_backward_needs_as_list_or_numpy_bools(needs):
    case = CASES["groups2"]
    gout, x, w = make_inputs(case, np.float64)
    full = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case))
    got = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case), needs=needs)
    for k in range(3):
        assert (got[k] is None) == (not needs[k])
        if needs[k]:
            assert np.array_equal(got[k], full[k])


@pytest.mark.parametrize("case_id", list(CASES))
def test_conv2d_backward_auto_is_made_of_the_algorithms(case_id):
    case = CASES[case_id]
    gout, x, w = make_inputs(case, np.float32)
    kw = conv_kwargs(case)
    auto = fastconv.conv2d_backward(gout, x, w, **kw, algo="auto")
    others = [fastconv.conv2d_backward(gout, x, w, **kw, algo=a) for a in EXPLICIT_ALGOS]
    # 'auto' may pick one algorithm for grad_x and another for (grad_w, grad_b); for
    # grad_x that may be Winograd, an algorithm of 'auto' only (tests/test_winograd.py).
    if fastconv.conv2d_algo(w.shape, **kw, grad="input") == "winograd":
        from fastconv import _ops
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
        winograd_gx = _ops.conv2d_backward(
            gout, x, w, pair(kw["stride"]), pair(kw["padding"]), pair(kw["dilation"]),
            kw["groups"], False, _ops.ALGO_WINOGRAD, _ops.ALGO_IM2COL, (True, False, False),
            fastconv.get_num_threads())[0]
        others.append((winograd_gx, None, None))
    assert any(np.array_equal(auto[0], other[0]) for other in others)
    assert any(np.array_equal(auto[1], other[1]) and np.array_equal(auto[2], other[2])
               for other in others)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_conv2d_backward_empty_batch(dtype, algo):
    case = CASES["groups2"]
    _, x, w = make_inputs(case, dtype)
    x = x[:0]
    gout = np.zeros((0,) + out_shape(case)[1:], dtype)
    gx, gw, gb = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case), algo=algo)
    assert gx.shape == x.shape and gx.dtype == dtype
    assert gw.dtype == dtype and np.array_equal(gw, np.zeros_like(w))
    assert gb.dtype == dtype and np.array_equal(gb, np.zeros(w.shape[0], dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case_id", list(POOL))
def test_max_pool2d_backward_round_trip(case_id, dtype, one_thread):
    """Indices from max_pool2d (ties included) scattered back, against the reference."""
    case = POOL[case_id]
    rng = np.random.default_rng(0)
    for x in (rng.standard_normal(case["x"]).astype(dtype),
              rng.integers(-2, 3, size=case["x"]).astype(dtype)):  # many ties
        out, idx = fastconv.max_pool2d(x, **pool_kwargs(case), return_indices=True)
        _, ref_idx = max_pool2d_ref(x, **pool_kwargs(case))
        np.testing.assert_array_equal(idx, ref_idx)
        gout = rng.standard_normal(out.shape).astype(dtype)
        gx = fastconv.max_pool2d_backward(gout, idx, x.shape)
        assert gx.dtype == dtype and gx.shape == x.shape and gx.flags.c_contiguous
        ref = max_pool2d_backward_ref(gout, idx, x.shape)
        # At most KH*KW terms per element.
        k = np.prod(np.broadcast_to(case["kernel_size"], 2))
        assert_close_scaled(gx, ref, max_pool2d_backward_ref(np.abs(gout), idx, x.shape),
                            k, dtype)
        # What no window picked gets exactly zero.
        hit = np.zeros(x.size, bool).reshape(x.shape[0] * x.shape[1], -1)
        hit[np.repeat(np.arange(hit.shape[0]), idx[0, 0].size), idx.reshape(-1)] = True
        assert np.all(gx.reshape(hit.shape)[~hit] == 0)


def test_max_pool2d_backward_overlapping_windows_accumulate():
    """One input position is the maximum of 9 windows (k3 s1) or 4 (k3 s2): its
    gradient is the sum of theirs; every other position gets exactly 0."""
    for dtype in DTYPES:
        x = np.zeros((1, 1, 5, 5), dtype)
        x[0, 0, 2, 2] = 10
        out, idx = fastconv.max_pool2d(x, 3, stride=1, return_indices=True)
        assert out.shape == (1, 1, 3, 3) and np.all(idx == 2 * 5 + 2)
        gout = np.arange(1, 10, dtype=dtype).reshape(1, 1, 3, 3)
        gx = fastconv.max_pool2d_backward(gout, idx, x.shape)
        want = np.zeros_like(x)
        want[0, 0, 2, 2] = 45
        assert np.array_equal(gx, want)

        x = np.random.default_rng(0).uniform(-1, 0, (2, 3, 7, 7)).astype(dtype)
        x[:, :, 2, 2] = 5
        out, idx = fastconv.max_pool2d(x, 3, stride=2, return_indices=True)
        assert np.all(idx[:, :, :2, :2] == 2 * 7 + 2)
        gout = np.random.default_rng(1).integers(1, 9, out.shape).astype(dtype)
        gx = fastconv.max_pool2d_backward(gout, idx, x.shape)
        assert np.array_equal(gx[:, :, 2, 2], gout[:, :, :2, :2].sum(axis=(2, 3)))
        # With ones, every position counts the windows it is the maximum of.
        counts = fastconv.max_pool2d_backward(np.ones_like(out), idx, x.shape)
        assert np.all(counts[:, :, 2, 2] == 4)
        assert counts.sum() == out[0, 0].size * 6


def test_max_pool2d_backward_padding_and_dilation_accumulate():
    """Overlapping dilated windows with padding: totals per plane are preserved."""
    x = distinct_values((2, 3, 10, 11))
    out, idx = fastconv.max_pool2d(x, 3, stride=1, padding=1, dilation=2, return_indices=True)
    gout = np.random.default_rng(0).standard_normal(out.shape)
    gx = fastconv.max_pool2d_backward(gout, idx, x.shape)
    np.testing.assert_allclose(gx.sum(axis=(2, 3)), gout.sum(axis=(2, 3)), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(gx, max_pool2d_backward_ref(gout, idx, x.shape), rtol=1e-13,
                               atol=1e-14)


@pytest.mark.parametrize("idx_dtype", [np.int32, np.int16, np.uint8, np.uint64])
def test_max_pool2d_backward_other_integer_index_dtypes(idx_dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    out, idx = fastconv.max_pool2d(x, 3, stride=1, return_indices=True)
    want = fastconv.max_pool2d_backward(out, idx, x.shape)
    assert np.array_equal(fastconv.max_pool2d_backward(out, idx.astype(idx_dtype), x.shape),
                          want)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_max_pool2d_backward_empty(dtype):
    gx = fastconv.max_pool2d_backward(np.zeros((0, 3, 2, 2), dtype),
                                      np.zeros((0, 3, 2, 2), np.int64), (0, 3, 4, 4))
    assert gx.shape == (0, 3, 4, 4) and gx.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relu_backward_matches_reference(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 17, 19))
    x.reshape(-1)[:6] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-310]
    rng.shuffle(x.reshape(-1))
    x = x.astype(dtype)
    gout = rng.standard_normal(x.shape).astype(dtype)
    gx = fastconv.relu_backward(gout, x)
    assert gx.dtype == dtype and gx.shape == x.shape
    np.testing.assert_array_equal(gx, relu_backward_ref(gout, x).astype(dtype))


@pytest.mark.parametrize("shape", [(7,), (3, 5), (1, 1, 1, 1), (2, 3, 4, 5, 6)])
def test_relu_backward_any_rank(shape):
    rng = np.random.default_rng(0)
    x, gout = rng.standard_normal(shape), rng.standard_normal(shape)
    np.testing.assert_array_equal(fastconv.relu_backward(gout, x), relu_backward_ref(gout, x))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("n, fin, fout", [(1, 1, 1), (1, 7, 13), (5, 33, 17), (64, 128, 96),
                                          (3, 300, 5)])
def test_linear_backward_matches_reference(n, fin, fout, dtype):
    rng = np.random.default_rng(0)
    gout, x, w = (rng.standard_normal(s).astype(dtype) for s in ((n, fout), (n, fin),
                                                                  (fout, fin)))
    refs = linear_backward_ref(gout, x, w)
    scales = linear_backward_ref(np.abs(gout), np.abs(x), np.abs(w))
    full = fastconv.linear_backward(gout, x, w)
    for got, ref, scale, k in zip(full, refs, scales, (fout, n, n)):
        assert got.dtype == dtype
        assert_close_scaled(got, ref, scale, k, dtype)
    for needs in NEEDS:
        got = fastconv.linear_backward(gout, x, w, needs=needs)
        for k in range(3):
            assert (got[k] is None) == (not needs[k]), (needs, k)
            if needs[k]:
                assert np.array_equal(got[k], full[k]), (needs, k)


@pytest.mark.parametrize("algo", ["im2col", "direct", "auto"])
@pytest.mark.parametrize("kwargs", [{}, {"stride": 2}, {"stride": 3}, {"dilation": 2},
                                    {"stride": 2, "padding": 1}],
                         ids=["valid", "stride2", "stride3", "dilation2", "stride2_pad1"])
def test_conv2d_backward_nonfinite_weight_reaches_only_its_taps(kwargs, algo):
    """An inf weight tap makes grad_x non-finite only where that tap read the input."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 7, 7))
    w = rng.standard_normal((3, 2, 2, 2))
    w[1, 0, 0, 0] = np.inf
    gout = rng.standard_normal(fastconv.conv2d(x, w, **kwargs).shape)
    gx = fastconv.conv2d_backward(gout, x, w, **kwargs, algo=algo, needs=(True, False, False))[0]
    case = {"x": x.shape, "w": w.shape, "stride": _pair2(kwargs.get("stride", 1)),
            "padding": _pair2(kwargs.get("padding", 0)),
            "dilation": _pair2(kwargs.get("dilation", 1)), "groups": 1}
    ref = ref_backward(case, gout, x, w)[0]
    np.testing.assert_array_equal(np.isfinite(gx), np.isfinite(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(gx[finite], ref[finite], rtol=1e-12, atol=1e-12)


def _pair2(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


@pytest.mark.parametrize("algo", EXPLICIT_ALGOS)
def test_conv2d_backward_nonfinite_grad_out_and_x(algo):
    """NaN in x never reaches grad_x (it does not depend on x); inf in grad_out spreads as
    in the reference."""
    case = CASES["dil_stride_pad"]
    gout, x, w = make_inputs(case, np.float64)
    x[0, 1, 3, 4] = np.nan
    gout[0, 2, 1, 1] = np.inf
    got = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case), algo=algo)
    ref = ref_backward(case, gout, x, w)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r))
        np.testing.assert_array_equal(np.isinf(g), np.isinf(r))
    x2 = x.copy()
    x2[0, 1, 3, 4] = 0
    gout2 = gout.copy()
    gout2[0, 2, 1, 1] = 0
    assert np.array_equal(
        fastconv.conv2d_backward(gout2, x, w, **conv_kwargs(case), algo=algo)[0],
        fastconv.conv2d_backward(gout2, x2, w, **conv_kwargs(case), algo=algo)[0])


# ---------------------------------------------------------------------------
# Adjoint identities (float64): catch transposed / flipped kernels
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("algo", EXPLICIT_ALGOS)
@pytest.mark.parametrize("case_id", list(CASES))
def test_conv2d_adjoint(case_id, algo):
    """<conv2d(x, w), y> == <x, grad_x(y)> == <w, grad_w(y)>; <b, grad_b(y)> too."""
    case = CASES[case_id]
    kw = conv_kwargs(case)
    y, x, w = make_inputs(case, np.float64, seed=4)
    b = np.random.default_rng(5).standard_normal(w.shape[0])
    lhs = np.vdot(fastconv.conv2d(x, w, **kw, algo=algo), y)
    gx = fastconv.conv2d_backward(y, x, w, **kw, algo=algo, needs=(True, False, False))[0]
    gw = fastconv.conv2d_backward(y, x, w, **kw, algo=algo, needs=(False, True, False))[1]
    gb = fastconv.conv2d_backward(y, x, w, **kw, algo=algo, needs=(False, False, True))[2]
    # Every product sums |y| * |x| * |w| terms; rounding is relative to their total.
    scale = np.vdot(np.abs(y), fastconv.conv2d(np.abs(x), np.abs(w), **kw, algo=algo))
    tol = 1e-13 * scale
    assert abs(np.vdot(x, gx) - lhs) <= tol, (np.vdot(x, gx), lhs, tol)
    assert abs(np.vdot(w, gw) - lhs) <= tol, (np.vdot(w, gw), lhs, tol)
    with_bias = np.vdot(fastconv.conv2d(x, w, b, **kw, algo=algo), y) - lhs
    assert abs(np.vdot(b, gb) - with_bias) <= tol + 1e-13 * np.vdot(np.abs(b), np.abs(gb))


def test_linear_adjoint():
    rng = np.random.default_rng(0)
    x, w, y = rng.standard_normal((7, 13)), rng.standard_normal((5, 13)), \
        rng.standard_normal((7, 5))
    lhs = np.vdot(fastconv.linear(x, w), y)
    gx, gw, _ = fastconv.linear_backward(y, x, w)
    assert abs(np.vdot(x, gx) - lhs) <= 1e-13 * np.vdot(np.abs(x) @ np.abs(w).T, np.abs(y))
    assert abs(np.vdot(w, gw) - lhs) <= 1e-13 * np.vdot(np.abs(x) @ np.abs(w).T, np.abs(y))


# ---------------------------------------------------------------------------
# PyTorch autograd as a second oracle
# ---------------------------------------------------------------------------

def _torch_conv_grads(torch, case, gout, x, w, b):
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = torch.nn.functional.conv2d(tx, tw, tb, **conv_kwargs(case))
    assert tuple(y.shape) == gout.shape
    return [g.numpy() for g in torch.autograd.grad(y, (tx, tw, tb), torch.from_numpy(gout))]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case_id", list(CASES))
def test_conv2d_backward_matches_torch(case_id, dtype, algo):
    torch = pytest.importorskip("torch")
    case = CASES[case_id]
    gout, x, w = make_inputs(case, dtype)
    b = np.zeros(w.shape[0], dtype)
    want = _torch_conv_grads(torch, case, gout, x, w, b)
    got = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case), algo=algo)
    scales = ref_scales(case, gout, x, w)
    for g, t, scale, n in zip(got, want, scales, reduction_lengths(case)):
        assert g.dtype == t.dtype
        # Both sides within tolerance of the truth: twice the tolerance between them.
        assert_close_scaled(g, t.astype(np.float64), scale, n, dtype, factor=2.0)


POOL_TORCH = [dict(c, id=c["id"]) for c in POOL_CASES] + [
    {"id": "overlap_k3_s1", "x": (2, 3, 7, 8), "kernel_size": 3, "stride": 1, "padding": 1,
     "dilation": 1, "ceil_mode": False},
    {"id": "overlap_k4_s2_ceil_dil", "x": (1, 2, 12, 11), "kernel_size": (4, 3),
     "stride": (2, 1), "padding": (2, 1), "dilation": (1, 2), "ceil_mode": True},
]


@pytest.mark.parametrize("kind", ["random", "ties"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", POOL_TORCH, ids=[c["id"] for c in POOL_TORCH])
def test_max_pool2d_backward_matches_torch(case, dtype, kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(case["x"]) if kind == "random"
         else rng.integers(-1, 2, size=case["x"])).astype(dtype)
    kw = pool_kwargs(case)
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = torch.nn.functional.max_pool2d(tx, return_indices=True, **kw)
    gout = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    (tgx,) = torch.autograd.grad(ty, tx, torch.from_numpy(gout))
    out, idx = fastconv.max_pool2d(x, return_indices=True, **kw)
    np.testing.assert_array_equal(idx, tidx.numpy())
    gx = fastconv.max_pool2d_backward(gout, idx, x.shape)
    assert gx.dtype == dtype
    k = np.prod(np.broadcast_to(case["kernel_size"], 2))
    assert_close_scaled(gx, tgx.numpy().astype(np.float64),
                        max_pool2d_backward_ref(np.abs(gout), idx, x.shape), k, dtype, 2.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relu_backward_matches_torch(dtype):
    """Exact zeros of both signs get 0, NaN passes the gradient, as torch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 9, 7))
    flat = x.reshape(-1)
    flat[::7] = 0.0
    flat[1::11] = -0.0
    flat[2::13] = np.nan
    flat[3::17] = np.inf
    flat[4::19] = -np.inf
    x = x.astype(dtype)
    gout = rng.standard_normal(x.shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    (want,) = torch.autograd.grad(torch.relu(tx), tx, torch.from_numpy(gout))
    got = fastconv.relu_backward(gout, x)
    np.testing.assert_array_equal(got, want.numpy())
    assert np.all(got[x == 0] == 0)
    assert np.array_equal(got[np.isnan(x)], gout[np.isnan(x)])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("n, fin, fout", [(1, 1, 1), (5, 33, 17), (64, 128, 96)])
def test_linear_backward_matches_torch(n, fin, fout, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    gout, x, w, b = (rng.standard_normal(s).astype(dtype)
                     for s in ((n, fout), (n, fin), (fout, fin), (fout,)))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    want = torch.autograd.grad(torch.nn.functional.linear(tx, tw, tb), (tx, tw, tb),
                               torch.from_numpy(gout))
    scales = linear_backward_ref(np.abs(gout), np.abs(x), np.abs(w))
    for got, t, scale, k in zip(fastconv.linear_backward(gout, x, w), want, scales,
                                (fout, n, n)):
        assert_close_scaled(got, t.numpy().astype(np.float64), scale, k, dtype, 2.0)


# ---------------------------------------------------------------------------
# The same bits for 1, 2 and 3 threads, every SIMD level
# ---------------------------------------------------------------------------

THREAD_CASES = {
    "gemm_blocks": CASES["gemm_blocks"],
    "depthwise_mult2_s2_n1": CASES["depthwise_mult2_s2"],
    "same_k2x3_groups2": CASES["same_k2x3_groups2"],
    # Batch >= 4: the weight-gradient reduction over the batch really splits into chunks.
    "fmnist_c2_n4": _layer_case("fmnist_c2_n4", LAYERS["fmnist_c2"].scaled(N=4)),
    "r18_conv1_n4_32": _layer_case("r18_conv1_n4_32",
                                   LAYERS["r18_conv1"].scaled(N=4, H=32, W=32)),
    "dw_3x3_n5_12": _layer_case("dw_3x3_n5_12", LAYERS["dw_3x3"].scaled(N=5, H=12, W=12)),
    # Batch 1: any split is over tiles of one image.
    "r18_l2_n1_14": _layer_case("r18_l2_n1_14", LAYERS["r18_l2"].scaled(N=1, H=14, W=14)),
    # One tile per image and fewer images than threads: output channels split too.
    "r50_1x1_n1": _layer_case("r50_1x1_n1", LAYERS["r50_1x1"].scaled(N=1, H=7, W=7)),
    # Many small images: more images than chunks.
    "many_images": {"id": "many_images", "x": (37, 6, 9, 8), "w": (8, 3, 3, 3),
                    "stride": (2, 1), "padding": (1, 2), "dilation": (1, 2), "groups": 2},
}


def _run_all(case, x, w, b, gout, algo):
    kw = conv_kwargs(case)
    return (fastconv.conv2d(x, w, b, **kw, algo=algo),) + \
        fastconv.conv2d_backward(gout, x, w, **kw, algo=algo)


@pytest.mark.parametrize("algo", EXPLICIT_ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", list(THREAD_CASES))
def test_conv2d_bit_identical_across_threads(name, dtype, algo, simd):
    case = THREAD_CASES[name]
    gout, x, w = make_inputs(case, dtype)
    b = np.random.default_rng(1).standard_normal(w.shape[0]).astype(dtype)
    previous = fastconv.get_num_threads()
    try:
        results = {}
        for n in (1, 2, 3):
            fastconv.set_num_threads(n)
            assert fastconv.get_num_threads() == n
            results[n] = _run_all(case, x, w, b, gout, algo)
    finally:
        fastconv.set_num_threads(previous)
    for n in (2, 3):
        for what, a, ref in zip(("out", "grad_x", "grad_w", "grad_b"), results[n], results[1]):
            assert np.array_equal(a, ref), f"{what}: {n} threads differ from 1 thread"
    # And the answer is right (once per case, at this SIMD level).
    check_grads(case, results[1][1:], gout, x, w, dtype)


@pytest.mark.parametrize("algo", EXPLICIT_ALGOS)
def test_conv2d_bit_identical_with_more_threads_than_work(algo):
    """16 threads (more than images, chunks or cores) still give the 1-thread bits."""
    case = THREAD_CASES["fmnist_c2_n4"]
    gout, x, w = make_inputs(case, np.float32)
    previous = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        want = _run_all(case, x, w, None, gout, algo)
        fastconv.set_num_threads(16)
        got = _run_all(case, x, w, None, gout, algo)
    finally:
        fastconv.set_num_threads(previous)
    for a, ref in zip(got, want):
        assert np.array_equal(a, ref)


@pytest.mark.parametrize("algo", EXPLICIT_ALGOS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_conv2d_backward_bit_identical_with_capped_partial_sums(dtype, algo):
    """A 512x512x3x3 weight: 16 per-chunk partial sums would pass 64 MiB, so the
    weight gradient uses fewer chunks; still the same bits for 1, 2 and 3 threads."""
    case = {"id": "big_weight", "x": (5, 512, 4, 4), "w": (512, 512, 3, 3), "stride": (1, 1),
            "padding": (1, 1), "dilation": (1, 1), "groups": 1}
    gout, x, w = make_inputs(case, dtype)
    previous = fastconv.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            fastconv.set_num_threads(n)
            results.append(fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case), algo=algo,
                                                    needs=(False, True, True)))
    finally:
        fastconv.set_num_threads(previous)
    for res in results[1:]:
        assert np.array_equal(res[1], results[0][1]) and np.array_equal(res[2], results[0][2])
    # The centre tap (1, 1) of a 3x3 kernel with padding 1 and stride 1 meets x unshifted.
    gw_ref = np.einsum("nohw,nchw->oc", gout.astype(np.float64), x.astype(np.float64))
    assert_close_scaled(results[0][1][:, :, 1, 1], gw_ref,
                        np.einsum("nohw,nchw->oc", np.abs(gout).astype(np.float64),
                                  np.abs(x).astype(np.float64)), 5 * 16, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("kernel", [1, 3])
def test_conv2d_backward_im2col_weight_split_by_rows_or_by_images(dtype, kernel):
    """A batch of at most 16 small images: the im2col weight gradient adds the images'
    products to dweight in order, with the team split over the output channels (1, 2
    and 3 threads: 256 channels are enough rows) or, with more threads than that
    suits (7), over the images into partial sums; both give the same bits."""
    case = {"id": "rows_or_images", "x": (5, 24, 9, 9), "w": (256, 24, kernel, kernel),
            "stride": (1, 1), "padding": (kernel // 2, kernel // 2), "dilation": (1, 1),
            "groups": 1}
    gout, x, w = make_inputs(case, dtype)
    previous = fastconv.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 7):
            fastconv.set_num_threads(n)
            results.append(fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case),
                                                    algo="im2col"))
    finally:
        fastconv.set_num_threads(previous)
    for res in results[1:]:
        for a, ref in zip(res, results[0]):
            assert np.array_equal(a, ref)
    check_grads(case, results[0], gout, x, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_conv2d_backward_im2col_weight_many_images_or_big_images(dtype):
    """Past 16 images, or past one GEMM depth block of pixels, the weight gradient
    keeps its per-chunk partial sums: right, and the same bits for 1 and 2 threads."""
    for x_shape in ((19, 16, 8, 8), (3, 16, 20, 20)):
        case = {"id": "partial", "x": x_shape, "w": (128, 16, 1, 1), "stride": (1, 1),
                "padding": (0, 0), "dilation": (1, 1), "groups": 1}
        gout, x, w = make_inputs(case, dtype)
        previous = fastconv.get_num_threads()
        try:
            results = []
            for n in (1, 2):
                fastconv.set_num_threads(n)
                results.append(fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case),
                                                        algo="im2col"))
        finally:
            fastconv.set_num_threads(previous)
        for a, ref in zip(results[1], results[0]):
            assert np.array_equal(a, ref)
        check_grads(case, results[0], gout, x, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_pool_relu_linear_backward_bit_identical_across_threads(dtype, simd):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7, 13, 11)).astype(dtype)
    _, idx = fastconv.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    pgo = rng.standard_normal(idx.shape).astype(dtype)
    rgo = rng.standard_normal(x.shape).astype(dtype)
    lx, lw, lgo = (rng.standard_normal(s).astype(dtype) for s in ((37, 70), (33, 70), (37, 33)))
    previous = fastconv.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            fastconv.set_num_threads(n)
            results.append((fastconv.max_pool2d_backward(pgo, idx, x.shape),
                            fastconv.relu_backward(rgo, x))
                           + fastconv.linear_backward(lgo, lx, lw))
    finally:
        fastconv.set_num_threads(previous)
    for res in results[1:]:
        for a, ref in zip(res, results[0]):
            assert np.array_equal(a, ref)


# ---------------------------------------------------------------------------
# Several Python threads at once
# ---------------------------------------------------------------------------

def test_conv2d_backward_from_four_python_threads():
    """4 threads run different backward passes (shapes, algorithms, dtypes) at once, with
    fastconv using 2 threads each; every result equals the single-caller one and the
    reference."""
    jobs = [
        (CASES["gemm_blocks"], np.float32, "im2col"),
        (CASES["depthwise"], np.float64, "direct"),
        (THREAD_CASES["fmnist_c2_n4"], np.float32, "auto"),
        (CASES["same_k2x4_dil2x1"], np.float64, "im2col"),
    ]
    previous = fastconv.get_num_threads()
    fastconv.set_num_threads(2)
    try:
        inputs, expected = [], []
        for case, dtype, algo in jobs:
            gout, x, w = make_inputs(case, dtype)
            inputs.append((gout, x, w))
            want = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case), algo=algo)
            check_grads(case, want, gout, x, w, dtype)
            expected.append(want)

        barrier = threading.Barrier(len(jobs))
        failures = []

        def work(i):
            case, dtype, algo = jobs[i]
            gout, x, w = inputs[i]
            try:
                barrier.wait(timeout=30)
                for _ in range(8):
                    got = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case), algo=algo)
                    for k in range(3):
                        if not np.array_equal(got[k], expected[i][k]):
                            failures.append(f"job {i} ({case['id']}, {algo}): grad {k}")
                            return
            except Exception as e:  # reported below
                failures.append(f"job {i}: {e!r}")

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a thread hung"
    finally:
        fastconv.set_num_threads(previous)
    assert not failures, failures


# ---------------------------------------------------------------------------
# Inputs: never modified; any layout, read-only
# ---------------------------------------------------------------------------

LAYOUTS = checks.LAYOUTS


def _snapshot(arrays):
    return [(a.dtype, a.shape, a.strides, a.tobytes()) for a in arrays]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_conv2d_backward_layouts(dtype, layout, algo):
    case = CASES["same_k2x3_groups2"]
    gout, x, w = make_inputs(case, dtype)
    kw = conv_kwargs(case)
    want = fastconv.conv2d_backward(gout, x, w, **kw, algo=algo)
    args = [LAYOUTS[layout](a) for a in (gout, x, w)]
    for a, orig in zip(args, (gout, x, w)):
        assert np.array_equal(a, orig)
        assert layout == "readonly" or not a.flags.c_contiguous
    before = _snapshot(args)
    got = fastconv.conv2d_backward(*args, **kw, algo=algo)
    assert _snapshot(args) == before
    for g, ref in zip(got, want):
        assert g.flags.c_contiguous and g.flags.writeable
        assert np.array_equal(g, ref)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_other_backwards_layouts(layout):
    make = LAYOUTS[layout]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    out, idx = fastconv.max_pool2d(x, 3, stride=2, return_indices=True)
    gout = rng.standard_normal(out.shape).astype(np.float32)
    want = fastconv.max_pool2d_backward(gout, idx, x.shape)
    args = [make(gout), make(idx)]
    before = _snapshot(args)
    assert np.array_equal(fastconv.max_pool2d_backward(*args, x.shape), want)
    assert _snapshot(args) == before

    rgo = rng.standard_normal(x.shape).astype(np.float32)
    want = fastconv.relu_backward(rgo, x)
    args = [make(rgo), make(x)]
    before = _snapshot(args)
    assert np.array_equal(fastconv.relu_backward(*args), want)
    assert _snapshot(args) == before

    lgo, lx, lw = (rng.standard_normal(s) for s in ((5, 7), (5, 11), (7, 11)))
    want = fastconv.linear_backward(lgo, lx, lw)
    args = [make(lgo), make(lx), make(lw)]
    before = _snapshot(args)
    for g, ref in zip(fastconv.linear_backward(*args), want):
        assert np.array_equal(g, ref)
    assert _snapshot(args) == before


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_backward_leaves_inputs_unchanged(algo):
    for case_id in ("k_eq_input_pad", "depthwise", "gemm_blocks", "same_k4x3", "pad_gt_kernel"):
        case = CASES[case_id]
        for dtype in DTYPES:
            args = make_inputs(case, dtype)
            before = _snapshot(args)
            for needs in NEEDS:
                fastconv.conv2d_backward(*args, **conv_kwargs(case), algo=algo, needs=needs)
            assert _snapshot(args) == before, case_id


def test_other_backwards_leave_inputs_unchanged():
    rng = np.random.default_rng(0)
    for dtype in DTYPES:
        x = rng.standard_normal((2, 3, 7, 7)).astype(dtype)
        out, idx = fastconv.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
        gout = rng.standard_normal(out.shape).astype(dtype)
        args = [gout, idx]
        before = _snapshot(args)
        fastconv.max_pool2d_backward(gout, idx, x.shape)
        assert _snapshot(args) == before
        args = [rng.standard_normal(x.shape).astype(dtype), x]
        before = _snapshot(args)
        fastconv.relu_backward(*args)
        assert _snapshot(args) == before
        args = [rng.standard_normal(s).astype(dtype) for s in ((4, 3), (4, 5), (3, 5))]
        before = _snapshot(args)
        for needs in NEEDS:
            fastconv.linear_backward(*args, needs=needs)
        assert _snapshot(args) == before


def test_outputs_are_fresh_arrays():
    """No output aliases an input or a previous output."""
    case = CASES["basic_3x3"]
    gout, x, w = make_inputs(case, np.float32)
    a = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case))
    b = fastconv.conv2d_backward(gout, x, w, **conv_kwargs(case))
    for g in a:
        for other in (gout, x, w) + b:
            assert not np.shares_memory(g, other)
    gx = fastconv.relu_backward(gout, gout)
    assert not np.shares_memory(gx, gout)


@pytest.mark.parametrize("groups, oc", [(4, 4), (4, 8), (1, 2)])
def test_conv2d_backward_weight_direct_few_channels_nonfinite_input(groups, oc):
    """The few-channel weight gradient (depthwise) sums whole padded planes at once when
    every input is finite; an inf in the input must still reach only its taps."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 9, 11))
    w = rng.standard_normal((oc, 4 // groups, 3, 3))
    gout = rng.standard_normal(fastconv.conv2d(x, w, padding=1, groups=groups).shape)
    finite = [fastconv.conv2d_backward(gout, x, w, padding=1, groups=groups, algo=a,
                                       needs=(False, True, False))[1]
              for a in ("direct", "im2col")]
    np.testing.assert_allclose(finite[0], finite[1], rtol=1e-12, atol=1e-12)
    x[1, 0, 4, 5] = np.inf
    got, ref = (fastconv.conv2d_backward(gout, x, w, padding=1, groups=groups, algo=a,
                                         needs=(False, True, False))[1]
                for a in ("direct", "im2col"))
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref))
    ok = np.isfinite(ref)
    assert not ok.all()
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-12, atol=1e-12)
