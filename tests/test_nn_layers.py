"""fastconv.nn layers and losses, one at a time.

Oracles:
- central finite differences in float64 of each layer's own forward (gradcheck.py),
  for the input and every trainable parameter (no PyTorch needed);
- plain loop references for the average pools (no PyTorch needed);
- PyTorch (``importorskip``), the same layer with the same parameters: output, input
  gradient and parameter gradients in float32 and float64, BatchNorm's running
  statistics, the losses' values and gradients.

Then: PyTorch's default initialisation (fan-in uniform bounds and their standard
deviation, reproducible from a seed), Dropout's statistics, the ``input_requires_grad``
contract of the parameter-free layers, and the validation errors.
"""

import math

import numpy as np
import pytest

from fastconv import nn
from gradcheck import numerical_grad

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def randn(shape, seed=0, dtype=np.float64, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def with_stats(bn, seed=7):
    """Give a BatchNorm2d non-trivial affine parameters and running statistics."""
    rng = np.random.default_rng(seed)
    C = bn.num_features
    if bn.affine:
        bn.weight.data = rng.uniform(0.5, 2, C).astype(bn.weight.dtype)
        bn.bias.data = rng.standard_normal(C).astype(bn.bias.dtype)
    if bn.track_running_stats:
        bn.running_mean[...] = rng.standard_normal(C)
        bn.running_var[...] = rng.uniform(0.5, 3, C)
        bn.num_batches_tracked[...] = 5
    return bn


def residual_block(dtype, shortcut):
    """conv-relu(-conv) + identity, or + a 1x1 convolution that changes the channels."""
    if shortcut:
        block = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, dtype=dtype, rng=np.random.default_rng(1)), nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1, dtype=dtype, rng=np.random.default_rng(2)))
        return nn.Residual(block, nn.Conv2d(3, 4, 1, dtype=dtype, rng=np.random.default_rng(3)))
    block = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, dtype=dtype,
                                    rng=np.random.default_rng(1)), nn.ReLU())
    return nn.Residual(block)


def torch_residual(torch, block, shortcut=None):
    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = block
            if shortcut is not None:
                self.shortcut = shortcut

        def forward(self, x):
            s = self.shortcut(x) if shortcut is not None else x
            return self.block(x) + s

    return Residual()


# ---------------------------------------------------------------------------
# Layer cases: (ours(dtype), theirs(torch), input shape); parameters are copied
# from ours to theirs by state_dict, so only the architecture must agree.
# ---------------------------------------------------------------------------

def _rng(seed=0):
    return np.random.default_rng(seed)


