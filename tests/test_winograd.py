"""The Winograd F(2x2, 3x3) algorithm that algo='auto' runs on 3x3 stride-1 layers.

It is not a public algo name (DESIGN.md lists 'direct', 'im2col' and 'auto'), so these
tests reach it through fastconv._ops with its algorithm code, and check that 'auto'
uses it where conv2d_algo says so. Oracles: the float64 NumPy references of
tests/reference.py and, for inf and NaN, the im2col algorithm.
"""

import numpy as np
import pytest

import checks
import fastconv
from fastconv import _ops
from fastconv.shapes import LAYERS
from reference import (assert_close_scaled, conv2d_backward_ref, conv2d_ref,
                       conv2d_scale_ref)

WINO = _ops.ALGO_WINOGRAD
DTYPES = [np.float32, np.float64]
# Winograd adds the transforms' rounding to the sums': allow four times the
# per-term tolerance of the direct algorithms.
FACTOR = 4.0

# (x shape, weight shape, padding, groups): 3x3 kernels, stride 1, dilation 1.
CASES = {
    "basic": ((2, 3, 7, 7), (5, 3, 3, 3), (1, 1), 1),
    "no_pad_odd": ((1, 4, 9, 6), (7, 4, 3, 3), (0, 0), 1),
    "pad2": ((2, 5, 5, 8), (6, 5, 3, 3), (2, 2), 1),
    "pad_asym": ((1, 3, 8, 9), (4, 3, 3, 3), (2, 0), 1),
    "image_1x1": ((2, 4, 1, 1), (3, 4, 3, 3), (1, 1), 1),
    "image_2x3_pad2": ((1, 2, 2, 3), (3, 2, 3, 3), (2, 2), 1),
    "exact_3x3": ((3, 2, 3, 3), (5, 2, 3, 3), (0, 0), 1),
    "groups2": ((2, 8, 9, 4), (10, 4, 3, 3), (1, 1), 2),
    "groups3_odd": ((2, 9, 7, 5), (6, 3, 3, 3), (1, 2), 3),
    "channels_17_33": ((2, 17, 11, 13), (33, 17, 3, 3), (1, 1), 1),
    # more input channels than one packed panel's depth (KC = 256)
    "deep_300": ((1, 300, 5, 6), (9, 300, 3, 3), (1, 1), 1),
    "many_tiles": ((3, 16, 30, 26), (24, 16, 3, 3), (1, 1), 1),
    # blocks of 144 tiles (the cache target of 320 channels) over rows of 14 tiles:
    # a block starts and ends inside a tile row; odd output height and width
    "blocks_inside_rows": ((1, 160, 25, 27), (160, 160, 3, 3), (1, 1), 1),
    # groups with blocks that split tile rows once the team splits the work
    "groups2_blocks": ((2, 32, 17, 13), (48, 16, 3, 3), (1, 1), 2),
}


def inputs(case, dtype, seed=0):
    x_shape, w_shape, _, _ = CASES[case]
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype),
            rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype))


def backward_inputs(case, dtype, seed):
    """x, w, a seeded grad_out of the case's output shape, padding, groups."""
    x, w, _ = inputs(case, dtype)
    _, _, padding, groups = CASES[case]
    oshape = conv2d_ref(x, w, padding=padding, groups=groups).shape
    gout = np.random.default_rng(seed).standard_normal(oshape).astype(dtype)
    return x, w, gout, padding, groups


def wino_forward(x, w, b, padding, groups, threads=1):
    return _ops.conv2d_forward(x, w, b, (1, 1), padding, (1, 1), groups, False, WINO, threads)


