"""Run-time settings and concurrency: FASTCONV_SIMD, show_config/config, thread counts
(OMP_NUM_THREADS, threadpoolctl, set_num_threads), fork safety, several Python
threads calling at once, and the GEMM at every SIMD level and thread count.

Anything that depends on the environment at import, or that could hang (fork),
runs in a fresh interpreter with a timeout.
"""

import contextlib
import io
import os
import platform
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastconv
from fastconv import _ops
from reference import assert_close_scaled, conv2d_ref, conv2d_scale_ref

ENV_VARS = ("FASTCONV_SIMD", "FASTCONV_GEMM_TILE", "OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OMP_DYNAMIC",
            "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_DISPLAY_ENV", "FASTCONV_MALLOC",
            "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
            "GLIBC_TUNABLES")


def cpus():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_python(code, env=None, timeout=60):
    """Run code in a fresh interpreter with a clean fastconv/OpenMP environment."""
    full_env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def python_value(expr, env=None):
    """repr of a Python expression evaluated after `import fastconv` in a fresh process."""
    proc = run_python(f"import fastconv\nprint(repr({expr}))", env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def default_threads():
    fastconv.set_num_threads(None)
    yield
    fastconv.set_num_threads(None)


# ----------------------------------------------------------------- FASTCONV_SIMD

def test_simd_levels_are_ordered_and_current_is_available():
    levels = fastconv._simd_levels()
    assert levels[0] == "portable"
    assert levels == list(_ops.SIMD_LEVELS[:len(levels)])
    assert fastconv._get_simd() in levels


def test_fastconv_simd_env_portable():
    assert python_value("fastconv._get_simd()", {"FASTCONV_SIMD": "portable"}) == "'portable'"


def test_fastconv_simd_env_each_level_case_insensitive():
    for level in fastconv._simd_levels():
        got = python_value("fastconv._get_simd()", {"FASTCONV_SIMD": f" {level.upper()} "})
        assert got == repr(level)


def test_fastconv_simd_env_unset_or_empty_is_best():
    best = fastconv._simd_levels()[-1]
    assert python_value("fastconv._get_simd()") == repr(best)
    assert python_value("fastconv._get_simd()", {"FASTCONV_SIMD": ""}) == repr(best)


def test_fastconv_simd_env_above_cpu_is_capped():
    # The top level is a cap: on a CPU without AVX-512 this asks for more than the CPU has.
    best = fastconv._simd_levels()[-1]
    top = _ops.SIMD_LEVELS[-1]
    assert python_value("fastconv._get_simd()", {"FASTCONV_SIMD": top}) == repr(best)
    out = python_value("(fastconv._get_simd(), fastconv.config()['simd_available'])",
                       {"FASTCONV_SIMD": top})
    assert out == repr((best, fastconv._simd_levels()))


@pytest.mark.parametrize("var, value, choices", [
    *[("FASTCONV_SIMD", v, "portable, avx2, avx512") for v in ("sse9", "avx-512", "1")],
    *[("FASTCONV_GEMM_TILE", v, "narrow, wide, default") for v in ("8x32", "medium", "1")],
])
def test_fastconv_env_invalid(var, value, choices):
    proc = run_python("import fastconv", {var: value})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ValueError: {var} must be one of {choices}"), last
    assert repr(value) in last, last


# ----------------------------------------------------------------- OpenMP wait policy

needs_openmp = pytest.mark.skipif(not fastconv._openmp_enabled(), reason="serial build")


@needs_openmp
def test_threads_spin_briefly_and_the_environment_is_left_as_it_was():
    """libgomp prints its settings when it loads with OMP_DISPLAY_ENV: the spin count is
    the short one fastconv asks for at import (not libgomp's default of 300000, nor 0);
    afterwards the process and its children see no GOMP_SPINCOUNT."""
    proc = run_python("""
        import os, subprocess, sys
        import fastconv
        print(fastconv.config()["omp_wait_policy"])
        print("GOMP_SPINCOUNT" in os.environ)
        child = subprocess.run([sys.executable, "-c",
                                "import os; print('GOMP_SPINCOUNT' in os.environ)"],
                               capture_output=True, text=True)
        print(child.stdout.strip())
        """, {"OMP_DISPLAY_ENV": "VERBOSE"})
    assert proc.returncode == 0, proc.stderr
    n = fastconv._SPIN_COUNT
    assert 0 < n < 300000
    assert proc.stdout.splitlines() == [
        f"spin {n} rounds, then sleep (GOMP_SPINCOUNT={n})", "False", "False"]
    assert f"GOMP_SPINCOUNT = '{n}'" in proc.stderr, proc.stderr


@needs_openmp
def test_idle_worker_threads_sleep_soon_after_a_call():
    """After a 2-thread call the worker spins only briefly, then sleeps: while the caller
    sleeps for 0.3 s, the process uses well under 2 ms of CPU time (about 0.1-0.4 ms on
    the development VM). libgomp's default spin (GOMP_SPINCOUNT=300000) used 5.3 ms there,
    OMP_WAIT_POLICY=active all 300 ms. NumPy's BLAS gets one thread: its own workers
    spin for a while after NumPy's import."""
    proc = run_python("""
        import time
        import numpy as np
        import fastconv
        fastconv.set_num_threads(2)
        x = np.ones((8, 16, 32, 32), np.float32)
        w = np.ones((32, 16, 3, 3), np.float32)
        for _ in range(3):
            fastconv.conv2d(x, w, padding=1)
        c = time.process_time()
        time.sleep(0.3)
        print(time.process_time() - c)
        """, {"OPENBLAS_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < 0.002, proc.stdout


@needs_openmp
@pytest.mark.parametrize("env, spin", [({"OMP_WAIT_POLICY": "active"}, "30000000000"),
                                       ({"GOMP_SPINCOUNT": "1234"}, "1234")])
def test_a_users_wait_policy_wins(env, spin):
    proc = run_python("import fastconv\nprint(fastconv.config()['omp_wait_policy'])",
                      {**env, "OMP_DISPLAY_ENV": "VERBOSE"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("from the environment: ")
    assert f"GOMP_SPINCOUNT = '{spin}'" in proc.stderr, proc.stderr


# ----------------------------------------------------------------- malloc thresholds

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Eight rounds of a training step's pattern: three 10 MB arrays, every page written,
# then all freed together. Prints the policy and the page faults of the eight rounds.
ROUNDS_SCRIPT = """
import resource, numpy as np, fastconv
print(fastconv.config()["malloc"])
for it in range(10):
    if it == 2:
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(2_500_000, np.float32) for _ in range(3)]
    del arrays
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc malloc's")
def test_freed_blocks_are_kept_for_the_next_step():
    """With fastconv's thresholds the rounds reuse the freed heap (almost no page faults:
    2,560 pages a round otherwise); with FASTCONV_MALLOC=default glibc returns the top of
    its heap after each round and faults the pages in again."""
    kept = run_python(ROUNDS_SCRIPT)
    default = run_python(ROUNDS_SCRIPT, {"FASTCONV_MALLOC": "default"})
    assert kept.returncode == 0 and default.returncode == 0, kept.stderr + default.stderr
    kept_policy, kept_faults = kept.stdout.splitlines()
    default_policy, default_faults = default.stdout.splitlines()
    assert kept_policy.startswith("keep freed blocks")
    assert default_policy.endswith("(FASTCONV_MALLOC=default)")
    assert int(kept_faults) < 100, kept_faults
    assert int(default_faults) > 8 * 100, default_faults


@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "131072"},
                                 {"MALLOC_MMAP_THRESHOLD_": "131072"},
                                 {"MALLOC_TOP_PAD_": "0"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}])
def test_a_users_malloc_settings_win(env):
    """Any malloc setting of the user's leaves the thresholds alone (glibc read them)."""
    policy = python_value("fastconv.config()['malloc']", env)
    assert policy == repr("from the environment: " + next(iter(env)))
    if GLIBC and "MALLOC_TRIM_THRESHOLD_" in env:
        proc = run_python(ROUNDS_SCRIPT, env)
        assert proc.returncode == 0, proc.stderr
        assert int(proc.stdout.splitlines()[1]) > 8 * 100


# ----------------------------------------------------------------- show_config / config

def test_show_config_prints_the_settings(default_threads):
    fastconv.set_num_threads(3)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert fastconv.show_config() is None
    rows = {}
    for line in buf.getvalue().splitlines():
        key, _, value = line.partition(" ")
        rows[key] = value.strip()
    assert rows["version"] == fastconv.__version__
    assert rows["simd_in_use"] == fastconv._get_simd()
    assert rows["simd_available"].split() == fastconv._simd_levels()
    assert rows["openmp"] in ("True", "False")
    assert rows["openmp"] == str(_ops.openmp_enabled())
    assert rows["num_threads"] == str(fastconv.get_num_threads()) == "3"


def test_show_config_follows_simd_level(simd):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fastconv.show_config()
    assert f"simd_in_use     {simd}\n" in buf.getvalue() or any(
        line.split() == ["simd_in_use", simd] for line in buf.getvalue().splitlines())


def test_config_dict_matches(default_threads):
    cfg = fastconv.config()
    assert cfg["version"] == fastconv.__version__
    assert cfg["simd_in_use"] == fastconv._get_simd()
    assert cfg["simd_available"] == fastconv._simd_levels()
    assert cfg["openmp"] is _ops.openmp_enabled()
    assert cfg["num_threads"] == fastconv.get_num_threads()
    fastconv.set_num_threads(2)
    assert fastconv.config()["num_threads"] == 2
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fastconv.show_config()
    assert [line.split()[0] for line in buf.getvalue().splitlines()] == list(fastconv.config())


# ----------------------------------------------------------------- thread counts

@pytest.mark.parametrize("omp", ["1", "2"])
def test_get_num_threads_follows_omp_num_threads(omp):
    if not _ops.openmp_enabled():
        pytest.skip("built without OpenMP")
    expected = min(int(omp), cpus())
    assert python_value("fastconv.get_num_threads()", {"OMP_NUM_THREADS": omp}) == str(expected)


def test_default_threads_capped_at_cpus():
    if not _ops.openmp_enabled():
        pytest.skip("built without OpenMP")
    n = python_value("fastconv.get_num_threads()", {"OMP_NUM_THREADS": str(4 * cpus() + 3)})
    assert n == str(cpus())


def test_set_num_threads_none_restores_default():
    out = python_value("""[fastconv.get_num_threads(), fastconv.set_num_threads(5),
                          fastconv.get_num_threads(), fastconv.set_num_threads(None),
                          fastconv.get_num_threads()]""", {"OMP_NUM_THREADS": "1"})
    assert out == "[1, None, 5, None, 1]"


def test_set_num_threads_in_process(default_threads):
    default = fastconv.get_num_threads()
    assert 1 <= default <= cpus()
    fastconv.set_num_threads(3)
    assert fastconv.get_num_threads() == 3
    fastconv.set_num_threads(None)
    assert fastconv.get_num_threads() == default


def test_threadpoolctl_limits_threads(default_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _ops.openmp_enabled():
        pytest.skip("built without OpenMP")
    before = fastconv.get_num_threads()
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastconv.get_num_threads() == 1
        x = np.ones((2, 4, 8, 8), np.float32)
        w = np.ones((3, 4, 3, 3), np.float32)
        assert np.all(fastconv.conv2d(x, w) == 36)
    assert fastconv.get_num_threads() == before


def test_explicit_threads_override_threadpoolctl(default_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    fastconv.set_num_threads(2)
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastconv.get_num_threads() == 2


# ----------------------------------------------------------------- fork

FORK_SCRIPT = """
import os, sys, time
import numpy as np
import fastconv

fastconv.set_num_threads(2)
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 32, 32, 32)).astype(np.float32)
w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
b = rng.standard_normal(32).astype(np.float32)
ALGO = sys.argv[1]
parent = fastconv.conv2d(x, w, b, padding=1, algo=ALGO)   # starts the OpenMP pool
parent_again = fastconv.conv2d(x, w, b, padding=1, algo=ALGO)
assert np.array_equal(parent, parent_again)

pid = os.fork()
if pid == 0:
    code = 0
    try:
        if fastconv.get_num_threads() != 1:
            code = 2
        else:
            fastconv.set_num_threads(2)           # still 1 in a forked child
            if fastconv.get_num_threads() != 1:
                code = 3
            else:
                child = fastconv.conv2d(x, w, b, padding=1, algo=ALGO)
                code = 0 if np.array_equal(child, parent) else 1
    except BaseException:
        code = 4
    os._exit(code)

deadline = time.monotonic() + 30
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("CHILD HUNG")
        sys.exit(5)
    time.sleep(0.01)
# The parent keeps its threads and still computes the same answer.
assert fastconv.get_num_threads() == 2
assert np.array_equal(fastconv.conv2d(x, w, b, padding=1, algo=ALGO), parent)
print("CHILD", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
@pytest.mark.parametrize("algo", ["im2col", "direct"])
def test_fork_after_threaded_conv2d(algo):
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT, algo], capture_output=True,
                          text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k not in ENV_VARS})
    assert "CHILD HUNG" not in proc.stdout, "the forked child hung in conv2d"
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # 0 ok, 1 wrong answer, 2 get_num_threads() != 1, 3 set_num_threads overrode it, 4 raised
    assert proc.stdout.split() == ["CHILD", "0"], proc.stdout + proc.stderr


# ----------------------------------------------------------------- Python threads

THREAD_CASES = [
    # x shape, w shape, dtype, algo, conv2d kwargs
    ((2, 16, 20, 20), (24, 16, 3, 3), np.float32, "im2col", dict(padding=1)),
    ((4, 16, 33, 31), (32, 16, 3, 3), np.float64, "direct", dict(stride=2)),
    ((4, 32, 40, 40), (32, 1, 3, 3), np.float32, "direct", dict(padding=1, groups=32)),
    ((2, 12, 30, 30), (24, 6, 3, 3), np.float64, "auto", dict(dilation=2, groups=2)),
]


def test_python_threads_concurrent(default_threads):
    fastconv.set_num_threads(2)
    rng = np.random.default_rng(1)
    jobs = []
    for xs, ws, dtype, algo, kw in THREAD_CASES:
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        ref_kw = {k: (v, v) if k != "groups" else v for k, v in kw.items()}
        expected = conv2d_ref(x, w, b, **ref_kw)
        scale = conv2d_scale_ref(x, w, b, **ref_kw)
        jobs.append((x, w, b, dtype, algo, kw, expected, scale, ws[1] * ws[2] * ws[3]))

    barrier = threading.Barrier(len(jobs))
    results = [[] for _ in jobs]
    errors = []

    def work(i):
        x, w, b, dtype, algo, kw, *_ = jobs[i]
        try:
            barrier.wait(timeout=30)
            for _ in range(5):
                results[i].append(fastconv.conv2d(x, w, b, algo=algo, **kw))
        except BaseException as e:  # reported in the main thread
            errors.append((i, e))

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a conv2d call hung"
    assert not errors, errors
    for (x, w, b, dtype, algo, kw, expected, scale, k), outs in zip(jobs, results):
        assert len(outs) == 5
        for out in outs:
            assert out.dtype == dtype
            assert_close_scaled(out, expected, scale, k, dtype)
            # Same call, same bits, whatever ran beside it.
            assert np.array_equal(out, outs[0])


# ----------------------------------------------------------------- GEMM

GEMM_SIZES = (1, 5, 12, 17, 24, 130, 300)  # 24 (float), 12 (double): a last panel half full


def _gemm_operands(M, N, K, dtype, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((M, K)).astype(dtype),
            rng.standard_normal((K, N)).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gemm_all_sizes_levels_threads(simd, dtype):
    n = 0
    for M in GEMM_SIZES:
        for N in GEMM_SIZES:
            for K in GEMM_SIZES:
                if dtype == np.float32 and max(M, N, K) == 300 and min(M, N, K) > 1:
                    continue   # float64 covers the big blocks; keep float32 cheap
                a, b = _gemm_operands(M, N, K, dtype, n)
                n += 1
                expected = a.astype(np.float64) @ b.astype(np.float64)
                scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
                first = None
                for nt in (1, 2, 3):
                    c = _ops.matmul(a, b, nt)
                    assert c.shape == (M, N) and c.dtype == dtype
                    if first is None:
                        first = c
                        assert_close_scaled(c, expected, scale, K, dtype)
                    else:
                        assert np.array_equal(c, first), (M, N, K, nt)


@pytest.mark.parametrize("M, N, K", [(0, 5, 17), (5, 0, 17), (0, 0, 3), (5, 17, 0), (1, 1, 0),
                                     (0, 4, 0), (300, 130, 0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gemm_empty(simd, M, N, K, dtype):
    a, b = _gemm_operands(M, N, K, dtype, 0)
    for nt in (1, 2, 3):
        c = _ops.matmul(a, b, nt)
        assert c.shape == (M, N) and c.dtype == dtype
        assert np.array_equal(c, np.zeros((M, N)))


def test_gemm_non_contiguous_operands(simd):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 70))[::2, 1::3]     # (20, 23), strided
    b = np.asfortranarray(rng.standard_normal((23, 31)))
    c = _ops.matmul(a, b, 2)
    assert_close_scaled(c, a @ b, np.abs(a) @ np.abs(b), 23, np.float64)


def test_gemm_bad_arguments():
    a = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"matmul: a.shape\[1\]=4 must equal b.shape\[0\]=5"):
        _ops.matmul(a, np.ones((5, 2)), 1)
    with pytest.raises(TypeError, match=r"matmul: b has dtype float32 but a has dtype float64"):
        _ops.matmul(a, np.ones((4, 2), np.float32), 1)
    with pytest.raises(ValueError, match=r"matmul: a must have 2 dimensions \(M, K\), got 1"):
        _ops.matmul(np.ones(3), np.ones((3, 2)), 1)


def test_small_calls_run_on_one_thread_and_give_the_same_bits():
    """Below fastconv's parallel threshold a convolution or GEMM runs on one thread
    (a team's wake-up costs more than it saves there); the result is the same either
    way. The session's tests lift the threshold (conftest); here it is set back."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 32, 14, 14)).astype(np.float32)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    a = rng.standard_normal((64, 96)).astype(np.float32)
    b = rng.standard_normal((96, 80)).astype(np.float32)
    lifted = _ops.parallel_min_flops()
    assert lifted == 0
    previous_threads = fastconv.get_num_threads()
    results = {}
    try:
        for threshold in (2e7, 0):
            _ops.parallel_min_flops(threshold)
            assert _ops.parallel_min_flops() == threshold
            for nt in (1, 2):
                fastconv.set_num_threads(nt)
                results[threshold, nt] = (fastconv.conv2d(x, w, padding=1),
                                          fastconv.conv2d_backward(
                                              np.ones((1, 64, 14, 14), np.float32), x, w,
                                              padding=1),
                                          _ops.matmul(a, b, nt))
    finally:
        _ops.parallel_min_flops(lifted)
        fastconv.set_num_threads(previous_threads)
    first = results[2e7, 1]
    for key, res in results.items():
        assert np.array_equal(res[0], first[0]), key
        for got, want in zip(res[1], first[1]):
            assert np.array_equal(got, want), key
        assert np.array_equal(res[2], first[2]), key
