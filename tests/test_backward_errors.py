"""Bad input to the backward functions: each case raises the documented exception type
with a message that names the function and the argument (and the value or what was
expected), and modifies none of its inputs.

DESIGN.md: "A bad argument is a Python TypeError/ValueError with a message that names
the argument, the value and what was expected; it is never a crash, a hang, a silent
wrong answer or a partially written output." Issue 3: "indices are validated before
any write (out of range or negative -> ValueError, nothing written)".
"""

import re

import numpy as np
import pytest

import fastconv
from checks import arr, raises_unmodified

F32, F64 = np.float32, np.float64
BAD_DTYPES = [np.int32, np.int64, np.uint8, np.float16, object, np.bool_, np.complex64]
BAD_DTYPE_IDS = ["int32", "int64", "uint8", "float16", "object", "bool", "complex64"]


# ----------------------------------------------------------------- helpers

def esc(value):
    return re.escape(str(value))


# Standard valid conv operands: x (2, 4, 6, 6), weight (6, 4, 3, 3) -> out (2, 6, 4, 4).
def X(dtype=F32):
    return arr((2, 4, 6, 6), dtype, 1)


def W(dtype=F32):
    return arr((6, 4, 3, 3), dtype, 2)


def GO(dtype=F32, shape=(2, 6, 4, 4)):
    return arr(shape, dtype, 3)


CB = "conv2d_backward"


def test_valid_operands_work():
    """The operands the error tests perturb are valid as they stand."""
    gx, gw, gb = fastconv.conv2d_backward(GO(), X(), W())
    assert gx.shape == (2, 4, 6, 6) and gw.shape == (6, 4, 3, 3) and gb.shape == (6,)


# ----------------------------------------------------------------- conv2d_backward: grad_out

@pytest.mark.parametrize("shape", [(2, 6, 3, 4), (2, 6, 4, 5), (3, 6, 4, 4), (2, 5, 4, 4),
                                   (1, 6, 4, 4), (2, 6, 6, 6)])
def test_conv2d_backward_grad_out_shape_mismatch(shape):
    raises_unmodified(ValueError, rf"{CB}: grad_out must have the forward output's shape "
                      rf"\(2, 6, 4, 4\) \(N, OC, OH, OW\), got {esc(shape)}",
                      fastconv.conv2d_backward, GO(shape=shape), X(), W())


@pytest.mark.parametrize("algo", ["im2col", "direct", "auto"])
@pytest.mark.parametrize("kwargs, expected, given", [
    ({"stride": 2}, (2, 6, 2, 2), (2, 6, 4, 4)),
    ({"stride": (1, 2)}, (2, 6, 4, 2), (2, 6, 4, 4)),
    ({"padding": 1}, (2, 6, 6, 6), (2, 6, 4, 4)),
    ({"padding": "same"}, (2, 6, 6, 6), (2, 6, 4, 4)),
    ({"padding": (2, 0), "dilation": (1, 2)}, (2, 6, 8, 2), (2, 6, 4, 4)),
    ({"dilation": 2}, (2, 6, 2, 2), (2, 6, 4, 4)),
    ({}, (2, 6, 4, 4), (2, 6, 6, 6)),  # the shape of padding='same', given without it
], ids=["stride", "stride_asym", "padding", "same", "pad_dil", "dilation", "valid"])
def test_conv2d_backward_grad_out_does_not_match_geometry(kwargs, expected, given, algo):
    raises_unmodified(ValueError, rf"{CB}: grad_out must have the forward output's shape "
                      rf"{esc(expected)} \(N, OC, OH, OW\), got {esc(given)}",
                      fastconv.conv2d_backward, GO(shape=given), X(), W(), **kwargs,
                      algo=algo)


