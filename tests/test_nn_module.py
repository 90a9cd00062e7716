"""The Module API on whole networks: names and state dicts shared with PyTorch, .npz
round trips, clear load errors, the input_requires_grad contract, freezing and
freeze_bn, repr, zero_grad, train/eval and no_grad.

A small ResNet-shaped network (conv, BatchNorm, ReLU, max pooling, two residual blocks,
one with a strided 1x1 shortcut, average and adaptive pooling, dropout, linear) is built
the same way in fastconv and in PyTorch, so parameter and buffer names must agree
key for key.
"""

import numpy as np
import pytest

import fastconv
from fastconv import nn
from gradcheck import numerical_grad


def make_net(p_drop=0.25, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, dtype=dtype, rng=rng),                   # 0
        nn.BatchNorm2d(4, dtype=dtype),                                        # 1
        nn.ReLU(),                                                             # 2
        nn.MaxPool2d(2),                                                       # 3
        nn.Residual(nn.Sequential(                                             # 4
            nn.Conv2d(4, 4, 3, padding=1, bias=False, dtype=dtype, rng=rng),
            nn.BatchNorm2d(4, dtype=dtype), nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1, dtype=dtype, rng=rng))),
        nn.Residual(nn.Sequential(                                             # 5
            nn.Conv2d(4, 8, 3, stride=2, padding=1, dtype=dtype, rng=rng), nn.ReLU()),
            shortcut=nn.Conv2d(4, 8, 1, stride=2, dtype=dtype, rng=rng)),
        nn.AvgPool2d(2, stride=1),                                             # 6
        nn.AdaptiveAvgPool2d(1),                                               # 7
        nn.Flatten(),                                                          # 8
        nn.Dropout(p_drop, rng=rng),                                           # 9
        nn.Linear(8, 10, dtype=dtype, rng=rng),                                # 10
    )


def make_torch_net(torch, p_drop=0.25, dtype=None):
    tnn = torch.nn

    class Residual(tnn.Module):
        def __init__(self, block, shortcut=None):
            super().__init__()
            self.block = block
            if shortcut is not None:
                self.shortcut = shortcut

        def forward(self, x):
            return self.block(x) + (self.shortcut(x) if hasattr(self, "shortcut") else x)

    net = tnn.Sequential(
        tnn.Conv2d(1, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(), tnn.MaxPool2d(2),
        Residual(tnn.Sequential(tnn.Conv2d(4, 4, 3, padding=1, bias=False), tnn.BatchNorm2d(4),
                                tnn.ReLU(), tnn.Conv2d(4, 4, 3, padding=1))),
        Residual(tnn.Sequential(tnn.Conv2d(4, 8, 3, stride=2, padding=1), tnn.ReLU()),
                 tnn.Conv2d(4, 8, 1, stride=2)),
        tnn.AvgPool2d(2, stride=1), tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Dropout(p_drop),
        tnn.Linear(8, 10))
    return net.to(dtype or torch.float32)


def batch(seed=0, n=6, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 1, 12, 12)).astype(dtype),
            rng.integers(0, 10, n))


def to_numpy_state(tnet):
    return {k: v.detach().numpy() for k, v in tnet.state_dict().items()}


def to_torch_state(torch, net):
    return {k: torch.from_numpy(v) for k, v in net.state_dict().items()}


def warm_torch_stats(torch, tnet):
    """A few training forwards so the running statistics are not 0/1."""
    tnet.train()
    with torch.no_grad():
        for s in range(3):
            tnet(torch.from_numpy(batch(10 + s)[0] * (s + 1) + s))


# ---------------------------------------------------------------------------
# Names and state dicts shared with PyTorch
# ---------------------------------------------------------------------------

