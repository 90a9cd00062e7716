"""Central finite differences in float64, for checking backward functions."""

import numpy as np


def numerical_grad(f, x, eps=1e-6):
    """Gradient of the scalar function ``f`` at ``x`` by central differences.

    ``(f(x + eps*e_i) - f(x - eps*e_i)) / (2*eps)`` for every element ``i``;
    ``x`` is copied to float64 and not modified.
    """
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        fp = float(f(x))
        flat[i] = orig - eps
        fm = float(f(x))
        flat[i] = orig
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def check_backward(forward, backward, inputs, seed=0, eps=1e-6, atol=1e-6, rtol=1e-5):
    """Check ``backward`` against finite differences of ``forward``.

    ``forward(*inputs)`` returns an array ``y``; ``backward(gout, *inputs)`` returns
    one gradient per input (``None`` to skip one). With a fixed random ``gout``,
    the loss ``sum(forward(*inputs) * gout)`` has gradients equal to ``backward``'s
    outputs; each is compared with :func:`numerical_grad` of that loss.
    """
    inputs = [np.asarray(a, dtype=np.float64) for a in inputs]
    gout = np.random.default_rng(seed).standard_normal(np.shape(forward(*inputs)))
    grads = backward(gout, *inputs)
    assert len(grads) == len(inputs), (len(grads), len(inputs))
    for k, analytic in enumerate(grads):
        if analytic is None:
            continue

        def loss(a, k=k):
            args = list(inputs)
            args[k] = a
            return np.sum(forward(*args) * gout)

        numeric = numerical_grad(loss, inputs[k], eps)
        np.testing.assert_allclose(analytic, numeric, atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {k}")