def test_conv2d_backward_grad_out_same_even_kernel():
    """'same' with an even kernel keeps the input size: (6, 6), not (5, 5)."""
    w = arr((6, 4, 2, 2))
    fastconv.conv2d_backward(GO(shape=(2, 6, 6, 6)), X(), w, padding="same")
    raises_unmodified(ValueError, rf"{CB}: grad_out must have the forward output's shape "
                      rf"\(2, 6, 6, 6\) \(N, OC, OH, OW\), got \(2, 6, 5, 5\)",
                      fastconv.conv2d_backward, GO(shape=(2, 6, 5, 5)), X(), w,
                      padding="same")


def test_conv2d_backward_grad_out_groups():
    """With groups the output channels are weight.shape[0], not C."""
    w = arr((6, 2, 3, 3))
    fastconv.conv2d_backward(GO(), X(), w, groups=2)
    raises_unmodified(ValueError, rf"{CB}: grad_out must have the forward output's shape "
                      rf"\(2, 6, 4, 4\) \(N, OC, OH, OW\), got \(2, 4, 4, 4\)",
                      fastconv.conv2d_backward, GO(shape=(2, 4, 4, 4)), X(), w, groups=2)


def test_conv2d_backward_empty_batch_still_checks_shapes():
    raises_unmodified(ValueError, rf"{CB}: grad_out must have the forward output's shape "
                      rf"\(0, 6, 4, 4\) \(N, OC, OH, OW\), got \(0, 6, 3, 3\)",
                      fastconv.conv2d_backward, GO(shape=(0, 6, 3, 3)), X()[:0], W())


# ----------------------------------------------------------------- conv2d_backward: dtypes

@pytest.mark.parametrize("go, x, w, name, nd, ref_d", [
    (F64, F32, F32, "grad_out", "float64", "float32"),
    (F32, F64, F64, "grad_out", "float32", "float64"),
    (F32, F32, F64, "weight", "float64", "float32"),
    (F64, F64, F32, "weight", "float32", "float64"),
    (F32, F64, F32, "weight", "float32", "float64"),
], ids=["go64", "go32", "w64", "w32", "x64"])
def test_conv2d_backward_dtype_disagreement(go, x, w, name, nd, ref_d):
    raises_unmodified(TypeError, rf"{CB}: {name} has dtype {nd} but x has dtype {ref_d}; "
                      rf"they must match",
                      fastconv.conv2d_backward, GO(go), X(x), W(w))


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=BAD_DTYPE_IDS)
@pytest.mark.parametrize("which", ["grad_out", "x", "weight"])
def test_conv2d_backward_bad_dtype(which, dtype):
    args = {"grad_out": GO(), "x": X(), "weight": W()}
    args[which] = args[which].astype(dtype)
    raises_unmodified(TypeError, rf"{CB}: {which} must have dtype float32 or float64, "
                      rf"got {esc(np.dtype(dtype))}",
                      fastconv.conv2d_backward, args["grad_out"], args["x"], args["weight"])


@pytest.mark.parametrize("which", ["grad_out", "x", "weight"])
def test_conv2d_backward_not_an_array(which):
    args = {"grad_out": GO(), "x": X(), "weight": W()}
    args[which] = args[which].tolist()
    raises_unmodified(TypeError, rf"{CB}: {which} must be a numpy.ndarray, got list",
                      fastconv.conv2d_backward, args["grad_out"], args["x"], args["weight"])


# ----------------------------------------------------------------- conv2d_backward: ranks

@pytest.mark.parametrize("which, layout", [("grad_out", r"\(N, OC, OH, OW\)"),
                                           ("x", r"\(N, C, H, W\)"),
                                           ("weight", r"\(OC, C/groups, KH, KW\)")])
@pytest.mark.parametrize("rank", [3, 5, 1])
def test_conv2d_backward_wrong_rank(which, layout, rank):
    args = {"grad_out": GO(), "x": X(), "weight": W()}
    a = args[which]
    args[which] = a.reshape(a.shape[:rank - 1] + (-1,)) if rank < 4 else a[..., None]
    shape = args[which].shape
    raises_unmodified(ValueError, rf"{CB}: {which} must have 4 dimensions {layout}, got "
                      rf"{rank} \(shape {esc(shape)}\)",
                      fastconv.conv2d_backward, args["grad_out"], args["x"], args["weight"])