def test_names_match_torch():
    torch = pytest.importorskip("torch")
    net, tnet = make_net(), make_torch_net(torch)
    assert [k for k, _ in net.named_parameters()] == [k for k, _ in tnet.named_parameters()]
    ours, theirs = net.state_dict(), tnet.state_dict()
    assert list(ours) == list(theirs)  # the same names in the same order
    for k in ("0.weight", "1.running_mean", "1.num_batches_tracked", "4.block.1.running_var",
              "5.shortcut.weight", "10.bias"):
        assert k in ours
    for k, v in ours.items():
        assert v.shape == tuple(theirs[k].shape), k
        assert v.dtype == theirs[k].numpy().dtype, k
    assert [k for k, _ in net.named_buffers()] == [k for k, _ in tnet.named_buffers()]


def test_torch_state_dict_loads_unchanged_and_back():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tnet = make_torch_net(torch)
    warm_torch_stats(torch, tnet)
    net = make_net(seed=5)
    missing, unexpected = net.load_state_dict(to_numpy_state(tnet))
    assert missing == [] and unexpected == []
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, tnet.state_dict()[k].numpy(), err_msg=k)
    net.eval(), tnet.eval()
    x, _ = batch(1)
    with torch.no_grad():
        want = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x), want, rtol=1e-4, atol=1e-5)
    # and back: ours -> torch (strict) gives the same logits
    other = make_net(seed=9)
    other.eval()
    tnet2 = make_torch_net(torch)
    tnet2.load_state_dict(to_torch_state(torch, other), strict=True)
    tnet2.eval()
    with torch.no_grad():
        np.testing.assert_allclose(other(x), tnet2(torch.from_numpy(x)).numpy(), rtol=1e-4,
                                   atol=1e-5)
    assert tnet2.state_dict()["1.num_batches_tracked"].dtype == torch.int64


def test_training_step_matches_torch():
    """Train mode (batch statistics), cross-entropy, backward: loss, every parameter
    gradient and the updated running statistics as PyTorch's."""
    torch = pytest.importorskip("torch")
    net = make_net(p_drop=0.0, seed=3)
    tnet = make_torch_net(torch, p_drop=0.0)
    tnet.load_state_dict(to_torch_state(torch, net))
    x, y = batch(2, n=8)
    crit = nn.CrossEntropyLoss()
    loss = crit(net(x), y)
    net.backward(crit.backward())
    tloss = torch.nn.CrossEntropyLoss()(tnet(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-5
    theirs = dict(tnet.named_parameters())
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad, theirs[name].grad.numpy(), rtol=1e-3, atol=2e-6,
                                   err_msg=name)
    for k, v in net.state_dict().items():
        np.testing.assert_allclose(v, tnet.state_dict()[k].numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=k)


def test_whole_network_finite_differences_float64():
    """The whole network in train mode, float64, no PyTorch: gradients of the loss with
    respect to the input and to a few parameters."""
    net = make_net(p_drop=0.0, dtype=np.float64, seed=4)
    net.input_requires_grad = True
    x, y = batch(3, n=3, dtype=np.float64)
    crit = nn.CrossEntropyLoss()
    crit(net(x), y)
    gx = net.backward(crit.backward())

    def loss_x(a):
        return crit(net(a), y)

    np.testing.assert_allclose(gx, numerical_grad(loss_x, x), atol=1e-7, rtol=1e-5)
    for name in ("0.weight", "1.bias", "4.block.1.weight", "5.shortcut.bias", "10.weight"):
        p = dict(net.named_parameters())[name]

        def loss_p(a, p=p):
            old, p.data = p.data, a
            try:
                return crit(net(x), y)
            finally:
                p.data = old

        np.testing.assert_allclose(p.grad, numerical_grad(loss_p, p.data), atol=1e-7,
                                   rtol=1e-5, err_msg=name)


def test_npz_round_trip(tmp_path):
    net = make_net(seed=1)
    net(batch(0)[0])  # move the running statistics
    path = tmp_path / "weights.npz"
    net.save(path)
    other = make_net(seed=2)
    assert other.load(path) == ([], [])
    for k, v in net.state_dict().items():
        w = other.state_dict()[k]
        assert w.dtype == v.dtype and w.shape == v.shape, k
        np.testing.assert_array_equal(w, v, err_msg=k)
    assert other.state_dict()["1.num_batches_tracked"].shape == ()
    net.eval(), other.eval()
    x = batch(1)[0]
    np.testing.assert_array_equal(net(x), other(x))


def test_load_errors_name_the_key():
    net = make_net()
    state = net.state_dict()
    bad = dict(state)
    bad["1.running_mean"] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"1\.running_mean has shape \(5,\), expected \(4,\)"):
        net.load_state_dict(bad)
    missing = {k: v for k, v in state.items() if k != "5.shortcut.weight"}
    with pytest.raises(KeyError, match=r"5\.shortcut\.weight"):
        net.load_state_dict(missing)
    extra = dict(state, **{"11.weight": np.zeros(3)})
    with pytest.raises(KeyError, match=r"11\.weight"):
        net.load_state_dict(extra)
    fresh = make_net(seed=7)
    m, u = fresh.load_state_dict(dict(missing, **{"11.weight": np.zeros(3)}), strict=False)
    assert m == ["5.shortcut.weight"] and u == ["11.weight"]
    np.testing.assert_array_equal(fresh.state_dict()["0.weight"], state["0.weight"])
    assert not np.array_equal(fresh.state_dict()["5.shortcut.weight"],
                              state["5.shortcut.weight"])


