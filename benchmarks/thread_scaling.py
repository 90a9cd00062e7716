"""Thread scaling of conv2d forward and backward, on an idle machine and with the
other cores busy.

    python benchmarks/thread_scaling.py [--layers r18_l2,r18_l3] [--threads 1,2]
                                        [--busy N] [--rounds 15]

For each layer and pass it prints the median time at every thread count, the
speed-up over the first count, and for the last count where a shortfall comes from:
the process CPU time against the first count's (above 1.0 each thread got slower)
and the CPU time over the wall time (how busy the team was). The speed-up is the
second divided by the first. With ``--busy N`` it first starts N processes that
spin on the CPU (as other work on a shared machine would) and measures again next
to them: a thread that waits for a busy core must not make the call collapse
(fastconv's OpenMP threads spin briefly, then sleep; see ``fastconv.config()``).
Medians of interleaved rounds: every round calls each thread count once, in a new
order.
"""

import argparse
import multiprocessing
import random
import time

import numpy as np

import fastconv
from fastconv.shapes import LAYERS


def _spin(stop):
    while not stop.is_set():
        pass


def _inputs(layer):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer.x_shape, dtype=np.float32)
    w = rng.standard_normal(layer.w_shape, dtype=np.float32) * np.float32(0.05)
    b = rng.standard_normal(layer.OC, dtype=np.float32)
    gout = rng.standard_normal((layer.N, layer.OC) + layer.out_hw, dtype=np.float32)
    return x, w, b, gout


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def measure(layer_names, counts, rounds):
    """({(layer, pass): {threads: median seconds}}, {(layer, pass): {threads: median
    process CPU seconds}}, {(layer, pass): same bits?})

    The CPU time of a call counts every thread of the process (fastconv's idle threads
    sleep after a short spin, so it is mostly the work done). The last dict says
    whether every thread count returned the same bits as the first (fastconv promises
    it; the warm-up calls are compared)."""
    results, cpu, same = {}, {}, {}
    for name in layer_names:
        layer = LAYERS[name]
        x, w, b, gout = _inputs(layer)
        kw = layer.kwargs()
        passes = {"forward": lambda: fastconv.conv2d(x, w, b, **kw),
                  "backward": lambda: fastconv.conv2d_backward(gout, x, w, **kw)}
        for pass_, fn in passes.items():
            times = {n: [] for n in counts}
            cpus = {n: [] for n in counts}
            first = None
            same[(name, pass_)] = True
            for n in counts:  # warm-up: thread pool and workspaces
                fastconv.set_num_threads(n)
                got = _as_tuple(fn())
                if first is None:
                    first = got
                elif any(a.tobytes() != b.tobytes() for a, b in zip(first, got)):
                    same[(name, pass_)] = False
            for _ in range(rounds):
                order = list(counts)
                random.shuffle(order)
                for n in order:
                    fastconv.set_num_threads(n)
                    c = time.process_time()
                    t = time.perf_counter()
                    fn()
                    times[n].append(time.perf_counter() - t)
                    cpus[n].append(time.process_time() - c)
            results[(name, pass_)] = {n: float(np.median(v)) for n, v in times.items()}
            cpu[(name, pass_)] = {n: float(np.median(v)) for n, v in cpus.items()}
    fastconv.set_num_threads(None)
    return results, cpu, same


def report(measured, counts, title):
    """One row per layer and pass: median ms per thread count, speed-up over the first
    count, and for the last count the CPU time against the first count's (more than
    1.0: each thread got slower, e.g. from shared caches, memory or cores) and the
    CPU time over the wall time (how busy the team was; at most the thread count)."""
    results, cpu, same = measured
    last = counts[-1]
    print(f"\n{title}")
    print(f"  {'layer':<22}" + "".join(f"{str(n) + ' thr ms':>12}" for n in counts)
          + "".join(f"{'x' + str(n):>8}" for n in counts[1:])
          + (f"{'cpu ' + str(last) + '/' + str(counts[0]):>10}{'busy ' + str(last):>9}"
             if len(counts) > 1 else "") + "  same bits")
    for key, med in results.items():
        name, pass_ = key
        base = med[counts[0]]
        print(f"  {name + ' ' + pass_:<22}" + "".join(f"{1e3 * med[n]:>12.2f}" for n in counts)
              + "".join(f"{base / med[n]:>8.2f}" for n in counts[1:])
              + (f"{cpu[key][last] / cpu[key][counts[0]]:>10.2f}"
                 f"{cpu[key][last] / med[last]:>9.2f}" if len(counts) > 1 else "")
              + ("  yes" if same[key] else "  NO"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default="r18_l2,r18_l3")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--busy", type=int, default=0,
                        help="also measure next to this many spinning processes")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    names = [n for n in args.layers.split(",") if n]
    counts = [int(n) for n in args.threads.split(",") if n]
    print(f"fastconv {fastconv.__version__}; SIMD {fastconv._get_simd()}; OpenMP wait policy: "
          f"{fastconv.config()['omp_wait_policy']}; {multiprocessing.cpu_count()} CPUs")
    report(measure(names, counts, args.rounds), counts, "idle (nothing else started)")
    if args.busy:
        random.seed(1)
        stop = multiprocessing.Event()
        procs = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(args.busy)]
        for p in procs:
            p.start()
        try:
            report(measure(names, counts, args.rounds), counts,
                   f"next to {args.busy} spinning process(es)")
        finally:
            stop.set()
            for p in procs:
                p.join()


if __name__ == "__main__":
    main()