# ----------------------------------------------------------------- conv2d_backward: needs

@pytest.mark.parametrize("fn, args", [
    (fastconv.conv2d_backward, lambda: (GO(), X(), W())),
    (fastconv.linear_backward, lambda: (arr((4, 3)), arr((4, 5)), arr((3, 5)))),
], ids=["conv2d_backward", "linear_backward"])
@pytest.mark.parametrize("needs", [(True, True), (True, True, True, True), (), "abc", None,
                                   True, 3, np.array([True, True, True]),
                                   {True, False}],
                         ids=["2-tuple", "4-tuple", "empty", "str", "None", "bool", "int",
                              "ndarray", "set"])
def test_needs_not_a_sequence_of_three(fn, args, needs):
    name = fn.__name__
    raises_unmodified(ValueError, rf"{name}: needs must be a sequence of three bools "
                      rf"\(grad_x, grad_w, grad_b\), got {esc(repr(needs))}",
                      fn, *args(), needs=needs)


@pytest.mark.parametrize("fn, args", [
    (fastconv.conv2d_backward, lambda: (GO(), X(), W())),
    (fastconv.linear_backward, lambda: (arr((4, 3)), arr((4, 5)), arr((3, 5)))),
], ids=["conv2d_backward", "linear_backward"])
@pytest.mark.parametrize("needs", [(1, 1, 1), (True, 0, True), (True, None, True),
                                   (True, "yes", False), [1.0, True, True]],
                         ids=["ints", "zero", "None", "str", "float"])
def test_needs_not_bools(fn, args, needs):
    name = fn.__name__
    raises_unmodified(TypeError, rf"{name}: needs must hold bools, got {esc(repr(needs))}",
                      fn, *args(), needs=needs)


# ----------------------------------------------------------------- conv2d_backward: geometry
# The forward's checks run under the backward's name.

@pytest.mark.parametrize("args, kwargs, exc, pattern", [
    (lambda: (GO(), X(), arr((6, 3, 3, 3))), {}, ValueError,
     r"weight has 3 input channels per group \(weight.shape\[1\]\), expected C/groups = "
     r"4/1 = 4"),
    (lambda: (GO(), X(), W()), {"groups": 3}, ValueError,
     r"groups=3 must divide the input channels C=4"),
    (lambda: (GO(), X(), W()), {"stride": 0}, ValueError, r"stride must be positive, got "
                                                          r"\(0, 0\)"),
    (lambda: (GO(), X(), W()), {"dilation": -1}, ValueError, r"dilation must be positive"),
    (lambda: (GO(), X(), W()), {"padding": -1}, ValueError, r"padding must be non-negative"),
    (lambda: (GO(), X(), W()), {"padding": "full"}, ValueError,
     r"padding must be 'valid', 'same', an int or a pair of ints, got 'full'"),
    (lambda: (GO(), X(), W()), {"stride": 2, "padding": "same"}, ValueError,
     r"padding='same' needs stride 1"),
    (lambda: (GO(), X(), W()), {"algo": "fft"}, ValueError,
     r"algo must be one of 'auto', 'direct', 'im2col', got 'fft'"),
    (lambda: (GO(), X(), W()), {"stride": 1.5}, TypeError,
     r"stride must be an int or a pair of ints, got 1.5"),
    (lambda: (GO(), X(), W()), {"groups": True}, TypeError, r"groups must be an int"),
    (lambda: (GO(), X(), arr((6, 4, 7, 3))), {}, ValueError,
     r"the kernel \(7, 3\) with dilation \(1, 1\) spans \(7, 3\), larger than the padded "
     r"input \(6, 6\)"),
], ids=["channels", "groups", "stride", "dilation", "padding", "padding_str", "same_stride",
        "algo", "stride_float", "groups_bool", "kernel_too_big"])