# ---------------------------------------------------------------------------
# input_requires_grad: layers skip what nobody needs
# ---------------------------------------------------------------------------

@pytest.fixture
def conv_spy(monkeypatch):
    """Record the ``needs`` of every conv2d_backward call, in call order."""
    calls = []
    real = fastconv.functional.conv2d_backward

    def spy(grad_out, x, weight, *args, needs=(True, True, True), **kwargs):
        calls.append((weight.shape, tuple(needs)))
        return real(grad_out, x, weight, *args, needs=needs, **kwargs)

    monkeypatch.setattr(fastconv.functional, "conv2d_backward", spy)
    return calls


def _run(net, seed=0):
    x, y = batch(seed)
    crit = nn.CrossEntropyLoss()
    crit(net(x), y)
    return net.backward(crit.backward())


def test_first_layer_skips_input_gradient(conv_spy):
    net = make_net()
    assert _run(net) is None  # a model's input is data
    needs = {shape: n for shape, n in conv_spy}
    assert len(conv_spy) == 5
    assert needs[(4, 1, 3, 3)] == (False, True, True)  # the first convolution
    for shape, n in conv_spy:
        if shape != (4, 1, 3, 3):
            assert n[0], shape
    net.input_requires_grad = True  # asked for: the first layer computes it too
    conv_spy.clear()
    assert _run(net).shape == (6, 1, 12, 12)
    assert all(n[0] for _, n in conv_spy)


