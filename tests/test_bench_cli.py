"""``python -m fastconv bench``: tables, JSON and errors, on one small layer.

The runs use ``--quick --batch 2`` so that each takes about a second; the numbers
themselves are not judged here, only that they are there and consistent.
"""
import json
import sys
import time

import numpy as np
import pytest

import fastconv
import fastconv.__main__ as cli
from fastconv import bench
from fastconv.shapes import LAYERS

FASTCONV_IMPLS = {"fastconv-im2col", "fastconv-direct", "fastconv-auto"}
LAYER = "fmnist_c1"
BATCH = 2


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


PEAK = 123.4  # GFLOP/s: what the measurement of the peak returns in these tests


@pytest.fixture(autouse=True)
def fixed_peak(monkeypatch):
    monkeypatch.setattr(bench, "measured_peak", lambda: (PEAK, "measured: test"))


def _run(tmp_path, *extra, name="bench.json"):
    path = tmp_path / name
    assert cli.main(["bench", "--quick", "--layers", LAYER, "--batch", str(BATCH),
                     "--json", str(path), *extra]) == 0
    return json.loads(path.read_text()), path


def _check_measurements(result, passes, with_torch, threads):
    layer = LAYERS[LAYER].scaled(N=BATCH)
    context = result["context"]
    assert context["threads"] == threads
    assert context["settle_s"] == (bench.SETTLE_S if threads > 1 else 0.0)
    assert context["fastconv"] == fastconv.__version__
    assert context["simd"] == fastconv._get_simd()
    assert context["numpy"] == np.__version__
    peak = context["peak_gflops_per_thread"]
    assert peak == PEAK and context["peak_note"] == "measured: test"
    assert result["error"] is None
    assert result["layers"][LAYER]["x_shape"] == list(layer.x_shape)

    rows = result["measurements"]
    impls = FASTCONV_IMPLS | {"numpy"} | ({"torch"} if with_torch else set())
    assert {(r["pass"], r["impl"]) for r in rows} == {(p, i) for p in passes for i in impls}
    assert len(rows) == len(passes) * len(impls)
    for pass_ in passes:
        by_impl = {r["impl"]: r for r in rows if r["pass"] == pass_}
        flops = layer.flops * (1 if pass_ == "forward" else 2)
        for impl, r in by_impl.items():
            assert r["layer"] == LAYER
            assert r["median_s"] > 0 and r["reps"] >= bench.QUICK["min_reps"]
            assert r["gflops"] == pytest.approx(flops / r["median_s"] / 1e9)
            assert r["pct_peak"] == pytest.approx(100 * r["gflops"] / (peak * threads))
            assert r["ratio_numpy"] == pytest.approx(r["median_s"]
                                                     / by_impl["numpy"]["median_s"])
            if with_torch:
                assert r["ratio_torch"] == pytest.approx(r["median_s"]
                                                         / by_impl["torch"]["median_s"])
            else:
                assert r["ratio_torch"] is None
        assert by_impl["numpy"]["ratio_numpy"] == 1.0
        kw = layer.kwargs()
        if pass_ == "forward":
            expected = fastconv.conv2d_algo(layer.w_shape, **kw)
        else:
            expected = (f"input={fastconv.conv2d_algo(layer.w_shape, **kw, grad='input')},"
                        f"weight={fastconv.conv2d_algo(layer.w_shape, **kw, grad='weight')}")
        assert by_impl["fastconv-auto"]["auto_algo"] == expected
        assert all(by_impl[i]["auto_algo"] is None for i in impls - {"fastconv-auto"})
    return rows


def _check_table(text, passes, rows):
    for word in ("fastconv 0", "SIMD", "thread", "torch", "numpy", "BLAS", "machine:",
                 "peak: 123.4 GFLOP/s per thread (measured: test)", "summary"):
        assert word in text, word
    for pass_ in passes:
        assert f"\n{LAYER} {pass_}: N={BATCH} C=1 28x28 -> OC=32 3x3" in text
        header = text.split(f"\n{LAYER} {pass_}: ")[1]
        assert "implementation" in header and "median ms" in header and "% peak" in header
        for r in (r for r in rows if r["pass"] == pass_):
            # The row shows the JSON's median in ms, to three decimals.
            assert f"  {r['impl']:<17}{1e3 * r['median_s']:>11.3f}" in header, r["impl"]
        auto = next(r for r in rows if r["pass"] == pass_ and r["impl"] == "fastconv-auto")
        assert f"{LAYER} {pass_}".ljust(22) + f" auto ({auto['auto_algo']})" in text