def test_conv2d_backward_geometry_errors_name_the_backward(args, kwargs, exc, pattern):
    raises_unmodified(exc, rf"{CB}: {pattern}", fastconv.conv2d_backward, *args(), **kwargs)


# ----------------------------------------------------------------- max_pool2d_backward

MP = "max_pool2d_backward"


def _pool():
    """grad_out, indices (from max_pool2d k2) and the input shape (2, 3, 6, 6)."""
    x = arr((2, 3, 6, 6), F32, 4)
    out, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    return arr(out.shape, F32, 5), idx, x.shape


def test_max_pool2d_backward_valid_operands_work():
    go, idx, shape = _pool()
    assert fastconv.max_pool2d_backward(go, idx, shape).shape == shape


@pytest.mark.parametrize("value, where", [(36, (1, 2, 2, 2)), (37, (0, 0, 0, 0)),
                                          (2**40, (1, 0, 1, 2)), (-1, (0, 0, 0, 1)),
                                          (-36, (1, 2, 0, 0)), (-2**62, (0, 1, 2, 2))],
                         ids=["HW", "HW+1", "huge", "-1", "-HW", "very-negative"])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_max_pool2d_backward_index_out_of_range(value, where, dtype):
    go, idx, shape = _pool()
    go = go.astype(dtype)
    idx[where] = value
    flat = int(np.ravel_multi_index(where, idx.shape))
    raises_unmodified(ValueError, rf"{MP}: indices must lie in \[0, H\*W\) = \[0, 36\), got "
                      rf"{value} at flat position {flat}",
                      fastconv.max_pool2d_backward, go, idx, shape)
    # Nothing written anywhere: the next valid call is unaffected.
    idx[where] = 0
    got = fastconv.max_pool2d_backward(go, idx, shape)
    gx = np.zeros(shape, np.float64).reshape(6, 36)
    np.add.at(gx, (np.repeat(np.arange(6), 9), idx.reshape(-1)), go.reshape(-1))
    np.testing.assert_allclose(got, gx.reshape(shape), rtol=1e-6)


def test_max_pool2d_backward_first_bad_index_is_reported():
    go, idx, shape = _pool()
    idx[1, 0, 0, 0] = 99
    idx[0, 2, 1, 1] = -5
    flat = int(np.ravel_multi_index((0, 2, 1, 1), idx.shape))
    raises_unmodified(ValueError, rf"{MP}: indices must lie in \[0, H\*W\) = \[0, 36\), got "
                      rf"-5 at flat position {flat}",
                      fastconv.max_pool2d_backward, go, idx, shape)


@pytest.mark.parametrize("itype", [np.int32, np.int16, np.uint32])
def test_max_pool2d_backward_narrow_index_dtypes_are_checked(itype):
    """Indices of another integer dtype are checked before the cast to int64."""
    go, idx, shape = _pool()
    narrow = idx.astype(itype)
    narrow[1, 1, 2, 0] = 40
    flat = int(np.ravel_multi_index((1, 1, 2, 0), idx.shape))
    raises_unmodified(ValueError, rf"{MP}: indices must lie in \[0, H\*W\) = \[0, 36\), got "
                      rf"40 at flat position {flat}", fastconv.max_pool2d_backward, go, narrow,
                      shape)
    narrow[1, 1, 2, 0] = idx[1, 1, 2, 0]
    np.testing.assert_array_equal(fastconv.max_pool2d_backward(go, narrow, shape),
                                  fastconv.max_pool2d_backward(go, idx, shape))


