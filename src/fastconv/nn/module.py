"""Module and Parameter: the small base every layer builds on.

Layers compute their own backward: there is no tape. ``forward`` stores what
``backward`` needs (while gradients are enabled, see :func:`no_grad`);
``backward(grad_output)`` adds the gradients of the parameters into their
``.grad`` and returns the gradient of the input.
"""
import contextlib
from collections import OrderedDict

import numpy as np

__all__ = ["Parameter", "Module", "no_grad", "is_grad_enabled"]

_grad_enabled = True


def is_grad_enabled():
    """True unless inside :func:`no_grad`."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Forward passes inside keep nothing for backward (inference; as ``torch.no_grad``)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


class Parameter:
    """A trainable array: ``data``, its gradient ``grad`` (None until a backward pass)
    and ``requires_grad`` (False freezes it: no gradient is computed for it)."""

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data, requires_grad=True):
        self.data = np.ascontiguousarray(data)
        self.grad = None
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def accumulate_grad(self, grad):
        """grad += g (the first call after zero_grad stores g itself)."""
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.data.dtype, copy=True)
        else:
            self.grad += grad

    def __repr__(self):
        return (f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}, "
                f"requires_grad={self.requires_grad})")


class Module:
    """Base class of layers and containers, shaped like ``torch.nn.Module``.

    Parameters and sub-modules assigned as attributes are registered in order;
    ``register_buffer`` adds state that is saved but not trained (BatchNorm's
    running statistics). Names in ``state_dict`` follow PyTorch's (``0.weight``,
    ``1.running_mean``), so weights move between the two as NumPy arrays.

    ``input_requires_grad`` says whether ``backward`` must return the gradient of
    the input. Containers set it on their children during ``forward`` (a layer whose
    input comes only from data or frozen layers skips that work). Left unset, a
    layer used on its own returns it, and a container (a whole model, whose input
    is data) does not.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "input_requires_grad", None)

    # -- registration ---------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before assigning attributes")
        if name in self._buffers and (value is None or isinstance(value, np.ndarray)):
            self._buffers[name] = value  # a new value for a buffer stays a buffer
            object.__setattr__(self, name, value)
            return
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, array):
        """Keep ``array`` as saved, untrained state under ``name`` (None allowed)."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    # -- running ----------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def __call__(self, x):
        return self.forward(x)

    def _needs_input_grad(self):
        if self.input_requires_grad is None:
            return not self._modules  # a lone layer: yes; a container (a model): no
        return self.input_requires_grad

    def _weight_bias_needs(self):
        """(input, weight, bias) gradients a layer with ``weight`` and ``bias`` must compute."""
        bias = self.bias
        return (self._needs_input_grad(), self.weight.requires_grad,
                bias is not None and bias.requires_grad)

    def _add_weight_bias_grads(self, grad_weight, grad_bias):
        if grad_weight is not None:
            self.weight.accumulate_grad(grad_weight)
        if grad_bias is not None:
            self.bias.accumulate_grad(grad_bias)

    def _saved(self, name):
        """What forward stored for backward, or a clear error."""
        value = self.__dict__.get(name)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward: no forward pass to go back "
                               "through (call forward first, outside no_grad())")
        return value

    # -- traversal --------------------------------------------------------------------
    def children(self):
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def modules(self):
        yield self
        for child in self._modules.values():
            yield from child.modules()

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix="", recurse=True):
        seen = set()
        for mod_name, module in (self.named_modules(prefix) if recurse else [(prefix, self)]):
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix=""):
        for mod_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    # -- modes and gradients ------------------------------------------------------------
    def train(self, mode=True):
        """Training mode for this module and its descendants (``mode=False``: eval).
        A module pinned by :func:`fastconv.nn.freeze_bn` keeps its pinned mode."""
        for m in self.modules():
            pinned = m.__dict__.get("_pinned_mode")
            object.__setattr__(m, "training", bool(mode) if pinned is None else pinned)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        """Forget the gradients of every parameter (``grad = None``)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    # -- state --------------------------------------------------------------------------
    def _state_entries(self):
        """(dotted name, module, attribute, is_parameter) of every parameter and buffer,
        module by module, each module's parameters before its buffers (PyTorch's order;
        a module used twice appears under both names)."""
        def walk(module, prefix):
            for name, p in module._parameters.items():
                if p is not None:
                    yield prefix + name, module, name, True
            for name, b in module._buffers.items():
                if b is not None:
                    yield prefix + name, module, name, False
            for name, child in module._modules.items():
                yield from walk(child, f"{prefix}{name}.")
        return list(walk(self, ""))

    def state_dict(self):
        """Copies of every parameter and buffer, by PyTorch-style dotted name, in
        PyTorch's order."""
        state = OrderedDict()
        for key, module, name, is_param in self._state_entries():
            value = module._parameters[name].data if is_param else module._buffers[name]
            state[key] = np.array(value, copy=True)
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` (a mapping of name -> array-like, e.g. a converted
        PyTorch ``state_dict``) into the parameters and buffers.

        Values keep each target's dtype. With ``strict``, a missing or unexpected key
        is a KeyError naming it; a shape mismatch is always a ValueError naming it.
        Everything is checked before anything is copied, so a failed load changes
        nothing. Returns ``(missing_keys, unexpected_keys)``.
        """
        entries = self._state_entries()
        keys = {key for key, *_ in entries}
        missing = [key for key, *_ in entries if key not in state]
        unexpected = [k for k in state if k not in keys]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys "
                           f"{unexpected}")
        updates = []
        for key, module, name, is_param in entries:
            if key not in state:
                continue
            current = module._parameters[name].data if is_param else module._buffers[name]
            value = np.asarray(state[key])
            if value.shape != np.shape(current):
                raise ValueError(f"load_state_dict: {key} has shape {value.shape}, expected "
                                 f"{np.shape(current)}")
            updates.append((module, name, is_param,
                            np.array(value, dtype=np.asarray(current).dtype)))
        for module, name, is_param, value in updates:
            if is_param:
                module._parameters[name].data = value
            else:
                setattr(module, name, value)
        return missing, unexpected

    def save(self, path):
        """Write ``state_dict()`` to an ``.npz`` file."""
        np.savez(path, **self.state_dict())

    def load(self, path, strict=True):
        """Read an ``.npz`` written by :meth:`save` (or by hand) into this module."""
        with np.load(path) as data:
            return self.load_state_dict({k: data[k] for k in data.files}, strict=strict)

    # -- repr ---------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, child in self._modules.items():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {text}")
        return "\n".join(lines) + "\n)"
