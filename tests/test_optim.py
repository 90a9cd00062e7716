"""fastconv.optim: SGD, Adam, AdamW, parameter groups, OneCycleLR, CosineAnnealingLR and
lr_find, against torch.optim as the oracle (skipped without PyTorch), plus the course's
training-practice checks: a small CNN trained in both libraries from the same weights
follows the same trajectory.
"""
import math

import numpy as np
import pytest

from fastconv import nn, optim

SHAPES = [(3, 4), (5,), (2, 3, 2, 2)]


def _tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-6, atol=1e-7)


def _nn(name):
    """A fastconv.nn class another issue adds, or None while it is absent."""
    return getattr(nn, name, None)


# -- tiny local losses (the tests of the optimizers do not depend on nn's) -------------------
class _SoftmaxCE:
    """Mean softmax cross-entropy over integer labels, fused backward."""

    def forward(self, logits, y):
        shift = logits - logits.max(axis=1, keepdims=True)
        logp = shift - np.log(np.exp(shift).sum(axis=1, keepdims=True))
        self._p, self._y = np.exp(logp), y
        return float(-logp[np.arange(len(y)), y].mean())

    def backward(self):
        g = self._p.copy()
        g[np.arange(len(self._y)), self._y] -= 1
        return g / len(self._y)


class _BCEWithLogits:
    """Mean binary cross-entropy on logits over every label."""

    def forward(self, logits, y):
        self._x, self._y = logits, y
        return float(np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-abs(logits)))))

    def backward(self):
        return (1 / (1 + np.exp(-self._x)) - self._y) / self._x.size


class _MSE:
    def forward(self, out, y):
        self._d = out - y
        return float(np.mean(self._d ** 2))

    def backward(self):
        return 2 * self._d / self._d.size


def _loss(kind):
    """fastconv's loss module when it exists, else the local one."""
    if kind == "ce":
        cls = _nn("CrossEntropyLoss")
        return cls() if cls is not None else _SoftmaxCE()
    cls = _nn("BCEWithLogitsLoss")
    return cls() if cls is not None else _BCEWithLogits()


# -- random trajectories against torch.optim -----------------------------------------------
def _make_params(rng, dtype):
    return [nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]


def _run_pair(torch, make_fc, make_torch, dtype, steps=5, seed=0):
    """Two groups of random parameters (group lrs differ), random gradients set by hand
    for ``steps`` steps in both libraries; the trajectories must agree at every step.
    Also one parameter that never gets a gradient and a frozen one with a gradient."""
    rng = np.random.default_rng(seed)
    ps = _make_params(rng, dtype)
    idle = nn.Parameter(rng.standard_normal((4,)).astype(dtype))         # grad stays None
    frozen = nn.Parameter(rng.standard_normal((3,)).astype(dtype), requires_grad=False)
    idle0, frozen0 = idle.data.copy(), frozen.data.copy()
    tps = [torch.tensor(p.data.copy(), requires_grad=True) for p in ps]
    opt = make_fc([{"params": ps[:2] + [idle]}, {"params": [ps[2], frozen], "lr": 0.03}])
    topt = make_torch([{"params": tps[:2]}, {"params": [tps[2]], "lr": 0.03}])
    datas = [p.data for p in ps]
    for step in range(steps):
        for p, tp in zip(ps, tps):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad = g.copy()
            tp.grad = torch.from_numpy(g)
        frozen.grad = np.ones_like(frozen.data)   # skipped although a gradient is there
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(ps, tps)):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), **_tol(dtype),
                                       err_msg=f"step {step}, parameter {i}")
    for p, d in zip(ps, datas):
        assert p.data is d and p.data.dtype == dtype   # updated in place, dtype kept
    assert np.array_equal(idle.data, idle0) and np.array_equal(frozen.data, frozen0)
    assert idle not in opt.state and frozen not in opt.state
    return opt


