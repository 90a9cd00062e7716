"""``python -m fastconv bench``: fastconv next to PyTorch and NumPy on real layers.

For every layer of :data:`fastconv.shapes.LAYERS` (float32, seeded inputs, with
bias) this times

  fastconv-im2col, fastconv-direct, fastconv-auto   ``fastconv.conv2d`` per algorithm
  fastconv-winograd                                 Winograd, an algorithm of auto only:
                                                    F(2x2, 3x3) on 3x3 stride-1 layers,
                                                    F(4x4, 4x4) on the polyphase form of
                                                    7x7 stride-2 layers (forward only)
  torch                                             ``torch.nn.functional.conv2d``
                                                    (when torch is installed)
  numpy                                             im2col + ``np.matmul`` per group

and with ``--backward`` also all three gradients (input, weight, bias):
``fastconv.conv2d_backward`` next to torch autograd (only the backward is timed,
on a graph built once) and a NumPy im2col/col2im backward.

Every result is first checked once against a float64 NumPy reference (max
error <= 1e-4 of max |reference|); a wrong result stops the run. Times are the
median of repeated calls (``time.perf_counter``) interleaved over the
implementations, so that noise on a shared machine hits them all alike: rounds
that call each implementation once, in a new (seeded) random order each round,
after one warm-up call each. Every peer runs with the same thread count: torch through
``torch.set_num_threads``, NumPy's BLAS through threadpoolctl when it is
installed. With more than one thread every timed call starts after a pause of
SETTLE_S: the worker threads of some runtimes (libgomp's by default, OpenBLAS's)
keep spinning on their cores for a while after a call returns, and would slow
whichever implementation came next.

The ratios are time / peer time in the same process: below 1 fastconv is faster.
GFLOP/s count a multiply-add as 2 and a full backward as twice the forward's
FLOPs; percent of peak is relative to the single-thread peak times the thread count:
the FMA rate of this CPU measured at start (``_ops.fma_peak``: independent FMA chains
with the best SIMD level's vectors, on one thread), or ``--peak``.
Results go to a JSON file (always) and, with matplotlib, a bar chart.
"""
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import fastconv
from fastconv import _ops

from .functional import _polyphase_4x4
from .shapes import LAYERS

# Max |result - reference| allowed, relative to max |reference| (float32 against float64).
RTOL = 1e-4
# OpenBLAS reads these when NumPy is imported; they slow the NumPy peer.
SLOW_OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# The targets of the project (auto's time / torch's time, 1 thread), shown in the summary.
TARGETS = {"fmnist_c1": 0.5, "r18_conv1": 0.5, "dw_3x3": 0.5}
DEFAULT_TARGET = 1.0

ALGOS = ("im2col", "direct", "auto")
FULL = dict(min_reps=7, budget=1.0)     # per implementation and measurement
QUICK = dict(min_reps=3, budget=0.2)
MAX_ROUNDS = 10_000
# Pause before each timed call when several threads run (see the module docstring):
# longer than OpenBLAS's worker threads poll (2**28 cycles, about 0.1 s) and
# libgomp's spin before they sleep.
SETTLE_S = 0.15


class BenchError(Exception):
    """A wrong result or an unusable setting: the run stops with this message."""


def add_arguments(parser):
    """The options of ``python -m fastconv bench``."""
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for fastconv and every peer (default: "
                             "fastconv.get_num_threads(), i.e. OMP_NUM_THREADS or all CPUs)")
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer repetitions: at least {QUICK['min_reps']} calls and "
                             f"{QUICK['budget']} s per implementation and measurement "
                             f"(default {FULL['min_reps']} calls and {FULL['budget']} s)")
    parser.add_argument("--layers", metavar="A,B", default=None,
                        help="comma-separated subset of the layers (default all: "
                             f"{', '.join(LAYERS)})")
    parser.add_argument("--backward", action="store_true",
                        help="also time the backward pass (input, weight and bias gradients)")
    parser.add_argument("--batch", type=int, default=None, metavar="N",
                        help="override every layer's batch size (smaller runs, e.g. for tests)")
    parser.add_argument("--peak", type=float, default=None, metavar="GFLOPS",
                        help="single-thread FP32 peak in GFLOP/s for the percent-of-peak "
                             "column (default: measured at start, the FMA rate of one thread "
                             "with the best SIMD level's vectors)")
    parser.add_argument("--json", metavar="PATH", default="fastconv-bench.json",
                        help="where to write the results as JSON (default ./fastconv-bench.json)")
    parser.add_argument("--plot", metavar="PATH", default=None,
                        help="bar chart of the ratios as PNG, when matplotlib is installed "
                             "(default: the JSON path with .png)")
    parser.add_argument("--no-plot", dest="plot", action="store_const", const="",
                        help="write no bar chart")
    parser.set_defaults(run=run)


