"""The two float GEMM micro-tiles of the AVX-512 kernels: narrow (8x16) and wide (8x32).

Every element of a product is one sum in increasing k either way, so the tiles give
the same bits wherever the product's blocking does not depend on NR; the wide tile is
the default on Intel CPUs, the narrow one elsewhere; ``FASTCONV_GEMM_TILE`` and
``fastconv.config()`` set and report it (an unknown value of the variable: see
test_runtime.py). (Correctness of each tile against the NumPy
reference: every test with the ``simd`` fixture runs both, see conftest.py.)
"""
import numpy as np
import pytest

import fastconv
from fastconv import _ops, bench
from reference import assert_close_scaled, conv2d_ref, conv2d_scale_ref
from test_runtime import python_value

TILES = {"narrow": "8x16", "wide": "8x32"}
needs_avx512 = pytest.mark.skipif("avx512" not in fastconv._simd_levels(),
                                  reason="no AVX-512 on this CPU: it has one GEMM tile")


@pytest.fixture
def avx512():
    """The AVX-512 kernels; the tile and level in force before are restored after."""
    level, tile = fastconv._set_simd("avx512"), fastconv._get_gemm_tile()
    try:
        yield
    finally:
        fastconv._set_simd(level)
        fastconv._set_gemm_tile(tile)


def on_both_tiles(fn):
    """fn() under the narrow tile, then under the wide one."""
    out = []
    for tile, shape in TILES.items():
        fastconv._set_gemm_tile(tile)
        assert _ops.sgemm_tile() == shape
        out.append(fn())
    return out


# ----------------------------------------------------------------- the same sums

@needs_avx512
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (3, 15, 7), (8, 16, 5), (8, 32, 256), (9, 33, 300),
                                   (37, 17, 513), (16, 48, 257), (64, 196, 288)])
def test_matmul_same_bits_on_both_tiles_and_close_to_float64(avx512, m, n, k):
    # n covers a half panel alone (15, 16), a full 32-wide one, a full one plus a short
    # edge (33), a panel just past half (17), one plus an exact half (48) and 196 pixels
    rng = np.random.default_rng(m * 1000 + n + k)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    narrow, wide = on_both_tiles(lambda: _ops.matmul(a, b, 1))
    np.testing.assert_array_equal(narrow, wide)
    want = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    assert_close_scaled(wide, want, scale, k, np.float32)


CONVS = {
    # name: (x shape, weight shape, stride, padding, algo)
    "im2col_3x3": ((2, 5, 9, 11), (13, 5, 3, 3), 1, 1, _ops.ALGO_IM2COL),
    "im2col_1x1": ((2, 24, 7, 7), (40, 24, 1, 1), 1, 0, _ops.ALGO_IM2COL),
    "winograd_3x3": ((2, 6, 13, 10), (11, 6, 3, 3), 1, 1, _ops.ALGO_WINOGRAD),
    "polyphase_7x7_s2": ((2, 3, 23, 19), (9, 3, 7, 7), 2, 3, _ops.ALGO_WINOGRAD),
}


@needs_avx512
@pytest.mark.parametrize("name", list(CONVS))
@pytest.mark.parametrize("threads", [1, 3])
def test_conv_forward_same_bits_on_both_tiles(avx512, name, threads):
    x_shape, w_shape, stride, pad, algo = CONVS[name]
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    b = rng.standard_normal(w_shape[0], dtype=np.float32)

    def run():
        return _ops.conv2d_forward(x, w, b, (stride, stride), (pad, pad), (1, 1), 1, False,
                                   algo, threads)
    narrow, wide = on_both_tiles(run)
    np.testing.assert_array_equal(narrow, wide)
    kw = dict(stride=(stride, stride), padding=(pad, pad))
    assert_close_scaled(wide, conv2d_ref(x, w, b, **kw), conv2d_scale_ref(x, w, b, **kw),
                        w_shape[1] * w_shape[2] * w_shape[3], np.float32, factor=4)


