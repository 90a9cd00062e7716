"""Layers, containers and losses with a PyTorch-shaped API, on the fastconv kernels.

Each layer computes its own backward (no tape): ``out = model(x)``, then
``model.backward(grad)`` fills the ``.grad`` of every trainable Parameter.
Losses are called with two arrays, return a float, and ``loss.backward()`` gives the
gradient of the logits.
"""
from .activation import ReLU
from .avgpool import AdaptiveAvgPool2d, AvgPool2d
from .batchnorm import BatchNorm2d
from .container import Residual, Sequential
from .conv import Conv2d
from .linear import Flatten, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .misc import Dropout, Sigmoid, Softmax
from .module import Module, Parameter, is_grad_enabled, no_grad
from .pooling import MaxPool2d
from .utils import freeze, freeze_bn, unfreeze

__all__ = ["Module", "Parameter", "no_grad", "is_grad_enabled", "Sequential", "Residual",
           "Conv2d", "Linear", "Flatten", "ReLU", "Sigmoid", "Softmax", "Dropout",
           "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d",
           "CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss",
           "freeze", "unfreeze", "freeze_bn"]
