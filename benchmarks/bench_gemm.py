"""The internal GEMM (float32) on the products the convolutions run, next to NumPy.

Each shape (M x K) @ (K x N) is one product a layer of ``fastconv.shapes.LAYERS``
hands to the packed GEMM: im2col per image (M = OC, K = C*KH*KW, N = OH*OW), the
pointwise layer without im2col, and one of the 16 products of the Winograd
algorithm (M = OC, K = C, N = a block of tiles). ``fastconv._ops.matmul`` runs the
library's GEMM on plain arrays; NumPy's ``matmul`` is OpenBLAS (or whatever BLAS
NumPy was built with). The issue's target is fastconv >= 95% of NumPy's speed.

Run as a script (``python benchmarks/bench_gemm.py [--rounds 9]``) it compares the two
in one process on one thread, calls interleaved, by the best process CPU time of the
rounds, which a busy shared machine disturbs less than wall-clock medians.
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


def main(argv=None):
    import argparse
    import time

    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description="fastconv's GEMM next to NumPy's, 1 thread")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    print(f"fastconv {fastconv.__version__} (SIMD {fastconv._get_simd()}), numpy "
          f"{np.__version__}; best process CPU time of {args.rounds} interleaved rounds")
    with threadpool_limits(1):
        for name, (M, K, N) in SHAPES.items():
            rng = np.random.default_rng(0)
            a = rng.standard_normal((M, K), dtype=np.float32)
            b = rng.standard_normal((K, N), dtype=np.float32)
            out_f, out_n = np.empty((M, N), np.float32), np.empty((M, N), np.float32)
            check_close(_ops.matmul(a, b, 1, out_f), a.astype(np.float64) @ b.astype(np.float64))
            reps = max(3, int(2e9 / (2 * M * N * K)))
            best = {"fastconv": float("inf"), "numpy": float("inf")}
            for _ in range(args.rounds):
                for impl in ("fastconv", "numpy"):
                    t = time.process_time()
                    for _ in range(reps):
                        if impl == "fastconv":
                            _ops.matmul(a, b, 1, out_f)
                        else:
                            np.matmul(a, b, out=out_n)
                    best[impl] = min(best[impl], (time.process_time() - t) / reps)
            gf = {k: 2 * M * N * K / v / 1e9 for k, v in best.items()}
            shape = f"{M}x{K}x{N}"
            print(f"  {name:<18} {shape:<15} fastconv {gf['fastconv']:6.1f} GFLOP/s  numpy "
                  f"{gf['numpy']:6.1f} GFLOP/s  fastconv speed / numpy {best['numpy'] / best['fastconv']:.3f}")


if __name__ == "__main__":
    main()
