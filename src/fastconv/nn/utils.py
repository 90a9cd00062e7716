"""Training practice from the fast.ai course: freezing layers, or only BatchNorm."""
__all__ = ["freeze", "unfreeze", "freeze_bn"]


def freeze(module):
    """Stop training every parameter of ``module`` (``requires_grad = False``): no
    gradient is computed for them, and layers before them skip their input gradient
    when nothing trainable remains upstream. Returns the module."""
    for p in module.parameters():
        p.requires_grad = False
    return module


def unfreeze(module):
    """Train every parameter of ``module`` again and release BatchNorm layers pinned by
    :func:`freeze_bn` (they follow ``train()``/``eval()`` again). Returns the module."""
    for m in module.modules():
        m.__dict__.pop("_pinned_mode", None)
    for p in module.parameters():
        p.requires_grad = True
    return module


def freeze_bn(model):
    """Keep every BatchNorm layer of ``model`` in eval mode (running statistics used and
    not updated) with its affine parameters frozen, while the rest trains: a later
    ``model.train()`` leaves them in eval mode. Undo with :func:`unfreeze`. Returns the model."""
    from .batchnorm import BatchNorm2d

    for m in model.modules():
        if isinstance(m, BatchNorm2d):
            m.__dict__["_pinned_mode"] = False
            m.__dict__["training"] = False
            for p in m.parameters(recurse=False):
                p.requires_grad = False
    return model