SGD_CASES = {
    "plain": dict(),
    "momentum": dict(momentum=0.9),
    "dampening": dict(momentum=0.8, dampening=0.3),
    "nesterov": dict(momentum=0.9, nesterov=True),
    "weight_decay": dict(weight_decay=0.1),
    "all": dict(momentum=0.7, weight_decay=0.05, nesterov=True),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", SGD_CASES)
def test_sgd_matches_torch(case, dtype):
    torch = pytest.importorskip("torch")
    kw = SGD_CASES[case]
    _run_pair(torch, lambda g: optim.SGD(g, lr=0.1, **kw),
              lambda g: torch.optim.SGD(g, lr=0.1, foreach=False, **kw), dtype)


ADAM_CASES = {
    "adam": (optim.Adam, "Adam", dict()),
    "adam_l2": (optim.Adam, "Adam", dict(weight_decay=0.1, betas=(0.8, 0.99), eps=1e-6)),
    "adamw": (optim.AdamW, "AdamW", dict()),
    "adamw_decay": (optim.AdamW, "AdamW", dict(weight_decay=0.2, betas=(0.5, 0.9))),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", ADAM_CASES)
def test_adam_matches_torch(case, dtype):
    torch = pytest.importorskip("torch")
    cls, tname, kw = ADAM_CASES[case]
    opt = _run_pair(torch, lambda g: cls(g, lr=0.01, **kw),
                    lambda g: getattr(torch.optim, tname)(g, lr=0.01, foreach=False, **kw),
                    dtype, steps=6)
    state = next(iter(opt.state.values()))
    assert state["step"] == 6 and state["exp_avg"].dtype == dtype


def test_adamw_decay_is_decoupled():
    """With a zero gradient, Adam's L2 term still moves the weights through m/sqrt(v), but
    AdamW only shrinks them by exactly (1 - lr*wd)."""
    p = nn.Parameter(np.array([2.0, -4.0]))
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = np.zeros(2)
    opt.step()
    np.testing.assert_array_equal(p.data, np.array([2.0, -4.0]) * (1 - 0.1 * 0.5))


# -- parameter groups, freezing, zero_grad, state ------------------------------------------
def test_groups_move_by_their_own_rates():
    """The course's per-layer-group learning rates: lr=0 does not move; two groups fed the
    same gradient move in the ratio of their rates."""
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((4, 3))
    g = rng.standard_normal((4, 3))
    a, b, c = (nn.Parameter(w0.copy()) for _ in range(3))
    opt = optim.SGD([{"params": [a], "lr": 0.0}, {"params": [b]}, {"params": [c], "lr": 0.3}],
                    lr=0.1)
    for _ in range(3):
        for p in (a, b, c):
            p.grad = g.copy()
        opt.step()
    assert np.array_equal(a.data, w0)
    np.testing.assert_allclose(b.data - w0, -0.3 * g, rtol=1e-12)
    np.testing.assert_allclose((c.data - w0), 3 * (b.data - w0), rtol=1e-12)
    assert [grp["lr"] for grp in opt.param_groups] == [0.0, 0.1, 0.3]


def test_layer_groups_on_a_model_and_freezing():
    """Discriminative rates on a model's layers (body slower than head), then freeze the
    body: its weights stay the same bit for bit although momentum buffers exist."""
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Linear(6, 5, rng=rng, dtype=np.float64), nn.ReLU(),
                          nn.Linear(5, 3, rng=rng, dtype=np.float64))
    opt = optim.SGD([{"params": model[0].parameters(), "lr": 1e-3},
                     {"params": model[2].parameters(), "lr": 1e-1}], momentum=0.9)
    x, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    loss = _SoftmaxCE()

    def step():
        model.zero_grad()
        loss.forward(model(x), y)
        model.backward(loss.backward())
        opt.step()

    before = model.state_dict()
    step()
    after = model.state_dict()
    body = np.abs(after["0.weight"] - before["0.weight"]).max()
    head = np.abs(after["2.weight"] - before["2.weight"]).max()
    assert 0 < body < head
    nn.utils.freeze(model[0])
    frozen = {k: v.copy() for k, v in model.state_dict().items() if k.startswith("0.")}
    for _ in range(2):
        step()
    for k, v in frozen.items():
        assert np.array_equal(model.state_dict()[k], v), k
    assert not np.array_equal(model.state_dict()["2.weight"], after["2.weight"])


def test_zero_grad_and_skipping():
    p, q = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))
    opt = optim.SGD([p, q], lr=1.0, momentum=0.9, weight_decay=0.1)
    p.grad = np.ones(3)
    opt.step()                        # q has no gradient: weight decay must not touch it
    assert np.array_equal(q.data, np.ones(2))
    np.testing.assert_allclose(p.data, 1 - 1.1)
    opt.zero_grad()
    assert p.grad is None and q.grad is None
    opt.step()                        # nothing to do
    np.testing.assert_allclose(p.data, 1 - 1.1)


