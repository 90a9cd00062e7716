"""Helpers shared by the bench_*.py files: validation and throughput reporting."""

import functools

import numpy as np

import fastconv

try:
    import torch
except ImportError:  # the torch peers are skipped
    torch = None



@functools.lru_cache(maxsize=None)
def peak_gflops_per_thread():
    """Single-core FP32 FMA peak of this machine, measured once per session (as
    ``python -m fastconv bench`` does). Percent-of-peak is relative to this times threads."""
    from fastconv import bench
    return bench.measured_peak()[0]


# Max |result - reference| allowed, relative to max |reference|. float32 inputs
# against a float64 reference: reductions of a few thousand terms stay ~1e-6.
RTOL = 1e-4

# (group, parameter id, median seconds, extra_info) of every timed benchmark, for the
# terminal summary that conftest.py prints.
RESULTS = []


def to_numpy(result):
    """Return a NumPy array for a NumPy array or a torch tensor."""
    if torch is not None and isinstance(result, torch.Tensor):
        return result.numpy()
    return np.asarray(result)


def check_close(result, reference, rtol=RTOL):
    """Assert that float32 ``result`` matches the float64 ``reference``."""
    result = to_numpy(result)
    assert result.shape == reference.shape, f"shape {result.shape} != {reference.shape}"
    assert result.dtype == np.float32, f"dtype {result.dtype}, expected float32"
    scale = max(float(np.max(np.abs(reference))), np.finfo(np.float32).tiny)
    err = float(np.max(np.abs(result.astype(np.float64) - reference))) / scale
    assert err <= rtol, f"max error {err:.2e} (relative to max |reference|) > {rtol:.0e}"


def median_seconds(benchmark):
    """Median time per call, or None when timing is off (``--benchmark-disable``)."""
    if benchmark.stats is None:
        return None
    return benchmark.stats.stats.median


def record(benchmark, impl, flops=None, nbytes=None):
    """Fill ``benchmark.extra_info`` with the context and, if timed, throughput.

    flops: arithmetic work of one call (a multiply-add counts 2) -> GFLOP/s and
    percent of peak. nbytes: memory traffic of one call -> GB/s.
    """
    threads = fastconv.get_num_threads()
    info = benchmark.extra_info
    info["impl"] = impl
    info["threads"] = threads
    info["simd"] = fastconv._get_simd()
    median = median_seconds(benchmark)
    if median is None:
        return
    if flops is not None:
        gflops = flops / median / 1e9
        info["gflops"] = round(gflops, 2)
        info["pct_peak"] = round(100 * gflops / (peak_gflops_per_thread() * threads), 1)
    if nbytes is not None:
        info["gbytes_per_s"] = round(nbytes / median / 1e9, 2)
    RESULTS.append((benchmark.group, benchmark.param or benchmark.name, median, dict(info)))


def layer_inputs(layer, seed=0):
    """Seeded float32 (x, weight, bias, rng) for a ConvLayer; the weight scaled by its
    fan-in as a trained layer's would be, so outputs stay of order one."""
    rng = np.random.default_rng(seed)
    fan_in = (layer.C // layer.groups) * layer.KH * layer.KW
    x = rng.standard_normal(layer.x_shape, dtype=np.float32)
    weight = rng.uniform(-1, 1, layer.w_shape).astype(np.float32) / np.float32(np.sqrt(fan_in))
    bias = rng.uniform(-1, 1, layer.OC).astype(np.float32)
    return x, weight, bias, rng