LAYER_CASES = {
    "conv": (lambda dt: nn.Conv2d(3, 4, 3, dtype=dt, rng=_rng()),
             lambda t: t.nn.Conv2d(3, 4, 3), (2, 3, 7, 6)),
    "conv_stride_pad": (lambda dt: nn.Conv2d(3, 5, (3, 2), stride=2, padding=(1, 0), dtype=dt,
                                             rng=_rng()),
                        lambda t: t.nn.Conv2d(3, 5, (3, 2), stride=2, padding=(1, 0)),
                        (2, 3, 8, 7)),
    "conv_groups": (lambda dt: nn.Conv2d(4, 6, 3, padding=1, groups=2, dtype=dt, rng=_rng()),
                    lambda t: t.nn.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 5, 6)),
    "conv_depthwise_dil": (lambda dt: nn.Conv2d(3, 3, 3, padding=2, dilation=2, groups=3,
                                                bias=False, dtype=dt, rng=_rng()),
                           lambda t: t.nn.Conv2d(3, 3, 3, padding=2, dilation=2, groups=3,
                                                 bias=False), (1, 3, 7, 8)),
    "conv_same_even": (lambda dt: nn.Conv2d(2, 3, 4, padding="same", dtype=dt, rng=_rng()),
                       lambda t: t.nn.Conv2d(2, 3, 4, padding="same"), (2, 2, 6, 5)),
    "linear": (lambda dt: nn.Linear(7, 5, dtype=dt, rng=_rng()),
               lambda t: t.nn.Linear(7, 5), (4, 7)),
    "linear_3d": (lambda dt: nn.Linear(6, 3, dtype=dt, rng=_rng()),
                  lambda t: t.nn.Linear(6, 3), (2, 4, 6)),
    "linear_nobias": (lambda dt: nn.Linear(6, 3, bias=False, dtype=dt, rng=_rng()),
                      lambda t: t.nn.Linear(6, 3, bias=False), (3, 6)),
    "relu": (lambda dt: nn.ReLU(), lambda t: t.nn.ReLU(), (2, 3, 4, 5)),
    "maxpool": (lambda dt: nn.MaxPool2d(2), lambda t: t.nn.MaxPool2d(2), (2, 3, 6, 7)),
    "maxpool_s2p1_ceil": (lambda dt: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                          lambda t: t.nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 2, 8, 7)),
    "flatten": (lambda dt: nn.Flatten(), lambda t: t.nn.Flatten(), (2, 3, 4, 5)),
    "flatten_2_3": (lambda dt: nn.Flatten(2, 3), lambda t: t.nn.Flatten(2, 3), (2, 3, 4, 5)),
    "bn_train": (lambda dt: with_stats(nn.BatchNorm2d(4, dtype=dt)),
                 lambda t: t.nn.BatchNorm2d(4), (3, 4, 5, 6)),
    "bn_eval": (lambda dt: with_stats(nn.BatchNorm2d(4, dtype=dt)).eval(),
                lambda t: t.nn.BatchNorm2d(4).eval(), (3, 4, 5, 6)),
    "bn_noaffine": (lambda dt: with_stats(nn.BatchNorm2d(3, affine=False, dtype=dt)),
                    lambda t: t.nn.BatchNorm2d(3, affine=False), (4, 3, 3, 2)),
    "bn_notrack_eval": (lambda dt: with_stats(nn.BatchNorm2d(3, track_running_stats=False,
                                                             dtype=dt)).eval(),
                        lambda t: t.nn.BatchNorm2d(3, track_running_stats=False).eval(),
                        (4, 3, 3, 2)),
    "bn_momentum_none_eps": (lambda dt: with_stats(nn.BatchNorm2d(2, eps=1e-3, momentum=None,
                                                                  dtype=dt)),
                             lambda t: t.nn.BatchNorm2d(2, eps=1e-3, momentum=None),
                             (2, 2, 1, 3)),
    "avgpool": (lambda dt: nn.AvgPool2d(2), lambda t: t.nn.AvgPool2d(2), (2, 3, 6, 7)),
    "avgpool_k3s2p1": (lambda dt: nn.AvgPool2d(3, 2, 1), lambda t: t.nn.AvgPool2d(3, 2, 1),
                       (2, 2, 7, 8)),
    "avgpool_ceil": (lambda dt: nn.AvgPool2d(3, 2, 1, ceil_mode=True),
                     lambda t: t.nn.AvgPool2d(3, 2, 1, ceil_mode=True), (2, 2, 8, 7)),
    "avgpool_nopad_count": (lambda dt: nn.AvgPool2d((3, 2), (2, 3), (1, 1), ceil_mode=True,
                                                    count_include_pad=False),
                            lambda t: t.nn.AvgPool2d((3, 2), (2, 3), (1, 1), ceil_mode=True,
                                                     count_include_pad=False), (1, 2, 8, 9)),
    "avgpool_divisor": (lambda dt: nn.AvgPool2d(2, 1, 1, divisor_override=3),
                        lambda t: t.nn.AvgPool2d(2, 1, 1, divisor_override=3), (2, 2, 4, 5)),
    "avgpool_overlap": (lambda dt: nn.AvgPool2d(3, 1), lambda t: t.nn.AvgPool2d(3, 1),
                        (1, 2, 5, 6)),
    "adaptive_1": (lambda dt: nn.AdaptiveAvgPool2d(1), lambda t: t.nn.AdaptiveAvgPool2d(1),
                   (2, 3, 5, 7)),
    "adaptive_3x4_of_7x9": (lambda dt: nn.AdaptiveAvgPool2d((3, 4)),
                            lambda t: t.nn.AdaptiveAvgPool2d((3, 4)), (2, 2, 7, 9)),
    "adaptive_none_2": (lambda dt: nn.AdaptiveAvgPool2d((None, 2)),
                        lambda t: t.nn.AdaptiveAvgPool2d((None, 2)), (1, 2, 3, 5)),
    "adaptive_upsample": (lambda dt: nn.AdaptiveAvgPool2d(5),
                          lambda t: t.nn.AdaptiveAvgPool2d(5), (1, 2, 3, 4)),
    "sigmoid": (lambda dt: nn.Sigmoid(), lambda t: t.nn.Sigmoid(), (3, 4, 2)),
    "softmax_dim1": (lambda dt: nn.Softmax(dim=1), lambda t: t.nn.Softmax(dim=1), (4, 5)),
    "softmax_dim-1_4d": (lambda dt: nn.Softmax(dim=-1), lambda t: t.nn.Softmax(dim=-1),
                         (2, 3, 2, 4)),
    "softmax_dim0": (lambda dt: nn.Softmax(dim=0), lambda t: t.nn.Softmax(dim=0), (3, 4)),
    "dropout_eval": (lambda dt: nn.Dropout(0.3).eval(), lambda t: t.nn.Dropout(0.3).eval(),
                     (2, 3, 4)),
    "dropout_p0": (lambda dt: nn.Dropout(0.0), lambda t: t.nn.Dropout(0.0), (2, 3, 4)),
    "sequential": (lambda dt: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=dt, rng=_rng()),
                                            nn.BatchNorm2d(3, dtype=dt), nn.ReLU(),
                                            nn.MaxPool2d(2), nn.Flatten(),
                                            nn.Linear(12, 4, dtype=dt, rng=_rng(1))),
                   lambda t: t.nn.Sequential(t.nn.Conv2d(2, 3, 3, padding=1),
                                             t.nn.BatchNorm2d(3), t.nn.ReLU(),
                                             t.nn.MaxPool2d(2), t.nn.Flatten(),
                                             t.nn.Linear(12, 4)), (3, 2, 4, 4)),
    "residual_identity": (lambda dt: residual_block(dt, shortcut=False),
                          lambda t: torch_residual(t, t.nn.Sequential(
                              t.nn.Conv2d(3, 3, 3, padding=1), t.nn.ReLU())), (2, 3, 4, 5)),
    "residual_shortcut": (lambda dt: residual_block(dt, shortcut=True),
                          lambda t: torch_residual(t, t.nn.Sequential(
                              t.nn.Conv2d(3, 4, 3, padding=1), t.nn.ReLU(),
                              t.nn.Conv2d(4, 4, 3, padding=1)), t.nn.Conv2d(3, 4, 1)),
                          (2, 3, 4, 5)),
}

# Kinks (ReLU at 0, max-pool ties) are avoided by the random inputs; finite differences
# need a few hundred forward passes per case, so the shapes stay small.
FD_CASES = list(LAYER_CASES)


def _make(case, dtype):
    ours, _, shape = LAYER_CASES[case]
    layer = ours(dtype)
    layer.input_requires_grad = True  # containers return the input gradient too
    return layer, shape


# ---------------------------------------------------------------------------
# Finite differences (float64, no PyTorch)
# ---------------------------------------------------------------------------

def fd_check_layer(layer, x, seed=1, atol=1e-6, rtol=1e-5):
    """backward(gout) of ``sum(layer(x) * gout)`` against central differences, for the
    input and every trainable parameter."""
    gout = randn(layer(x).shape, seed)
    layer.zero_grad()
    layer(x)
    gx = layer.backward(gout)

    def loss_x(a):
        return np.sum(layer(a) * gout)

    np.testing.assert_allclose(gx, numerical_grad(loss_x, x), atol=atol, rtol=rtol,
                               err_msg="input gradient")
    for name, p in layer.named_parameters():
        if not p.requires_grad:
            continue

        def loss_p(a, p=p):
            old, p.data = p.data, a
            try:
                return np.sum(layer(x) * gout)
            finally:
                p.data = old

        np.testing.assert_allclose(p.grad, numerical_grad(loss_p, p.data), atol=atol,
                                   rtol=rtol, err_msg=f"gradient of {name}")