# ------------------------------------------------------------------ NumPy peer

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _im2col(x, kh, kw, stride, padding, dilation, groups):
    """cols (groups, N*OH*OW, C/groups*KH*KW) of x (N, C, H, W), and (OH, OW)."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c = x.shape[:2]
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    # windows[n, c, oh, ow, i, j] = x[n, c, oh*sh + i*dh, ow*sw + j*dw]
    windows = sliding_window_view(x, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    oh, ow = windows.shape[2:4]
    windows = windows.reshape(n, groups, c // groups, oh, ow, kh, kw)
    cols = windows.transpose(1, 0, 3, 4, 2, 5, 6).reshape(groups, n * oh * ow, -1)
    return cols, (oh, ow)


def numpy_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Plain NumPy convolution: im2col by a strided window view, one matmul per group."""
    n = x.shape[0]
    oc, _, kh, kw = weight.shape
    cols, (oh, ow) = _im2col(x, kh, kw, stride, padding, dilation, groups)
    w = weight.reshape(groups, oc // groups, -1).transpose(0, 2, 1)
    out = np.matmul(cols, w)  # (groups, N*OH*OW, OC/groups)
    out = out.reshape(groups, n, oh, ow, -1).transpose(1, 0, 4, 2, 3).reshape(n, oc, oh, ow)
    if bias is not None:
        out = out + bias.reshape(1, oc, 1, 1)
    return np.ascontiguousarray(out)


def numpy_conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """(grad_x, grad_w, grad_b) in plain NumPy: im2col, matmuls, col2im by strided adds."""
    n, c, h, w_ = x.shape
    oc, cg, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    cols, (oh, ow) = _im2col(x, kh, kw, stride, padding, dilation, groups)
    g = grad_out.reshape(n, groups, oc // groups, oh, ow).transpose(1, 0, 3, 4, 2)
    g = g.reshape(groups, n * oh * ow, oc // groups)
    wmat = weight.reshape(groups, oc // groups, cg * kh * kw)
    grad_w = np.matmul(g.transpose(0, 2, 1), cols).reshape(weight.shape)
    grad_b = grad_out.sum(axis=(0, 2, 3))
    dcols = np.matmul(g, wmat).reshape(groups, n, oh, ow, cg, kh, kw)
    gx = np.zeros((n, groups, cg, h + 2 * ph, w_ + 2 * pw), x.dtype)
    for i in range(kh):
        for j in range(kw):
            r, s = i * dh, j * dw
            gx[:, :, :, r:r + sh * (oh - 1) + 1:sh, s:s + sw * (ow - 1) + 1:sw] += \
                dcols[..., i, j].transpose(1, 0, 4, 2, 3)
    grad_x = np.ascontiguousarray(gx[:, :, :, ph:ph + h, pw:pw + w_]).reshape(n, c, h, w_)
    return grad_x, grad_w, grad_b


# ------------------------------------------------------------------- context

def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def cpuinfo(key):
    """The first value of a field of /proc/cpuinfo ('model name', 'vendor_id'), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                name, sep, value = line.partition(":")
                if sep and name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def _cpu_model():
    return cpuinfo("model name") or platform.processor() or platform.machine() or "unknown"


def _blas_info(threadpoolctl):
    """NumPy's BLAS as one line, from threadpoolctl or else NumPy's build config."""
    if threadpoolctl is not None:
        pools = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return "; ".join(
                f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture', '?')}, "
                f"{p.get('num_threads')} thread{'' if p.get('num_threads') == 1 else 's'})"
                for p in pools)
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (threads not known: no threadpoolctl)"
    except Exception:  # older NumPy or an unusual build
        return "unknown"


def _context(threads, peak, peak_note, torch, threadpoolctl):
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count()
    return {
        "fastconv": fastconv.__version__,
        "simd": fastconv._get_simd(),
        "openmp": bool(fastconv._openmp_enabled()),
        "threads": threads,
        "torch": torch.__version__ if torch is not None else "not installed",
        "numpy": np.__version__,
        "blas": _blas_info(threadpoolctl),
        "python": platform.python_version(),
        "machine": f"{_cpu_model()}, {cpus} CPUs available, {platform.machine()}",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "peak_gflops_per_thread": peak,
        "peak_note": peak_note,
        "config": json.loads(json.dumps(fastconv.config(), default=str)),
    }


# ------------------------------------------------------------------- timing

def _check(impl, what, got, want):
    """Raise BenchError unless float32 ``got`` matches the float64 reference."""
    got = got.numpy() if hasattr(got, "numpy") else np.asarray(got)
    if got.shape != want.shape:
        raise BenchError(f"{impl} on {what}: shape {got.shape}, expected {want.shape}")
    scale = max(float(np.max(np.abs(want))), np.finfo(np.float32).tiny)
    err = float(np.max(np.abs(got.astype(np.float64) - want))) / scale
    if not err <= RTOL:  # also catches NaN
        raise BenchError(f"{impl} on {what}: max error {err:.3g} relative to max |reference| "
                         f"exceeds {RTOL:g}; a wrong result is not timed")


def _time_round_robin(fns, min_reps, budget, settle=0.0):
    """{name: ((median, min, interquartile range) seconds per call, number of calls)} of
    each callable, called in turn in rounds (after a warm-up each) until each has run
    min_reps times and budget seconds per callable have passed; each timed call
    starts at least settle seconds after the previous call returned."""
    names = list(fns)
    for name in names:
        fns[name]()
    samples = {name: [] for name in names}
    # A new order each round: a call pays for what the one before it left behind (a cold
    # cache, freed memory to fault in again), so no implementation always follows the same.
    order = np.random.default_rng(0)
    start = time.perf_counter()
    rounds = 0
    while rounds < MAX_ROUNDS:
        for name in order.permutation(names):
            if settle:
                time.sleep(settle)
            t0 = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - t0)
        rounds += 1
        if rounds >= min_reps and time.perf_counter() - start >= budget * len(names):
            break
    return {name: ((float(np.median(s)), float(np.min(s)),
                    float(np.subtract(*np.percentile(s, [75, 25])))), len(s))
            for name, s in samples.items()}


def _layer_data(layer):
    rng = np.random.default_rng(0)
    fan_in = (layer.C // layer.groups) * layer.KH * layer.KW
    x = rng.standard_normal(layer.x_shape, dtype=np.float32)
    w = (rng.uniform(-1, 1, layer.w_shape) / np.sqrt(fan_in)).astype(np.float32)
    b = rng.uniform(-1, 1, layer.OC).astype(np.float32)
    gout = rng.standard_normal((layer.N, layer.OC) + layer.out_hw, dtype=np.float32)
    return x, w, b, gout


def _winograd_applies(layer):
    """Winograd F(2x2, 3x3) runs on 3x3 stride-1 layers (not depthwise) with padding <= 2."""
    return ((layer.KH, layer.KW) == (3, 3) and layer.stride == 1 and layer.padding <= 2
            and layer.C // layer.groups > 1)


def _winograd_forward_applies(layer):
    """The forward also has F(4x4, 4x4) for kernels that are 4x4 per stride phase."""
    return _winograd_applies(layer) or (
        _polyphase_4x4(layer.KH, layer.KW, (layer.stride,) * 2, (1, 1))
        and layer.C // layer.groups > 1)


def _forward_fns(layer, x, w, b, torch):
    kw = layer.kwargs()
    fns = {f"fastconv-{a}": (lambda a=a: fastconv.conv2d(x, w, b, **kw, algo=a)) for a in ALGOS}
    if _winograd_forward_applies(layer):  # an algorithm of auto only: through the extension
        pad, stride = (layer.padding, layer.padding), (layer.stride, layer.stride)
        fns["fastconv-winograd"] = lambda: _ops.conv2d_forward(
            x, w, b, stride, pad, (1, 1), layer.groups, False, _ops.ALGO_WINOGRAD,
            fastconv.get_num_threads())
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))

        def torch_forward():
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, tb, **kw)
        fns["torch"] = torch_forward
    fns["numpy"] = lambda: numpy_conv2d(x, w, b, **kw)
    return fns


def _backward_fns(layer, x, w, b, gout, torch):
    kw = layer.kwargs()
    fns = {f"fastconv-{a}": (lambda a=a: fastconv.conv2d_backward(gout, x, w, **kw, algo=a))
           for a in ALGOS}
    if _winograd_applies(layer):
        pad = (layer.padding, layer.padding)
        fns["fastconv-winograd"] = lambda: _ops.conv2d_backward(
            gout, x, w, (1, 1), pad, (1, 1), layer.groups, False, _ops.ALGO_WINOGRAD,
            _ops.ALGO_WINOGRAD, (True, True, True), fastconv.get_num_threads())
    if torch is not None:
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)  # the forward, outside the timing
        tg = torch.from_numpy(gout)
        fns["torch"] = lambda: torch.autograd.grad(ty, (tx, tw, tb), tg, retain_graph=True)
    fns["numpy"] = lambda: numpy_conv2d_backward(gout, x, w, **kw)
    return fns


def _auto_algo(layer, pass_):
    kw = layer.kwargs()
    if pass_ == "forward":
        return fastconv.conv2d_algo(layer.w_shape, **kw)
    return (f"input={fastconv.conv2d_algo(layer.w_shape, **kw, grad='input')},"
            f"weight={fastconv.conv2d_algo(layer.w_shape, **kw, grad='weight')}")


def _measure(layer, pass_, data, torch, reps, peak_total):
    """Check, time and describe one layer and pass: a list of measurement dicts."""
    x, w, b, gout = data
    what = f"{layer.name} {pass_}"
    x64, w64, b64, g64 = (a.astype(np.float64) for a in data)
    if pass_ == "forward":
        fns = _forward_fns(layer, x, w, b, torch)
        refs = (numpy_conv2d(x64, w64, b64, **layer.kwargs()),)
        flops = layer.flops
    else:
        fns = _backward_fns(layer, x, w, b, gout, torch)
        gx, gw, _ = numpy_conv2d_backward(g64, x64, w64, **layer.kwargs())
        refs = (gx, gw, g64.sum(axis=(0, 2, 3)))
        flops = 2 * layer.flops
    for impl, fn in fns.items():
        got = fn()
        got = got if isinstance(got, tuple) else (got,)
        for name, g, r in zip(("grad_x", "grad_w", "grad_b") if len(refs) == 3 else ("out",),
                              got, refs):
            _check(impl, f"{what} ({name})" if len(refs) == 3 else what, g, r)
    del refs, got
    times = _time_round_robin(fns, **reps)
    auto = _auto_algo(layer, pass_)
    rows = []
    for impl, ((median, fastest, iqr), n) in times.items():
        gflops = flops / median / 1e9
        rows.append({
            "layer": layer.name, "impl": impl, "pass": pass_, "median_s": median, "reps": n,
            "min_s": fastest, "iqr_s": iqr,
            "gflops": gflops, "pct_peak": 100 * gflops / peak_total,
            "ratio_torch": median / times["torch"][0][0] if "torch" in times else None,
            "ratio_numpy": median / times["numpy"][0][0],
            "auto_algo": auto if impl == "fastconv-auto" else None,
        })
    return rows


# ------------------------------------------------------------------- output

def _describe(layer):
    return (f"N={layer.N} C={layer.C} {layer.H}x{layer.W} -> OC={layer.OC} "
            f"{layer.KH}x{layer.KW} stride {layer.stride} pad {layer.padding} "
            f"groups {layer.groups}")


def _ratio(r):
    """A ratio with about three significant digits."""
    if r is None:
        return "-"
    if r >= 0.095:
        return f"{r:.2f}x" if r < 99.5 else f"{r:.0f}x"
    return f"{r:.3f}x" if r >= 0.00095 else f"{r:.1e}x"


def _table(layer, pass_, rows, flops, out):
    auto = next(r["auto_algo"] for r in rows if r["impl"] == "fastconv-auto")
    print(f"\n{layer.name} {pass_}: {_describe(layer)}; {flops / 1e9:.3g} GFLOP; "
          f"auto picks {auto}", file=out)
    print(f"  {'implementation':<17}{'median ms':>11}{'GFLOP/s':>10}{'% peak':>9}"
          f"{'vs torch':>10}{'vs numpy':>10}", file=out)
    for r in rows:
        print(f"  {r['impl']:<17}{1e3 * r['median_s']:>11.3f}{r['gflops']:>10.1f}"
              f"{r['pct_peak']:>8.1f}%{_ratio(r['ratio_torch']):>10}"
              f"{_ratio(r['ratio_numpy']):>10}", file=out)


def _summary_line(layer, pass_, rows):
    auto = next(r for r in rows if r["impl"] == "fastconv-auto")
    target = TARGETS.get(layer.name, DEFAULT_TARGET)
    text = (f"{layer.name + ' ' + pass_:<22} auto ({auto['auto_algo']}) "
            f"{1e3 * auto['median_s']:.3f} ms")
    if auto["ratio_torch"] is not None:
        torch_ms = 1e3 * next(r["median_s"] for r in rows if r["impl"] == "torch")
        met = "met" if auto["ratio_torch"] <= target else "MISSED"
        text += (f" = {_ratio(auto['ratio_torch'])} torch ({torch_ms:.3f} ms; target "
                 f"<= {target:.1f}x {met})")
    text += f", {_ratio(auto['ratio_numpy'])} numpy"
    best = min((r for r in rows if r["impl"].startswith("fastconv-")
                and r["impl"] != "fastconv-auto"), key=lambda r: r["median_s"])
    return text + (f"; auto / best algorithm ({best['impl'][9:]}) "
                   f"{auto['median_s'] / best['median_s']:.2f}")


def _plot(path, measurements, log):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("note: matplotlib is not installed; no bar chart (pip install matplotlib)")
        return
    key = "ratio_torch" if any(m["ratio_torch"] is not None for m in measurements) \
        else "ratio_numpy"
    passes = [p for p in ("forward", "backward") if any(m["pass"] == p for m in measurements)]
    impls = [i for i in [f"fastconv-{a}" for a in ALGOS] + ["fastconv-winograd", "numpy"]
             if any(m["impl"] == i for m in measurements)]
    if key == "ratio_numpy":
        impls.remove("numpy")
    fig, axes = plt.subplots(len(passes), 1, figsize=(10, 3.8 * len(passes)), squeeze=False)
    width = 0.8 / len(impls)
    for ax, pass_ in zip(axes[:, 0], passes):
        layers = list(dict.fromkeys(m["layer"] for m in measurements if m["pass"] == pass_))
        for k, impl in enumerate(impls):
            values = [next((m[key] for m in measurements if m["pass"] == pass_
                            and m["layer"] == name and m["impl"] == impl), np.nan)
                      for name in layers]
            ax.bar(np.arange(len(layers)) + (k - (len(impls) - 1) / 2) * width, values, width,
                   label=impl)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(np.arange(len(layers)), layers)
        ax.set_yscale("log")
        ax.set_ylabel(f"time / {key.split('_')[1]} time")
        ax.set_title(f"{pass_} (below 1: faster than {key.split('_')[1]})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log(f"wrote {path}")


# ---------------------------------------------------------------------- run

def measured_peak():
    """(GFLOP/s, note): this CPU's single-thread FP32 FMA rate, with the vectors of the
    best SIMD level it has (what the GEMM micro-kernels can reach at most)."""
    level = _ops.simd_best()
    return _ops.fma_peak(level, 0.2), f"measured: {level} FMA chains on one thread"


def _select_layers(args, parser):
    if args.layers is None:
        names = list(LAYERS)
    else:
        names = [n.strip() for n in args.layers.split(",") if n.strip()]
        unknown = [n for n in names if n not in LAYERS]
        if unknown or not names:
            message = (f"unknown layer(s) {', '.join(map(repr, unknown))}; " if unknown
                       else "--layers names no layer; ") + f"valid names: {', '.join(LAYERS)}"
            if parser is not None:
                parser.error(message)
            raise ValueError(message)
    layers = [LAYERS[n] for n in names]
    if args.batch is not None:
        layers = [layer.scaled(N=args.batch) for layer in layers]
    return layers


def run(args, parser=None, stream=None):
    """Run the benchmark, print the tables, write JSON (and a plot); returns the exit status."""
    out = sys.stdout if stream is None else stream

    def log(text=""):
        print(text, file=out, flush=True)

    def fail(message):
        if parser is not None:
            parser.error(message)
        raise ValueError(message)

    if args.threads is not None and args.threads < 1:
        fail("--threads must be at least 1")
    if args.batch is not None and args.batch < 1:
        fail("--batch must be at least 1")
    if args.peak is not None and not args.peak > 0:
        fail("--peak must be positive")
    layers = _select_layers(args, parser)

    slow = [name for name in SLOW_OPENBLAS_VARS if name in os.environ]
    if slow:
        print(f"warning: {' and '.join(slow)} set: they slow NumPy's OpenBLAS, the NumPy peer. "
              "Run `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastconv bench`",
              file=sys.stderr, flush=True)

    torch = _optional("torch")
    threadpoolctl = _optional("threadpoolctl")
    threads = fastconv.get_num_threads() if args.threads is None else args.threads
    peak, peak_note = measured_peak() if args.peak is None else (args.peak, "from --peak")
    reps = dict(QUICK if args.quick else FULL, settle=SETTLE_S if threads > 1 else 0.0)

    previous_threads = fastconv._runtime._explicit_threads
    previous_torch = torch.get_num_threads() if torch is not None else None
    limits = threadpoolctl.threadpool_limits(limits=threads, user_api="blas") \
        if threadpoolctl is not None else None
    measurements = []
    error = context = None
    try:
        fastconv.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        context = _context(threads, peak, peak_note, torch, threadpoolctl)
        context["settle_s"] = reps["settle"]
        log(f"fastconv {context['fastconv']} bench: SIMD {context['simd']}, "
            f"OpenMP {'on' if context['openmp'] else 'off'}, {threads} "
            f"thread{'' if threads == 1 else 's'} for every implementation")
        log(f"torch {context['torch']}; numpy {context['numpy']}, BLAS {context['blas']}")
        if threadpoolctl is None:
            log("note: threadpoolctl is not installed: NumPy's BLAS threads are not limited")
        log(f"machine: {context['machine']}; python {context['python']}; {context['date']}")
        log(f"peak: {peak:g} GFLOP/s per thread ({peak_note}); "
            f"{'quick: ' if args.quick else ''}median of >= {reps['min_reps']} interleaved "
            f"calls and >= {reps['budget']:g} s per implementation"
            + (f", each after a {reps['settle']:g} s pause" if reps["settle"] else ""))
        passes = ["forward"] + (["backward"] if args.backward else [])
        summary = []
        for layer in layers:
            data = _layer_data(layer)
            for pass_ in passes:
                rows = _measure(layer, pass_, data, torch, reps, peak * threads)
                measurements += rows
                _table(layer, pass_, rows, layer.flops * (1 if pass_ == "forward" else 2), out)
                summary.append(_summary_line(layer, pass_, rows))
        log("\nsummary (fastconv auto; ratios are time / peer time, below 1 = fastconv faster):")
        for line in summary:
            log("  " + line)
    except BenchError as e:
        error = str(e)
    finally:
        fastconv.set_num_threads(previous_threads)
        if torch is not None:
            torch.set_num_threads(previous_torch)
        if limits is not None:
            limits.restore_original_limits()

    result = {"context": context, "options": {k: v for k, v in vars(args).items()
                                             if k not in ("run", "command")},
              "layers": {layer.name: {"x_shape": list(layer.x_shape),
                                      "w_shape": list(layer.w_shape), **layer.kwargs(),
                                      "forward_flops": layer.flops} for layer in layers},
              "measurements": measurements, "error": error}
    path = Path(args.json)
    path.write_text(json.dumps(result, indent=1) + "\n")
    log(f"\nwrote {path}")
    if error is not None:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    plot = path.with_suffix(".png") if args.plot is None else args.plot
    if plot and measurements:
        _plot(plot, measurements, log)
    return 0