@pytest.mark.parametrize("threads", [1, 2])
def test_max_pool2d_backward_bad_index_in_a_late_plane_of_a_big_call(threads):
    """The kernel checks int64 indices as it scatters, in parallel over the planes: a
    bad one in any plane raises, and the partly written result never comes back."""
    x = arr((8, 16, 32, 32), F32, 6)
    out, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    go = arr(out.shape, F32, 7)
    want = fastconv.max_pool2d_backward(go, idx, x.shape)
    bad = idx.copy()
    bad[7, 15, 15, 15] = 1024
    flat = int(np.ravel_multi_index((7, 15, 15, 15), idx.shape))
    old = fastconv.get_num_threads()
    fastconv.set_num_threads(threads)
    try:
        raises_unmodified(ValueError, rf"{MP}: indices must lie in \[0, H\*W\) = "
                          rf"\[0, 1024\), got 1024 at flat position {flat}",
                          fastconv.max_pool2d_backward, go, bad, x.shape)
        np.testing.assert_array_equal(fastconv.max_pool2d_backward(go, idx, x.shape), want)
    finally:
        fastconv.set_num_threads(old)


def test_max_pool2d_backward_indices_too_big_for_a_smaller_input_shape():
    """Indices valid for (6, 6) are out of range for a claimed (3, 3) input."""
    go, idx, _ = _pool()
    assert idx.max() >= 9
    raises_unmodified(ValueError, rf"{MP}: indices must lie in \[0, H\*W\) = \[0, 9\)",
                      fastconv.max_pool2d_backward, go, idx, (2, 3, 3, 3))


@pytest.mark.parametrize("dtype", [F32, F64, np.float16, np.bool_, object, np.complex64],
                         ids=["float32", "float64", "float16", "bool", "object", "complex64"])
def test_max_pool2d_backward_indices_not_integer(dtype):
    go, idx, shape = _pool()
    raises_unmodified(TypeError, rf"{MP}: indices must have an integer dtype \(int64\), got "
                      rf"{esc(np.dtype(dtype))}",
                      fastconv.max_pool2d_backward, go, idx.astype(dtype), shape)


@pytest.mark.parametrize("indices", [lambda i: i.tolist(), lambda i: 3, lambda i: None],
                         ids=["list", "int", "None"])
def test_max_pool2d_backward_indices_not_an_array(indices):
    go, idx, shape = _pool()
    bad = indices(idx)
    raises_unmodified(TypeError, rf"{MP}: indices must be a numpy.ndarray, got "
                      rf"{type(bad).__name__}", fastconv.max_pool2d_backward, go, bad, shape)


@pytest.mark.parametrize("slicer", [lambda i: i[:, :, :2], lambda i: i[:1], lambda i: i[0],
                                    lambda i: i[..., None]],
                         ids=["OH", "N", "3d", "5d"])
def test_max_pool2d_backward_indices_shape_mismatch(slicer):
    go, idx, shape = _pool()
    bad = slicer(idx)
    raises_unmodified(ValueError, rf"{MP}: indices must have grad_out's shape \(2, 3, 3, 3\), "
                      rf"got {esc(bad.shape)}", fastconv.max_pool2d_backward, go, bad, shape)


@pytest.mark.parametrize("input_shape", [(2, 4, 6, 6), (1, 3, 6, 6), (3, 2, 6, 6)])
def test_max_pool2d_backward_input_shape_n_c_disagree(input_shape):
    go, idx, _ = _pool()
    raises_unmodified(ValueError, rf"{MP}: input_shape {esc(input_shape)} must start with "
                      rf"grad_out's \(N, C\) = \(2, 3\)",
                      fastconv.max_pool2d_backward, go, idx, input_shape)


@pytest.mark.parametrize("input_shape", [(2, 3, 6), (2, 3, 6, 6, 1), (), (2, 3, -6, 6),
                                         [2, 3, 6, -1]],
                         ids=["3", "5", "empty", "negative", "list-negative"])
def test_max_pool2d_backward_input_shape_not_4_nonnegative_ints(input_shape):
    go, idx, _ = _pool()
    raises_unmodified(ValueError, rf"{MP}: input_shape must be 4 non-negative ints "
                      rf"\(N, C, H, W\), got {esc(repr(input_shape))}",
                      fastconv.max_pool2d_backward, go, idx, input_shape)


