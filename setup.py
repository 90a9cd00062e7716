"""Build of fastconv's extension: csrc/ (C11 + OpenMP) under a Cython wrapper.

Environment switches:
  FASTCONV_NO_OPENMP=1   build without OpenMP (serial kernels, same results)
  FASTCONV_OPENMP=1      fail, with instructions, when OpenMP is not found
Only the per-ISA kernel files (csrc/gemm/ukernel_<isa>.c, csrc/direct/direct_<isa>.c)
get ISA flags, so the wheel runs on any x86-64 and picks its kernels at import.
"""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()
CSRC = "csrc"
BASE_SOURCES = [
    "csrc/dispatch.c",
    "csrc/workspace.c",
    "csrc/conv2d.c",
    "csrc/winograd.c",
    "csrc/maxpool2d.c",
    "csrc/batchnorm2d.c",
    "csrc/linear.c",
    "csrc/gemm/gemm.c",
    "csrc/gemm/ukernel_ref.c",
    "csrc/direct/direct_ref.c",
]
# Each ISA's files and the only flags they get.
ISA_SOURCES = {
    "avx2": (["csrc/gemm/ukernel_avx2.c", "csrc/direct/direct_avx2.c"], ["-mavx2", "-mfma"]),
    "avx512": (["csrc/gemm/ukernel_avx512.c", "csrc/direct/direct_avx512.c"],
               ["-mavx512f", "-mavx2", "-mfma"]),
}
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
COMMON_CFLAGS = ["-std=c11", "-O3", "-fno-math-errno", "-ffp-contract=fast",
                 "-Wall", "-Wno-unused-function"]


def log(msg):
    print(f"fastconv build: {msg}", file=sys.stderr, flush=True)


def openmp_probe(compiler):
    """Compile, link and run a tiny OpenMP program; return the flags that worked or None."""
    code = textwrap.dedent("""
        #include <omp.h>
        #include <stdio.h>
        int main(void) {
            int n = 0;
            #pragma omp parallel num_threads(2) reduction(+:n)
            n += 1;
            printf("%d\\n", n);
            return n == 2 ? 0 : 1;
        }
    """)
    cc = compiler.compiler_so[0] if hasattr(compiler, "compiler_so") else "cc"
    for flags in (["-fopenmp"], ["-Xpreprocessor", "-fopenmp", "-lomp"]):
        tmp = tempfile.mkdtemp()
        try:
            src = os.path.join(tmp, "probe.c")
            exe = os.path.join(tmp, "probe")
            Path(src).write_text(code)
            subprocess.run([cc, *flags, src, "-o", exe], check=True, capture_output=True)
            subprocess.run([exe], check=True, capture_output=True, timeout=30)
            return flags
        except (OSError, subprocess.SubprocessError):
            continue
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return None


class BuildExt(build_ext):
    """Probes OpenMP, compiles the ISA files with their own flags, records the choices."""

    def build_extensions(self):
        compiler = self.compiler
        no_omp = os.environ.get("FASTCONV_NO_OPENMP", "0") not in ("", "0")
        want_omp = os.environ.get("FASTCONV_OPENMP", "0") not in ("", "0")
        omp_flags = None if no_omp else openmp_probe(compiler)
        if no_omp:
            log("OpenMP off (FASTCONV_NO_OPENMP=1): serial kernels")
        elif omp_flags:
            log(f"OpenMP on: {' '.join(omp_flags)} (the compiler's own runtime)")
        elif want_omp:
            sys.exit("fastconv build: OpenMP was requested (FASTCONV_OPENMP=1) but the probe "
                     "failed; install the compiler's OpenMP runtime (libgomp for gcc, libomp "
                     "for clang) or build with FASTCONV_NO_OPENMP=1")
        else:
            log("OpenMP not found: serial kernels (set FASTCONV_OPENMP=1 to require it)")

        cflags = list(COMMON_CFLAGS) + (["-fopenmp"] if omp_flags else [])
        ldflags = ["-fopenmp"] if omp_flags else []
        isa_flags = {}
        for ext in self.extensions:
            ext.extra_compile_args = cflags
            ext.extra_link_args = ldflags
            if IS_X86:
                ext.define_macros.append(("FC_HAVE_X86_KERNELS", "1"))
                for isa, (sources, flags) in ISA_SOURCES.items():
                    objs = compiler.compile(
                        sources, output_dir=self.build_temp, include_dirs=[CSRC],
                        macros=[("FC_HAVE_X86_KERNELS", "1")],
                        extra_postargs=cflags + flags, debug=self.debug)
                    ext.extra_objects.extend(objs)
                    isa_flags[isa] = flags
                log("x86-64: portable, AVX2 and AVX-512 kernels, chosen at import")
            else:
                log(f"{platform.machine()}: portable kernels only")
        self._write_build_info(compiler, cflags, isa_flags)
        super().build_extensions()

    def _write_build_info(self, compiler, cflags, isa_flags):
        """A header the extension compiles in, so the wheel reports how it was built."""
        cc = compiler.compiler_so[0] if hasattr(compiler, "compiler_so") else "unknown"
        info = json.dumps({"compiler": cc, "cflags": cflags, "isa_cflags": isa_flags})
        gen = Path(self.build_temp) / "generated"
        gen.mkdir(parents=True, exist_ok=True)
        (gen / "fc_build_info.h").write_text(
            "/* Written by setup.py at build time. */\n"
            f"#define FC_BUILD_INFO {json.dumps(info)}\n")
        for ext in self.extensions:
            ext.include_dirs.append(str(gen))


def cythonize_ops():
    from Cython.Build import cythonize

    ext = Extension(
        "fastconv._ops",
        sources=["src/fastconv/_ops.pyx"] + BASE_SOURCES,
        include_dirs=[CSRC],
        define_macros=[],
        # headers, included kernel bodies and the per-ISA files (compiled apart and
        # linked in as objects): a change to any of them rebuilds and relinks
        depends=sorted(str(p.relative_to(ROOT)) for pattern in ("*.h", "*.inc")
                       for p in (ROOT / CSRC).rglob(pattern))
        + sorted(src for sources, _ in ISA_SOURCES.values() for src in sources),
    )
    return cythonize([ext], compiler_directives={"language_level": 3}, quiet=True)


setup(ext_modules=cythonize_ops(), cmdclass={"build_ext": BuildExt})