def test_float32_grad_on_float64_parameter_is_cast():
    p = nn.Parameter(np.zeros(3))
    opt = optim.SGD([p], lr=0.5)
    p.grad = np.ones(3, np.float32)
    opt.step()
    assert p.data.dtype == np.float64
    np.testing.assert_array_equal(p.data, -0.5)
    p.grad = np.ones(4)
    with pytest.raises(ValueError, match="shape"):
        opt.step()


def test_add_param_group_and_state_dict_round_trip():
    rng = np.random.default_rng(3)
    ps = _make_params(rng, np.float64)
    opt = optim.Adam([ps[0]], lr=0.01)
    opt.add_param_group({"params": ps[1:], "lr": 0.02, "betas": (0.8, 0.9)})
    assert opt.param_groups[1]["eps"] == 1e-8 and opt.param_groups[1]["betas"] == (0.8, 0.9)
    grads = [[rng.standard_normal(p.shape) for p in ps] for _ in range(4)]

    def steps(o, params, gs):
        for g in gs:
            for p, gi in zip(params, g):
                p.grad = gi.copy()
            o.step()

    steps(opt, ps, grads[:2])
    saved, saved_params = opt.state_dict(), [p.data.copy() for p in ps]
    steps(opt, ps, grads[2:])
    # a fresh optimizer on fresh parameters, loaded from the saved state, ends the same
    qs = [nn.Parameter(d) for d in saved_params]
    opt2 = optim.Adam([qs[0]], lr=0.5)
    opt2.add_param_group({"params": qs[1:]})
    opt2.load_state_dict(saved)
    assert opt2.param_groups[1]["lr"] == 0.02
    steps(opt2, qs, grads[2:])
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.data, q.data)
    with pytest.raises(ValueError, match="groups"):
        optim.Adam(ps).load_state_dict(saved)


# -- the course's network in both libraries ------------------------------------------------
def _networks(torch, dtype, bn, n_out, seed=0):
    """Conv2d -> [BatchNorm2d] -> ReLU -> MaxPool2d -> Flatten -> Linear, fastconv and torch,
    the same weights (moved through state_dict as NumPy arrays)."""
    rng = np.random.default_rng(seed)
    # before BatchNorm the conv has no bias, as usual: its true gradient is zero, and Adam
    # would blow the rounding noise of that zero up to steps of size lr
    layers = [nn.Conv2d(2, 4, 3, padding=1, bias=not bn, dtype=dtype, rng=rng)]
    tlayers = [torch.nn.Conv2d(2, 4, 3, padding=1, bias=not bn)]
    if bn:
        layers.append(_nn("BatchNorm2d")(4, dtype=dtype))
        tlayers.append(torch.nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
               nn.Linear(64, n_out, dtype=dtype, rng=rng)]
    tlayers += [torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                torch.nn.Linear(64, n_out)]
    model, tmodel = nn.Sequential(*layers), torch.nn.Sequential(*tlayers)
    tmodel.to(torch.float64 if dtype == np.float64 else torch.float32)
    if bn:   # not the default 1 and 0, so that the affine gradients matter
        model[1].weight.data[:] = rng.uniform(0.5, 1.5, 4)
        model[1].bias.data[:] = rng.uniform(-0.5, 0.5, 4)
    state = model.state_dict()
    assert set(state) == set(tmodel.state_dict()), (sorted(state), sorted(tmodel.state_dict()))
    tmodel.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return model, tmodel


