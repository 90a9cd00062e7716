"""Containers: Sequential and Residual."""
from collections import OrderedDict

from .module import Module

__all__ = ["Sequential", "Residual"]


def _trainable(module):
    return any(p.requires_grad for p in module.parameters())


class Sequential(Module):
    """Modules applied in order, as ``torch.nn.Sequential``; children are named
    ``0``, ``1``, ... (or by the keys of an OrderedDict).

    ``backward`` runs the children backwards. A child whose input depends on no
    trainable parameter (the first layer, or one after frozen layers) is told so and
    skips its input gradient; the pass stops there.

    Examples
    --------
    >>> from fastconv import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            modules = modules[0].items()
        else:
            modules = ((str(i), m) for i, m in enumerate(modules))
        for name, module in modules:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: {name} must be a Module, got "
                                f"{type(module).__name__}")
            setattr(self, name, module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):  # keeps the children's names, as PyTorch
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[index]

    def append(self, module):
        setattr(self, str(len(self._modules)), module)
        return self

    def forward(self, x):
        flows = self._needs_input_grad()
        for module in self._modules.values():
            module.input_requires_grad = flows
            x = module(x)
            flows = flows or _trainable(module)
        return x

    def backward(self, grad_output):
        grad = grad_output
        for module in reversed(self._modules.values()):
            grad = module.backward(grad)
            if grad is None:
                return None
        return grad


class Residual(Module):
    """``block(x) + shortcut(x)``, the ResNet building block; ``shortcut`` defaults
    to the identity.

    Parameters
    ----------
    block : Module
    shortcut : Module, optional
        For example a 1x1 strided convolution when the block changes the shape.
    """

    def __init__(self, block, shortcut=None):
        super().__init__()
        self.block = block
        self.shortcut = shortcut

    def forward(self, x):
        needs = self._needs_input_grad()
        self.block.input_requires_grad = needs
        out = self.block(x)
        if self.shortcut is None:
            return out + x
        self.shortcut.input_requires_grad = needs
        return out + self.shortcut(x)

    def backward(self, grad_output):
        grad = self.block.backward(grad_output)
        other = grad_output if self.shortcut is None else self.shortcut.backward(grad_output)
        if not self._needs_input_grad():
            return None
        if grad is None:
            return other
        return grad + other if other is not None else grad
