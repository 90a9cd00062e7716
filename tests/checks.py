"""Helpers shared by the tests: random arrays of any dtype, the check that a call raises
the expected error while leaving every argument untouched, and the memory layouts
inputs may come in."""
import copy

import numpy as np
import pytest

F32 = np.float32


def arr(shape, dtype=F32, seed=0):
    """Deterministic test data of a shape and dtype (also non-float dtypes)."""
    rng = np.random.default_rng(seed)
    data = np.asarray(rng.standard_normal(shape) * 3)
    if np.dtype(dtype).kind == "c":
        data = data + 1j * data
    return np.array(data, dtype=dtype)


def snapshot(value):
    return copy.deepcopy(value)


def same_value(before, after):
    """Inputs unchanged: same type, and for arrays same dtype, shape and bytes."""
    if isinstance(before, np.ndarray):
        return (isinstance(after, np.ndarray) and before.dtype == after.dtype
                and before.shape == after.shape
                and (before.dtype == object and all(
                    a is b or a == b for a, b in zip(before.ravel(), after.ravel()))
                    or before.dtype != object and before.tobytes() == after.tobytes()))
    if isinstance(before, (list, tuple)):
        return (type(before) is type(after) and len(before) == len(after)
                and all(same_value(b, a) for b, a in zip(before, after)))
    return before == after


def raises_unmodified(exc, pattern, fn, *args, **kwargs):
    """Assert fn(*args, **kwargs) raises exc matching pattern and modifies no argument."""
    before = [snapshot(a) for a in args]
    kw_before = {k: snapshot(v) for k, v in kwargs.items()}
    with pytest.raises(exc, match=pattern) as info:
        fn(*args, **kwargs)
    for i, (b, a) in enumerate(zip(before, args)):
        assert same_value(b, a), f"positional argument {i} was modified"
    for k, b in kw_before.items():
        assert same_value(b, kwargs[k]), f"argument {k} was modified"
    return info


def transposed(a):
    """Same values, non-contiguous: 4-D stored channels-last (NHWC) and viewed as NCHW,
    2-D stored column-major, 1-D reversed in memory."""
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if a.ndim == 2:
        return np.asfortranarray(a)
    return a[::-1].copy()[::-1]


def sliced(a):
    """Same values, every axis strided by 2 inside a bigger buffer."""
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    view = big[(slice(None, None, 2),) * a.ndim]
    view[...] = a
    return view


def reversed_strides(a):
    """Same values, negative strides on every axis."""
    rev = (slice(None, None, -1),) * a.ndim
    return np.ascontiguousarray(a[rev])[rev]


def readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


# Ways to hand the same values to a function in memory it must not assume contiguous
# or writable.
LAYOUTS = {"transposed": transposed, "sliced": sliced, "reversed": reversed_strides,
           "readonly": readonly}


def poison(spots, where):
    """Writes one special value (inf, NaN, a huge number) in place: spots maps each name
    to (array, index, value), the index an element or a slice (``np.s_[...]``)."""
    a, at, value = spots[where]
    a[at] = value
