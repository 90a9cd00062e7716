"""fastconv: convolutional-network operators for the CPU, from NumPy.

C kernels (im2col + GEMM and direct convolution, max pooling, ReLU, linear) with
AVX-512, AVX2 and portable micro-kernels chosen at import, OpenMP threads, and a
functional API that mirrors ``torch.nn.functional``.
"""
__version__ = "0.1.0"


# How long libgomp lets a waiting thread spin before it sleeps, in rounds of its spin
# loop: about 18 us per 1000 on the Intel Xeon VM of 2026-12 (libgomp's default of
# 300000 spun 5.3 ms after each call there). See _import_kernels.
_SPIN_COUNT = 1000


def _import_kernels():
    """Import the extension, with OpenMP threads that spin briefly and then sleep.

    A thread that waits, at the end of a parallel step or for the next one, can spin
    or sleep. libgomp's default spins for a long time (300000 rounds): when another
    process keeps the second core busy, the spinning thread holds its core while the
    worker it waits for cannot run, and two threads end up several times slower than
    one. Sleeping at once (OMP_WAIT_POLICY=PASSIVE) avoids that, but every wake-up of a
    sleeping thread cost 70-80 us on the 2-core development VM, and a backward pass has
    up to ten parallel steps. fastconv sets GOMP_SPINCOUNT=_SPIN_COUNT: a wait shorter
    than about 20 microseconds (the steps of one call mostly follow each other that
    closely) is spun through, a longer one sleeps. Measured there with
    benchmarks/thread_scaling.py (BENCHMARKS.md), 2 threads against 1 on three backward
    passes: 1.49-1.73x against 1.33-1.67x sleeping at once, and 0.85-0.97x next to a
    busy process against 0.88-0.97x (a spin of 3000 gave 1.61-1.80x and 0.79-0.94x).
    libgomp reads the variable once, when it is loaded, which is when this extension
    is imported: it is set for that moment only (child processes and other libraries
    see the environment as it was). A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT
    wins. Returns the extension and the policy.
    """
    import os

    user = [k for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ]
    if user:
        from . import _ops
        return _ops, "from the environment: " + ", ".join(f"{k}={os.environ[k]}" for k in user)
    loaded = False
    try:
        with open("/proc/self/maps") as maps:
            loaded = any("/libgomp.so" in line for line in maps)
    except OSError:
        pass
    os.environ["GOMP_SPINCOUNT"] = str(_SPIN_COUNT)
    try:
        from . import _ops
    finally:
        del os.environ["GOMP_SPINCOUNT"]
    if not _ops.openmp_enabled():
        return _ops, "none (serial build)"
    if loaded:
        return _ops, "libgomp's (it was loaded before fastconv)"
    return _ops, f"spin {_SPIN_COUNT} rounds, then sleep (GOMP_SPINCOUNT={_SPIN_COUNT})"


_ops, _WAIT_POLICY = _import_kernels()

_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def _keep_freed_memory():
    """Let glibc keep freed blocks of up to 32 MiB for reuse instead of returning them.

    Each layer of a network returns a fresh output array and frees the last step's. With
    glibc's starting thresholds the heap is trimmed and grown again every step, and each
    fresh page costs a fault (with two threads faulting at once, memory-bound layers ran
    several times slower than on one). fastconv sets the mmap threshold to 32 MiB and the
    trim threshold to 64 MiB, the values glibc's own adaptive thresholds end at once a
    program has freed a 32 MiB block. A user's MALLOC_* variables or glibc.malloc
    tunables win, and FASTCONV_MALLOC=default leaves malloc as it is. Returns the policy.
    """
    import os

    user = [k for k in _MALLOC_ENV if k in os.environ]
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        user.append("GLIBC_TUNABLES")
    if user:
        return "from the environment: " + ", ".join(user)
    if os.environ.get("FASTCONV_MALLOC", "") == "default":
        return "the C library's defaults (FASTCONV_MALLOC=default)"
    if _ops.malloc_keep(32 << 20, 64 << 20):
        return "keep freed blocks (glibc mmap threshold 32 MiB, trim threshold 64 MiB)"
    return "the C library's defaults (no glibc malloc)"


_MALLOC_POLICY = _keep_freed_memory()
from ._runtime import (
    _get_gemm_tile,
    _get_simd,
    _init_simd,
    _set_gemm_tile,
    _set_simd,
    _simd_levels,
    get_num_threads,
    set_num_threads,
)
from .functional import (
    conv2d,
    conv2d_algo,
    conv2d_backward,
    linear,
    linear_backward,
    max_pool2d,
    max_pool2d_backward,
    relu,
    relu_backward,
)

_init_simd()

from . import data, nn, optim  # noqa: E402  (they build on the functional API above)


def _openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return _ops.openmp_enabled()


def _gemm_tile_text():
    """The float GEMM micro-tile in use, and at AVX-512 which of the two it is."""
    tile = _ops.sgemm_tile()
    if _get_simd() != "avx512":
        return tile
    default = " (this CPU's default)" if _get_gemm_tile() == _ops.gemm_tile_default() else ""
    return f"{tile} {_get_gemm_tile()}{default}"


def config():
    """The build and run-time configuration as a dict (see show_config)."""
    return {
        "version": __version__,
        "simd_in_use": _get_simd(),
        "simd_available": _simd_levels(),
        "gemm_tile": _gemm_tile_text(),
        "openmp": _openmp_enabled(),
        "num_threads": get_num_threads(),
        "omp_wait_policy": _WAIT_POLICY,
        "malloc": _MALLOC_POLICY,
        **_ops.build_info(),
    }


def show_config():
    """Print the version, SIMD level in use and available, OpenMP and threads, build flags."""
    cfg = config()
    width = max(len(k) for k in cfg)
    for key, value in cfg.items():
        if isinstance(value, dict):
            value = "; ".join(f"{k}: {' '.join(v) if v else '-'}" for k, v in value.items())
        elif isinstance(value, list):
            value = " ".join(map(str, value))
        print(f"{key:<{width}}  {value}")


__all__ = [
    "conv2d",
    "conv2d_algo",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "relu",
    "relu_backward",
    "linear",
    "linear_backward",
    "set_num_threads",
    "get_num_threads",
    "show_config",
    "config",
    "nn",
    "optim",
    "data",
    "__version__",
]
