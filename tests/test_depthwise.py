"""The depthwise path of algo='direct' (C/groups == 1): forward, input, weight and bias
gradients against the NumPy references, at every SIMD level, for channel multipliers 1
to 32, kernels 1/3/5/7 and odd shapes, strides, paddings and dilations; the same bits for
1, 2 and 3 threads; PyTorch's answer where inputs or weights are inf or NaN (padding never
meets them); inputs left untouched; PyTorch as a second oracle when it is installed.

Widths such as 37 and 45 leave partial vectors at every SIMD level (4, 8 and 16 floats),
heights such as 13 leave partial row blocks, and planes are taken both in place (stride
1, masked loads, AVX-512) and through the plane copy (AVX2 and portable; strides 2 and
3, dilation 2 everywhere).
"""

import itertools

import numpy as np
import pytest

import fastconv
from gradcheck import check_backward
from reference import (assert_close_scaled, conv2d_backward_ref, conv2d_ref, conv2d_scale_ref,
                       conv_out_size)

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def make_case(C, mult, H, W, KH, KW, stride=1, padding=0, dilation=1, N=2):
    return {"x": (N, C, H, W), "w": (C * mult, 1, KH, KW), "stride": _pair(stride),
            "padding": _pair(padding), "dilation": _pair(dilation), "groups": C}


def kwargs_of(case):
    return {k: case[k] for k in ("stride", "padding", "dilation", "groups")}


def out_hw(case):
    (H, W), (KH, KW) = case["x"][2:], case["w"][2:]
    return tuple(conv_out_size(s, k, st, p, d) for s, k, st, p, d in
                 zip((H, W), (KH, KW), case["stride"], case["padding"], case["dilation"]))


