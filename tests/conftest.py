"""Shared fixtures: SIMD level and thread count, each set for a test and restored.

``fastconv`` is imported lazily, so the tests of the references themselves
(``test_reference.py``) run before the package is built.
"""

import sys

import pytest

THREAD_COUNTS = (1, 2, 3)


def simd_levels():
    """SIMD kernel sets this CPU supports, or ``[]`` when fastconv does not import: the
    levels, and at AVX-512 also the float GEMM tile that is not in force (this CPU's
    default or FASTCONV_GEMM_TILE's), as ``avx512-narrow`` or ``avx512-wide``; the tile
    in force runs as ``avx512``."""
    try:
        import fastconv
    except ImportError:
        return []
    levels = list(fastconv._simd_levels())
    if levels[-1] == "avx512":
        levels.append("avx512-" + ("narrow" if fastconv._get_gemm_tile() == "wide" else "wide"))
    return levels


def pytest_generate_tests(metafunc):
    # The levels are known only at run time, so parametrize here, not in a decorator.
    if "simd" in metafunc.fixturenames:
        levels = simd_levels() or ["fastconv-not-importable"]
        metafunc.parametrize("simd", levels, indirect=True)


@pytest.fixture(autouse=True, scope="session")
def parallel_paths_at_every_size():
    """Convolutions and GEMMs below fastconv's parallel threshold (2e7 flops) run on
    one thread; the tests' shapes are small, so the threshold is lifted for the whole
    session and every multi-thread test runs the parallel paths."""
    try:
        from fastconv import _ops
    except ImportError:
        yield
        return
    previous = _ops.parallel_min_flops(0)
    try:
        yield
    finally:
        _ops.parallel_min_flops(previous)


@pytest.fixture
def simd(request):
    """Switch fastconv to one SIMD kernel set for the test (parametrized over all);
    the test gets the level's name."""
    import fastconv

    level, _, tile = request.param.partition("-")
    previous = fastconv._set_simd(level)
    previous_tile = fastconv._set_gemm_tile(tile) if tile else None
    try:
        assert fastconv._get_simd() == level
        yield level
    finally:
        fastconv._set_simd(previous)
        if tile:
            fastconv._set_gemm_tile(previous_tile)


@pytest.fixture(params=THREAD_COUNTS, ids=lambda n: f"t{n}")
def threads(request):
    """Run fastconv with 1, 2 and 3 threads."""
    import fastconv

    previous = fastconv.get_num_threads()
    fastconv.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        fastconv.set_num_threads(previous)


@pytest.fixture
def one_thread():
    """Run fastconv single-threaded (the cheap default for the big grids)."""
    import fastconv

    previous = fastconv.get_num_threads()
    fastconv.set_num_threads(1)
    try:
        yield 1
    finally:
        fastconv.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _restore_fastconv_state():
    """Guard against a test leaking a SIMD level or thread count into the next."""
    fc = sys.modules.get("fastconv")
    if fc is None or not hasattr(fc, "_get_simd") or not hasattr(fc, "get_num_threads"):
        yield
        return
    level, n = fc._get_simd(), fc.get_num_threads()
    yield
    if fc._get_simd() != level:
        fc._set_simd(level)
    if fc.get_num_threads() != n:
        fc.set_num_threads(n)
