"""The direct convolution on few input channels (first layers), against the references.

The direct kernel cuts output rows into full vectors (the last one of a row overlapping
its neighbour), lets a register tile span rows, and reads strided convolutions from
rows split into their stride phases. The cases below aim at those seams: widths that
are not multiples of any vector length (1, 5, 17, 33, 223), output-channel counts that
are not multiples of the register tile, strides 1 to 3 with dilation, paddings 0 to 3.
The same kernel computes the input gradient of algo='direct', which is checked too.
"""

import functools

import numpy as np
import pytest

import fastconv
from fastconv.functional import conv2d_algo
from reference import (assert_close_scaled, conv2d_backward_ref, conv2d_ref,
                       conv2d_scale_ref)

DTYPES = [np.float32, np.float64]
WIDTHS = (1, 5, 17, 33, 223)


def _case(N, C, OC, H, W, k, stride=1, padding=0, dilation=1):
    kh, kw = (k, k) if isinstance(k, int) else k
    return {"x": (N, C, H, W), "w": (OC, C, kh, kw), "stride": stride, "padding": padding,
            "dilation": dilation}


def _out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _valid(case):
    (_, _, H, W), (_, _, kh, kw) = case["x"], case["w"]
    s, p, d = case["stride"], case["padding"], case["dilation"]
    return _out_size(H, kh, s, p, d) >= 1 and _out_size(W, kw, s, p, d) >= 1


def _grid():
    """Named seams first, then a seeded sample of the whole parameter space."""
    cases = {
        "fmnist_c1_small": _case(2, 1, 32, 28, 28, 3, padding=1),
        "r18_conv1_small": _case(1, 3, 64, 37, 45, 7, stride=2, padding=3),
        "c1_oc13_w1": _case(2, 1, 13, 6, 1, 3, padding=1),
        "c2_oc5_w5_s2": _case(2, 2, 5, 7, 5, 3, stride=2, padding=1),
        "c3_oc19_w17_s3_p3": _case(1, 3, 19, 11, 17, 5, stride=3, padding=3),
        "c4_oc9_w33_d2": _case(2, 4, 9, 9, 33, 3, padding=2, dilation=2),
        "c1_oc33_w223_k7_s2": _case(1, 1, 33, 9, 223, 7, stride=2, padding=3),
        "c3_oc1_w223": _case(1, 3, 1, 5, 223, 3, padding=1),
        "c2_oc7_k1_s3": _case(2, 2, 7, 10, 17, 1, stride=3),
        "c4_oc11_k7x2_s2_d2": _case(1, 4, 11, 17, 33, (7, 2), stride=2, padding=2, dilation=2),
        "c1_oc6_k2x7_s3_d2": _case(2, 1, 6, 8, 33, (2, 7), stride=3, padding=1, dilation=2),
        "c3_oc24_k6_s2_p0": _case(1, 3, 24, 16, 33, 6, stride=2),
        "c2_oc17_k4_s1_p3": _case(1, 2, 17, 5, 5, 4, padding=3),
    }
    rng = np.random.default_rng(2024)
    while len(cases) < 60:
        C = int(rng.integers(1, 5))
        case = _case(int(rng.integers(1, 3)), C, int(rng.choice([1, 3, 5, 9, 13, 19, 33])),
                     int(rng.integers(1, 12)), int(rng.choice(WIDTHS)),
                     (int(rng.integers(1, 8)), int(rng.integers(1, 8))),
                     stride=int(rng.integers(1, 4)), padding=int(rng.integers(0, 4)),
                     dilation=int(rng.integers(1, 3)))
        if _valid(case):
            (_, C, H, W), (OC, _, kh, kw) = case["x"], case["w"]
            name = (f"c{C}_oc{OC}_h{H}_w{W}_k{kh}x{kw}_s{case['stride']}_p{case['padding']}"
                    f"_d{case['dilation']}")
            cases.setdefault(name, case)
    return cases


CASES = _grid()
# The seams on every SIMD level and thread count (the whole grid runs at the default level).
SIMD_IDS = list(CASES)[:13]


def _kwargs(case):
    return {k: case[k] for k in ("stride", "padding", "dilation")}


def _inputs(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype)
    return x, w, b


@functools.lru_cache(maxsize=None)
def _expected(case_id, dtype):
    case = CASES[case_id]
    x, w, b = _inputs(case, dtype)
    return conv2d_ref(x, w, b, **_kwargs(case)), conv2d_scale_ref(x, w, b, **_kwargs(case))