def make_inputs(case, dtype, seed=0):
    """(x, w, b, gout) drawn in float64, then rounded to dtype."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x"])
    w = rng.standard_normal(case["w"])
    b = rng.standard_normal(case["w"][0])
    gout = rng.standard_normal((case["x"][0], case["w"][0]) + out_hw(case))
    return tuple(a.astype(dtype) for a in (x, w, b, gout))


# The grid: multiplier x kernel x stride x padding x dilation, on 2 images of 13 x 37
# (37 columns: partial vectors everywhere; 13 rows: partial row blocks).
GRID = [make_case(3, m, 13, 37, k, k, s, p, d)
        for m, k, s, p, d in itertools.product((1, 2), (1, 3, 5), (1, 2), (0, 1, 2), (1, 2))]
GRID_IDS = ["m{}_k{}_s{}_p{}_d{}".format(c["w"][0] // 3, c["w"][2], c["stride"][0],
                                         c["padding"][0], c["dilation"][0]) for c in GRID]

# Other shapes: exact vector multiples, one-column and one-row images, a 7x7 kernel,
# non-square kernels, mixed strides and dilations, stride 3, padding wider than the
# kernel (the input gradient then crops), many channels, a kernel taller than the
# vector path takes (65 rows: the scalar path), 'same'-style asymmetric windows.
EXTRA = {
    "w32_k1": make_case(4, 1, 5, 32, 1, 1),
    "w64_k3_p1": make_case(2, 1, 9, 64, 3, 3, padding=1),
    "w16_k3_p1_m3": make_case(2, 3, 16, 16, 3, 3, padding=1),
    "one_col": make_case(2, 1, 9, 1, 3, 1, padding=(1, 0)),
    "one_row": make_case(2, 2, 1, 23, 1, 3, padding=(0, 1)),
    "k7_p3": make_case(3, 1, 19, 45, 7, 7, padding=3),
    "k7_p3_s2": make_case(3, 1, 19, 45, 7, 7, stride=2, padding=3),
    "k2x3": make_case(3, 1, 11, 21, 2, 3, padding=(1, 1)),
    "k3x5_s21_d12": make_case(2, 2, 12, 29, 3, 5, stride=(2, 1), padding=(1, 2),
                              dilation=(1, 2)),
    "k3_s3_p1": make_case(3, 1, 17, 40, 3, 3, stride=3, padding=1),
    "k3_p3": make_case(2, 1, 8, 19, 3, 3, padding=3),
    "k5_s2_p4_d2": make_case(2, 2, 15, 33, 5, 5, stride=2, padding=4, dilation=2),
    "k4_s2_p1": make_case(3, 1, 12, 26, 4, 4, stride=2, padding=1),
    "c40_k3_p1": make_case(40, 1, 10, 14, 3, 3, padding=1, N=3),
    "tall_k65": make_case(2, 1, 70, 5, 65, 1, padding=(1, 0), N=1),
    "n1_c1_m4": make_case(1, 4, 14, 14, 3, 3, padding=1, N=1),
    # stride 2 over rows wide enough that the plane copy splits even and odd columns
    # by vectors at every SIMD level (the last pair overlapping the one before), and
    # rows of exact vector multiples
    "w70_k3_s2_p1": make_case(2, 1, 9, 70, 3, 3, stride=2, padding=1),
    "w113_k3_s2": make_case(2, 2, 7, 113, 3, 3, stride=2),
    "w96_k5_s2_p2": make_case(2, 1, 6, 96, 5, 5, stride=2, padding=2),
    # four or more output planes per input plane at stride 1 with 'same' columns: flat
    # tiles over the planes (AVX-512 and AVX2); planes of 481 pixels (no whole vector or tile), 9
    # rows more than the image (padding 3 over rows), rows of 5 (a vector spans rows),
    # multipliers 8, 12 (8 + 4 planes) and 13 (one plane left to the single-plane kernel)
    "c1_m8_k3_p1": make_case(1, 8, 13, 37, 3, 3, padding=1),
    "c2_m13_k3_p01": make_case(2, 13, 9, 11, 3, 3, padding=(0, 1)),
    "c1_m12_k5_p32_w5": make_case(1, 12, 7, 5, 5, 5, padding=(3, 2)),
    "c1_m32_fmnist": make_case(1, 32, 28, 28, 3, 3, padding=1),
    # rows of exactly one vector, and of one vector and a column (AVX2 floats): the plane
    # copy builds its first and last vectors from the row's only whole vector
    "w8_k5_p2": make_case(2, 1, 6, 8, 5, 5, padding=2),
    "w9_k3_p1_m2": make_case(2, 2, 7, 9, 3, 3, padding=1),
    "w4_k3_p1": make_case(2, 1, 5, 4, 3, 3, padding=1),
    # a last column vector of exactly half the lanes (AVX2: 12 and 28 floats, 18 doubles),
    # computed at half width, with two planes per channel (the input gradient adds them)
    "w12_k3_p1_m2": make_case(2, 2, 9, 12, 3, 3, padding=1),
    "w18_k3_p1": make_case(2, 1, 10, 18, 3, 3, padding=1),
    # padding beyond the rows of zeros kept around the plane copy (8): the row blocks
    # at the edges read the zero row instead
    "k3_p10_h6": make_case(2, 1, 6, 19, 3, 3, padding=10),
    "k5_s2_p9_h7": make_case(2, 2, 7, 21, 5, 5, stride=2, padding=9),
}


def check_all(case, dtype, algo="direct", seed=0):
    """Forward and all three gradients against reference.py."""
    x, w, b, gout = make_inputs(case, dtype, seed)
    kw = kwargs_of(case)
    KH, KW = case["w"][2:]
    out = fastconv.conv2d(x, w, b, **kw, algo=algo)
    assert out.dtype == dtype and out.shape == gout.shape
    assert_close_scaled(out, conv2d_ref(x, w, b, **kw), conv2d_scale_ref(x, w, b, **kw),
                        KH * KW, dtype)
    got = fastconv.conv2d_backward(gout, x, w, **kw, algo=algo)
    refs = conv2d_backward_ref(gout, x, w, **kw)
    scales = conv2d_backward_ref(np.abs(gout), np.abs(x), np.abs(w), **kw)
    N, OC = gout.shape[:2]
    P = N * gout.shape[2] * gout.shape[3]
    lengths = ((OC // case["groups"]) * KH * KW, P, P)
    for g, ref, scale, n, a in zip(got, refs, scales, lengths, (x, w, b)):
        assert g.dtype == dtype and g.shape == a.shape
        assert_close_scaled(g, ref, scale, n, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", GRID, ids=GRID_IDS)
def test_depthwise_grid(case, dtype, simd):
    check_all(case, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", list(EXTRA))
def test_depthwise_shapes(name, dtype, simd):
    check_all(EXTRA[name], dtype)


@pytest.mark.parametrize("name", ["k7_p3", "k3x5_s21_d12", "c40_k3_p1"])
def test_depthwise_direct_and_im2col_agree(name):
    case = EXTRA[name]
    x, w, b, gout = make_inputs(case, np.float64)
    kw = kwargs_of(case)
    a = fastconv.conv2d(x, w, b, **kw, algo="direct")
    c = fastconv.conv2d(x, w, b, **kw, algo="im2col")
    np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
    for ga, gc in zip(fastconv.conv2d_backward(gout, x, w, **kw, algo="direct"),
                      fastconv.conv2d_backward(gout, x, w, **kw, algo="im2col")):
        np.testing.assert_allclose(ga, gc, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("name", ["w16_k3_p1_m3", "k3x5_s21_d12", "k4_s2_p1"])
def test_depthwise_finite_differences(name):
    case = dict(EXTRA[name], x=(1,) + EXTRA[name]["x"][1:])
    x, w, b, _ = make_inputs(case, np.float64, seed=1)
    x, w = x[:, :, :8, :9].copy(), w
    kw = kwargs_of(case)
    check_backward(lambda x, w, b: fastconv.conv2d(x, w, b, **kw, algo="direct"),
                   lambda g, x, w, b: fastconv.conv2d_backward(g, x, w, **kw, algo="direct"),
                   [x, w, b], seed=3)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", ["c1_m8_k3_p1", "c2_m13_k3_p01", "c1_m12_k5_p32_w5"])
def test_depthwise_planes_together_and_alone_agree(name, dtype, simd):
    """Several output planes of an input plane made together have the bits of each made
    alone (one output channel per call): the sums keep their order."""
    case = EXTRA[name]
    x, w, b, _ = make_inputs(case, dtype)
    kw = kwargs_of(case)
    together = fastconv.conv2d(x, w, b, **kw, algo="direct")
    C, mult = case["groups"], case["w"][0] // case["groups"]
    one = dict(kw, groups=1)
    for oc in range(case["w"][0]):
        c = oc // mult
        alone = fastconv.conv2d(x[:, c:c + 1], w[oc:oc + 1], b[oc:oc + 1], **one,
                                algo="direct")
        assert np.array_equal(alone[:, 0], together[:, oc]), oc


# ---------------------------------------------------------------------------
# The same bits for 1, 2 and 3 threads, at every SIMD level
# ---------------------------------------------------------------------------

# 4 channels: fewer than 4 per thread, so the backward splits its input gradient by
# (image, channel); 32 channels: one item per channel does all three gradients.
THREAD_CASES = {
    "dw_3x3_c32": make_case(32, 1, 20, 20, 3, 3, padding=1, N=3),
    "c4_m2_s2": make_case(4, 2, 21, 37, 3, 3, stride=2, padding=1, N=5),
    "c32_k5_p2": make_case(32, 1, 15, 19, 5, 5, padding=2, N=2),
    "c4_k7_p3": make_case(4, 1, 18, 33, 7, 7, padding=3, N=4),
    "c1_m16_k3_p1": make_case(1, 16, 19, 19, 3, 3, padding=1, N=5),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", list(THREAD_CASES))
def test_depthwise_bit_identical_across_threads(name, dtype, simd):
    case = THREAD_CASES[name]
    x, w, b, gout = make_inputs(case, dtype)
    kw = kwargs_of(case)
    previous = fastconv.get_num_threads()
    results = {}
    try:
        for n in (1, 2, 3):
            fastconv.set_num_threads(n)
            results[n] = (fastconv.conv2d(x, w, b, **kw, algo="direct"),) + \
                fastconv.conv2d_backward(gout, x, w, **kw, algo="direct")
    finally:
        fastconv.set_num_threads(previous)
    for n in (2, 3):
        for what, a, ref in zip(("out", "grad_x", "grad_w", "grad_b"), results[n], results[1]):
            assert np.array_equal(a, ref), f"{what}: {n} threads differ from 1 thread"
    check_all(case, dtype)


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False),
                                   (False, False, True), (True, True, False),
                                   (False, True, True)])
@pytest.mark.parametrize("name", ["dw_3x3_c32", "c4_m2_s2"])
def test_depthwise_backward_needs(name, needs, threads):
    """Each gradient alone (or in pairs) has the bits of the full call."""
    case = THREAD_CASES[name]
    x, w, _, gout = make_inputs(case, np.float32)
    kw = kwargs_of(case)
    full = fastconv.conv2d_backward(gout, x, w, **kw, algo="direct")
    part = fastconv.conv2d_backward(gout, x, w, **kw, algo="direct", needs=needs)
    for k in range(3):
        assert (part[k] is None) == (not needs[k])
        if needs[k]:
            assert np.array_equal(part[k], full[k]), k


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_depthwise_inputs_not_modified(dtype, simd):
    case = EXTRA["k3x5_s21_d12"]
    arrays = make_inputs(case, dtype)
    before = [a.copy() for a in arrays]
    x, w, b, gout = arrays
    fastconv.conv2d(x, w, b, **kwargs_of(case), algo="direct")
    fastconv.conv2d_backward(gout, x, w, **kwargs_of(case), algo="direct")
    for a, c in zip(arrays, before):
        assert a.tobytes() == c.tobytes()


# ---------------------------------------------------------------------------
# inf and NaN: only the taps that exist (padding never multiplies them)
# ---------------------------------------------------------------------------

def _taps(case, i, j):
    """Index arrays of the output rows/columns where kernel tap (i, j) reads the input,
    and the input rows/columns it reads there."""
    (H, W), (OH, OW) = case["x"][2:], out_hw(case)
    (SH, SW), (PH, PW), (DH, DW) = case["stride"], case["padding"], case["dilation"]
    oh, ow = np.arange(OH), np.arange(OW)
    ih, iw = oh * SH - PH + i * DH, ow * SW - PW + j * DW
    rows, cols = (ih >= 0) & (ih < H), (iw >= 0) & (iw < W)
    return oh[rows], ow[cols], ih[rows], iw[cols]


def taps_oracle(case, x, w, b, gout):
    """Forward and gradients in float64 summing real taps only (PyTorch's float32 CPU
    answer where inputs or weights are not finite)."""
    x, w, b, gout = (np.asarray(a, np.float64) for a in (x, w, b, gout))
    C, OC = case["x"][1], case["w"][0]
    ch = np.arange(OC) // (OC // C)                     # input channel of each output channel
    out = np.broadcast_to(b[None, :, None, None], gout.shape).copy()
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    for i, j in itertools.product(range(w.shape[2]), range(w.shape[3])):
        oh, ow, ih, iw = _taps(case, i, j)
        if not (oh.size and ow.size):
            continue
        xs = x[:, ch][:, :, ih][:, :, :, iw]             # (N, OC, |oh|, |ow|)
        gs = gout[:, :, oh][:, :, :, ow]
        wij = w[:, 0, i, j][None, :, None, None]
        out[np.ix_(range(x.shape[0]), range(OC), oh, ow)] += wij * xs
        gw[:, 0, i, j] = np.einsum("nohw,nohw->o", gs, xs)
        contrib = wij * gs                               # (N, OC, |oh|, |ow|) into x[:, ch]
        for o in range(OC):
            gx[np.ix_(range(x.shape[0]), [ch[o]], ih, iw)] += contrib[:, o:o + 1]
    return out, gx, gw, gout.sum(axis=(0, 2, 3))


def _same_nonfinite(got, want):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-4, atol=1e-4)


NONFINITE_CASES = {
    "k3_p1": make_case(4, 1, 9, 37, 3, 3, padding=1),
    "k3_p1_m2_s2": make_case(4, 2, 11, 21, 3, 3, stride=2, padding=1),
    "k5_p2_d2": make_case(3, 1, 12, 19, 5, 5, padding=2, dilation=2),
    # multiplier 8: the first input channel's planes meet the non-finite weights alone,
    # the others' go through the flat tiles (inf and NaN in x meet them there)
    "k3_p1_m8": make_case(3, 8, 9, 21, 3, 3, padding=1),
}


@pytest.mark.parametrize("where", ["weight", "x", "grad_out"])
@pytest.mark.parametrize("name", list(NONFINITE_CASES))
def test_depthwise_nonfinite_reaches_only_real_taps(name, where, simd):
    case = NONFINITE_CASES[name]
    x, w, b, gout = make_inputs(case, np.float32)
    if where == "weight":   # corner taps: at the image border they fall on padding
        w[0, 0, 0, 0] = np.inf
        w[1, 0, -1, -1] = np.nan
        w[2, 0, 0, -1] = -np.inf
    elif where == "x":      # border and inner pixels
        x[0, 0, 0, 0] = np.inf
        x[1, 1, -1, 3] = np.nan
        x[0, 2, 4, -1] = -np.inf
    else:
        gout[0, 0, 0, 0] = np.inf
        gout[1, 1, -1, -1] = np.nan
        gout[0, 2, 2, 0] = -np.inf
    kw = kwargs_of(case)
    want = taps_oracle(case, x, w, b, gout)
    got = (fastconv.conv2d(x, w, b, **kw, algo="direct"),) + \
        fastconv.conv2d_backward(gout, x, w, **kw, algo="direct")
    for g, wnt in zip(got, want):
        _same_nonfinite(g, wnt)
    assert not all(np.isfinite(g).all() for g in got)


def test_depthwise_taps_oracle_matches_reference():
    """The oracle of the test above is the reference where everything is finite."""
    case = NONFINITE_CASES["k3_p1_m2_s2"]
    x, w, b, gout = make_inputs(case, np.float64)
    kw = kwargs_of(case)
    out, gx, gw, gb = taps_oracle(case, x, w, b, gout)
    np.testing.assert_allclose(out, conv2d_ref(x, w, b, **kw), rtol=1e-12, atol=1e-12)
    for a, r in zip((gx, gw, gb), conv2d_backward_ref(gout, x, w, **kw)):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# PyTorch as a second oracle
# ---------------------------------------------------------------------------

def _torch_and_direct(torch, x, w, b, gout, kw):
    """(out, grad_x, grad_w, grad_b) of PyTorch and of fastconv's direct algorithm."""
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    want = (ty.detach().numpy(),) + tuple(
        t.numpy() for t in torch.autograd.grad(ty, (tx, tw, tb), torch.from_numpy(gout)))
    got = (fastconv.conv2d(x, w, b, **kw, algo="direct"),) + \
        fastconv.conv2d_backward(gout, x, w, **kw, algo="direct")
    return want, got