@pytest.mark.parametrize("input_shape", [(2, 3, 6.0, 6), None, "abcd", 5, (2, 3, "6", 6),
                                         (2, 3, None, 6)],
                         ids=["float", "None", "str", "int", "str-entry", "None-entry"])
def test_max_pool2d_backward_input_shape_not_ints(input_shape):
    go, idx, _ = _pool()
    raises_unmodified(TypeError, rf"{MP}: input_shape must be a sequence of 4 ints "
                      rf"\(N, C, H, W\), got {esc(repr(input_shape))}",
                      fastconv.max_pool2d_backward, go, idx, input_shape)


def test_max_pool2d_backward_input_shape_without_positions():
    go, idx, _ = _pool()
    raises_unmodified(ValueError, rf"{MP}: input_shape \(2, 3, 0, 6\) has no positions for "
                      rf"54 gradients", fastconv.max_pool2d_backward, go, idx, (2, 3, 0, 6))


@pytest.mark.parametrize("input_shape", [(2, 3, 2**40, 2**40), (2, 3, 2**62, 2**62)])
def test_max_pool2d_backward_input_shape_too_big(input_shape):
    go, idx, _ = _pool()
    raises_unmodified(ValueError, rf"{MP}: input_shape .* elements, more than this library "
                      rf"can index", fastconv.max_pool2d_backward, go, idx, input_shape)


def test_max_pool2d_backward_input_shape_rejects_bools():
    go, idx, _ = _pool()
    raises_unmodified(TypeError, rf"{MP}: input_shape must be a sequence of 4 ints",
                      fastconv.max_pool2d_backward, go, idx, (2, 3, True, 6))


def test_max_pool2d_backward_unsigned_indices_do_not_wrap():
    go, idx, shape = _pool()
    big = idx.astype(np.uint64)
    big.reshape(-1)[1] = 2**63 + 5
    raises_unmodified(ValueError, rf"{MP}: indices must lie in \[0, H\*W\) = .*got "
                      rf"{2**63 + 5} at flat position 1", fastconv.max_pool2d_backward, go, big,
                      shape)


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=BAD_DTYPE_IDS)
def test_max_pool2d_backward_grad_out_bad_dtype(dtype):
    go, idx, shape = _pool()
    raises_unmodified(TypeError, rf"{MP}: grad_out must have dtype float32 or float64, got "
                      rf"{esc(np.dtype(dtype))}",
                      fastconv.max_pool2d_backward, go.astype(dtype), idx, shape)


def test_max_pool2d_backward_grad_out_wrong_rank_or_type():
    go, idx, shape = _pool()
    raises_unmodified(ValueError, rf"{MP}: grad_out must have 4 dimensions \(N, C, OH, OW\), "
                      rf"got 3 \(shape \(3, 3, 3\)\)",
                      fastconv.max_pool2d_backward, go[0], idx[0], shape)
    raises_unmodified(TypeError, rf"{MP}: grad_out must be a numpy.ndarray, got list",
                      fastconv.max_pool2d_backward, go.tolist(), idx, shape)


# ----------------------------------------------------------------- relu_backward

RB = "relu_backward"


@pytest.mark.parametrize("go_shape, x_shape", [((2, 3, 6, 6), (1, 3, 6, 6)),
                                               ((2, 3, 6, 6), (216,)),
                                               ((5,), (6,)), ((2, 3), (3, 2))])
def test_relu_backward_shape_mismatch(go_shape, x_shape):
    raises_unmodified(ValueError, rf"{RB}: grad_out must have x's shape {esc(x_shape)}, got "
                      rf"{esc(go_shape)}", fastconv.relu_backward, arr(go_shape),
                      arr(x_shape))