NET_CASES = [("plain", "ce"), ("bn", "ce"), ("bn", "bce")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("net,loss_kind", NET_CASES)
def test_network_trains_as_torch(net, loss_kind, opt_name, dtype):
    """Same logits, loss, gradients, parameters (and BatchNorm statistics) after each of
    three steps of SGD with momentum or Adam, in train mode; then the same eval logits."""
    torch = pytest.importorskip("torch")
    bn = net == "bn"
    if bn and _nn("BatchNorm2d") is None:
        pytest.skip("fastconv.nn.BatchNorm2d does not exist yet")
    n_out = 5
    model, tmodel = _networks(torch, dtype, bn, n_out)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 2, 8, 8)).astype(dtype)
    if loss_kind == "ce":
        y = rng.integers(0, n_out, 6)
        ty = torch.from_numpy(y)
        tloss_fn = torch.nn.CrossEntropyLoss()
    else:   # several labels per image
        y = (rng.random((6, n_out)) < 0.4).astype(dtype)
        ty = torch.from_numpy(y)
        tloss_fn = torch.nn.BCEWithLogitsLoss()
    loss = _loss(loss_kind)
    if opt_name == "sgd":
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    else:
        opt = optim.Adam(model.parameters(), lr=0.01)
        topt = torch.optim.Adam(tmodel.parameters(), lr=0.01)
    if dtype == np.float64:
        tol = dict(rtol=1e-9, atol=1e-11)
    else:
        tol = dict(rtol=2e-4, atol=2e-5)
    model.train()
    tmodel.train()
    for step in range(3):
        model.zero_grad()
        topt.zero_grad()
        logits = model(x)
        tlogits = tmodel(torch.from_numpy(x))
        np.testing.assert_allclose(logits, tlogits.detach().numpy(), **tol,
                                   err_msg=f"logits, step {step}")
        value = loss.forward(logits, y)
        tvalue = tloss_fn(tlogits, ty)
        assert isinstance(value, float)
        np.testing.assert_allclose(value, tvalue.item(), **tol, err_msg=f"loss, step {step}")
        model.backward(loss.backward())
        tvalue.backward()
        tparams = dict(tmodel.named_parameters())
        for name, p in model.named_parameters():
            np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), **tol,
                                       err_msg=f"grad of {name}, step {step}")
        opt.step()
        topt.step()
        tstate = tmodel.state_dict()
        for name, v in model.state_dict().items():
            np.testing.assert_allclose(v, tstate[name].numpy(), **tol,
                                       err_msg=f"{name} after step {step}")
    model.eval()
    tmodel.eval()
    with torch.no_grad():
        np.testing.assert_allclose(model(x), tmodel(torch.from_numpy(x)).numpy(), **tol,
                                   err_msg="eval logits")


# -- schedules -----------------------------------------------------------------------------
def _two_groups(torch, make, tmake):
    ps = [nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(3))]
    tps = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    opt = make([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.5}])
    topt = tmake([{"params": [tps[0]]}, {"params": [tps[1]], "lr": 0.5}])
    return opt, topt


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


ONECYCLE_CASES = {
    "sgd_cos": ("sgd", dict(max_lr=0.1, total_steps=40)),
    "sgd_linear_groups": ("sgd", dict(max_lr=[0.01, 0.2], total_steps=37, pct_start=0.25,
                                      anneal_strategy="linear", base_momentum=[0.8, 0.85],
                                      max_momentum=0.9)),
    "sgd_three_phase": ("sgd", dict(max_lr=0.3, total_steps=50, three_phase=True,
                                    div_factor=10.0, final_div_factor=100.0)),
    "sgd_no_momentum_cycle": ("sgd", dict(max_lr=0.1, total_steps=20, cycle_momentum=False)),
    "adam_beta1": ("adam", dict(max_lr=[3e-3, 1e-2], total_steps=45, pct_start=0.4)),
    "epochs": ("adam", dict(max_lr=1e-2, epochs=3, steps_per_epoch=7)),
}


@pytest.mark.parametrize("case", ONECYCLE_CASES)
def test_onecycle_matches_torch(case):
    """The whole cycle's lr (and SGD momentum / Adam beta1) for every group, as torch's."""
    torch = pytest.importorskip("torch")
    kind, kw = ONECYCLE_CASES[case]
    if kind == "sgd":
        opt, topt = _two_groups(torch, lambda g: optim.SGD(g, lr=0.1, momentum=0.9),
                                lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9))
    else:
        opt, topt = _two_groups(torch, lambda g: optim.Adam(g), lambda g: torch.optim.Adam(g))
    kw = dict(kw)
    total = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    sched = optim.OneCycleLR(opt, **kw)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kw)
    lrs = []
    for step in range(total):
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-13,
                                   atol=1e-18, err_msg=f"lr at step {step}")
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
        np.testing.assert_allclose(_momenta(opt), _momenta(topt), rtol=1e-13,
                                   err_msg=f"momentum at step {step}")
        lrs.append(sched.get_last_lr()[0])
        topt.step()
        sched.step()
        tsched.step()
    np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-13)
    # the shape of a cycle: up to max_lr, then down far below the start
    max_lr = kw["max_lr"][0] if isinstance(kw["max_lr"], list) else kw["max_lr"]
    assert max(lrs) == pytest.approx(max_lr, rel=5e-2)   # the peak may fall between steps
    assert lrs[total - 1] < lrs[0] / 5
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()
    with pytest.raises(ValueError):
        tsched.step()