def wino_grad_x(gout, x, w, padding, groups, threads=1):
    gx, gw, gb = _ops.conv2d_backward(gout, x, w, (1, 1), padding, (1, 1), groups, False,
                                      WINO, _ops.ALGO_IM2COL, (True, False, False), threads)
    assert gw is None and gb is None
    return gx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_matches_reference(case, dtype, simd):
    x, w, b = inputs(case, dtype)
    _, _, padding, groups = CASES[case]
    before = [a.copy() for a in (x, w, b)]
    out = wino_forward(x, w, b, padding, groups)
    kw = dict(padding=padding, groups=groups)
    assert out.dtype == dtype
    assert_close_scaled(out, conv2d_ref(x, w, b, **kw), conv2d_scale_ref(x, w, b, **kw),
                        w.shape[1] * 9, dtype, FACTOR)
    for a, a0 in zip((x, w, b), before):
        assert np.array_equal(a, a0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_input_gradient_matches_reference(case, dtype, simd):
    x, w, gout, padding, groups = backward_inputs(case, dtype, seed=1)
    want = conv2d_backward_ref(gout, x, w, padding=padding, groups=groups)[0]
    # scale of each input-gradient element: the same sums over |gout| and |w|
    scale = conv2d_backward_ref(np.abs(gout.astype(np.float64)), x, np.abs(w), padding=padding,
                                groups=groups)[0]
    got = wino_grad_x(gout, x, w, padding, groups)
    assert got.dtype == dtype
    assert_close_scaled(got, want, scale, w.shape[0] // groups * 9, dtype, FACTOR)


@pytest.mark.parametrize("layer", ["fmnist_c2", "r18_l3"])
def test_same_bits_for_any_thread_count(layer):
    L = LAYERS[layer].scaled(N=3)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(L.x_shape).astype(np.float32)
    w = rng.standard_normal(L.w_shape).astype(np.float32)
    b = rng.standard_normal(L.OC).astype(np.float32)
    pad = (L.padding, L.padding)
    gout = rng.standard_normal((L.N, L.OC) + L.out_hw).astype(np.float32)
    out1 = wino_forward(x, w, b, pad, 1, threads=1)
    gx1 = wino_grad_x(gout, x, w, pad, 1, threads=1)
    for nt in (2, 3, 5):
        assert np.array_equal(wino_forward(x, w, b, pad, 1, threads=nt), out1)
        assert np.array_equal(wino_grad_x(gout, x, w, pad, 1, threads=nt), gx1)


@pytest.mark.parametrize("case", ["blocks_inside_rows", "groups2_blocks"])
def test_same_bits_for_any_block_split(case):
    """The thread count changes the blocks of tiles (and where inside a tile row they
    start); the outputs and input gradients keep their bits."""
    x, w, gout, padding, groups = backward_inputs(case, np.float32, seed=3)
    b = np.random.default_rng(4).standard_normal(w.shape[0]).astype(np.float32)
    out1 = wino_forward(x, w, b, padding, groups, threads=1)
    gx1 = wino_grad_x(gout, x, w, padding, groups, threads=1)
    for nt in (2, 3, 4, 7):
        assert np.array_equal(wino_forward(x, w, b, padding, groups, threads=nt), out1)
        assert np.array_equal(wino_grad_x(gout, x, w, padding, groups, threads=nt), gx1)


@pytest.mark.parametrize("nt", [2, 3, 4, 5, 7])
def test_short_last_block_split_by_output_channels(nt):
    """With a team, the short last block of tiles is split by output channels (whole
    micro-tile rows, one part per thread; 33 channels: a last part of one channel, and
    with 4 threads an empty one). The outputs keep their bits; an output that is not
    finite in the last channel, which only the last part computes, still makes the
    call recompute by im2col."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 8, 15, 13)).astype(np.float32)
    w = rng.standard_normal((33, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(33).astype(np.float32)
    out1 = wino_forward(x, w, b, (1, 1), 1, threads=1)
    assert_close_scaled(out1, conv2d_ref(x, w, b, padding=(1, 1)),
                        conv2d_scale_ref(x, w, b, padding=(1, 1)), 8 * 9, np.float32, FACTOR)
    assert np.array_equal(wino_forward(x, w, b, (1, 1), 1, threads=nt), out1)
    w[32, 3, 0, 0] = np.inf
    want = _ops.conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1), 1, False, _ops.ALGO_IM2COL, 1)
    assert not np.isfinite(want[:, 32]).all() and np.isfinite(want[:, :32]).all()
    np.testing.assert_array_equal(wino_forward(x, w, b, (1, 1), 1, threads=nt), want)


@pytest.mark.parametrize("where", ["x_inf", "x_nan", "w_inf", "w_nan", "bias_inf", "overflow"])
def test_non_finite_values_give_the_direct_sums_answer(where):
    """Winograd mixes neighbouring inputs (inf - inf = NaN where the sums give inf);
    an output that is not finite makes the call recompute by im2col, bit for bit."""
    x, w, b = inputs("many_tiles", np.float32)
    checks.poison({"x_inf": (x, (1, 3, 10, 10), np.inf), "x_nan": (x, (0, 0, 0, 5), np.nan),
                   "w_inf": (w, (4, 2, 1, 1), -np.inf), "w_nan": (w, (0, 0, 2, 2), np.nan),
                   "bias_inf": (b, 7, np.inf), "overflow": (x, np.s_[2, 5, 3:6, 3:6], 3e38)},
                  where)
    pad = CASES["many_tiles"][2]
    want = _ops.conv2d_forward(x, w, b, (1, 1), pad, (1, 1), 1, False, _ops.ALGO_IM2COL, 1)
    assert not np.isfinite(want).all()
    got = wino_forward(x, w, b, pad, 1)
    np.testing.assert_array_equal(got, want)


def _poisoned(where):
    """x, w, grad_out of the many_tiles case with one inf or NaN where asked."""
    x, w, _ = inputs("many_tiles", np.float32)
    gout = np.random.default_rng(4).standard_normal((3, 24, 30, 26)).astype(np.float32)
    spots = {"gout_inf": (gout, (1, 5, 0, 7), np.inf), "gout_nan": (gout, (2, 23, 29, 25), np.nan),
             "w_inf": (w, (4, 2, 1, 1), -np.inf), "w_nan": (w, (0, 0, 2, 2), np.nan),
             "x_nan": (x, (2, 3, 29, 25), np.nan), "x_inf": (x, (0, 0, 4, 4), -np.inf)}
    checks.poison(spots, where)
    return x, w, gout, CASES["many_tiles"][2]


@pytest.mark.parametrize("where", ["gout_inf", "gout_nan", "w_inf", "w_nan"])
def test_non_finite_input_gradient_gives_the_direct_sums_answer(where):
    x, w, gout, pad = _poisoned(where)
    want = _ops.conv2d_backward(gout, x, w, (1, 1), pad, (1, 1), 1, False, _ops.ALGO_IM2COL,
                                _ops.ALGO_IM2COL, (True, False, False), 1)[0]
    assert not np.isfinite(want).all()
    np.testing.assert_array_equal(wino_grad_x(gout, x, w, pad, 1), want)


def test_auto_uses_winograd_where_conv2d_algo_says():
    assert fastconv.conv2d_algo((128, 128, 3, 3), padding=1) == "winograd"
    assert fastconv.conv2d_algo((128, 128, 3, 3), padding=1, grad="input") == "winograd"
    assert fastconv.conv2d_algo((128, 128, 3, 3), padding=1, grad="weight") == "winograd"
    assert fastconv.conv2d_algo((64, 32, 3, 3), padding=1, grad="weight") == "winograd"
    assert fastconv.conv2d_algo((32, 32, 3, 3), padding=1, grad="weight") == "direct"
    assert fastconv.conv2d_algo((64, 16, 3, 3), padding=1, grad="weight") == "direct"
    # not for other kernels, strides, dilations, few channels or wide padding
    assert fastconv.conv2d_algo((128, 128, 5, 5), padding=2) != "winograd"
    assert fastconv.conv2d_algo((128, 128, 3, 3), stride=2, padding=1) != "winograd"
    assert fastconv.conv2d_algo((128, 128, 3, 3), dilation=2, padding=2) != "winograd"
    assert fastconv.conv2d_algo((32, 1, 3, 3), padding=1) != "winograd"
    assert fastconv.conv2d_algo((64, 1, 3, 3), padding=1, groups=64) != "winograd"
    assert fastconv.conv2d_algo((128, 128, 3, 3), padding=3) != "winograd"

    x, w, b = inputs("many_tiles", np.float32)
    pad = CASES["many_tiles"][2]
    assert fastconv.conv2d_algo(w.shape, padding=pad) == "winograd"
    assert np.array_equal(fastconv.conv2d(x, w, b, padding=pad), wino_forward(x, w, b, pad, 1,
                                                                              threads=fastconv.get_num_threads()))
    gout = np.random.default_rng(3).standard_normal((3, 24, 30, 26)).astype(np.float32)
    gx, gw, gb = fastconv.conv2d_backward(gout, x, w, padding=pad)
    assert np.array_equal(gx, wino_grad_x(gout, x, w, pad, 1, threads=fastconv.get_num_threads()))
    ref_w = fastconv.conv2d_backward(gout, x, w, padding=pad, algo="direct")
    assert np.array_equal(gw, ref_w[1]) and np.array_equal(gb, ref_w[2])


@pytest.mark.parametrize("kw", [dict(stride=(2, 2)), dict(dilation=(2, 2)), dict(kernel=5)])
def test_geometries_without_winograd_are_refused(kw):
    x = checks.arr((1, 4, 9, 9))
    w = checks.arr((4, 4, kw.get("kernel", 3), kw.get("kernel", 3)))
    before = x.copy(), w.copy()
    with pytest.raises(ValueError, match="rejected"):
        _ops.conv2d_forward(x, w, None, kw.get("stride", (1, 1)), (1, 1),
                            kw.get("dilation", (1, 1)), 1, False, WINO, 1)
    assert np.array_equal(x, before[0]) and np.array_equal(w, before[1])


def test_input_gradient_refuses_padding_over_2():
    x, w = checks.arr((1, 4, 6, 6)), checks.arr((4, 4, 3, 3))
    gout = checks.arr((1, 4, 10, 10))
    with pytest.raises(ValueError, match="rejected"):
        _ops.conv2d_backward(gout, x, w, (1, 1), (3, 3), (1, 1), 1, False, WINO, 0,
                             (True, False, False), 1)
    # the weight gradient takes any padding
    gw = _ops.conv2d_backward(gout, x, w, (1, 1), (3, 3), (1, 1), 1, False, 0, WINO,
                              (False, True, False), 1)[1]
    want = conv2d_backward_ref(gout, x, w, padding=(3, 3))[1]
    np.testing.assert_allclose(gw, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def wino_grad_w(gout, x, w, padding, groups, threads=1):
    return _ops.conv2d_backward(gout, x, w, (1, 1), padding, (1, 1), groups, False,
                                _ops.ALGO_IM2COL, WINO, (False, True, True), threads)[1:]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_weight_gradient_matches_reference(case, dtype, simd):
    x, w, gout, padding, groups = backward_inputs(case, dtype, seed=5)
    oshape = gout.shape
    _, want_w, want_b = conv2d_backward_ref(gout, x, w, padding=padding, groups=groups)
    _, scale_w, scale_b = conv2d_backward_ref(np.abs(gout.astype(np.float64)), np.abs(x), w,
                                              padding=padding, groups=groups)
    gw, gb = wino_grad_w(gout, x, w, padding, groups)
    assert gw.dtype == dtype and gb.dtype == dtype
    n_terms = oshape[0] * oshape[2] * oshape[3]
    assert_close_scaled(gw, want_w, scale_w, n_terms, dtype, FACTOR)
    assert_close_scaled(gb, want_b, scale_b, n_terms, dtype)


@pytest.mark.parametrize("n, c, m, h, w, reference", [
    # chunks that start inside tile rows and images: at 1 thread one KC per chunk, 2400
    # tiles ending in 96 and 2100 in 52 (each joining the chunk before); with a team,
    # pieces (below) where they spread evenly, else about 32 MiB of operands per chunk
    # (4608 tiles with the 8 x 32 float tile: 4800 ending in 192, 4640 in 32)
    (6, 40, 48, 40, 40, True),
    (3, 40, 48, 40, 70, True),
    (6, 40, 48, 40, 80, True),
    (4, 40, 48, 40, 116, True),
    (2, 24, 40, 64, 64, True),     # 2048 tiles, 8 pieces: even at 2 and 4 threads, not at 3
    (3, 128, 128, 64, 64, False),  # 3072 tiles, 12 pieces whose P take 1 MiB: rounds of 6 or 4
    (8, 16, 16, 14, 14, True),     # 392 tiles, 256 + 136: too uneven, the shared chunks
    (1, 8, 8, 46, 46, True),       # 529 tiles: 256 + 256 + 17
    # 128 output channels or more per thread past the first: each thread its own rows of
    # the sums, 8 + 9 panels of 8 (17 of 8, 9 of 16 with the 8 x 16 tile's MR of 8) and
    # a last panel of 2 rows
    (2, 24, 136, 24, 24, True),
    (2, 16, 130, 20, 20, True),
    # the rows' shared V in rounds: a piece's V over 4 MiB (272 input channels) makes
    # rounds of one piece, three of them (576 tiles) through the two buffers
    (1, 272, 136, 48, 48, True),
])
def test_weight_gradient_chunks_pieces_and_threads(n, c, m, h, w, reference, simd):
    """The weight gradient reduces over the tiles in chunks of KC = 256 tiles or more.
    With a team, the tiles go in pieces of one KC, each thread taking a run of
    consecutive pieces: the first run adds its pieces straight into the sum, the others
    keep each piece's partial sums, added in piece order after the run (in rounds, when
    those partial sums would take more than 8 MiB); or, where the runs would load the
    threads unevenly, in chunks shared by the team; or, with at least 128 output
    channels per thread past the first, each thread takes its own rows of the sums (the
    input's transform V shared, each thread transforming some of its channels). Every
    sum must be the chain one thread builds: the same bits at 1, 2, 3 and 4 threads."""
    rng = np.random.default_rng(n * 1000 + c + w)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((m, c, 3, 3)).astype(np.float32)
    gout = rng.standard_normal((n, m, h, w)).astype(np.float32)
    gw1, gb1 = wino_grad_w(gout, x, wt, (1, 1), 1, threads=1)
    if reference:
        want = conv2d_backward_ref(gout, x, wt, padding=(1, 1))[1]
        np.testing.assert_allclose(gw1, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    for nt in (2, 3, 4):
        gw, gb = wino_grad_w(gout, x, wt, (1, 1), 1, threads=nt)
        assert np.array_equal(gw, gw1) and np.array_equal(gb, gb1), nt


@pytest.mark.parametrize("where", ["gout_inf", "x_nan", "x_inf"])
def test_non_finite_weight_gradient_gives_the_direct_sums_answer(where):
    x, w, gout, pad = _poisoned(where)
    want = _ops.conv2d_backward(gout, x, w, (1, 1), pad, (1, 1), 1, False, _ops.ALGO_IM2COL,
                                _ops.ALGO_DIRECT, (False, True, True), 1)
    assert not np.isfinite(want[1]).all()
    got = wino_grad_w(gout, x, w, pad, 1)
    np.testing.assert_array_equal(got[0], want[1])
    np.testing.assert_array_equal(got[1], want[2])
