"""The internal GEMM (float32) on the products the convolutions run, next to NumPy.

Each shape (M x K) @ (K x N) is one product a layer of ``fastconv.shapes.LAYERS``
hands to the packed GEMM: im2col per image (M = OC, K = C*KH*KW, N = OH*OW), the
pointwise layer without im2col, and one of the 16 products of the Winograd
algorithm (M = OC, K = C, N = a block of tiles). ``fastconv._ops.matmul`` runs the
library's GEMM on plain arrays; NumPy's ``matmul`` is OpenBLAS (or whatever BLAS
NumPy was built with). The issue's target is fastconv >= 95% of NumPy's speed.
"""

import numpy as np
import pytest

import fastconv
from fastconv import _ops

from benchutil import check_close, record

SHAPES = {  # name: (M, K, N)
    "r18_l2_im2col": (128, 1152, 784),
    "r18_l3_im2col": (256, 2304, 196),
    "fmnist_c2_im2col": (64, 288, 196),
    "r18_conv1_im2col": (64, 147, 12544),
    "r50_1x1": (1024, 256, 196),
    "r18_l3_winograd": (256, 256, 112),
    "square_1024": (1024, 1024, 1024),
}


@pytest.mark.parametrize("impl", ["fastconv", "numpy"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_gemm(benchmark, name, impl):
    benchmark.group = f"gemm-{name}"
    M, K, N = SHAPES[name]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    out = np.empty((M, N), np.float32)  # both write into a reused output
    if impl == "fastconv":
        nt = fastconv.get_num_threads()
        fn = lambda: _ops.matmul(a, b, nt, out)  # noqa: E731
    else:
        fn = lambda: np.matmul(a, b, out=out)  # noqa: E731
    check_close(fn(), a.astype(np.float64) @ b.astype(np.float64))
    benchmark(fn)
    record(benchmark, impl, flops=2 * M * K * N)
