"""Winograd F(4x4, 4x4) on the polyphase form: the forward algorithm 'auto' runs on
kernels that split by their stride into 4x4 phase kernels (7x7 and 8x8 at stride 2,
such as ResNet's first layer; 4x4 at stride 1).

Like F(2x2, 3x3) it is reached through fastconv._ops with the Winograd algorithm code
(the C entry point picks the variant from the geometry). Oracles: the float64 NumPy
references of tests/reference.py and, for inf and NaN, the im2col algorithm.
"""

import mmap
import platform

import numpy as np
import pytest

import checks
import fastconv
from fastconv import _ops
from fastconv.shapes import LAYERS
from reference import assert_close_scaled, conv2d_ref, conv2d_scale_ref

WINO = _ops.ALGO_WINOGRAD
# where fc_stream_output can say yes (SSE2 and mincore)
STREAMS_HERE = (platform.machine().lower() in ("x86_64", "amd64")
                and platform.system() == "Linux")
DTYPES = [np.float32, np.float64]
# The transforms add rounding of their own (entries up to 12 in B, 8 in A, 1/120 in
# G), yet the errors measured on these cases stay under a tenth of the direct sums'
# per-term tolerance: the same tolerance holds.

# name: (x shape, weight shape, stride, padding, groups)
CASES = {
    "r18_first_small": ((2, 3, 30, 30), (16, 3, 7, 7), (2, 2), (3, 3), 1),
    "k8_s2": ((1, 2, 19, 17), (5, 2, 8, 8), (2, 2), (1, 2), 1),
    "k4_s1": ((2, 5, 11, 13), (7, 5, 4, 4), (1, 1), (2, 1), 1),
    "k7x4_s2x1": ((2, 4, 13, 10), (6, 4, 7, 4), (2, 1), (3, 0), 1),
    "groups2": ((2, 6, 17, 15), (8, 3, 7, 7), (2, 2), (3, 3), 2),
    "no_pad": ((1, 3, 21, 23), (8, 3, 7, 7), (2, 2), (0, 0), 1),
    "wide_pad": ((1, 3, 9, 8), (4, 3, 7, 7), (2, 2), (6, 5), 1),
    "out_3x3": ((1, 3, 5, 5), (4, 3, 7, 7), (2, 2), (3, 3), 1),
    "out_5x7": ((1, 3, 9, 13), (4, 3, 7, 7), (2, 2), (3, 3), 1),
    "out_1x1": ((2, 3, 1, 1), (3, 3, 7, 7), (2, 2), (3, 3), 1),
    "out_2x4": ((1, 2, 4, 8), (3, 2, 7, 7), (2, 2), (3, 3), 1),
    # 280 polyphase channels: more than one KC = 256 chunk of the packed GEMM
    "deep_280": ((1, 70, 9, 9), (9, 70, 7, 7), (2, 2), (3, 3), 1),
    # zero taps in the phase kernels (3 taps along a 7-tap axis at stride 2): the
    # products skip row 6 and/or column 6 of the transformed tile for those phases.
    # 7 x 8 and 8 x 7: along one axis only; 240 channels: still one KC chunk
    "zero_rows_7x8": ((2, 3, 19, 22), (10, 3, 7, 8), (2, 2), (3, 2), 1),
    "zero_cols_8x7": ((1, 2, 23, 17), (9, 2, 8, 7), (2, 2), (1, 3), 1),
    "deep_240": ((1, 60, 13, 11), (9, 60, 7, 7), (2, 2), (3, 3), 1),
    # several blocks of tiles, starting inside tile rows (9 tiles per row with the
    # phantom, blocks a multiple of 16), odd output sizes
    "many_tiles": ((3, 3, 61, 57), (24, 3, 7, 7), (2, 2), (3, 3), 1),
    "channels_17": ((1, 17, 27, 25), (33, 17, 4, 4), (1, 1), (1, 2), 1),
    # wide rows: 38 tiles and a phantom per tile row
    "wide_s2": ((1, 3, 9, 301), (16, 3, 7, 7), (2, 2), (3, 3), 1),
    "wide_s1": ((1, 4, 6, 150), (16, 4, 4, 4), (1, 1), (1, 2), 1),
    # 200 output channels: more than the rows of one chunk of channels (its rows of a
    # block of up to 128 tiles take 512 KiB at 64 float channels), 200 = 3*64 + 8
    "channels_200": ((2, 4, 30, 30), (200, 4, 4, 4), (1, 1), (1, 1), 1),
}


def inputs(case, dtype, seed=0):
    x_shape, w_shape = CASES[case][:2]
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype),
            rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype))


