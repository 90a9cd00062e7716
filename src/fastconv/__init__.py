"""fastconv: convolutional-network operators for the CPU, from NumPy.

C kernels (im2col + GEMM and direct convolution, max pooling, ReLU, linear) with
AVX-512, AVX2 and portable micro-kernels chosen at import, OpenMP threads, and a
functional API that mirrors ``torch.nn.functional``.
"""
__version__ = "0.1.0"

from . import _ops
from ._runtime import (
    _get_simd,
    _init_simd,
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


def config():
    """The build and run-time configuration as a dict (see show_config)."""
    return {
        "version": __version__,
        "simd_in_use": _get_simd(),
        "simd_available": _simd_levels(),
        "openmp": _openmp_enabled(),
        "num_threads": get_num_threads(),
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
