"""``python -m fastconv demo``: trains the demo CNN end to end on the sample shipped in
the package and writes its outputs; the accuracy shows it learned."""
import csv

import numpy as np
import pytest

import fastconv
import fastconv.__main__ as cli
from fastconv import demo, nn


def test_model_is_small_and_shaped_for_fashion_mnist():
    model = demo.build_model(np.random.default_rng(0))
    assert demo.count_parameters(model) < 100_000
    with nn.no_grad():
        assert model.eval()(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    previous = fastconv.get_num_threads()
    try:
        assert cli.main(["demo", "--sample", "--epochs", "3", "--batch-size", "64", "--lr",
                         "0.05", "--threads", "2", "--seed", "1", "--out", str(out)]) == 0
    finally:
        fastconv.set_num_threads(previous)
    return out


def test_demo_learns(trained):
    with open(trained / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    accuracy = [float(r["test_accuracy"]) for r in rows]
    losses = [float(r["train_loss"]) for r in rows]
    # Ten balanced classes: chance is 0.10. Only learning gets anywhere near this.
    assert accuracy[-1] > 0.6, accuracy
    assert losses[-1] < losses[0], losses


def test_demo_writes_its_outputs(trained):
    for name in ("model.npz", "history.csv", "lr_find.csv", "kernels.txt", "feature_maps.txt"):
        assert (trained / name).stat().st_size > 0, name
    model = demo.build_model()
    model.load(trained / "model.npz")  # the saved weights load into the architecture
    assert "kernel 31:" in (trained / "kernels.txt").read_text()
    maps = (trained / "feature_maps.txt").read_text()
    for stage in ("input (1, 1, 28, 28)", "conv (1, 32, 28, 28)", "relu (1, 32, 28, 28)",
                  "max_pool (1, 32, 14, 14)"):
        assert stage in maps
    with open(trained / "lr_find.csv") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert lrs == sorted(lrs) and len(lrs) >= 10


def test_demo_prints_progress_and_epochs(trained, capsys):
    # The fixture's output went to the terminal capture of its own test; run a tiny one here.
    assert cli.main(["demo", "--sample", "--epochs", "1", "--no-lr-find", "--out",
                     str(trained / "again")]) == 0
    out, err = capsys.readouterr()
    assert "epoch  1/1  train loss" in out and "test accuracy" in out
    assert "img/s" in err and "batch" in err


def test_demo_rejects_bad_options(tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--sample", "--epochs", "0", "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        cli.main(["demo", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path)])


@pytest.mark.parametrize("batch_size", [256, 128, 1000])
def test_predict_and_evaluate_in_batches(batch_size):
    """predict runs the model in eval mode batch by batch (the last batch short): the
    logits equal those of one call on all images up to rounding, and evaluate's loss
    and accuracy are those of the logits."""
    from fastconv import training
    rng = np.random.default_rng(5)
    model = demo.build_model(rng=rng)
    model.train()
    x = rng.standard_normal((300, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 300)
    logits = training.predict(model, x, batch_size=batch_size)
    assert not model.training
    with fastconv.nn.no_grad():
        whole = model(x)
    assert logits.shape == (300, 10) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, whole, rtol=1e-5, atol=1e-5)
    loss, accuracy = training.evaluate(model, nn.CrossEntropyLoss(), x, y, batch_size=batch_size)
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    want_loss = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(300), y])
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert accuracy == np.mean(np.argmax(logits, axis=1) == y)