def test_layers_after_frozen_ones_skip_input_gradient(conv_spy):
    net = make_net(p_drop=0.0, seed=2)
    state = net.state_dict()
    frozen = [net[0], net[1], net[4]]  # stem conv + BN and the first residual block
    for m in frozen:
        nn.freeze(m)
    before = {k: p.data.copy() for k, p in net.named_parameters()}
    _run(net)
    # the residual block 5's convolutions see only data and frozen layers
    for shape, n in conv_spy:
        assert shape in ((8, 4, 3, 3), (8, 4, 1, 1)), shape  # frozen convs not called
        assert n == (False, True, True), (shape, n)
    for m in frozen:
        for name, p in m.named_parameters():
            assert p.grad is None, name
    # an optimizer step over what has a gradient leaves the frozen data bit for bit
    for p in net.parameters():
        if p.grad is not None:
            p.data -= 0.1 * p.grad
    after = dict(net.named_parameters())
    for k in before:  # (running statistics still move in train mode, as in PyTorch)
        if k.split(".")[0] in ("0", "1", "4"):
            np.testing.assert_array_equal(after[k].data, before[k], err_msg=k)
        else:
            assert not np.array_equal(after[k].data, before[k]), k
    # the unfrozen parameters get PyTorch's gradients (the same layers frozen there)
    torch = pytest.importorskip("torch")
    tnet = make_torch_net(torch, p_drop=0.0)
    tnet.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    for i in (0, 1, 4):
        tnet[i].requires_grad_(False)
    net2 = make_net(p_drop=0.0, seed=2)
    for i in (0, 1, 4):
        nn.freeze(net2[i])
    _run(net2)
    x, y = batch(0)
    torch.nn.CrossEntropyLoss()(tnet(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    theirs = dict(tnet.named_parameters())
    for name, p in net2.named_parameters():
        if theirs[name].grad is None:
            assert p.grad is None, name
        else:
            np.testing.assert_allclose(p.grad, theirs[name].grad.numpy(), rtol=1e-3, atol=2e-6,
                                       err_msg=name)


def test_frozen_middle_still_passes_gradient_through(conv_spy):
    """Freezing a middle layer: it computes its input gradient (trainable layers sit
    before it) but no weight gradient."""
    net = make_net(seed=1)
    nn.freeze(net[4])
    _run(net)
    needs = [n for shape, n in conv_spy if shape == (4, 4, 3, 3)]
    assert needs == [(True, False, False), (True, False, False)]
    assert net[0].weight.grad is not None
    assert all(p.grad is None for p in net[4].parameters())
    nn.unfreeze(net)
    assert all(p.requires_grad for p in net.parameters())


# ---------------------------------------------------------------------------
# freeze_bn
# ---------------------------------------------------------------------------

def test_freeze_bn():
    net = make_net(p_drop=0.0, seed=6)
    for seed in range(3):  # move the running statistics away from 0/1
        net(batch(10 + seed)[0] * (seed + 1) + seed)
    state = net.state_dict()
    assert nn.freeze_bn(net) is net
    net.train()
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 2
    assert all(not m.training for m in bns)
    assert net.training and net[0].training and net[4].block[0].training
    _run(net)
    after = net.state_dict()
    for k in state:
        if "running" in k or "num_batches" in k or k.endswith(("1.weight", "1.bias")):
            np.testing.assert_array_equal(after[k], state[k], err_msg=k)
    for m in bns:
        assert m.weight.grad is None and m.bias.grad is None
        assert not m.weight.requires_grad
    assert net[0].weight.grad is not None and net[10].weight.grad is not None
    net.eval()
    net.train()
    assert all(not m.training for m in bns)  # pinned through eval/train
    grads = {k: p.grad for k, p in net.named_parameters() if p.grad is not None}
    nn.unfreeze(net)
    net.train()
    assert all(m.training for m in bns) and all(p.requires_grad for p in net.parameters())
    net.zero_grad()
    _run(net)
    assert int(net[1].num_batches_tracked) == int(state["1.num_batches_tracked"]) + 1
    assert net[1].weight.grad is not None
    # PyTorch equivalent: BN layers in eval mode with frozen parameters
    torch = pytest.importorskip("torch")
    tnet = make_torch_net(torch, p_drop=0.0)
    tnet.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    tnet.train()
    for m in tnet.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
            m.requires_grad_(False)
    x, y = batch(0)
    torch.nn.CrossEntropyLoss()(tnet(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    theirs = dict(tnet.named_parameters())
    assert sorted(grads) == sorted(k for k, p in theirs.items() if p.grad is not None)
    for name, g in grads.items():
        np.testing.assert_allclose(g, theirs[name].grad.numpy(), rtol=1e-3, atol=2e-6,
                                   err_msg=name)


# ---------------------------------------------------------------------------
# repr, zero_grad, modes, no_grad
# ---------------------------------------------------------------------------

def test_repr():
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Residual(nn.Sequential(nn.AvgPool2d(3, 1, 1)),
                                    shortcut=nn.Dropout(0.1)),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 8, kernel_size=(3, 3), padding=(1, 1))\n"
        "  (1): BatchNorm2d(8)\n"
        "  (2): ReLU()\n"
        "  (3): Residual(\n"
        "    (block): Sequential(\n"
        "      (0): AvgPool2d(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "    )\n"
        "    (shortcut): Dropout(p=0.1)\n"
        "  )\n"
        "  (4): AdaptiveAvgPool2d(output_size=1)\n"
        "  (5): Flatten()\n"
        "  (6): Linear(in_features=8, out_features=10)\n"
        ")")


def test_zero_grad_and_accumulation():
    net = make_net(p_drop=0.0)
    _run(net)
    g1 = {k: p.grad.copy() for k, p in net.named_parameters()}
    _run(net)  # same batch, same weights: gradients add up
    for k, p in net.named_parameters():
        if "running" not in k:
            np.testing.assert_allclose(p.grad, 2 * g1[k], rtol=1e-5, atol=1e-7, err_msg=k)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_eval_flags():
    net = make_net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not net[4].block[1].training
    x = batch(0)[0]
    np.testing.assert_array_equal(net(x), net(x))  # eval: deterministic (dropout off)


def test_no_grad_keeps_nothing_for_backward():
    net = make_net()
    x = batch(0)[0]
    with nn.no_grad():
        assert not nn.is_grad_enabled()
        out = net(x)
    assert nn.is_grad_enabled()
    with pytest.raises(RuntimeError, match="no forward pass"):
        net.backward(np.ones_like(out))
    net(x)
    net.backward(np.ones_like(out))  # fine after a normal forward


def test_module_used_twice_round_trips_its_state():
    conv = nn.Conv2d(1, 1, 1, rng=np.random.default_rng(0))
    seq = nn.Sequential(conv, conv)
    state = seq.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    seq.load_state_dict(state)
    assert len(list(seq.parameters())) == 2  # parameters() lists a shared one once


def test_failed_load_changes_nothing():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1))
    before = net.state_dict()
    bad = {k: v + 1 for k, v in before.items()}
    bad["2.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"2\.weight has shape \(3, 3\)"):
        net.load_state_dict(bad)
    for k, v in net.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_flatten_keeps_nothing_under_no_grad():
    f = nn.Flatten()
    with nn.no_grad():
        f(np.zeros((5, 7, 2), np.float32))
    with pytest.raises(RuntimeError, match="no forward pass"):
        f.backward(np.zeros((5, 14), np.float32))


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Conv2d(1, 1, 3, stride=0), "stride and dilation must be positive"),
    (lambda: nn.Conv2d(1, 1, 3, dilation=0), "stride and dilation must be positive"),
    (lambda: nn.Conv2d(1, 1, 3, padding=-1), "padding must be non-negative"),
    (lambda: nn.Conv2d(1, 1, 3, padding="foo"), "padding must be 'valid', 'same'"),
    (lambda: nn.Conv2d(1, 1, 3, stride=2, padding="same"), "padding='same' needs stride 1"),
    (lambda: nn.MaxPool2d(0), "kernel_size, stride and dilation must be positive"),
    (lambda: nn.MaxPool2d(2, padding=3), "padding must be between 0 and half"),
])
def test_constructor_arguments_are_validated(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_linear_names_in_features_on_a_wrong_input():
    with pytest.raises(ValueError, match=r"Linear: the input's last dimension must be "
                                         r"in_features=4, got shape \(2, 3, 6\)"):
        nn.Linear(4, 2)(np.zeros((2, 3, 6), np.float32))


def test_gradient_is_copied_on_first_accumulation():
    p = nn.Parameter(np.zeros(3, np.float32))
    g = np.ones(3, np.float32)
    p.accumulate_grad(g)
    p.accumulate_grad(g)
    assert np.array_equal(g, np.ones(3)) and np.array_equal(p.grad, 2 * np.ones(3))