def wino_forward(x, w, b, case, threads=1, code=WINO):
    _, _, stride, padding, groups = CASES[case]
    return _ops.conv2d_forward(x, w, b, stride, padding, (1, 1), groups, False, code, threads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_matches_reference(case, dtype, simd):
    x, w, b = inputs(case, dtype)
    _, _, stride, padding, groups = CASES[case]
    before = [a.copy() for a in (x, w, b)]
    out = wino_forward(x, w, b, case)
    kw = dict(stride=stride, padding=padding, groups=groups)
    assert out.dtype == dtype
    assert_close_scaled(out, conv2d_ref(x, w, b, **kw), conv2d_scale_ref(x, w, b, **kw),
                        w.shape[1] * w.shape[2] * w.shape[3], dtype)
    for a, a0 in zip((x, w, b), before):
        assert np.array_equal(a, a0)


def test_without_bias_and_into_out():
    x, w, _ = inputs("many_tiles", np.float32)
    _, _, stride, padding, _ = CASES["many_tiles"]
    want = wino_forward(x, w, np.zeros(w.shape[0], np.float32), "many_tiles")
    out = np.full(want.shape, np.nan, np.float32)
    got = _ops.conv2d_forward(x, w, None, stride, padding, (1, 1), 1, False, WINO, 1, out)
    assert got is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("case", ["many_tiles", "groups2", "deep_280", "channels_200"])
def test_same_bits_for_any_thread_count_and_block_split(case):
    """The team size changes the blocks of tiles (and where inside a tile row they
    start); every output keeps its bits."""
    x, w, b = inputs(case, np.float32, seed=3)
    out1 = wino_forward(x, w, b, case, threads=1)
    for nt in (2, 3, 4, 7):
        assert np.array_equal(wino_forward(x, w, b, case, threads=nt), out1)


def test_resnet_first_layer_at_batch_2():
    L = LAYERS["r18_conv1"].scaled(N=2)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(L.x_shape).astype(np.float32)
    w = rng.standard_normal(L.w_shape).astype(np.float32)
    kw = L.kwargs()
    assert fastconv.conv2d_algo(L.w_shape, **{k: kw[k] for k in ("stride", "padding")}) \
        == "winograd"
    got = fastconv.conv2d(x, w, **kw)
    ref = dict(stride=kw["stride"], padding=kw["padding"])
    assert_close_scaled(got, conv2d_ref(x, w, **ref), conv2d_scale_ref(x, w, **ref),
                        3 * 49, np.float32)
    assert np.array_equal(got, fastconv.conv2d(x, w, **kw, out=np.empty_like(got)))


@pytest.mark.parametrize("where", ["x_inf", "x_nan", "w_inf", "w_nan", "bias_inf",
                                   "overflow", "x_inf_edge"])
def test_non_finite_values_give_the_direct_sums_answer(where):
    """The transforms mix neighbouring inputs (inf - inf = NaN where the sums give inf);
    an output that is not finite makes the call recompute by im2col, bit for bit."""
    x, w, b = inputs("many_tiles", np.float32)
    checks.poison({"x_inf": (x, (1, 2, 10, 10), np.inf), "x_nan": (x, (0, 0, 0, 5), np.nan),
                   "w_inf": (w, (4, 2, 1, 6), -np.inf), "w_nan": (w, (0, 0, 3, 3), np.nan),
                   "bias_inf": (b, 7, np.inf), "overflow": (x, np.s_[2, 1, 3:9, 3:9], 3e38),
                   # the last input column: read by the last tiles of a row and its phantom
                   "x_inf_edge": (x, (0, 1, 30, 56), np.inf)}, where)
    want = wino_forward(x, w, b, "many_tiles", code=_ops.ALGO_IM2COL)
    assert not np.isfinite(want).all()
    np.testing.assert_array_equal(wino_forward(x, w, b, "many_tiles"), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channel", [3, 100, 199])
def test_non_finite_output_in_any_chunk_of_channels(channel, dtype):
    """A weight of inf in one output channel, in the first, a middle or the last chunk
    of channels (where the transformed weights hold NaN, 0 * inf): the call recomputes
    by im2col, bit for bit."""
    x, w, b = inputs("channels_200", dtype)
    w[channel, 1, 2, 1] = np.inf
    want = wino_forward(x, w, b, "channels_200", code=_ops.ALGO_IM2COL)
    assert np.isinf(want[:, channel]).any() and np.isfinite(np.delete(want, channel, 1)).all()
    np.testing.assert_array_equal(wino_forward(x, w, b, "channels_200"), want)


def test_auto_uses_it_where_conv2d_algo_says():
    assert fastconv.conv2d_algo((64, 3, 7, 7), stride=2, padding=3) == "winograd"
    assert fastconv.conv2d_algo((64, 3, 8, 8), stride=2, padding=3) == "winograd"
    assert fastconv.conv2d_algo((32, 16, 4, 4), padding=1) == "winograd"
    assert fastconv.conv2d_algo((64, 6, 7, 7), stride=2, padding=3, groups=2) == "winograd"
    # forward only; not for few channels, other kernels, dilation or wide padding
    assert fastconv.conv2d_algo((64, 3, 7, 7), stride=2, padding=3, grad="input") != "winograd"
    assert fastconv.conv2d_algo((64, 3, 7, 7), stride=2, padding=3, grad="weight") != "winograd"
    assert fastconv.conv2d_algo((64, 1, 7, 7), stride=2, padding=3) != "winograd"
    assert fastconv.conv2d_algo((8, 3, 7, 7), stride=2, padding=3) != "winograd"
    assert fastconv.conv2d_algo((64, 3, 7, 7), stride=1, padding=3) != "winograd"
    assert fastconv.conv2d_algo((64, 3, 5, 5), stride=2, padding=2) != "winograd"
    assert fastconv.conv2d_algo((64, 3, 7, 7), stride=2, padding=3, dilation=2) != "winograd"
    assert fastconv.conv2d_algo((64, 3, 7, 7), stride=2, padding=7) != "winograd"

    x, w, b = inputs("r18_first_small", np.float32)
    _, _, stride, padding, _ = CASES["r18_first_small"]
    assert fastconv.conv2d_algo(w.shape, stride=stride, padding=padding) == "winograd"
    nt = fastconv.get_num_threads()
    assert np.array_equal(fastconv.conv2d(x, w, b, stride=stride, padding=padding),
                          wino_forward(x, w, b, "r18_first_small", threads=nt))


@pytest.mark.parametrize("kw", [dict(kernel=(6, 6), stride=(2, 2)),
                                dict(kernel=(7, 7), stride=(3, 3)),
                                dict(kernel=(5, 5), stride=(1, 1)),
                                dict(kernel=(7, 7), stride=(2, 2), dilation=(2, 2))])
def test_other_geometries_are_refused(kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 20, 20)).astype(np.float32)
    w = rng.standard_normal((4, 3) + kw["kernel"]).astype(np.float32)
    before = x.copy(), w.copy()
    with pytest.raises(ValueError, match="rejected"):
        _ops.conv2d_forward(x, w, None, kw["stride"], (1, 1), kw.get("dilation", (1, 1)), 1,
                            False, WINO, 1)
    assert np.array_equal(x, before[0]) and np.array_equal(w, before[1])


def test_which_outputs_get_streaming_stores():
    """fc_stream_output: large arrays whose pages are resident; not small ones, not a
    fresh mapping (its pages fault in zeroed and cached), not where there are no
    streaming stores."""
    big = _ops.STREAM_MIN_BYTES
    assert big >= 1 << 20
    assert not _ops.stream_output(np.ones(big // 4 - 1, np.float32))
    mapping = mmap.mmap(-1, big + 4096)  # a fresh anonymous mapping, untouched
    fresh = np.frombuffer(mapping, np.uint8)
    assert _ops.stream_output(np.ones(big, np.uint8)) == STREAMS_HERE
    assert not _ops.stream_output(fresh)
    fresh[::4096] = 1
    assert _ops.stream_output(fresh) == STREAMS_HERE
    del fresh
    mapping.close()
    with pytest.raises(TypeError, match="a must be"):
        _ops.stream_output(b"bytes")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("misaligned", [False, True])
def test_streamed_output_has_the_bits_of_each_image_alone(dtype, misaligned, simd):
    """An output of at least STREAM_MIN_BYTES in resident memory (out= reused) is
    written with streaming stores; each image alone (3 MB) with ordinary ones. Every
    output is a function of its own tile: the same bits. Rows of 111 outputs (no whole
    16-byte vector at the row's end), and out= 4 bytes past a 16-byte boundary (a
    head of ordinary stores on every row)."""
    per_image = 64 * 111 * 111 * np.dtype(dtype).itemsize
    n = -(-_ops.STREAM_MIN_BYTES // per_image)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, 3, 221, 221)).astype(dtype)
    w = rng.standard_normal((64, 3, 7, 7)).astype(dtype)
    b = rng.standard_normal(64).astype(dtype)
    shape = (n, 64, 111, 111)
    size = int(np.prod(shape))
    buf = np.full(size + 64, np.nan, dtype)
    off = (-buf.ctypes.data % 16) // buf.itemsize + (1 if misaligned else 0)
    out = buf[off:off + size].reshape(shape)
    assert (out.ctypes.data % 16 != 0) == misaligned
    assert _ops.stream_output(out) == STREAMS_HERE
    got = _ops.conv2d_forward(x, w, b, (2, 2), (3, 3), (1, 1), 1, False, WINO, 2, out)
    assert got is out
    assert np.isnan(buf[:off]).all() and np.isnan(buf[off + size:]).all()
    for i in range(n):
        one = _ops.conv2d_forward(x[i:i + 1], w, b, (2, 2), (3, 3), (1, 1), 1, False, WINO, 1)
        assert not _ops.stream_output(one)
        np.testing.assert_array_equal(out[i], one[0])
    ref = dict(stride=(2, 2), padding=(3, 3))
    assert_close_scaled(out[:1], conv2d_ref(x[:1], w, b, **ref),
                        conv2d_scale_ref(x[:1], w, b, **ref), 3 * 49, dtype)