@needs_avx512
@pytest.mark.parametrize("threads", [1, 2])
def test_winograd_backward_same_bits_on_both_tiles(avx512, threads):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 7, 12, 9), dtype=np.float32)
    w = rng.standard_normal((10, 7, 3, 3), dtype=np.float32)
    gout = rng.standard_normal((2, 10, 12, 9), dtype=np.float32)

    def run():
        return _ops.conv2d_backward(gout, x, w, (1, 1), (1, 1), (1, 1), 1, False,
                                    _ops.ALGO_WINOGRAD, _ops.ALGO_WINOGRAD, (True, True, True),
                                    threads)
    narrow, wide = on_both_tiles(run)
    for a, b in zip(narrow, wide):
        np.testing.assert_array_equal(a, b)


@needs_avx512
def test_wide_tile_same_bits_at_every_thread_count(avx512):
    # the default-tile runs are checked by the thread tests; here the other tile
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 16, 14, 14), dtype=np.float32)
    w = rng.standard_normal((48, 16, 3, 3), dtype=np.float32)
    gout = rng.standard_normal((3, 48, 14, 14), dtype=np.float32)
    for tile in TILES:
        fastconv._set_gemm_tile(tile)
        runs = [_ops.conv2d_backward(gout, x, w, (1, 1), (1, 1), (1, 1), 1, False,
                                     _ops.ALGO_IM2COL, _ops.ALGO_IM2COL, (True, True, True), t)
                for t in (1, 2, 3)]
        for run in runs[1:]:
            for a, b in zip(runs[0], run):
                np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------- choice and reporting

@needs_avx512
def test_default_tile_is_wide_exactly_on_intel():
    vendor = bench.cpuinfo("vendor_id")
    if vendor is None:
        pytest.skip("no /proc/cpuinfo to read the vendor from")
    assert _ops.gemm_tile_default() == ("wide" if vendor == "GenuineIntel" else "narrow")


def test_tile_setter_returns_previous_and_rejects_unknown_names():
    before = fastconv._get_gemm_tile()
    try:
        assert fastconv._set_gemm_tile("narrow") == before
        assert fastconv._set_gemm_tile("wide") == "narrow"
        assert fastconv._set_gemm_tile("default") == "wide"
        assert fastconv._get_gemm_tile() == _ops.gemm_tile_default()
        with pytest.raises(ValueError, match="GEMM tile must be one of"):
            fastconv._set_gemm_tile("8x32")
        assert fastconv._get_gemm_tile() == _ops.gemm_tile_default()
    finally:
        fastconv._set_gemm_tile(before)


@pytest.mark.parametrize("level", fastconv._simd_levels())
def test_config_reports_the_tile_of_the_level_in_use(level):
    previous, tile = fastconv._set_simd(level), fastconv._get_gemm_tile()
    try:
        for name in TILES:
            fastconv._set_gemm_tile(name)
            got = fastconv.config()["gemm_tile"]
            if level == "avx512":
                mark = " (this CPU's default)" if name == _ops.gemm_tile_default() else ""
                assert got == f"{TILES[name]} {name}{mark}"
            else:  # one tile: the setting has no effect there
                assert got == {"portable": "4x8", "avx2": "6x16"}[level]
                assert _ops.sgemm_tile() == got
    finally:
        fastconv._set_simd(previous)
        fastconv._set_gemm_tile(tile)


def test_env_sets_the_tile_case_insensitively():
    assert python_value("fastconv._get_gemm_tile()",
                        {"FASTCONV_GEMM_TILE": " Narrow "}) == "'narrow'"
    assert python_value("fastconv._get_gemm_tile()", {"FASTCONV_GEMM_TILE": "wide"}) == "'wide'"
    default = repr(_ops.gemm_tile_default())
    assert python_value("fastconv._get_gemm_tile()", {"FASTCONV_GEMM_TILE": "default"}) == default
    assert python_value("fastconv._get_gemm_tile()", {"FASTCONV_GEMM_TILE": ""}) == default
    # with a SIMD cap as well, both apply
    out = python_value("(fastconv._get_simd(), fastconv._get_gemm_tile())",
                       {"FASTCONV_GEMM_TILE": "narrow", "FASTCONV_SIMD": "portable"})
    assert out == repr(("portable", "narrow"))