@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_onecycle_training_trajectory_matches_torch(kind):
    """Optimizer and schedule together: the momentum / beta1 the schedule sets each step is
    the one the next update uses (Adam's bias correction included), as in torch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    p = nn.Parameter(rng.standard_normal((4, 5)))
    tp = torch.tensor(p.data.copy(), requires_grad=True)
    if kind == "sgd":
        opt, topt = optim.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([tp], lr=0.1,
                                                                            momentum=0.9)
    else:
        opt, topt = optim.AdamW([p], weight_decay=0.1), torch.optim.AdamW([tp], weight_decay=0.1)
    sched = optim.OneCycleLR(opt, max_lr=0.05, total_steps=12, three_phase=True)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=12,
                                                 three_phase=True)
    for step in range(12):
        g = rng.standard_normal(p.shape)
        p.grad, tp.grad = g.copy(), torch.from_numpy(g)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=f"step {step}")


def test_cosine_matches_torch():
    torch = pytest.importorskip("torch")
    opt, topt = _two_groups(torch, lambda g: optim.SGD(g, lr=0.1),
                            lambda g: torch.optim.SGD(g, lr=0.1))
    sched = optim.CosineAnnealingLR(opt, T_max=10, eta_min=1e-3)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10, eta_min=1e-3)
    seen = []
    for step in range(31):   # past T_max: the schedule comes back up, as torch's
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12,
                                   atol=1e-16, err_msg=f"step {step}")
        seen.append(sched.get_last_lr()[1])
        topt.step()
        sched.step()
        tsched.step()
    assert seen[0] == 0.5 and seen[10] == pytest.approx(1e-3, abs=1e-15)
    assert seen[20] == pytest.approx(0.5)


def test_cosine_closed_form_without_torch():
    p = nn.Parameter(np.zeros(1))
    opt = optim.Adam([p], lr=0.2)
    sched = optim.CosineAnnealingLR(opt, T_max=4)
    got = [sched.get_last_lr()[0]]
    for _ in range(4):
        sched.step()
        got.append(opt.param_groups[0]["lr"])
    want = [0.2 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-18)


# -- lr_find -------------------------------------------------------------------------------
def _regression(seed=0, n=256, d=8, batch=32):
    """Linear regression on standardised inputs, MSE loss. The Hessian 2*X'X/n has its
    eigenvalues in about [1.4, 2.8] (Marchenko-Pastur for d/n = 1/32), so SGD with momentum
    0.9 converges at its best rate, sqrt(0.9) per step, for lr*lambda_min >= (1-sqrt(0.9))^2,
    lr >~ 2e-3, and diverges past lr = 2*(1+0.9)/lambda_max ~ 1.4: the good range is
    [2e-3, 1.3]."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal((d, 1)) + 0.1 * rng.standard_normal((n, 1))
    batches = [(X[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]
    model = nn.Linear(d, 1, dtype=np.float64, rng=rng)
    return model, batches


def test_lr_find_sweep_divergence_and_restore():
    model, batches = _regression()
    model.eval()                    # restored afterwards, though the sweep trains
    model.weight.grad = np.full(model.weight.shape, 7.0)
    before = model.state_dict()
    weight_array = model.weight.data
    res = optim.lr_find(model, _MSE(), batches, start=1e-6, end=1e3, steps=100)
    lrs, losses, suggestion = res
    # geometric rates from start, reaching end at step steps-1
    assert lrs[0] == 1e-6 and len(lrs) == len(losses)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], (1e3 / 1e-6) ** (1 / 99), rtol=1e-12)
    # stopped on divergence, well before the last step (lr ~ 2 diverges)
    assert len(lrs) < 100 and lrs[-1] < 50
    assert losses[-1] > 4 * losses[:-1].min()
    assert lrs[0] <= suggestion <= lrs[-1]
    assert lrs[0] <= res.lr_min <= lrs[-1]
    # the model is back, bit for bit, with its gradients and mode
    after = model.state_dict()
    for k in before:
        assert after[k].dtype == before[k].dtype and np.array_equal(after[k], before[k]), k
    assert np.array_equal(model.weight.grad, np.full(model.weight.shape, 7.0))
    assert model.bias.grad is None and not model.training
    assert model.weight.data is weight_array      # restored in place


