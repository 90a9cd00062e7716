"""pytest setup for the benchmarks (see benchmarks/README.md for how to run them).

- collects ``bench_*.py`` files, which the default ``python_files`` misses;
- gives every peer the same thread count as fastconv (torch, and the BLAS
  under NumPy through threadpoolctl when it is installed);
- records the context (fastconv version and config, thread pools, torch) in
  the pytest-benchmark machine info, and prints it in the report header;
- prints GFLOP/s, percent of peak and speed ratios to the peers at the end.
"""

import contextlib
import fnmatch
import io
import json
import os
import sys
import warnings

import pytest

# Let bench files import their helpers whatever --import-mode is in use.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import fastconv  # noqa: E402
from benchutil import RESULTS, torch  # noqa: E402

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

# OpenBLAS reads these when NumPy is imported; on the benchmark machine they
# slow down the NumPy peer, so they must be unset before Python starts.
SLOW_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def pytest_collect_file(file_path, parent):
    """Collect ``bench_*.py`` unless pytest already does (initial path or python_files)."""
    if file_path.suffix != ".py" or not fnmatch.fnmatch(file_path.name, "bench_*.py"):
        return None
    if parent.session.isinitpath(file_path):
        return None
    if any(fnmatch.fnmatch(file_path.name, pat) for pat in parent.config.getini("python_files")):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_configure(config):
    threads = fastconv.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    if threadpoolctl is not None:
        # Kept for the whole process, so threadpool_info() in the saved
        # machine info shows the limits the benchmarks really ran with.
        threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
    slow = [name for name in SLOW_OPENBLAS_VARS if name in os.environ]
    if slow:
        warnings.warn(
            f"{', '.join(slow)} set: the NumPy peer will be slow. Run with "
            "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks ...`"
        )


def _show_config():
    """fastconv.show_config() as a string or dict, whether it returns or prints."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        config = fastconv.show_config()
    if config is None:
        config = printed.getvalue().strip()
    # The machine info is saved as JSON.
    return json.loads(json.dumps(config, default=str))


def _torch_summary():
    if torch is None:
        return "torch not installed (torch peers skipped)"
    return f"torch {torch.__version__}: threads={torch.get_num_threads()}"


def pytest_report_header(config):
    lines = [
        f"fastconv {fastconv.__version__}: simd={fastconv._get_simd()}, "
        f"threads={fastconv.get_num_threads()}",
        f"numpy {np.__version__}; {_torch_summary()}",
    ]
    if threadpoolctl is not None:
        pools = [f"{p['internal_api']}={p['num_threads']}" for p in threadpoolctl.threadpool_info()]
        lines.append("thread pools: " + ", ".join(pools))
    slow = [name for name in SLOW_OPENBLAS_VARS if name in os.environ]
    if slow:
        lines.append(f"WARNING: {', '.join(slow)} set; NumPy timings are not representative")
    return lines


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastconv"] = {
        "version": fastconv.__version__,
        "simd": fastconv._get_simd(),
        "threads": fastconv.get_num_threads(),
        "config": _show_config(),
    }
    machine_info["numpy"] = {"version": np.__version__}
    machine_info["openblas_env"] = {name: os.environ.get(name) for name in SLOW_OPENBLAS_VARS}
    if threadpoolctl is not None:
        machine_info["threadpool_info"] = json.loads(
            json.dumps(threadpoolctl.threadpool_info(), default=str))
    if torch is not None:
        machine_info["torch"] = {
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
        }


def pytest_terminal_summary(terminalreporter):
    """Throughput of every timed benchmark and its speed relative to the peers."""
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("throughput (ratio = peer time / this time; > 1 is faster than the peer)")
    tr.write_line(f"{'benchmark':<36} {'median ms':>10} {'GFLOP/s':>8} {'% peak':>7} "
                  f"{'vs numpy':>9} {'vs torch':>9}")
    groups = {}
    for group, name, median, info in RESULTS:
        groups.setdefault(group, []).append((name, median, info))
    for group in sorted(groups):
        rows = groups[group]
        peers = {info["impl"]: median for _, median, info in rows}
        tr.write_line(f"[{group}]")
        for name, median, info in rows:
            ratios = []
            for peer in ("numpy", "torch"):
                peer_median = next((m for impl, m in peers.items() if impl.startswith(peer)), None)
                ratios.append(f"{peer_median / median:9.2f}" if peer_median else f"{'-':>9}")
            tr.write_line(
                f"  {name:<34} {median * 1e3:10.3f} {info.get('gflops', '-'):>8} "
                f"{info.get('pct_peak', '-'):>7} {ratios[0]} {ratios[1]}")