@pytest.mark.skipif(not _has("torch"), reason="torch is not installed")
def test_forward_with_torch_at_one_thread(tmp_path, capsys):
    previous = fastconv.get_num_threads()
    result, path = _run(tmp_path, "--threads", "1", "--no-plot")
    assert fastconv.get_num_threads() == previous  # restored after the run
    rows = _check_measurements(result, ["forward"], with_torch=True, threads=1)
    out = capsys.readouterr().out
    _check_table(out, ["forward"], rows)
    assert f"wrote {path}" in out
    assert not path.with_suffix(".png").exists()


def test_backward_default_threads_and_plot(tmp_path, capsys):
    with_torch = _has("torch")
    plot = tmp_path / "ratios.png"
    result, path = _run(tmp_path, "--backward", "--plot", str(plot))
    rows = _check_measurements(result, ["forward", "backward"], with_torch,
                               threads=fastconv.get_num_threads())
    out = capsys.readouterr().out
    _check_table(out, ["forward", "backward"], rows)
    if _has("matplotlib"):
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in out


def test_without_torch_matplotlib_threadpoolctl(tmp_path, capsys, monkeypatch):
    for module in ("torch", "matplotlib", "threadpoolctl"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    result, path = _run(tmp_path, "--threads", "1", "--peak", "50")
    assert result["context"]["torch"] == "not installed"
    assert result["context"]["peak_gflops_per_thread"] == 50
    rows = result["measurements"]
    assert {r["impl"] for r in rows} == FASTCONV_IMPLS | {"numpy"}
    assert all(r["ratio_torch"] is None for r in rows)
    for r in rows:
        assert r["pct_peak"] == pytest.approx(100 * r["gflops"] / 50)
    captured = capsys.readouterr()
    assert "torch not installed" in captured.out
    assert "matplotlib is not installed" in captured.out
    assert "threadpoolctl is not installed" in captured.out
    assert "OPENBLAS_CORETYPE" in captured.err
    assert "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastconv bench" in captured.err


def test_unknown_layer_lists_the_valid_names(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--layers", "fmnist_c1,resnet9000", "--json",
                  str(tmp_path / "b.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown layer(s) 'resnet9000'" in err
    for name in LAYERS:
        assert name in err
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("option", [["--threads", "0"], ["--batch", "0"], ["--peak", "-1"]])
def test_bad_numbers_are_refused(tmp_path, capsys, option):
    with pytest.raises(SystemExit):
        cli.main(["bench", *option, "--json", str(tmp_path / "b.json")])
    assert option[0] in capsys.readouterr().err


def test_a_wrong_result_stops_the_run(tmp_path, capsys, monkeypatch):
    right = fastconv.conv2d

    def wrong(x, w, b=None, *args, algo="auto", **kwargs):
        out = right(x, w, b, *args, algo=algo, **kwargs)
        if algo == "direct":
            out.flat[0] += 1.0
        return out

    monkeypatch.setattr(fastconv, "conv2d", wrong)
    path = tmp_path / "b.json"
    assert cli.main(["bench", "--quick", "--layers", LAYER, "--batch", str(BATCH),
                     "--json", str(path), "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert f"error: fastconv-direct on {LAYER} forward: max error" in err
    result = json.loads(path.read_text())
    assert "fastconv-direct" in result["error"] and result["measurements"] == []


def test_numpy_peer_matches_fastconv_on_awkward_shapes():
    from fastconv.shapes import AWKWARD

    rng = np.random.default_rng(1)
    for case in AWKWARD:
        x = rng.standard_normal(case["x"])
        w = rng.standard_normal(case["w"])
        b = rng.standard_normal(case["w"][0])
        kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
        out = bench.numpy_conv2d(x, w, b, **kw)
        np.testing.assert_allclose(out, fastconv.conv2d(x, w, b, **kw), rtol=1e-10,
                                   atol=1e-10, err_msg=case["id"])
        gout = rng.standard_normal(out.shape)
        for got, want in zip(bench.numpy_conv2d_backward(gout, x, w, **kw),
                             fastconv.conv2d_backward(gout, x, w, **kw)):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=case["id"])


def test_winograd_row_and_auto_against_the_best_algorithm(tmp_path, capsys):
    """On a 3x3 stride-1 layer the table also times Winograd (an algorithm of auto
    only), and the summary compares auto with the fastest algorithm of the run."""
    path = tmp_path / "wino.json"
    assert cli.main(["bench", "--quick", "--layers", "fmnist_c2", "--batch", "1", "--backward",
                     "--no-plot", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())["measurements"]
    text = capsys.readouterr().out
    for pass_ in ("forward", "backward"):
        by_impl = {r["impl"]: r for r in rows if r["pass"] == pass_}
        assert "fastconv-winograd" in by_impl
        algos = {i: r for i, r in by_impl.items() if i.startswith("fastconv-") and i != "fastconv-auto"}
        best = min(algos, key=lambda i: algos[i]["median_s"])
        ratio = by_impl["fastconv-auto"]["median_s"] / algos[best]["median_s"]
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"fmnist_c2 {pass_}")
                    and "auto / best" in ln)
        assert line.endswith(f"auto / best algorithm ({best[9:]}) {ratio:.2f}")


def test_winograd_row_of_the_polyphase_layer_is_forward_only(tmp_path):
    """r18_conv1 (7x7, stride 2) has a Winograd row for its forward pass (F(4x4, 4x4) on
    the polyphase form, what auto runs there) and none for its backward pass."""
    path = tmp_path / "poly.json"
    assert cli.main(["bench", "--quick", "--layers", "r18_conv1", "--batch", "1",
                     "--backward", "--no-plot", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())["measurements"]
    forward = {r["impl"]: r for r in rows if r["pass"] == "forward"}
    backward = {r["impl"] for r in rows if r["pass"] == "backward"}
    assert "fastconv-winograd" in forward and "fastconv-winograd" not in backward
    assert forward["fastconv-auto"]["auto_algo"] == "winograd"


def test_round_robin_pauses_before_every_timed_call():
    """With settle > 0 no call starts sooner than settle seconds after the previous
    one returned (the spinning threads of the implementation before it go to sleep);
    without it the calls follow each other at once."""
    events = []

    def make(name):
        def fn():
            events.append((name, time.perf_counter(), "in"))
            events.append((name, time.perf_counter(), "out"))
        return fn

    for settle in (0.02, 0.0):
        events.clear()
        times = bench._time_round_robin({"a": make("a"), "b": make("b")}, min_reps=4,
                                        budget=0.0, settle=settle)
        assert {name: n for name, (_, n) in times.items()} == {"a": 4, "b": 4}
        calls = [(events[i][1], events[i + 1][1]) for i in range(0, len(events), 2)]
        assert len(calls) == 2 + 8  # warm-ups, then 4 timed rounds of two
        gaps = [start - end for (_, end), (start, _) in zip(calls[2:], calls[3:])]
        if settle:
            assert min(gaps) >= settle
        else:  # (a median: a busy machine may hold up one call)
            assert float(np.median(gaps)) < 0.02


def test_measured_peak_is_a_positive_rate_of_the_best_level(monkeypatch):
    monkeypatch.undo()  # the real measurement, not the fixture's value
    gflops, note = bench.measured_peak()
    assert np.isfinite(gflops) and gflops > 0
    assert note == f"measured: {fastconv._ops.simd_best()} FMA chains on one thread"


@pytest.mark.parametrize("level", fastconv._simd_levels())
def test_fma_peak_of_each_level(level):
    assert fastconv._ops.fma_peak(level, 0.01) > 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(level="avx1024"), "level must be one of"),
    (dict(level="portable", seconds=0), "seconds must be positive"),
    (dict(level="portable", seconds=float("nan")), "seconds must be positive"),
])
def test_fma_peak_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fastconv._ops.fma_peak(**kwargs)