def test_lr_find_suggests_a_sensible_rate():
    """Both suggestions on the toy regression fall in its good range (see _regression), not
    in the flat start nor past divergence; training at the suggestion reduces the loss."""
    model, batches = _regression(seed=1)
    res = optim.lr_find(model, _MSE(), batches, start=1e-7, end=10.0, steps=100)
    assert 2e-3 <= res.suggestion <= 1.3, res.suggestion
    assert 2e-3 <= res.lr_min <= 1.3, res.lr_min
    loss = _MSE()
    X = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    start = loss.forward(model(X), y)
    opt = optim.SGD(model.parameters(), lr=res.suggestion, momentum=0.9)
    for x_b, y_b in batches * 3:
        model.zero_grad()
        loss.forward(model(x_b), y_b)
        model.backward(loss.backward())
        opt.step()
    assert loss.forward(model(X), y) < start / 10


def test_lr_find_with_optimizer_and_iterator():
    """A given optimizer's state and rates are put back; a one-pass iterator of batches is
    replayed when shorter than steps and gives the same sweep as the list."""
    model, batches = _regression(seed=2)
    opt = optim.Adam([{"params": [model.weight], "lr": 1e-3}, {"params": [model.bias]}], lr=2e-3)
    loss = _MSE()
    model.zero_grad()
    loss.forward(model(batches[0][0]), batches[0][1])
    model.backward(loss.backward())
    opt.step()                      # so that there is state to restore
    saved = opt.state_dict()
    before = model.state_dict()
    a = optim.lr_find(model, loss, batches, start=1e-5, end=1.0, steps=30, optimizer=opt)
    assert len(a.lrs) == 30                           # Adam does not diverge at lr=1 here
    now = opt.state_dict()
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 2e-3]
    for i, st in saved["state"].items():
        for k, v in st.items():
            assert np.array_equal(now["state"][i][k], v), (i, k)
    b = optim.lr_find(model, loss, iter(batches), start=1e-5, end=1.0, steps=30, optimizer=opt)
    np.testing.assert_array_equal(a.lrs, b.lrs)
    np.testing.assert_array_equal(a.losses, b.losses)
    for k, v in before.items():
        assert np.array_equal(model.state_dict()[k], v)


def test_lr_find_restores_when_interrupted():
    class Failing(_MSE):
        calls = 0

        def forward(self, out, y):
            Failing.calls += 1
            if Failing.calls == 6:
                raise KeyboardInterrupt
            return super().forward(out, y)

    model, batches = _regression(seed=4)
    before = model.state_dict()
    with pytest.raises(KeyboardInterrupt):
        optim.lr_find(model, Failing(), batches, start=1e-2, end=1.0, steps=20)
    for k, v in before.items():
        assert np.array_equal(model.state_dict()[k], v), k


def test_lr_find_stops_on_nan():
    model, batches = _regression(seed=3)
    batches = [(x * 1e150, y) for x, y in batches]   # the loss overflows at once
    with np.errstate(all="ignore"):
        res = optim.lr_find(model, _MSE(), batches, start=1e-3, end=1.0, steps=20)
    assert len(res.lrs) < 20 and np.all(np.isfinite(res.losses))


def test_lr_find_restores_batchnorm_statistics():
    if _nn("BatchNorm2d") is None:
        pytest.skip("fastconv.nn.BatchNorm2d does not exist yet")
    rng = np.random.default_rng(4)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, dtype=np.float64, rng=rng),
                          _nn("BatchNorm2d")(3, dtype=np.float64), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 2, dtype=np.float64, rng=rng))
    batches = [(rng.standard_normal((4, 1, 6, 6)), rng.integers(0, 2, 4)) for _ in range(3)]
    before = model.state_dict()
    res = optim.lr_find(model, _loss("ce"), batches, start=1e-4, end=1.0, steps=10)
    assert len(res.lrs) >= 2
    for k, v in before.items():
        assert np.array_equal(model.state_dict()[k], v), k


