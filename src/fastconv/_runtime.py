"""Thread count and SIMD level: the run-time settings every kernel call reads."""
import os

from . import _ops

_explicit_threads = None
# More threads than this only exhausts the process (each OpenMP thread has its own stack).
MAX_THREADS = 1024
_forked_child = False


def _cpu_count():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_num_threads(n):
    """Set the number of threads the kernels use.

    Parameters
    ----------
    n : int or None
        A positive count (at most 1024); a negative one counts back from the number of CPUs
        (``-1`` = all of them, ``-2`` = all but one); ``None`` returns to the
        default, which follows ``OMP_NUM_THREADS`` and ``threadpoolctl`` at each
        call (``omp_get_max_threads()``), capped at the CPUs this process may use.
    """
    global _explicit_threads
    if n is None:
        _explicit_threads = None
        return
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads: n must be an int or None, got {n!r}")
    n = int(n.__index__())
    if n == 0:
        raise ValueError("set_num_threads: n must be non-zero, got 0")
    if n > MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be at most {MAX_THREADS}, got {n}")
    if n < 0:
        n = max(1, _cpu_count() + 1 + n)
    _explicit_threads = n


def get_num_threads():
    """The number of threads the next kernel call will use.

    In a child made by ``os.fork()`` this is always 1: GNU OpenMP's thread pool does
    not survive a fork, and a parallel region there would hang.
    """
    if _forked_child:
        return 1
    if _explicit_threads is not None:
        return _explicit_threads
    return max(1, min(_ops.max_threads(), _cpu_count()))


def _after_fork_in_child():
    global _forked_child
    _forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _init_simd():
    """Apply FASTCONV_SIMD (a cap on the SIMD level) and FASTCONV_GEMM_TILE (the AVX-512
    float GEMM tile: narrow, wide or default) once, at import."""
    tile = os.environ.get("FASTCONV_GEMM_TILE", "").strip().lower()
    tiles = _ops.GEMM_TILES + ("default",)
    if tile and tile not in tiles:
        raise ValueError(f"FASTCONV_GEMM_TILE must be one of {', '.join(tiles)}, "
                         f"got {tile!r}")
    cap = os.environ.get("FASTCONV_SIMD", "").strip().lower()
    if cap and cap not in _ops.SIMD_LEVELS:
        raise ValueError(f"FASTCONV_SIMD must be one of {', '.join(_ops.SIMD_LEVELS)}, "
                         f"got {cap!r}")
    if tile:
        _ops.gemm_tile_set(tile)
    if cap:
        _ops.simd_set(cap)


def _simd_levels():
    """The SIMD levels this CPU and build support, lowest first."""
    best = _ops.SIMD_LEVELS.index(_ops.simd_best())
    return list(_ops.SIMD_LEVELS[: best + 1])


def _set_simd(level):
    """Switch the kernel set (for tests and benchmarks); returns the previous level."""
    if level not in _simd_levels():
        raise ValueError(f"SIMD level {level!r} is not supported here; available: "
                         f"{_simd_levels()}")
    previous = _ops.simd_get()
    _ops.simd_set(level)
    return previous


def _get_simd():
    return _ops.simd_get()


def _set_gemm_tile(tile):
    """Switch the AVX-512 float GEMM tile ('narrow', 'wide' or 'default'; for tests and
    benchmarks); returns the previous one."""
    return _ops.gemm_tile_set(tile)


def _get_gemm_tile():
    return _ops.gemm_tile_get()