@pytest.mark.parametrize("case", FD_CASES)
def test_layer_finite_differences(case):
    layer, shape = _make(case, np.float64)
    fd_check_layer(layer, randn(shape, seed=0))


def test_dropout_finite_differences():
    """With the generator reseeded before every forward, the mask is fixed."""
    layer = nn.Dropout(0.4)
    x = randn((3, 4, 5))
    gout = randn(x.shape, 1)

    def run(a):
        layer.rng = np.random.default_rng(5)
        return layer(a)

    run(x)
    gx = layer.backward(gout)
    np.testing.assert_allclose(gx, numerical_grad(lambda a: np.sum(run(a) * gout), x),
                               atol=1e-7)


def test_batchnorm_fd_through_bn_with_frozen_affine():
    """freeze_bn-style layer in train mode: batch statistics, params frozen."""
    bn = with_stats(nn.BatchNorm2d(3, dtype=np.float64))
    nn.freeze(bn)
    x = randn((2, 3, 3, 3))
    fd_check_layer(bn, x)
    assert bn.weight.grad is None and bn.bias.grad is None


# ---------------------------------------------------------------------------
# PyTorch, same parameters: outputs, gradients, buffers
# ---------------------------------------------------------------------------

def to_torch_layer(torch, layer, theirs, dtype):
    tl = theirs(torch).to(torch.float64 if dtype == np.float64 else torch.float32)
    tl.train(layer.training)
    for ours_m, torch_m in zip(layer.modules(), tl.modules()):
        torch_m.train(ours_m.training)
    state = {k: torch.from_numpy(np.array(v)) for k, v in layer.state_dict().items()}
    tl.load_state_dict(state, strict=True)
    return tl


