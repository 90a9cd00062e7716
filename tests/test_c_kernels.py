"""The C kernels called from a C program, with no Python in between.

tests/c/test_kernels.c is compiled against csrc/ twice: with the x86 SIMD kernels
(each ISA file with its own flags, as setup.py does) and with the portable kernels
alone, which is how the library builds on a machine that is not x86-64.
"""
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
BASE = ["dispatch.c", "workspace.c", "conv2d.c", "winograd.c", "maxpool2d.c", "batchnorm2d.c",
        "linear.c",
        "gemm/gemm.c",
        "gemm/ukernel_ref.c", "direct/direct_ref.c"]
ISA = {"gemm/ukernel_avx2.c": ["-mavx2", "-mfma"], "direct/direct_avx2.c": ["-mavx2", "-mfma"],
       "gemm/ukernel_avx512.c": ["-mavx512f", "-mavx2", "-mfma"],
       "direct/direct_avx512.c": ["-mavx512f", "-mavx2", "-mfma"]}
CC = os.environ.get("CC", "cc")
FLAGS = ["-std=c11", "-O2", "-ffp-contract=fast", "-fopenmp", f"-I{CSRC}"]

pytestmark = [
    pytest.mark.skipif(shutil.which(CC) is None, reason="no C compiler"),
    pytest.mark.skipif(not CSRC.is_dir(), reason="needs the source tree"),
]


def _build_and_run(tmp_path, with_x86):
    objs = []
    macros = ["-DFC_HAVE_X86_KERNELS"] if with_x86 else []
    sources = [(s, []) for s in BASE] + (list(ISA.items()) if with_x86 else [])
    for i, (src, extra) in enumerate(sources):
        obj = tmp_path / f"{i}.o"
        subprocess.run([CC, *FLAGS, *macros, *extra, "-c", str(CSRC / src), "-o", str(obj)],
                       check=True)
        objs.append(str(obj))
    exe = tmp_path / "test_kernels"
    subprocess.run([CC, *FLAGS, str(ROOT / "tests/c/test_kernels.c"), *objs, "-lm", "-o",
                    str(exe)], check=True)
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)


def test_portable_only_build(tmp_path):
    res = _build_and_run(tmp_path, with_x86=False)
    assert res.returncode == 0, res.stdout
    assert "SIMD levels 0..0 (portable best)" in res.stdout


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 only")
def test_x86_build(tmp_path):
    res = _build_and_run(tmp_path, with_x86=True)
    assert res.returncode == 0, res.stdout
    assert res.stdout.startswith("ok")
