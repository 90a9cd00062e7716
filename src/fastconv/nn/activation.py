"""Activations: ReLU (Sigmoid and Softmax live beside it)."""
from .. import functional as F
from .module import Module, is_grad_enabled

__all__ = ["ReLU"]


class ReLU(Module):
    """``max(x, 0)`` elementwise, as ``torch.nn.ReLU``; NaN stays NaN."""

    def forward(self, x):
        self._x = x if is_grad_enabled() else None
        return F.relu(x)

    def backward(self, grad_output):
        x = self._saved("_x")
        if not self._needs_input_grad():
            return None
        return F.relu_backward(grad_output, x)