def compare_with_torch(layer, tl, x, dtype, tol=None, seed=1):
    import torch

    tol = tol or TOL[dtype]
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = tl(tx)
    y = layer(x)
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol, err_msg="forward")
    g = randn(y.shape, seed, dtype)
    ty.backward(torch.from_numpy(g))
    gx = layer.backward(g)
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx, tx.grad.numpy(), **tol, err_msg="input gradient")
    theirs = dict(tl.named_parameters())
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, theirs[name].grad.numpy(), **tol,
                                   err_msg=f"gradient of {name}")
        assert p.grad.dtype == dtype
    tstate = tl.state_dict()
    for name, b in layer.named_buffers():
        np.testing.assert_allclose(b, tstate[name].numpy(), **tol, err_msg=f"buffer {name}")


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_layer_against_torch(case, dtype):
    torch = pytest.importorskip("torch")
    layer, shape = _make(case, dtype)
    tl = to_torch_layer(torch, layer, LAYER_CASES[case][1], dtype)
    compare_with_torch(layer, tl, randn(shape, 0, dtype), dtype)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorm_same_bits_for_any_thread_count(mode):
    """Each channel is one work item summed in a fixed order, and backward forms x_hat
    from the kept input the same way every time: output, input gradient and parameter
    gradients agree bit for bit on 1, 2 and 3 threads (a batch big enough for a team),
    and the input is left as it was."""
    import fastconv
    x = randn((16, 8, 64, 64), seed=1, dtype=np.float32, scale=3.0) + np.float32(2.0)
    g = randn(x.shape, seed=2, dtype=np.float32)
    x0 = x.copy()
    results = []
    try:
        for nt in (1, 2, 3):
            fastconv.set_num_threads(nt)
            bn = with_stats(nn.BatchNorm2d(8))
            if mode == "eval":
                bn.eval()
            out = bn(x)
            gx = bn.backward(g)
            results.append((out, gx, bn.weight.grad.copy(), bn.bias.grad.copy()))
    finally:
        fastconv.set_num_threads(None)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, x0)
    # and they are the batch-norm gradients: dL/dweight = sum g * x_hat per channel
    xd = x.astype(np.float64)
    if mode == "train":
        mean, var = xd.mean(axis=(0, 2, 3)), xd.var(axis=(0, 2, 3))
    else:
        mean, var = bn.running_mean.astype(np.float64), bn.running_var.astype(np.float64)
    xhat = (xd - mean[:, None, None]) / np.sqrt(var[:, None, None] + bn.eps)
    want = (g.astype(np.float64) * xhat).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(results[0][2], want, rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("hw", [(7, 9), (28, 28), (14, 14), (1, 33)], ids=str)
def test_batchnorm_planes_with_a_partial_block_of_lanes(hw):
    """Each plane is summed in blocks of 32 interleaved partial sums, and its last
    HW % 32 values go into the first lanes: planes of 63, 784, 196 and 33 values (a
    whole block and a part) give the batch statistics, the output and every gradient of
    the float64 formulas, train mode, at 1 and 2 threads."""
    import fastconv
    x = randn((3, 5) + hw, seed=3, dtype=np.float32, scale=2.0) + np.float32(1.5)
    g = randn(x.shape, seed=4, dtype=np.float32)
    xd, gd = x.astype(np.float64), g.astype(np.float64)
    axes = (0, 2, 3)
    mean, var = xd.mean(axis=axes), xd.var(axis=axes)
    try:
        for nt in (1, 2):
            fastconv.set_num_threads(nt)
            bn = with_stats(nn.BatchNorm2d(5), seed=nt)
            w = bn.weight.data.astype(np.float64)[:, None, None]
            b = bn.bias.data.astype(np.float64)[:, None, None]
            rm0 = bn.running_mean.copy()
            out = bn(x)
            gx = bn.backward(g)
            invstd = 1 / np.sqrt(var + bn.eps)[:, None, None]
            xhat = (xd - mean[:, None, None]) * invstd
            np.testing.assert_allclose(out, w * xhat + b, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(bn.running_mean, 0.9 * rm0 + 0.1 * mean, rtol=1e-6)
            db, dw = gd.sum(axis=axes), (gd * xhat).sum(axis=axes)
            np.testing.assert_allclose(bn.bias.grad, db, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(bn.weight.grad, dw, rtol=1e-5, atol=1e-4)
            n = x.size / x.shape[1]
            want = w * invstd * (gd - (db / n)[:, None, None] - xhat * (dw / n)[:, None, None])
            np.testing.assert_allclose(gx, want, rtol=1e-4, atol=1e-5)
    finally:
        fastconv.set_num_threads(None)


@pytest.mark.parametrize("momentum", [0.1, 0.7, None], ids=["m0.1", "m0.7", "cma"])
def test_batchnorm_running_stats_over_batches(momentum):
    """Several training batches then eval: running statistics (unbiased variance,
    momentum or cumulative average), num_batches_tracked and eval outputs as PyTorch."""
    torch = pytest.importorskip("torch")
    bn = nn.BatchNorm2d(5, momentum=momentum)
    tb = torch.nn.BatchNorm2d(5, momentum=momentum)
    for step in range(4):
        x = randn((3, 5, 4, 4), step, np.float32, scale=step + 1) + step
        y, ty = bn(x), tb(torch.from_numpy(x))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.dtype == np.int64
    assert int(bn.num_batches_tracked) == int(tb.num_batches_tracked) == 4
    np.testing.assert_allclose(bn.running_mean, tb.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var, tb.running_var.numpy(), rtol=1e-5, atol=1e-6)
    assert bn.running_mean.dtype == np.float32
    bn.eval(), tb.eval()
    x = randn((2, 5, 3, 3), 9, np.float32)
    np.testing.assert_allclose(bn(x), tb(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)


def test_batchnorm_unbiased_running_var_by_hand():
    bn = nn.BatchNorm2d(2, momentum=1.0, dtype=np.float64)
    x = randn((3, 2, 2, 2))
    bn(x)
    per_channel = x.transpose(1, 0, 2, 3).reshape(2, -1)
    np.testing.assert_allclose(bn.running_var, per_channel.var(1, ddof=1))
    np.testing.assert_allclose(bn.running_mean, x.mean((0, 2, 3)))
    out = bn(x)  # train mode: the batch's biased variance
    np.testing.assert_allclose(out.mean((0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var((0, 2, 3)), 1 / (1 + 1e-5 / x.var((0, 2, 3))), rtol=1e-9)


def test_batchnorm_eval_does_not_touch_stats_and_no_grad_does_in_train():
    bn = with_stats(nn.BatchNorm2d(3))
    before = {k: v.copy() for k, v in bn.state_dict().items()}
    bn.eval()
    bn(randn((2, 3, 4, 4), dtype=np.float32))
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    bn.train()
    with nn.no_grad():  # as torch: no_grad does not stop the running-statistics update
        bn(randn((2, 3, 4, 4), dtype=np.float32))
    assert int(bn.num_batches_tracked) == 6


def test_batchnorm_float32_large_offset():
    """Statistics in float64: a large common offset does not ruin the variance."""
    bn = nn.BatchNorm2d(2)
    x = (1000 + randn((8, 2, 6, 6), 3)).astype(np.float32)
    out = bn(x).astype(np.float64)
    np.testing.assert_allclose(out.var((0, 2, 3)), 1, rtol=1e-3)


# ---------------------------------------------------------------------------
# Average pooling against plain loops (no PyTorch)
# ---------------------------------------------------------------------------

def avg_pool_loops(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """PyTorch's avg_pool2d, one window at a time."""
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = k, s, p

    def out_size(n, kk, ss, pp):
        o = (math.ceil if ceil_mode else math.floor)((n + 2 * pp - kk) / ss) + 1
        if ceil_mode and (o - 1) * ss >= n + pp:
            o -= 1
        return o

    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    out = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * SH - PH, ow * SW - PW
            h1, w1 = min(h0 + KH, H + PH), min(w0 + KW, W + PW)
            size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = size
            else:
                div = (h1 - h0) * (w1 - w0)
            out[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].sum((2, 3)) / div
    return out


def adaptive_loops(x, OH, OW):
    N, C, H, W = x.shape
    out = np.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            h0, h1 = (i * H) // OH, -(-((i + 1) * H) // OH)
            w0, w1 = (j * W) // OW, -(-((j + 1) * W) // OW)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean((2, 3))
    return out


AVG_GRID = [
    ((2, 2), (2, 2), (0, 0), False, True, None, (6, 7)),
    ((3, 3), (2, 2), (1, 1), False, True, None, (7, 8)),
    ((3, 3), (2, 2), (1, 1), True, True, None, (8, 7)),
    ((3, 3), (2, 2), (1, 1), True, False, None, (8, 7)),
    ((3, 2), (2, 3), (1, 1), True, False, None, (8, 9)),
    ((2, 3), (1, 2), (1, 0), True, True, None, (5, 6)),
    ((4, 4), (3, 3), (2, 2), True, True, None, (9, 10)),
    ((2, 2), (1, 1), (1, 1), False, True, 3, (4, 5)),
    ((5, 5), (1, 1), (2, 2), False, False, None, (3, 3)),
    ((1, 1), (2, 2), (0, 0), True, True, None, (5, 5)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("k,s,p,ceil,cip,div,hw", AVG_GRID, ids=[
    f"k{k[0]}x{k[1]}s{s[0]}x{s[1]}p{p[0]}x{p[1]}{'-ceil' if c else ''}{'' if i else '-nopad'}"
    f"{f'-div{d}' if d else ''}-{h}x{w}" for k, s, p, c, i, d, (h, w) in AVG_GRID])
def test_avgpool_against_loops(k, s, p, ceil, cip, div, hw, dtype):
    x = randn((2, 3) + hw, 0, dtype)
    layer = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div)
    out = layer(x)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, avg_pool_loops(x, k, s, p, ceil, cip, div), **TOL[dtype])
    if dtype == np.float64:  # backward by finite differences of the loop reference
        g = randn(out.shape, 1)
        gx = layer.backward(g)
        num = numerical_grad(
            lambda a: np.sum(avg_pool_loops(a, k, s, p, ceil, cip, div) * g), x)
        np.testing.assert_allclose(gx, num, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("out,hw", [((1, 1), (5, 7)), ((3, 4), (7, 9)), ((2, 5), (5, 5)),
                                    ((4, 3), (4, 3)), ((5, 6), (3, 4)), ((3, 1), (10, 1))])
def test_adaptive_avgpool_against_loops(out, hw, dtype):
    x = randn((2, 3) + hw, 0, dtype)
    layer = nn.AdaptiveAvgPool2d(out)
    y = layer(x)
    assert y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_allclose(y, adaptive_loops(x, *out), **TOL[dtype])
    gx = layer.backward(randn(y.shape, 1, dtype))
    assert gx.shape == x.shape and gx.dtype == dtype and gx.flags.c_contiguous
    # adjoint: <pool(x), g> == <x, pool_backward(g)> for this linear map
    g = randn(y.shape, 1, dtype)
    np.testing.assert_allclose(np.sum(y * g, dtype=np.float64), np.sum(x * gx, dtype=np.float64),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_adaptive_output_size_forms():
    x = randn((1, 2, 6, 4))
    assert nn.AdaptiveAvgPool2d(3)(x).shape == (1, 2, 3, 3)
    assert nn.AdaptiveAvgPool2d((None, 2))(x).shape == (1, 2, 6, 2)
    assert nn.AdaptiveAvgPool2d((5, None))(x).shape == (1, 2, 5, 4)
    assert nn.AdaptiveAvgPool2d(None)(x).shape == x.shape
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d((6, 4))(x), x, rtol=1e-14)


# ---------------------------------------------------------------------------
# Sigmoid, Softmax, Dropout specifics
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_sigmoid_extremes(dtype):
    x = np.array([-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4, np.nan, -np.inf, np.inf], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = nn.Sigmoid()(np.where(np.isnan(x), 0, x).astype(dtype))
    y[np.isnan(x)] = nn.Sigmoid()(x)[np.isnan(x)]
    want = np.array([0, 1 / (1 + math.exp(100)), 1 / (1 + math.exp(30)), 0.5,
                     1 / (1 + math.exp(-30)), 1, 1, np.nan, 0, 1])
    np.testing.assert_allclose(y, want.astype(dtype), rtol=1e-6, atol=np.finfo(dtype).tiny)
    assert y[1] == want[1] or dtype == np.float32  # relative accuracy far out (f64)
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(y, torch.sigmoid(torch.from_numpy(x)).numpy(), rtol=1e-6,
                               atol=np.finfo(dtype).tiny)


def test_softmax_stable_and_sums_to_one():
    x = np.array([[1000.0, 1001.0, 999.0], [-1e4, 0.0, 1e4]], np.float32)
    y = nn.Softmax(dim=1)(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(1), 1, rtol=1e-6)
    np.testing.assert_allclose(y[0], np.exp([1, 2, 0]) / np.exp([1, 2, 0]).sum(), rtol=1e-5)


def test_softmax_implicit_dim_warns_like_torch():
    torch = pytest.importorskip("torch")
    for shape in [(5,), (3, 4), (2, 3, 4), (2, 3, 2, 2)]:
        x = randn(shape, 0, np.float32)
        with pytest.warns(UserWarning, match="implicit dimension"):
            y = nn.Softmax()(x)
        with pytest.warns(UserWarning):
            ty = torch.nn.Softmax()(torch.from_numpy(x))
        np.testing.assert_allclose(y, ty.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_train_statistics_and_mask(p):
    x = randn((200, 500), 0, np.float32) + 3
    layer = nn.Dropout(p, rng=np.random.default_rng(0))
    y = layer(x)
    zero = y == 0
    assert abs(zero.mean() - p) < 4 * math.sqrt(p * (1 - p) / x.size)
    np.testing.assert_allclose(y[~zero], x[~zero] / (1 - p), rtol=1e-6)  # inverted scaling
    g = randn(x.shape, 1, np.float32)
    gx = layer.backward(g)
    assert (gx[zero] == 0).all()
    np.testing.assert_allclose(gx[~zero], g[~zero] / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(y.mean(), x.mean(), rtol=0.02)  # expectation kept


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_dropout_masks_same_for_any_thread_count_and_unpatterned(dtype):
    """Each element's draw comes from the call's key and the element's index: the same
    Generator state gives the same mask on 1, 2 and 3 threads (an array big enough for
    a team). The keep rate is 1 - p at every position modulo 64 (no lane or chunk
    pattern), neighbours are kept independently, and two calls draw different masks."""
    import fastconv
    p = 0.3
    x = randn((40, 16384), 2, dtype) + 3
    masks = []
    try:
        for nt in (1, 2, 3):
            fastconv.set_num_threads(nt)
            layer = nn.Dropout(p, rng=11)
            y = layer(x)
            masks.append(y != 0)
            np.testing.assert_array_equal(y[masks[-1]], (x * dtype(1 / (1 - p)))[masks[-1]])
    finally:
        fastconv.set_num_threads(None)
    for other in masks[1:]:
        np.testing.assert_array_equal(masks[0], other)
    keep = masks[0].reshape(-1)
    n = keep.size
    sigma = math.sqrt(p * (1 - p) / (n / 64))
    rates = keep.reshape(-1, 64).mean(axis=0)
    assert np.all(np.abs(rates - (1 - p)) < 5 * sigma), rates
    both = np.mean(keep[:-1] & keep[1:])
    assert abs(both - (1 - p) ** 2) < 5 * math.sqrt((1 - p) ** 2 / n)
    assert not np.array_equal(layer(x) != 0, masks[-1])


def test_dropout_seeded_and_modes():
    x = randn((4, 50), 0, np.float32)
    a = nn.Dropout(0.5, rng=np.random.default_rng(3))
    b = nn.Dropout(0.5, rng=3)
    ya, yb = a(x), b(x)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a(x), ya)  # a fresh mask every call
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), 0)
    a.eval()
    y = a(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    np.testing.assert_array_equal(a.backward(x), x)


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------

CE_CASES = {
    "mean": dict(),
    "sum": dict(reduction="sum"),
    "smooth": dict(label_smoothing=0.1),
    "weight": dict(weight=[0.5, 2.0, 1.0, 3.0, 0.2]),
    "weight_smooth_sum": dict(weight=[0.5, 2.0, 1.0, 3.0, 0.2], label_smoothing=0.3,
                              reduction="sum"),
    "ignore": dict(ignore_index=2),
    "ignore_weight_smooth": dict(ignore_index=-1, weight=[1.0, 2.0, 1.0, 3.0, 0.5],
                                 label_smoothing=0.2),
}
CE_TARGET = np.array([0, 4, 2, 1, 2, 3, 4])
CE_TARGET_IGNORE = np.array([0, 4, -1, 1, 2, -1, 4])


def _ce(kwargs):
    return nn.CrossEntropyLoss(**kwargs), (CE_TARGET_IGNORE if kwargs.get("ignore_index") == -1
                                           else CE_TARGET)


def _torch_ce(torch, kwargs):
    kw = dict(kwargs)
    if "weight" in kw:
        kw["weight"] = torch.tensor(kw["weight"], dtype=torch.float64)
    return torch.nn.CrossEntropyLoss(**kw)


@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy_finite_differences(case):
    loss, t = _ce(CE_CASES[case])
    x = randn((7, 5), 0, scale=2)
    loss(x, t)
    g = loss.backward()
    np.testing.assert_allclose(g, numerical_grad(lambda a: loss(a, t), x), atol=1e-7)
    loss(x, t)  # numerical_grad's last call perturbed x
    np.testing.assert_allclose(loss.backward(2.5), 2.5 * g)  # chained by a scalar
    np.testing.assert_array_equal(loss.backward(), g)  # backward twice: same answer


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy_against_torch(case, dtype):
    torch = pytest.importorskip("torch")
    loss, t = _ce(CE_CASES[case])
    x = randn((7, 5), 0, dtype, scale=2)
    value = loss(x, t)
    assert isinstance(value, float)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    tl = _torch_ce(torch, CE_CASES[case])(tx, torch.from_numpy(t))
    tl.backward()
    np.testing.assert_allclose(value, tl.item(), rtol=1e-6 if dtype == np.float32 else 1e-12)
    g = loss.backward()
    assert g.dtype == dtype and g.shape == x.shape
    np.testing.assert_allclose(g, tx.grad.numpy(), **TOL[dtype])


def test_cross_entropy_stable_and_fused_gradient():
    x = np.array([[1e4, 0.0, -1e4], [3.0, 3.0, 3.0], [-5e3, -5e3 + 1, -5e3 + 2]], np.float32)
    t = np.array([0, 1, 2])
    loss = nn.CrossEntropyLoss(reduction="sum")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v = loss(x, t)
    want = 0 + math.log(3) + math.log(1 + math.exp(-1) + math.exp(-2))
    assert math.isclose(v, want, rel_tol=1e-6)
    z = x.astype(np.float64) - x.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p[np.arange(3), t] -= 1  # softmax minus one-hot
    np.testing.assert_allclose(loss.backward(), p, atol=1e-7)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    loss = nn.CrossEntropyLoss(ignore_index=1)
    assert math.isnan(loss(randn((2, 3)), np.array([1, 1])))


@pytest.mark.parametrize("pos_weight", [None, [0.5, 2.0, 3.0]], ids=["plain", "pos_weight"])
@pytest.mark.parametrize("weight", [None, [[1.0, 0.5, 2.0]]], ids=["", "weight"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits(reduction, weight, pos_weight):
    x = randn((4, 3), 0, scale=3)
    t = (np.random.default_rng(1).random((4, 3)) > 0.5).astype(np.float64)
    t[0] = [0.2, 0.7, 1.0]  # soft targets too
    loss = nn.BCEWithLogitsLoss(weight, reduction=reduction, pos_weight=pos_weight)
    v = loss(x, t)
    np.testing.assert_allclose(loss.backward(), numerical_grad(lambda a: loss(a, t), x),
                               atol=1e-7)
    torch = pytest.importorskip("torch")
    tt = lambda a: None if a is None else torch.tensor(a, dtype=torch.float64)  # noqa: E731
    tx = torch.from_numpy(x).requires_grad_(True)
    tl = torch.nn.BCEWithLogitsLoss(tt(weight), reduction=reduction, pos_weight=tt(pos_weight))
    tv = tl(tx, torch.from_numpy(t))
    tv.backward()
    loss(x, t)
    np.testing.assert_allclose(v, tv.item(), rtol=1e-12)
    np.testing.assert_allclose(loss.backward(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_bce_with_logits_stable_float32_multilabel():
    torch = pytest.importorskip("torch")
    x = np.array([[1000.0, -1000.0, 50.0, -50.0, 0.0]], np.float32)
    t = np.array([[0, 1, 1, 0, 1]], np.float32)
    loss = nn.BCEWithLogitsLoss()
    with np.errstate(over="raise", invalid="raise"):
        v = loss(x, t)
    tx = torch.from_numpy(x).requires_grad_(True)
    tv = torch.nn.BCEWithLogitsLoss()(tx, torch.from_numpy(t))
    tv.backward()
    assert math.isfinite(v)
    np.testing.assert_allclose(v, tv.item(), rtol=1e-6)
    g = loss.backward()
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse(reduction, dtype):
    x, t = randn((3, 4, 2), 0, dtype), randn((3, 4, 2), 1, dtype)
    loss = nn.MSELoss(reduction)
    v = loss(x, t)
    want = np.sum((x.astype(np.float64) - t) ** 2) / (x.size if reduction == "mean" else 1)
    assert math.isclose(v, want, rel_tol=1e-12)
    g = loss.backward()
    assert g.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(g, numerical_grad(lambda a: loss(a, t), x), atol=1e-7)
    torch = pytest.importorskip("torch")
    tx = torch.from_numpy(x).requires_grad_(True)
    tv = torch.nn.MSELoss(reduction=reduction)(tx, torch.from_numpy(t))
    tv.backward()
    np.testing.assert_allclose(v, tv.item(), rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(g, tx.grad.numpy(), **TOL[dtype])


def test_losses_backward_needs_forward_and_no_grad():
    for loss, x, t in [(nn.CrossEntropyLoss(), randn((2, 3)), np.array([0, 2])),
                       (nn.BCEWithLogitsLoss(), randn((2, 3)), np.ones((2, 3))),
                       (nn.MSELoss(), randn((2, 3)), np.ones((2, 3)))]:
        with pytest.raises(RuntimeError, match="no forward pass"):
            loss.backward()
        loss(x, t)
        loss.backward()
        with nn.no_grad():
            assert isinstance(loss(x, t), float)
        with pytest.raises(RuntimeError, match="no forward pass"):
            loss.backward()


def test_loss_errors():
    ce = nn.CrossEntropyLoss()
    x = randn((3, 4), dtype=np.float32)
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        ce(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"target\[1\] = 4 is out of range for 4 classes"):
        ce(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"target\[2\] = -3"):
        ce(x, np.array([0, 1, -3]))
    with pytest.raises(ValueError, match=r"target must have shape \(3,\)"):
        ce(x, np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="input .* must be 2-D"):
        ce(x[None], np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="float32 or float64"):
        ce(x.astype(np.int32), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        nn.CrossEntropyLoss(weight=[1, 2, 3])(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    for cls in (nn.CrossEntropyLoss, nn.BCEWithLogitsLoss, nn.MSELoss):
        with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
            cls(reduction="none")
    with pytest.raises(ValueError, match=r"target has shape \(3, 3\), expected"):
        nn.BCEWithLogitsLoss()(x, np.ones((3, 3)))
    with pytest.raises(ValueError, match="pos_weight of shape"):
        nn.BCEWithLogitsLoss(pos_weight=[1.0, 2.0])(x, np.ones((3, 4)))
    with pytest.raises(TypeError, match="target must be a numeric array"):
        nn.MSELoss()(x, np.full((3, 4), "a"))
    with pytest.raises(ValueError, match="target has shape"):
        nn.MSELoss()(x, np.ones(4))
    loss = nn.MSELoss()
    loss(x, x)
    with pytest.raises(TypeError, match="grad_output must be a number"):
        loss.backward(np.ones(3))


# ---------------------------------------------------------------------------
# Initialisation as PyTorch's
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["conv", "conv_groups", "linear"])
def test_default_init_statistics(kind):
    if kind == "conv":
        make = lambda rng: nn.Conv2d(64, 128, 3, rng=rng)  # noqa: E731
        fan_in = 64 * 9
    elif kind == "conv_groups":
        make = lambda rng: nn.Conv2d(64, 256, 5, groups=4, rng=rng)  # noqa: E731
        fan_in = 16 * 25
    else:
        make = lambda rng: nn.Linear(1024, 512, rng=rng)  # noqa: E731
        fan_in = 1024
    bound = 1 / math.sqrt(fan_in)
    layer = make(np.random.default_rng(0))
    w, b = layer.weight.data, layer.bias.data
    assert w.dtype == b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # the whole interval is used
    assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.02
    assert abs(w.mean()) < 0.02 * bound
    # reproducible from a seed, different without one
    again = make(np.random.default_rng(0))
    np.testing.assert_array_equal(again.weight.data, w)
    np.testing.assert_array_equal(again.bias.data, b)
    assert not np.array_equal(make(None).weight.data, w)
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = {"conv": lambda: torch.nn.Conv2d(64, 128, 3),
              "conv_groups": lambda: torch.nn.Conv2d(64, 256, 5, groups=4),
              "linear": lambda: torch.nn.Linear(1024, 512)}[kind]()
    tw = theirs.weight.detach().numpy()
    assert tw.shape == w.shape
    assert np.abs(tw).max() <= bound * (1 + 1e-6)
    assert abs(tw.std() / w.std() - 1) < 0.03
    assert np.abs(theirs.bias.detach().numpy()).max() <= bound * (1 + 1e-6)


def test_batchnorm_init_and_float64():
    bn = nn.BatchNorm2d(3, dtype=np.float64)
    np.testing.assert_array_equal(bn.weight.data, 1)
    np.testing.assert_array_equal(bn.bias.data, 0)
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    assert bn.weight.dtype == bn.running_var.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    bn2 = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    assert bn2.weight is None and bn2.bias is None and bn2.running_mean is None
    assert list(bn2.state_dict()) == [] and list(bn2.parameters()) == []
    bn(randn((2, 3, 2, 2)))
    bn.reset_parameters()
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(bn.running_mean, 0)


# ---------------------------------------------------------------------------
# input_requires_grad, backward without forward, validation
# ---------------------------------------------------------------------------

NO_PARAM_LAYERS = {
    "relu": (nn.ReLU, (2, 3, 4, 4)), "sigmoid": (nn.Sigmoid, (2, 3)),
    "softmax": (lambda: nn.Softmax(1), (2, 3)), "dropout": (nn.Dropout, (2, 3)),
    "maxpool": (lambda: nn.MaxPool2d(2), (1, 2, 4, 4)),
    "avgpool": (lambda: nn.AvgPool2d(2), (1, 2, 4, 4)),
    "adaptive": (lambda: nn.AdaptiveAvgPool2d(1), (1, 2, 4, 4)),
    "flatten": (nn.Flatten, (2, 3, 4)),
    "bn": (lambda: nn.BatchNorm2d(2), (2, 2, 3, 3)),
}


@pytest.mark.parametrize("name", list(NO_PARAM_LAYERS))
def test_skip_input_grad_and_backward_needs_forward(name):
    make, shape = NO_PARAM_LAYERS[name]
    layer = make()
    x = randn(shape, 0, np.float32)
    with pytest.raises(RuntimeError, match="no forward pass"):
        layer.backward(x)
    if name != "flatten":  # Flatten keeps its shape even under no_grad (reported)
        with nn.no_grad():
            layer(x)
        with pytest.raises(RuntimeError, match="no forward pass"):
            layer.backward(np.ones_like(x))
    y = layer(x)
    layer.input_requires_grad = False
    assert layer.backward(np.ones_like(y)) is None
    if name == "bn":  # parameter gradients still accumulate
        np.testing.assert_allclose(layer.bias.grad, np.prod(y.shape) / 2)
    layer.input_requires_grad = None  # a lone layer: returns it
    assert layer.backward(np.ones_like(y)).shape == x.shape


def test_batchnorm_gradients_accumulate_and_frozen_skip():
    bn = with_stats(nn.BatchNorm2d(2, dtype=np.float64))
    x, g = randn((2, 2, 3, 3)), randn((2, 2, 3, 3), 1)
    bn(x)
    bn.backward(g)
    w1 = bn.weight.grad.copy()
    bn.backward(g)
    np.testing.assert_allclose(bn.weight.grad, 2 * w1)
    bn.zero_grad()
    bn.weight.requires_grad = False
    gx = bn.backward(g)
    assert bn.weight.grad is None and bn.bias.grad is not None and gx is not None
    # eval mode with a frozen weight keeps no x_hat; its outputs and input gradient agree
    bn.eval()
    y_frozen = bn(x)
    gx_frozen = bn.backward(g)
    bn.weight.requires_grad = True
    with pytest.raises(RuntimeError, match="turned on after the forward pass"):
        bn.backward(g)
    np.testing.assert_allclose(bn(x), y_frozen, rtol=1e-14)
    np.testing.assert_allclose(bn.backward(g), gx_frozen, rtol=1e-14)
    with nn.no_grad():
        np.testing.assert_allclose(bn(x), y_frozen, rtol=1e-14)


def test_layer_validation_errors():
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match="momentum must be None or a number in"):
        nn.BatchNorm2d(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps must be a non-negative number"):
        nn.BatchNorm2d(3, eps=-1)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.BatchNorm2d(3, dtype=np.int32)
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="input has 4 channels .* expected num_features=3"):
        bn(np.zeros((2, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="must be 4-D"):
        bn(np.zeros((2, 3, 3), np.float32))
    with pytest.raises(TypeError, match="does not match the layer's dtype"):
        bn(np.zeros((2, 3, 3, 3), np.float64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        bn([[1.0]])
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(np.zeros((1, 3, 1, 1), np.float32))
    bn(np.ones((2, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"grad_output has shape \(1,\)"):
        bn.backward(np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="padding=2 must be at most half of kernel_size=3"):
        nn.AvgPool2d(3, padding=2)
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        nn.AvgPool2d(0)
    with pytest.raises(TypeError, match="kernel_size"):
        nn.AvgPool2d(2.5)
    with pytest.raises(ValueError, match="divisor_override must be non-zero"):
        nn.AvgPool2d(2, divisor_override=0)
    with pytest.raises(ValueError, match="empty output"):
        nn.AvgPool2d(5)(np.zeros((1, 1, 3, 8), np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.AvgPool2d(2)(np.zeros((1, 1, 4, 4), np.int64))
    with pytest.raises(ValueError, match="output_size must be positive"):
        nn.AdaptiveAvgPool2d((0, 2))
    with pytest.raises(ValueError, match="output_size must be an int or a pair"):
        nn.AdaptiveAvgPool2d((1, 2, 3))
    with pytest.raises(TypeError, match="output_size"):
        nn.AdaptiveAvgPool2d(1.5)
    for p in (-0.1, 1.1, "a", True):
        with pytest.raises(ValueError, match="p .* must be a number between 0 and 1"):
            nn.Dropout(p)
    with pytest.raises(TypeError, match="rng must be"):
        nn.Dropout(0.5, rng="seed")
    with pytest.raises(TypeError, match="dim must be an int"):
        nn.Softmax(dim=1.0)
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        nn.Softmax(dim=2)(np.zeros((2, 3)))


def test_reprs():
    assert repr(nn.BatchNorm2d(8)) == "BatchNorm2d(8)"
    assert repr(nn.BatchNorm2d(8, eps=1e-3, momentum=None, affine=False)) == \
        "BatchNorm2d(8, eps=0.001, momentum=None, affine=False)"
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=(2, 2))"
    assert repr(nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)) == \
        "AvgPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True, " \
        "count_include_pad=False)"
    assert repr(nn.AdaptiveAvgPool2d(1)) == "AdaptiveAvgPool2d(output_size=1)"
    assert repr(nn.AdaptiveAvgPool2d((None, 3))) == "AdaptiveAvgPool2d(output_size=(None, 3))"
    assert repr(nn.Dropout()) == "Dropout()" and repr(nn.Dropout(0.2)) == "Dropout(p=0.2)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)" and repr(nn.Sigmoid()) == "Sigmoid()"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1)) == \
        "CrossEntropyLoss(reduction='sum', label_smoothing=0.1)"
    assert repr(nn.MSELoss("sum")) == "MSELoss(reduction='sum')"
    assert repr(nn.Conv2d(1, 8, 3, padding=1)) == "Conv2d(1, 8, kernel_size=(3, 3), padding=(1, 1))"
    assert repr(nn.Linear(4, 2, bias=False)) == "Linear(in_features=4, out_features=2, bias=False)"


def test_all_exports():
    import fastconv.nn as m

    for name in m.__all__:
        assert hasattr(m, name), name
    for name in ("BatchNorm2d", "AvgPool2d", "AdaptiveAvgPool2d", "Sigmoid", "Softmax",
                 "Dropout", "CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss", "freeze",
                 "unfreeze", "freeze_bn"):
        assert name in m.__all__
