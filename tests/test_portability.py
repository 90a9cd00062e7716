"""The build runs on any x86-64: ISA flags reach only the per-ISA kernel files.

The emulation test runs the installed package under qemu-user with a CPU that
has neither AVX2 nor AVX-512 (Nehalem): any AVX instruction outside the kernels
chosen at run time would die there with SIGILL.
"""
import os
import platform
import shutil
import subprocess
import sys

import pytest

import fastconv

X86 = platform.machine().lower() in ("x86_64", "amd64")

OLD_CPU_SCRIPT = r"""
import numpy as np, fastconv
assert fastconv._get_simd() == "portable", fastconv._get_simd()
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
ref = sum(np.einsum("nchw,oc->nohw", xp[:, :, i:i + 9, j:j + 8], w[:, :, i, j])
          for i in range(3) for j in range(3))
for algo in ("im2col", "direct"):
    err = np.abs(fastconv.conv2d(x, w, padding=1, algo=algo) - ref).max()
    assert err < 1e-4, (algo, err)
assert fastconv.max_pool2d(x, 2).shape == (2, 3, 4, 4)
# Winograd's transforms are target_clones: here their baseline clone runs
xw = rng.standard_normal((2, 32, 9, 10)).astype(np.float32)
ww = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
g = rng.standard_normal((2, 64, 9, 10)).astype(np.float32)
for grad in ("forward", "input", "weight"):
    assert fastconv.conv2d_algo(ww.shape, padding=1, grad=grad) == "winograd", grad
wino = fastconv._ops.conv2d_forward(xw, ww, None, (1, 1), (1, 1), (1, 1), 1, False,
                                    fastconv._ops.ALGO_WINOGRAD, 1)
direct = fastconv.conv2d(xw, ww, padding=1, algo="direct")
assert np.abs(wino - direct).max() < 1e-4 * np.abs(direct).max()
gx, gw, _ = fastconv.conv2d_backward(g, xw, ww, padding=1)
rx, rw, _ = fastconv.conv2d_backward(g, xw, ww, padding=1, algo="im2col")
assert np.abs(gx - rx).max() < 1e-4 * np.abs(rx).max()
assert np.abs(gw - rw).max() < 1e-4 * np.abs(rw).max()
print("ok")
"""


def test_isa_flags_only_on_kernel_files():
    info = fastconv._ops.build_info()
    for flag in info["cflags"]:
        assert not flag.startswith(("-mavx", "-march", "-mfma")), info["cflags"]
    if X86:
        assert info["isa_cflags"]["avx2"] == ["-mavx2", "-mfma"]
        assert "-mavx512f" in info["isa_cflags"]["avx512"]


@pytest.mark.skipif(not X86, reason="x86-64 emulation check")
@pytest.mark.skipif(shutil.which("qemu-x86_64") is None,
                    reason="qemu-user (Debian: qemu-user) is not installed")
def test_runs_on_a_cpu_without_avx():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTCONV_")}
    res = subprocess.run(["qemu-x86_64", "-cpu", "Nehalem", sys.executable, "-c", OLD_CPU_SCRIPT],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith("ok")