TORCH_CASES = ["w64_k3_p1", "k7_p3_s2", "k3x5_s21_d12", "n1_c1_m4", "k3_s3_p1",
               "c2_m13_k3_p01", "c1_m12_k5_p32_w5"]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", TORCH_CASES)
def test_depthwise_matches_torch(name, dtype):
    torch = pytest.importorskip("torch")
    case = EXTRA[name]
    x, w, b, gout = make_inputs(case, dtype)
    kw = kwargs_of(case)
    want, got = _torch_and_direct(torch, x, w, b, gout, kw)
    KH, KW = case["w"][2:]
    scales = (conv2d_scale_ref(x, w, b, **kw),) + \
        conv2d_backward_ref(np.abs(gout), np.abs(x), np.abs(w), **kw)
    P = gout.shape[0] * gout.shape[2] * gout.shape[3]
    mult = case["w"][0] // case["groups"]
    for g, t, s, n in zip(got, want, scales, (KH * KW, mult * KH * KW, P, P)):
        assert_close_scaled(g, t.astype(np.float64), s, n, dtype, 2.0)


def test_depthwise_nonfinite_matches_torch_float32():
    """inf and NaN in x, w and grad_out at once: PyTorch's float32 CPU answer."""
    torch = pytest.importorskip("torch")
    case = NONFINITE_CASES["k3_p1"]
    x, w, b, gout = make_inputs(case, np.float32)
    w[0, 0, 0, 0] = np.inf
    x[1, 1, 0, 5] = np.nan
    x[0, 2, 8, 36] = np.inf
    gout[1, 3, 0, 0] = -np.inf
    kw = kwargs_of(case)
    want, got = _torch_and_direct(torch, x, w, b, gout, kw)
    for g, t in zip(got, want):
        _same_nonfinite(g, t)
