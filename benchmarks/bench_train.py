"""One training step of the demo's network (``fastconv.demo.build_model``) at batch 128:
forward, cross-entropy loss, backward, SGD step with momentum — fastconv next to the
same network in PyTorch, with the same weights, on the same batch.

Before timing, one step of each is compared: the loss and every parameter after the
step agree (Dropout is switched off, p = 0, so both networks compute the same thing).
"""
import numpy as np
import pytest

import fastconv
from fastconv import nn, optim
from fastconv.demo import build_model

from benchutil import record, torch

BATCH = 128


def _batch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    return x, y


def _fastconv_step(model):
    x, y = _batch()
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
        return loss

    return step


def _torch_model(model):
    """The same architecture in PyTorch, with the fastconv model's weights."""
    tnn = torch.nn
    net = tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1), tnn.BatchNorm2d(32), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1), tnn.BatchNorm2d(64), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Dropout(0.0), tnn.Linear(64 * 7 * 7, 10))
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    return net


def _torch_step(net):
    x, y = _batch()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = loss_fn(net(tx), ty)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _model():
    model = build_model(np.random.default_rng(0))
    model[9].p = 0.0  # no dropout: both frameworks then compute the same step
    return model


@pytest.mark.benchmark(group="train-step-demo-cnn-batch128")
@pytest.mark.parametrize("impl", [
    "fastconv",
    pytest.param("torch", marks=pytest.mark.skipif(torch is None, reason="torch is not installed")),
])
def test_train_step(benchmark, impl):
    model = _model()
    if impl == "fastconv":
        step = _fastconv_step(model)
    else:
        torch.set_num_threads(fastconv.get_num_threads())
        step = _torch_step(_torch_model(model))
    if torch is not None:  # one step of each from the same weights must agree
        check_model = _model()
        net = _torch_model(check_model)
        loss_ours, loss_theirs = _fastconv_step(check_model)(), _torch_step(net)()
        assert abs(loss_ours - loss_theirs) <= 1e-4 * abs(loss_theirs)
        theirs = {k: v.detach().numpy() for k, v in net.state_dict().items()}
        for name, value in check_model.state_dict().items():
            np.testing.assert_allclose(value, theirs[name], rtol=1e-3, atol=1e-4, err_msg=name)
    benchmark(step)
    fwd = sum(2 * BATCH * m.out_channels * (28 // s) ** 2 * m.in_channels * 9
              for m, s in ((model[0], 1), (model[4], 2)))
    record(benchmark, impl, flops=3 * fwd)
