"""Optimizers, learning-rate schedules and the learning-rate finder.

Shaped like tinygrad's ``optim.py`` and ``torch.optim``: an optimizer takes the
parameters (or parameter groups, each a dict with its own hyper-parameters, the
fast.ai course's per-layer-group learning rates), ``zero_grad()`` forgets the
gradients and ``step()`` updates every ``Parameter.data`` in place from its
``.grad``. Parameters whose ``grad`` is None or whose ``requires_grad`` is False
are left untouched.

The updates are PyTorch's (``torch.optim.SGD``, ``Adam``, ``AdamW``,
``lr_scheduler.OneCycleLR``, ``CosineAnnealingLR``) step for step, so a model
trained in both follows the same trajectory to rounding.

>>> from fastconv import nn, optim
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> opt = optim.SGD([{"params": model[0].parameters(), "lr": 0.01},
...                  {"params": model[2].parameters()}], lr=0.1, momentum=0.9)
>>> sched = optim.OneCycleLR(opt, max_lr=[0.01, 0.1], total_steps=100)
"""
import copy
import math
import numbers
from typing import NamedTuple

import numpy as np

from .nn.module import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "OneCycleLR",
           "CosineAnnealingLR", "LRFinderResult", "lr_find"]


# -- argument checks ------------------------------------------------------------------------
def _number(who, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a real number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{who}: {name} must not be NaN")
    return value


def _at_least(who, name, value, low=0.0):
    value = _number(who, name, value)
    if not value >= low:
        raise ValueError(f"{who}: {name} must be >= {low:g}, got {value!r}")
    return value


def _in_unit(who, name, value):
    """0 <= value < 1."""
    value = _number(who, name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{who}: {name} must be in [0, 1), got {value!r}")
    return value


def _positive_int(who, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
    return int(value)


# -- base class -----------------------------------------------------------------------------
class Optimizer:
    """Base of the optimizers: parameter groups, ``zero_grad``, ``step``, state.

    Parameters
    ----------
    params : iterable of Parameter, or iterable of dict
        Either the parameters themselves (one group) or parameter groups, dicts
        with a ``"params"`` entry and any hyper-parameters that differ from the
        defaults (``{"params": body.parameters(), "lr": 1e-4}``).
    defaults : dict
        Hyper-parameters of every group that does not set its own.

    Attributes
    ----------
    param_groups : list of dict
        One dict per group, ``"params"`` (a list) plus every hyper-parameter.
        Editable between steps (schedulers set ``"lr"`` there).
    state : dict
        Per-parameter state (momentum buffers, moments, step counts), keyed by the
        Parameter.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        if isinstance(params, (Parameter, np.ndarray, dict)):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters "
                            f"or of dicts, got a single {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a parameter group (a dict with ``"params"``; missing hyper-parameters come
        from the defaults), as when unfreezing a pretrained body with its own rate."""
        who = type(self).__name__
        if not isinstance(group, dict):
            raise TypeError(f"{who}: a parameter group must be a dict, got {type(group).__name__}")
        if "params" not in group:
            raise ValueError(f"{who}: a parameter group needs a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{who}: params must be Parameters, got {type(p).__name__}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{who}: a parameter appears twice in one group")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{who}: some parameters appear in more than one parameter group")
        new = dict(self.defaults)
        new.update(group)  # other keys (a name, say) are kept, as in PyTorch
        new["params"] = params
        self._check_group(new)
        self.param_groups.append(new)

    def _check_group(self, group):
        """Validate (and normalise) a group's hyper-parameters; subclasses override."""

    # -- training loop ----------------------------------------------------------------------
    def zero_grad(self):
        """Forget the gradient of every parameter (``grad = None``)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self, closure=None):
        """Update every parameter that has a gradient and requires one, in place.

        ``closure``, if given, is called first (it recomputes the loss and the
        gradients) and its value is returned, as in PyTorch.
        """
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or not p.requires_grad:
                    continue
                grad = p.grad
                if grad.shape != p.data.shape:
                    raise ValueError(f"{type(self).__name__}.step: a gradient of shape "
                                     f"{grad.shape} for a parameter of shape {p.data.shape}")
                if grad.dtype != p.data.dtype:
                    grad = grad.astype(p.data.dtype)
                self._update(p, grad, group, self.state.setdefault(p, {}))
        return loss

    def _update(self, p, grad, group, state):
        raise NotImplementedError(f"{type(self).__name__} has no update rule")

    # -- saving -----------------------------------------------------------------------------
    def state_dict(self):
        """A copy of the state and hyper-parameters, parameters named by their index in
        the order of ``param_groups`` (PyTorch's layout)."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` returned (same groups, same parameter shapes)."""
        who = f"{type(self).__name__}.load_state_dict"
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{who}: {len(groups)} parameter groups, expected "
                             f"{len(self.param_groups)}")
        params = []
        for i, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{who}: group {i} has {len(saved['params'])} parameters, "
                                 f"expected {len(group['params'])}")
            params.extend(group["params"])
        state = {}
        for key, entry in state_dict["state"].items():
            key = int(key)
            if not 0 <= key < len(params):
                raise ValueError(f"{who}: state for parameter {key}, but there are only "
                                 f"{len(params)}")
            p = params[key]
            loaded = {}
            for name, value in entry.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p.data.shape:
                        raise ValueError(f"{who}: state {key}.{name} has shape {value.shape}, "
                                         f"expected {p.data.shape}")
                    value = np.array(value, dtype=p.data.dtype)
                loaded[name] = value
            state[p] = loaded
        for saved, group in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = tuple(v) if isinstance(v, list) else v
        self.state = state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        return "\n".join(lines) + "\n)"


# -- SGD ------------------------------------------------------------------------------------
class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``
    (https://pytorch.org/docs/stable/generated/torch.optim.SGD.html).

    For each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p                       (if weight_decay)
        b = g                     on the first step    (if momentum)
        b = momentum * b + (1 - dampening) * g         afterwards
        g = g + momentum * b  if nesterov else  b
        p = p - lr * g

    Parameters
    ----------
    params : iterable of Parameter or of dict (parameter groups)
    lr : float >= 0
    momentum : float >= 0
    dampening : float
    weight_decay : float >= 0 (L2 penalty added to the gradient)
    nesterov : bool, needs momentum > 0 and dampening == 0
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_group(self, group):
        group["lr"] = _at_least("SGD", "lr", group["lr"])
        group["momentum"] = _at_least("SGD", "momentum", group["momentum"])
        group["dampening"] = _number("SGD", "dampening", group["dampening"])
        group["weight_decay"] = _at_least("SGD", "weight_decay", group["weight_decay"])
        group["nesterov"] = bool(group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov=True requires a momentum > 0 and zero dampening, got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def _update(self, p, grad, group, state):
        lr, momentum = group["lr"], group["momentum"]
        dampening, weight_decay = group["dampening"], group["weight_decay"]
        if weight_decay != 0:
            grad = grad + weight_decay * p.data           # L2 penalty; a new array, .grad is kept
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()  # first step: buffer = gradient
            else:
                buf *= momentum                           # decay the velocity
                buf += (1 - dampening) * grad             # and add the (dampened) gradient
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= lr * grad                               # descend, in place


# -- Adam and AdamW -------------------------------------------------------------------------
class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (https://arxiv.org/abs/1412.6980); ``weight_decay`` is
    an L2 penalty added to the gradient. See :class:`AdamW` for decoupled decay.

    Parameters
    ----------
    params : iterable of Parameter or of dict (parameter groups)
    lr : float >= 0
    betas : (float, float), each in [0, 1): decay of the first and second moments
    eps : float >= 0, added to the denominator
    weight_decay : float >= 0
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _check_group(self, group):
        who = type(self).__name__
        group["lr"] = _at_least(who, "lr", group["lr"])
        group["eps"] = _at_least(who, "eps", group["eps"])
        group["weight_decay"] = _at_least(who, "weight_decay", group["weight_decay"])
        betas = group["betas"]
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"{who}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = (_in_unit(who, "betas[0]", betas[0]), _in_unit(who, "betas[1]", betas[1]))

    def _update(self, p, grad, group, state):
        # the shape of llm.c's gpt2_update, in PyTorch's order of operations
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)      # m, first moment
            state["exp_avg_sq"] = np.zeros_like(p.data)   # v, second moment
        m, v = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1                                # t, counted from 1
        t = state["step"]
        if weight_decay != 0:
            if self._decoupled:
                p.data *= 1 - lr * weight_decay           # AdamW: shrink the weights directly
            else:
                grad = grad + weight_decay * p.data       # Adam: L2 penalty in the gradient
        m += (1 - beta1) * (grad - m)                     # m = beta1*m + (1-beta1)*g (torch's lerp)
        v *= beta2                                        # v = beta2*v ...
        v += (1 - beta2) * grad * grad                    #     ... + (1-beta2)*g^2
        bias_correction1 = 1 - beta1 ** t                 # m_hat = m / bias_correction1
        bias_correction2 = 1 - beta2 ** t                 # v_hat = v / bias_correction2
        step_size = lr / bias_correction1                 # lr folded with m's correction
        denom = np.sqrt(v) / bias_correction2 ** 0.5      # sqrt(v_hat) ...
        denom += eps                                      #     ... + eps
        p.data -= step_size * (m / denom)                 # p -= lr * m_hat / (sqrt(v_hat) + eps)


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``
    (https://arxiv.org/abs/1711.05101): before each Adam step ``p *= 1 - lr*weight_decay``.
    Same parameters as :class:`Adam`; ``weight_decay`` defaults to 1e-2."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


# -- learning-rate schedules ----------------------------------------------------------------
def _per_group(who, name, optimizer, value):
    """One value per parameter group: a list/tuple of that length, or one for all."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{who}: {name} has {len(value)} values, but the optimizer has "
                             f"{n} parameter groups")
        return [_number(who, f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [_number(who, name, value)] * n


class LRScheduler:
    """Base of the schedules: ``step()`` after each optimizer step sets every group's
    ``"lr"``; ``get_last_lr()`` returns them. Construction applies step 0, as PyTorch.

    Each group's starting rate is saved as ``"initial_lr"`` in the group (``base_lrs``).
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be a fastconv.optim."
                            f"Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def get_lr(self):
        """The rates of every group at step ``last_epoch``."""
        raise NotImplementedError

    def step(self):
        """Advance one step and set the new rate in every parameter group."""
        self.last_epoch += 1
        lrs = [float(lr) for lr in self.get_lr()]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    def get_last_lr(self):
        """The rates the last :meth:`step` set, one per group."""
        return list(self._last_lr)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from each group's rate down to ``eta_min`` over ``T_max`` steps, as
    ``torch.optim.lr_scheduler.CosineAnnealingLR`` (its closed form; the schedule goes back
    up after ``T_max``, with period ``2*T_max``, as PyTorch's does):

    .. math:: lr_t = \eta_{min} + (lr_0 - \eta_{min}) (1 + \cos(\pi t / T_{max})) / 2
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = _number("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer)

    def get_lr(self):
        if self.last_epoch == 0:
            return list(self.base_lrs)
        cos = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base - self.eta_min) * cos / 2 for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The one-cycle policy (Smith, https://arxiv.org/abs/1708.07120; the fast.ai course's
    ``fit_one_cycle``), as ``torch.optim.lr_scheduler.OneCycleLR``: call ``step()`` after
    every batch, ``total_steps`` times in all.

    The rate warms up from ``max_lr/div_factor`` to ``max_lr`` over the first ``pct_start``
    of the steps, then anneals to ``max_lr/div_factor/final_div_factor``; with
    ``three_phase`` it first comes back down to the initial rate symmetrically. With
    ``cycle_momentum`` the momentum (SGD's ``momentum``, Adam's ``beta1``) moves the other
    way, between ``max_momentum`` and ``base_momentum`` (this switches momentum on for an
    SGD built without it, as in PyTorch).

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float or list of float (one per parameter group)
    total_steps : int, or None with ``epochs`` and ``steps_per_epoch``
    pct_start : float in [0, 1]
    anneal_strategy : {'cos', 'linear'}
    div_factor, final_div_factor : float > 0
    three_phase : bool
    cycle_momentum : bool
    base_momentum, max_momentum : float or list of float (one per group)

    The arguments after ``total_steps`` are keyword-only: PyTorch's positional order
    differs (``epochs`` comes fourth there), so positional use could silently mean
    something else.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, *, epochs=None,
                 steps_per_epoch=None, pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95):
        who = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{who}: optimizer must be a fastconv.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if total_steps is not None:
            self.total_steps = _positive_int(who, "total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int(who, "epochs", epochs)
                                * _positive_int(who, "steps_per_epoch", steps_per_epoch))
        else:
            raise ValueError(f"{who}: give total_steps, or epochs and steps_per_epoch")
        pct_start = _number(who, "pct_start", pct_start)
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"{who}: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{who}: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        div_factor = _number(who, "div_factor", div_factor)
        final_div_factor = _number(who, "final_div_factor", final_div_factor)
        for name, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            if not value > 0:
                raise ValueError(f"{who}: {name} must be > 0, got {value!r}")
        self.anneal_strategy = anneal_strategy
        n = self.total_steps
        if three_phase:
            self._phases = [
                (float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * n) - 2, "max_lr", "initial_lr", "base_momentum",
                 "max_momentum"),
                (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        max_lrs = _per_group(who, "max_lr", optimizer, max_lr)
        for i, lr in enumerate(max_lrs):
            if not lr >= 0:
                raise ValueError(f"{who}: max_lr must be >= 0, got {lr!r}")
        for group, lr in zip(optimizer.param_groups, max_lrs):
            group["initial_lr"] = lr / div_factor
            group["max_lr"] = lr
            group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            defaults = optimizer.defaults
            if "momentum" not in defaults and "betas" not in defaults:
                raise ValueError(f"{who}: cycle_momentum needs an optimizer with a momentum or "
                                 f"betas, not {type(optimizer).__name__}")
            self.use_beta1 = "betas" in defaults
            highs = _per_group(who, "max_momentum", optimizer, max_momentum)
            lows = _per_group(who, "base_momentum", optimizer, base_momentum)
            for group, high, low in zip(optimizer.param_groups, highs, lows):
                if self.use_beta1:
                    group["betas"] = (high,) + tuple(group["betas"][1:])
                else:
                    group["momentum"] = high
                group["max_momentum"] = high
                group["base_momentum"] = low
        super().__init__(optimizer)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times, but total_steps is "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr0, lr1, mom0, mom1) in enumerate(self._phases):
                if step <= end_step or i == len(self._phases) - 1:
                    # a phase of a single step (PyTorch divides by zero there) ends at once
                    span = end_step - start_step
                    pct = (step - start_step) / span if span != 0 else 1.0
                    lr = self._anneal(group[lr0], group[lr1], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[mom0], group[mom1], pct)
                    break
                start_step = end_step
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum,) + tuple(group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs


# -- learning-rate finder -------------------------------------------------------------------
class LRFinderResult(NamedTuple):
    """What :func:`lr_find` returns; unpacks as ``lrs, losses, suggestion``.

    lrs : ndarray, the rate of each recorded batch (rising geometrically from ``start``)
    losses : ndarray, the smoothed, bias-corrected loss of each of those batches
    suggestion : float, the rate where the smoothed loss falls fastest (steepest descent
        against log(lr)) before its minimum; see :attr:`lr_min` for the other rule of thumb.
    """

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float

    @property
    def lr_min(self):
        """One tenth of the rate at the minimum of the smoothed loss (fast.ai's other
        suggestion), never below the first rate tried."""
        if len(self.lrs) == 0:
            return float("nan")
        return float(max(self.lrs[0], self.lrs[int(np.argmin(self.losses))] / 10))


def _suggest(lrs, losses):
    """Steepest descent of the smoothed loss in log(lr), searched after the first tenth of
    the points (where the smoothing is still settling) and up to the minimum; lr_min when
    that leaves fewer than three points."""
    if len(lrs) == 0:
        return float("nan")
    result = LRFinderResult(lrs, losses, float("nan"))
    i_min = int(np.argmin(losses))
    skip = len(lrs) // 10
    if i_min - skip < 2:
        return result.lr_min
    segment = slice(skip, i_min + 1)
    slopes = np.gradient(losses[segment], np.log(lrs[segment]))
    return float(lrs[skip + int(np.argmin(slopes))])


def _cycle(batches, who):
    """Yield batches forever: iterate ``batches`` again (an iterable) or replay what an
    iterator gave (an iterator cannot be restarted)."""
    if iter(batches) is batches:
        seen = []
        for batch in batches:
            seen.append(batch)
            yield batch
        if not seen:
            raise ValueError(f"{who}: batches is empty")
        while True:
            yield from seen
    while True:
        count = 0
        for batch in batches:
            count += 1
            yield batch
        if count == 0:
            raise ValueError(f"{who}: batches is empty")


def lr_find(model, loss, batches, start=1e-7, end=10.0, steps=100, *, optimizer=None,
            smooth=0.98, diverge=4.0):
    """The fast.ai learning-rate finder (Smith's LR range test, as in Sylvain Gugger's
    "How do you find a good learning rate"): train for up to ``steps`` batches while the
    rate grows geometrically from ``start`` to ``end``, record the smoothed loss, then put
    the model (and the optimizer) back as they were.

    Batch ``i`` is trained at ``start * (end/start) ** (i / (steps-1))``, set in every
    parameter group. The loss is smoothed as fast.ai does, ``avg = smooth*avg +
    (1-smooth)*loss``, bias-corrected as ``avg / (1 - smooth**(i+1))``. The sweep stops
    early when a smoothed loss exceeds ``diverge`` times the best one (that point is
    recorded) or a loss is not finite (not recorded).

    Parameters
    ----------
    model : Module
        Trained in train mode; its parameters (in their own arrays), buffers (BatchNorm
        statistics), gradients, train/eval modes and the generators of random layers
        (Dropout) are restored afterwards, also when the sweep raises.
    loss : loss module
        ``loss.forward(logits, y)`` returns a float, ``loss.backward()`` the gradient of
        the logits (``nn.CrossEntropyLoss`` and the others).
    batches : iterable of (x, y)
        Reused from the beginning when shorter than ``steps``.
    start, end : float, 0 < start < end
    steps : int >= 2
    optimizer : Optimizer, optional
        Defaults to ``SGD(model.parameters(), momentum=0.9)``. Its state and rates are
        restored afterwards.
    smooth : float in [0, 1)
    diverge : float > 1

    Returns
    -------
    LRFinderResult
        ``(lrs, losses, suggestion)``: ``suggestion`` is the rate at the steepest descent
        of the smoothed loss against log(lr), before its minimum (``.lr_min`` gives one
        tenth of the rate at the minimum instead). Pick a rate near it, or a little below.

    Examples
    --------
    >>> lrs, losses, lr = lr_find(model, nn.CrossEntropyLoss(), train_batches)  # doctest: +SKIP
    """
    who = "lr_find"
    start = _number(who, "start", start)
    end = _number(who, "end", end)
    if not 0 < start < end or math.isinf(end):
        raise ValueError(f"{who}: need 0 < start < end < inf, got start={start!r}, end={end!r}")
    steps = _positive_int(who, "steps", steps)
    if steps < 2:
        raise ValueError(f"{who}: steps must be >= 2, got {steps}")
    smooth = _in_unit(who, "smooth", smooth)
    diverge = _number(who, "diverge", diverge)
    if not diverge > 1:
        raise ValueError(f"{who}: diverge must be > 1, got {diverge!r}")
    if optimizer is None:
        optimizer = SGD(model.parameters(), lr=start, momentum=0.9)
    elif not isinstance(optimizer, Optimizer):
        raise TypeError(f"{who}: optimizer must be a fastconv.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")

    # parameters are put back in their own arrays (views the caller holds stay valid)
    saved_params = [(p, p.data, p.data.copy()) for p in model.parameters()]
    saved_buffers = {name: np.array(b, copy=True) for name, b in model.named_buffers()}
    saved_opt = optimizer.state_dict()
    saved_grads = [(p, p.grad) for p in model.parameters()]
    saved_modes = [(m, m.training) for m in model.modules()]
    # random layers (Dropout) draw from their own generators: rewind them too, so that
    # training after the finder goes exactly as it would have without it
    saved_rngs = [(m.rng, copy.deepcopy(m.rng.bit_generator.state)) for m in model.modules()
                  if isinstance(getattr(m, "rng", None), np.random.Generator)]
    lrs, losses = [], []
    try:
        model.train()
        avg, best = 0.0, math.inf
        source = _cycle(batches, who)
        for i in range(steps):
            x, y = next(source)
            lr = start * (end / start) ** (i / (steps - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad()
            model.zero_grad()
            value = float(loss.forward(model(x), y))
            if not math.isfinite(value):
                break
            avg = smooth * avg + (1 - smooth) * value
            smoothed = avg / (1 - smooth ** (i + 1))
            lrs.append(lr)
            losses.append(smoothed)
            if smoothed > diverge * best:
                break
            best = min(best, smoothed)
            model.backward(loss.backward())
            optimizer.step()
    finally:
        for p, array, values in saved_params:
            np.copyto(array, values)
            p.data = array
        model.load_state_dict(saved_buffers, strict=False)
        optimizer.load_state_dict(saved_opt)
        for p, grad in saved_grads:
            p.grad = grad
        for m, mode in saved_modes:
            m.training = mode
        for rng, state in saved_rngs:
            rng.bit_generator.state = state
    lrs, losses = np.array(lrs, dtype=np.float64), np.array(losses, dtype=np.float64)
    return LRFinderResult(lrs, losses, _suggest(lrs, losses))