def _check(case_id, dtype):
    case = CASES[case_id]
    x, w, b = _inputs(case, dtype)
    x0, w0, b0 = x.copy(), w.copy(), b.copy()
    out = fastconv.conv2d(x, w, b, **_kwargs(case), algo="direct")
    ref, scale = _expected(case_id, np.dtype(dtype))
    assert out.dtype == dtype and out.shape == ref.shape
    assert_close_scaled(out, ref, scale, int(np.prod(case["w"][1:])), dtype)
    for before, after in ((x0, x), (w0, w), (b0, b)):
        assert np.array_equal(before, after), "an input was modified"
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_direct_smallc_matches_reference(case_id, dtype, one_thread):
    _check(case_id, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", SIMD_IDS)
def test_direct_smallc_every_simd_level(case_id, dtype, simd, one_thread):
    _check(case_id, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", SIMD_IDS)
def test_direct_smallc_bit_identical_across_threads(case_id, dtype, simd):
    previous = fastconv.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            fastconv.set_num_threads(n)
            outs.append(_check(case_id, dtype))
    finally:
        fastconv.set_num_threads(previous)
    for n, out in zip((2, 3), outs[1:]):
        assert np.array_equal(out, outs[0]), f"{n} threads differ from 1 thread"


@pytest.mark.parametrize("case_id", SIMD_IDS)
def test_direct_smallc_without_bias(case_id):
    case = CASES[case_id]
    x, w, _ = _inputs(case, np.float32)
    out = fastconv.conv2d(x, w, None, **_kwargs(case), algo="direct")
    ref = conv2d_ref(x, w, None, **_kwargs(case))
    scale = conv2d_scale_ref(x, w, None, **_kwargs(case))
    assert_close_scaled(out, ref, scale, int(np.prod(w.shape[1:])), np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case_id", SIMD_IDS)
def test_direct_smallc_input_gradient(case_id, dtype, simd):
    # algo='direct' computes the input gradient with the same forward kernel, on the
    # output gradient spread by the stride (stride 1, any padding, cropping included).
    case = CASES[case_id]
    x, w, _ = _inputs(case, dtype)
    ref_out = conv2d_ref(x, w, None, **_kwargs(case))
    gout = np.random.default_rng(1).standard_normal(ref_out.shape).astype(dtype)
    gx, _, _ = fastconv.conv2d_backward(gout, x, w, **_kwargs(case), algo="direct",
                                        needs=(True, False, False))
    want, _, _ = conv2d_backward_ref(gout, x, w, **_kwargs(case))
    scale, _, _ = conv2d_backward_ref(np.abs(gout), x, np.abs(w), **_kwargs(case))
    k = w.shape[0] * w.shape[2] * w.shape[3]
    assert_close_scaled(gx, want, scale, k, dtype)


@pytest.mark.parametrize("case_id", SIMD_IDS)
def test_direct_smallc_matches_torch(case_id):
    torch = pytest.importorskip("torch")
    case = CASES[case_id]
    x, w, b = _inputs(case, np.float64)
    out = fastconv.conv2d(x, w, b, **_kwargs(case), algo="direct")
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                      torch.from_numpy(b), **_kwargs(case)).numpy()
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(32, 1, 3, 3), (64, 3, 7, 7), (16, 2, 5, 5), (8, 4, 3, 3)])
def test_auto_picks_direct_for_few_input_channels(shape):
    kh = shape[2]
    assert conv2d_algo(shape, padding=kh // 2) == "direct"
    # The input gradient of these layers is faster with im2col (see _choose_algo), but
    # for one input channel at stride 1.
    want = "direct" if shape[1] == 1 else "im2col"
    assert conv2d_algo(shape, padding=kh // 2, grad="input") == want
    assert conv2d_algo(shape, padding=kh // 2, grad="input", stride=2) == "im2col"


@pytest.mark.parametrize("shape,groups", [((64, 32, 3, 3), 1), ((64, 64, 3, 3), 1),
                                          ((32, 1, 1, 1), 1), ((64, 4, 7, 7), 1)])
def test_auto_keeps_im2col_elsewhere(shape, groups):
    # 3x3 stride-1 layers with 16 or more channels go to Winograd (tests/test_winograd.py)
    assert conv2d_algo(shape, padding=1 if shape[2] > 1 else 0, groups=groups,
                       stride=2 if shape[2] == 3 else 1) == "im2col"