@pytest.mark.parametrize("go, x", [(F32, F64), (F64, F32)])
def test_relu_backward_dtype_mismatch(go, x):
    raises_unmodified(TypeError, rf"{RB}: grad_out has dtype {np.dtype(go)} but x has dtype "
                      rf"{np.dtype(x)}; they must match",
                      fastconv.relu_backward, arr((2, 3), go), arr((2, 3), x))


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=BAD_DTYPE_IDS)
@pytest.mark.parametrize("which", ["grad_out", "x"])
def test_relu_backward_bad_dtype(which, dtype):
    args = {"grad_out": arr((2, 3)), "x": arr((2, 3))}
    args[which] = args[which].astype(dtype)
    raises_unmodified(TypeError, rf"{RB}: {which} must have dtype float32 or float64, got "
                      rf"{esc(np.dtype(dtype))}",
                      fastconv.relu_backward, args["grad_out"], args["x"])


@pytest.mark.parametrize("which", ["grad_out", "x"])
def test_relu_backward_not_an_array(which):
    args = {"grad_out": arr((2, 3)), "x": arr((2, 3))}
    args[which] = args[which].tolist()
    raises_unmodified(TypeError, rf"{RB}: {which} must be a numpy.ndarray, got list",
                      fastconv.relu_backward, args["grad_out"], args["x"])


# ----------------------------------------------------------------- linear_backward

LB = "linear_backward"


def LX(dtype=F32):
    return arr((4, 5), dtype, 6)


def LW(dtype=F32):
    return arr((3, 5), dtype, 7)


def LG(dtype=F32, shape=(4, 3)):
    return arr(shape, dtype, 8)


@pytest.mark.parametrize("shape", [(4, 2), (3, 3), (4, 5), (3, 4)])
def test_linear_backward_grad_out_shape_mismatch(shape):
    raises_unmodified(ValueError, rf"{LB}: grad_out must have shape \(4, 3\) "
                      rf"\(N, out_features\), got {esc(shape)}",
                      fastconv.linear_backward, LG(shape=shape), LX(), LW())


def test_linear_backward_in_features_mismatch():
    raises_unmodified(ValueError, rf"{LB}: weight has 4 input features \(weight.shape\[1\]\) "
                      rf"but x has 5 \(x.shape\[1\]\)",
                      fastconv.linear_backward, LG(), LX(), arr((3, 4)))


@pytest.mark.parametrize("go, x, w, name, nd, ref_d", [
    (F64, F32, F32, "grad_out", "float64", "float32"),
    (F32, F32, F64, "weight", "float64", "float32"),
    (F32, F64, F64, "grad_out", "float32", "float64"),
])
def test_linear_backward_dtype_disagreement(go, x, w, name, nd, ref_d):
    raises_unmodified(TypeError, rf"{LB}: {name} has dtype {nd} but x has dtype {ref_d}; "
                      rf"they must match", fastconv.linear_backward, LG(go), LX(x), LW(w))


@pytest.mark.parametrize("which, layout, bad_shape", [
    ("grad_out", r"\(N, out_features\)", (12,)),
    ("x", r"\(N, in_features\)", (1, 4, 5)),
    ("weight", r"\(out_features, in_features\)", (15,)),
])
def test_linear_backward_wrong_rank(which, layout, bad_shape):
    args = {"grad_out": LG(), "x": LX(), "weight": LW()}
    args[which] = args[which].reshape(bad_shape)
    raises_unmodified(ValueError, rf"{LB}: {which} must have 2 dimensions {layout}, got "
                      rf"{len(bad_shape)} \(shape {esc(bad_shape)}\)",
                      fastconv.linear_backward, args["grad_out"], args["x"], args["weight"])


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=BAD_DTYPE_IDS)
@pytest.mark.parametrize("which", ["grad_out", "x", "weight"])
def test_linear_backward_bad_dtype(which, dtype):
    args = {"grad_out": LG(), "x": LX(), "weight": LW()}
    args[which] = args[which].astype(dtype)
    raises_unmodified(TypeError, rf"{LB}: {which} must have dtype float32 or float64, got "
                      rf"{esc(np.dtype(dtype))}",
                      fastconv.linear_backward, args["grad_out"], args["x"], args["weight"])