# -- validation ----------------------------------------------------------------------------
def _p():
    return [nn.Parameter(np.zeros(2))]


def _same_param_twice():
    q = nn.Parameter(np.zeros(1))
    return optim.SGD([{"params": [q]}, {"params": [q]}], lr=0.1)


BAD = [
    (lambda: optim.SGD(_p(), lr=-0.1), r"\blr\b"),
    (lambda: optim.SGD(_p(), lr=float("nan")), r"\blr\b"),
    (lambda: optim.SGD(_p(), lr=0.1, momentum=-0.5), "momentum"),
    (lambda: optim.SGD(_p(), lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda: optim.SGD(_p(), lr=0.1, nesterov=True), "nesterov"),
    (lambda: optim.SGD(_p(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda: optim.SGD([{"params": _p(), "lr": -1.0}], lr=0.1), r"\blr\b"),
    (lambda: optim.Adam(_p(), lr=-1e-3), r"\blr\b"),
    (lambda: optim.Adam(_p(), eps=-1e-8), "eps"),
    (lambda: optim.Adam(_p(), betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda: optim.Adam(_p(), betas=(0.9, -0.1)), r"betas\[1\]"),
    (lambda: optim.Adam(_p(), betas=(0.9,)), "betas"),
    (lambda: optim.Adam(_p(), weight_decay=-0.1), "weight_decay"),
    (lambda: optim.AdamW(_p(), weight_decay=-0.1), "weight_decay"),
    (lambda: optim.AdamW(_p(), betas=(0.9, 1.5)), r"betas\[1\]"),
    (lambda: optim.SGD([], lr=0.1), "empty"),
    (lambda: _same_param_twice(), "more than one"),
    (lambda: optim.OneCycleLR(optim.SGD(_p()), 0.1, total_steps=0), "total_steps"),
    (lambda: optim.OneCycleLR(optim.SGD(_p()), 0.1), "total_steps"),
    (lambda: optim.OneCycleLR(optim.SGD(_p()), 0.1, 10, pct_start=1.5), "pct_start"),
    (lambda: optim.OneCycleLR(optim.SGD(_p()), 0.1, 10, anneal_strategy="exp"),
     "anneal_strategy"),
    (lambda: optim.OneCycleLR(optim.SGD(_p()), [0.1, 0.2], 10), "max_lr"),
    (lambda: optim.OneCycleLR(optim.SGD(_p()), 0.1, 10, div_factor=0), "div_factor"),
    (lambda: optim.OneCycleLR(optim.SGD(_p()), 0.1, 10, max_momentum=[0.9, 0.9]),
     "max_momentum"),
    (lambda: optim.OneCycleLR(optim.Optimizer(_p(), {"lr": 0.1}), 0.1, 10), "cycle_momentum"),
    (lambda: optim.CosineAnnealingLR(optim.SGD(_p()), T_max=0), "T_max"),
    (lambda: optim.lr_find(None, None, [], start=0.0), "start"),
    (lambda: optim.lr_find(None, None, [], start=1.0, end=0.1), "end"),
    (lambda: optim.lr_find(None, None, [], steps=1), "steps"),
    (lambda: optim.lr_find(None, None, [], smooth=1.0), "smooth"),
    (lambda: optim.lr_find(None, None, [], diverge=0.5), "diverge"),
]


@pytest.mark.parametrize("make,match", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_types_raise_type_error():
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(TypeError, match="params"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="Parameter"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="optimizer"):
        optim.OneCycleLR(object(), 0.1, 10)
    with pytest.raises(TypeError, match="lr"):
        optim.SGD([p], lr="0.1")


def test_lr_find_rewinds_dropout_generators():
    from fastconv import nn
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5, rng=1), nn.Linear(4, 3, rng=rng))
    x = rng.standard_normal((8, 2, 2)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    state = model[1].rng.bit_generator.state
    optim.lr_find(model, nn.CrossEntropyLoss(), [(x, y)], steps=5)
    assert model[1].rng.bit_generator.state == state
