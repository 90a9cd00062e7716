#!/usr/bin/env bash
# Thread scaling on a machine with many cores, in one go from a source checkout:
#
#     bash benchmarks/many_cores.sh [OUTDIR]
#
# Builds the extension in place with $PYTHON (default python3; Cython, setuptools
# and NumPy must be installed, nothing is downloaded) unless NO_BUILD=1 says it is
# built already, saves `lscpu`, then runs benchmarks/thread_scaling.py on $LAYERS
# (default: the ResNet layers and fmnist_c2) at 1, 2, 4, ... and all CPUs, idle and
# next to one spinning process, and the bench CLI (with PyTorch as the peer when it
# is installed) at all CPUs and, unless ONE_THREAD=0, at 1 thread.
# Everything is written to OUTDIR (default out/) and echoed.
set -euo pipefail
out=${1:-out}
py=${PYTHON:-python3}
mkdir -p "$out"
n=$(nproc)
counts=1
c=2
while [ "$c" -lt "$n" ]; do counts="$counts,$c"; c=$((c * 2)); done
[ "$n" -gt 1 ] && counts="$counts,$n"

lscpu > "$out/lscpu.txt" 2>&1 || true
grep -E 'Model name|^CPU\(s\)|Thread|Core|Socket|L2|L3|NUMA node\(' "$out/lscpu.txt" || true
if [ "${NO_BUILD:-0}" != 1 ]; then
    start=$(date +%s)
    "$py" setup.py -q build_ext --inplace -j "$n" > "$out/build.log" 2>&1 \
        || { tail -30 "$out/build.log"; exit 1; }
    echo "build: $(( $(date +%s) - start )) s"
fi

export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
"$py" benchmarks/thread_scaling.py --layers "${LAYERS:-r18_l2,r18_l3,r18_conv1,r50_1x1,fmnist_c2}" \
    --threads "$counts" --rounds 11 --busy 1 2>&1 | tee "$out/scaling.txt"
"$py" -m fastconv bench --threads "$n" --quick --backward --no-plot \
    --json "$out/bench_${n}threads.json" > "$out/bench_${n}threads.txt" 2>&1
grep -E ' (forward|backward) +auto' "$out/bench_${n}threads.txt" || tail -20 "$out/bench_${n}threads.txt"
[ "${ONE_THREAD:-1}" = 0 ] && exit 0
"$py" -m fastconv bench --threads 1 --quick --backward --no-plot \
    --json "$out/bench_1thread.json" > "$out/bench_1thread.txt" 2>&1
grep -E ' (forward|backward) +auto' "$out/bench_1thread.txt" || tail -20 "$out/bench_1thread.txt"
