"""Bad input: every case raises the documented exception type with a message that
names the function, the argument and the offending value (or what was expected),
and leaves its inputs untouched.

DESIGN.md: "A bad argument is a Python TypeError/ValueError with a message that
names the argument, the value and what was expected; it is never a crash, a hang,
a silent wrong answer or a partially written output."

Cases that could crash or hang the interpreter run in a subprocess with a timeout.
Size arguments (stride, padding, dilation, kernel_size, groups) are bounded by
2**31 - 1, which keeps every index the kernels compute inside int64.
"""

import os
import re
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import fastconv
from checks import same_value, snapshot, arr, raises_unmodified

F32, F64 = np.float32, np.float64


# ----------------------------------------------------------------- helpers

def run_python(code, timeout=30, env=None):
    """Run code in a fresh interpreter; (returncode, stdout, stderr). None rc on timeout."""
    full_env = dict(os.environ)
    full_env.pop("FASTCONV_SIMD", None)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or "", e.stderr or ""
    return proc.returncode, proc.stdout, proc.stderr


# Standard valid operands: x (2, 4, 6, 6), weight (6, 4, 3, 3), bias (6,).
def X(dtype=F32):
    return arr((2, 4, 6, 6), dtype, 1)


def W(dtype=F32):
    return arr((6, 4, 3, 3), dtype, 2)


def B(dtype=F32):
    return arr((6,), dtype, 3)


BAD_DTYPES = [np.int32, np.int64, np.uint8, np.float16, object, np.bool_, np.complex64,
              np.complex128]
BAD_DTYPE_IDS = ["int32", "int64", "uint8", "float16", "object", "bool", "complex64",
                 "complex128"]


# ----------------------------------------------------------------- conv2d: arrays

@pytest.mark.parametrize("shape", [(4, 6, 6), (1, 2, 4, 6, 6), (36,)], ids=["3d", "5d", "1d"])
def test_conv2d_x_wrong_rank(shape):
    x = arr(shape)
    raises_unmodified(ValueError, rf"conv2d: x must have 4 dimensions \(N, C, H, W\), got "
                      rf"{len(shape)} \(shape {re.escape(str(shape))}\)",
                      fastconv.conv2d, x, W())


@pytest.mark.parametrize("shape", [(6, 4, 3), (6, 4, 3, 3, 1)], ids=["3d", "5d"])
def test_conv2d_weight_wrong_rank(shape):
    w = arr(shape)
    raises_unmodified(ValueError, rf"conv2d: weight must have 4 dimensions "
                      rf"\(OC, C/groups, KH, KW\), got {len(shape)}",
                      fastconv.conv2d, X(), w)


@pytest.mark.parametrize("shape", [(), (6, 1)], ids=["0d", "2d"])
def test_conv2d_bias_wrong_rank(shape):
    b = arr(shape)
    raises_unmodified(ValueError, rf"conv2d: bias must have 1 dimensions? \(OC,\), got "
                      rf"{len(shape)}", fastconv.conv2d, X(), W(), b)


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=BAD_DTYPE_IDS)
@pytest.mark.parametrize("which", ["x", "weight", "bias"])
def test_conv2d_bad_dtype(which, dtype):
    args = {"x": X(), "weight": W(), "bias": B()}
    args[which] = arr(args[which].shape, dtype, 7)
    name = np.dtype(dtype).name
    raises_unmodified(TypeError, rf"conv2d: {which} must have dtype float32 or float64, "
                      rf"got {name}", fastconv.conv2d, args["x"], args["weight"],
                      args["bias"])


def test_conv2d_big_endian_float_is_rejected_by_name():
    # Not an error the contract asks for, but if rejected the message must say so.
    x = X().astype(">f4")
    raises_unmodified(TypeError, r"conv2d: x must have dtype float32 or float64, got >f4",
                      fastconv.conv2d, x, W())


@pytest.mark.parametrize("xd, wd", [(F32, F64), (F64, F32)], ids=["x32-w64", "x64-w32"])
def test_conv2d_mixed_dtypes(xd, wd):
    raises_unmodified(TypeError, rf"conv2d: weight has dtype {np.dtype(wd).name} but x has "
                      rf"dtype {np.dtype(xd).name}; they must match",
                      fastconv.conv2d, X(xd), W(wd))


def test_conv2d_bias_different_dtype():
    raises_unmodified(TypeError, r"conv2d: bias has dtype float64 but x has dtype float32",
                      fastconv.conv2d, X(F32), W(F32), B(F64))


@pytest.mark.parametrize("which", ["x", "weight", "bias"])
def test_conv2d_list_input(which):
    args = {"x": X(), "weight": W(), "bias": B()}
    args[which] = args[which].tolist()
    raises_unmodified(TypeError, rf"conv2d: {which} must be a numpy.ndarray, got list",
                      fastconv.conv2d, args["x"], args["weight"], args["bias"])


# ----------------------------------------------------------------- conv2d: channels, groups

def test_conv2d_channel_mismatch():
    w = arr((6, 3, 3, 3))
    raises_unmodified(ValueError, r"conv2d: weight has 3 input channels per group "
                      r"\(weight.shape\[1\]\), expected C/groups = 4/1 = 4 for x of shape "
                      r"\(2, 4, 6, 6\)", fastconv.conv2d, X(), w)


def test_conv2d_channel_mismatch_with_groups():
    # weight.shape[1] * groups = 4 * 2 = 8 != C = 4
    raises_unmodified(ValueError, r"conv2d: weight has 4 input channels per group "
                      r"\(weight.shape\[1\]\), expected C/groups = 4/2 = 2",
                      fastconv.conv2d, X(), W(), groups=2)


def test_conv2d_groups_do_not_divide_c():
    w = arr((6, 1, 3, 3))
    raises_unmodified(ValueError, r"conv2d: groups=3 must divide the input channels C=4",
                      fastconv.conv2d, X(), w, groups=3)


def test_conv2d_groups_do_not_divide_oc():
    w = arr((5, 2, 3, 3))
    raises_unmodified(ValueError, r"conv2d: groups=2 must divide the output channels "
                      r"\(weight.shape\[0\]=5\)", fastconv.conv2d, X(), w, groups=2)


@pytest.mark.parametrize("groups", [0, -1, -4])
def test_conv2d_groups_not_positive(groups):
    raises_unmodified(ValueError, rf"conv2d: groups must be positive, got {groups}\b",
                      fastconv.conv2d, X(), W(), groups=groups)


@pytest.mark.parametrize("groups", [1.5, "2", None, True], ids=["float", "str", "None", "bool"])
def test_conv2d_groups_not_int(groups):
    raises_unmodified(TypeError, rf"conv2d: groups must be an int.*got {re.escape(repr(groups))}",
                      fastconv.conv2d, X(), W(), groups=groups)


# ----------------------------------------------------------- conv2d: stride, dilation, padding

@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value, shown", [(0, "(0, 0)"), (-1, "(-1, -1)"), ((1, 0), "(1, 0)"),
                                          ((-2, 1), "(-2, 1)")],
                         ids=["0", "-1", "(1,0)", "(-2,1)"])
def test_conv2d_stride_dilation_not_positive(name, value, shown):
    raises_unmodified(ValueError, rf"conv2d: {name} must be positive, got {re.escape(shown)}",
                      fastconv.conv2d, X(), W(), **{name: value})


@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
@pytest.mark.parametrize("value", [1.5, (1, 1.5), "2", None, True, np.float64(1.0)],
                         ids=["1.5", "(1,1.5)", "str", "None", "bool", "np.float64"])
def test_conv2d_int_args_not_int(name, value):
    if name == "padding" and isinstance(value, str):
        pattern = r"conv2d: padding must be 'valid', 'same', an int or a pair of ints, got '2'"
        raises_unmodified(ValueError, pattern, fastconv.conv2d, X(), W(), padding=value)
        return
    raises_unmodified(TypeError, rf"conv2d: {name} must be an int or a pair of ints, got "
                      rf"{re.escape(repr(value))}", fastconv.conv2d, X(), W(), **{name: value})


@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
@pytest.mark.parametrize("value", [(1, 1, 1), (1,), ()], ids=["3-tuple", "1-tuple", "empty"])
def test_conv2d_int_args_wrong_length(name, value):
    raises_unmodified(ValueError, rf"conv2d: {name} must be an int or a pair of ints, got "
                      rf"{re.escape(repr(value))} of length {len(value)}",
                      fastconv.conv2d, X(), W(), **{name: value})


@pytest.mark.parametrize("padding, shown", [(-1, "(-1, -1)"), ((0, -2), "(0, -2)")])
def test_conv2d_negative_padding(padding, shown):
    raises_unmodified(ValueError, rf"conv2d: padding must be non-negative, got "
                      rf"{re.escape(shown)}", fastconv.conv2d, X(), W(), padding=padding)


@pytest.mark.parametrize("padding", ["full", "SAME", ""])
def test_conv2d_unknown_padding_string(padding):
    raises_unmodified(ValueError, rf"conv2d: padding must be 'valid', 'same', an int or a pair "
                      rf"of ints, got {re.escape(repr(padding))}",
                      fastconv.conv2d, X(), W(), padding=padding)


@pytest.mark.parametrize("algo", ["fft", "Direct", "", None])
def test_conv2d_unknown_algo(algo):
    raises_unmodified(ValueError, rf"conv2d: algo must be one of 'auto', 'direct', 'im2col', "
                      rf"got {re.escape(repr(algo))}", fastconv.conv2d, X(), W(), algo=algo)


@pytest.mark.parametrize("stride", [2, (1, 2)])
def test_conv2d_same_padding_with_stride(stride):
    shown = (stride, stride) if isinstance(stride, int) else stride
    raises_unmodified(ValueError, rf"conv2d: padding='same' needs stride 1, got "
                      rf"stride={re.escape(str(shown))}",
                      fastconv.conv2d, X(), W(), stride=stride, padding="same")


def test_conv2d_kernel_larger_than_input():
    w = arr((6, 4, 7, 3))
    raises_unmodified(ValueError, r"conv2d: the kernel \(7, 3\) with dilation \(1, 1\) spans "
                      r"\(7, 3\), larger than the padded input \(6, 6\)",
                      fastconv.conv2d, X(), w)


def test_conv2d_kernel_larger_than_padded_input():
    w = arr((6, 4, 9, 9))
    raises_unmodified(ValueError, r"conv2d: the kernel \(9, 9\) with dilation \(1, 1\) spans "
                      r"\(9, 9\), larger than the padded input \(8, 8\)",
                      fastconv.conv2d, X(), w, padding=1)


def test_conv2d_dilated_kernel_larger_than_padded_input():
    # 3x3 kernel, dilation 4 spans 9 > 6 + 2*1
    raises_unmodified(ValueError, r"conv2d: the kernel \(3, 3\) with dilation \(4, 1\) spans "
                      r"\(9, 3\), larger than the padded input \(8, 8\)",
                      fastconv.conv2d, X(), W(), padding=1, dilation=(4, 1))


@pytest.mark.parametrize("shape", [(5,), (7,), (0,)])
def test_conv2d_wrong_bias_shape(shape):
    raises_unmodified(ValueError, rf"conv2d: bias must have shape \(6,\) to match "
                      rf"weight.shape\[0\], got {re.escape(str(shape))}",
                      fastconv.conv2d, X(), W(), arr(shape))


# ----------------------------------------------------------------- conv2d: sizes

def _assert_no_big_allocation(fn, *args, **kwargs):
    """fn raises ValueError, without NumPy allocating more than 16 MiB on the way and
    without modifying its array arguments."""
    before = [snapshot(a) for a in args]
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak} bytes allocated before the error"
    assert all(same_value(b, a) for b, a in zip(before, args)), "an input was modified"
    return info


@pytest.mark.parametrize("padding", [2**40, (0, 2**40), 2**70])
def test_conv2d_huge_padding(padding):
    x, w = arr((1, 1, 2, 2)), arr((1, 1, 1, 1))
    info = _assert_no_big_allocation(fastconv.conv2d, x, w, padding=padding)
    assert re.search(r"conv2d: padding must be at most 2\*\*31 - 1, got ", str(info.value)), \
        str(info.value)
    assert str(padding if isinstance(padding, int) else padding[1]) in str(info.value)


def test_conv2d_output_elements_overflow_from_padding():
    # Padding 2**31 - 1 is allowed, but the output would be (2**32)**2 elements.
    x, w = arr((1, 1, 2, 2)), arr((1, 1, 1, 1))
    info = _assert_no_big_allocation(fastconv.conv2d, x, w, padding=2**31 - 1)
    assert re.search(r"conv2d: the output shape \(1, 1, 4294967296, 4294967296\) has \d+ "
                     r"elements, more than this library can index \(at most 2\*\*56\)",
                     str(info.value)), str(info.value)


def test_conv2d_output_elements_overflow_from_batch_and_channels():
    # OH = OW = 2**25 + 1 alone is fine (2**50 elements); N * OC = 256 takes it past 2**56.
    x, w = arr((4, 1, 1, 1)), arr((64, 1, 1, 1))
    info = _assert_no_big_allocation(fastconv.conv2d, x, w, padding=2**24)
    assert re.search(r"conv2d: the output shape \(4, 64, 33554433, 33554433\) has \d+ "
                     r"elements, more than this library can index", str(info.value))


def test_conv2d_output_too_big_to_allocate_is_memory_error():
    # Under the element limit (2**54) but 2**56 bytes: NumPy refuses; no crash.
    x, w = arr((1, 1, 1, 1)), arr((1, 1, 1, 1))
    raises_unmodified((MemoryError, ValueError), r"conv2d|[Uu]nable to allocate",
                      fastconv.conv2d, x, w, padding=2**26)


@pytest.mark.parametrize("shape", [(2, 0, 6, 6), (2, 4, 0, 6), (2, 4, 6, 0)],
                         ids=["C=0", "H=0", "W=0"])
def test_conv2d_zero_size_x(shape):
    x = arr(shape)
    w = arr((6, max(shape[1], 1), 1, 1)) if shape[1] else arr((6, 0, 1, 1))
    raises_unmodified(ValueError, rf"conv2d: x must have non-zero channels, height and width, "
                      rf"got shape {re.escape(str(shape))}", fastconv.conv2d, x, w)


@pytest.mark.parametrize("shape", [(0, 4, 3, 3), (6, 4, 0, 3), (6, 4, 3, 0)],
                         ids=["OC=0", "KH=0", "KW=0"])
def test_conv2d_zero_size_weight(shape):
    raises_unmodified(ValueError, rf"conv2d: weight must have no zero-size dimension, got shape "
                      rf"{re.escape(str(shape))}", fastconv.conv2d, X(), arr(shape))


@pytest.mark.parametrize("algo", ["auto", "direct", "im2col"])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_conv2d_empty_batch_returns_empty(dtype, algo):
    x = arr((0, 4, 7, 6), dtype)
    w, b = W(dtype), B(dtype)
    out = fastconv.conv2d(x, w, b, stride=2, padding=1, algo=algo)
    assert out.shape == (0, 6, 4, 3) and out.dtype == dtype
    out = fastconv.conv2d(x, w, padding="same", algo=algo)
    assert out.shape == (0, 6, 7, 6)


def test_conv2d_empty_batch_still_checks_shapes():
    raises_unmodified(ValueError, r"conv2d: weight has 3 input channels per group",
                      fastconv.conv2d, arr((0, 4, 6, 6)), arr((6, 3, 3, 3)))


@pytest.mark.parametrize("algo", ["direct", "im2col"])
def test_conv2d_huge_dilation_is_value_error(algo):
    rc, out, err = run_python(f"""
        import numpy as np, fastconv
        x = np.ones((1, 1, 8, 8), np.float32); w = np.ones((1, 1, 5, 5), np.float32)
        try:
            r = fastconv.conv2d(x, w, dilation=2**62 + 1, algo={algo!r})
        except ValueError as e:
            print("ValueError:", e)
        else:
            print("returned", r.shape, r.ravel()[:4])
        """, timeout=30)
    assert rc == 0, f"crashed: rc={rc} {err[-2000:]}"
    assert re.search(r"ValueError: conv2d: dilation must be at most 2\*\*31 - 1", out), out


@pytest.mark.skipif("avx2" not in fastconv._simd_levels(), reason="needs the AVX2 kernels")
def test_conv2d_direct_huge_geometry_does_not_crash():
    # A padding far wider than the kernel: the direct kernel's padded copy would be
    # 2**26 rows of 2**32 columns. It must raise MemoryError, never write past its
    # workspace; im2col (and auto) compute the two output pixels.
    rc, out, err = run_python("""
        import numpy as np, fastconv
        x = np.ones((1, 1, 2, 1), np.float32); w = np.ones((1, 1, 2, 2), np.float32)
        kw = dict(stride=(1, 2**31 - 1), padding=(2**25 - 1, 2**31 - 1),
                  dilation=(2**26 - 1, 2**30 - 1))
        for algo in ("direct", "im2col", "auto"):
            try:
                r = fastconv.conv2d(x, w, algo=algo, **kw)
            except (ValueError, MemoryError) as e:
                print(algo, "raised", type(e).__name__)
            else:
                print(algo, "returned", r.shape, r.ravel().tolist())
        """, timeout=60, env={"FASTCONV_SIMD": "avx2"})
    assert rc == 0, f"crashed: rc={rc} {err[-2000:]}"
    lines = out.strip().splitlines()
    assert lines[0] in ("direct raised MemoryError", "direct returned (1, 1, 1, 2) [0.0, 0.0]"), out
    assert lines[1:] == ["im2col returned (1, 1, 1, 2) [0.0, 0.0]",
                         "auto returned (1, 1, 1, 2) [0.0, 0.0]"], out


@pytest.mark.parametrize("name", ["stride", "dilation", "groups"])
def test_conv2d_int_args_beyond_int64(name):
    raises_unmodified(ValueError, rf"conv2d: {name} must be at most 2\*\*31 - 1, got ",
                      fastconv.conv2d, X(), W(), **{name: 2**63})


# ----------------------------------------------------------------- max_pool2d

def PX(dtype=F32):
    return arr((2, 3, 6, 6), dtype, 4)


def test_max_pool2d_x_wrong_rank():
    raises_unmodified(ValueError, r"max_pool2d: x must have 4 dimensions \(N, C, H, W\), got 3 "
                      r"\(shape \(3, 6, 6\)\)", fastconv.max_pool2d, arr((3, 6, 6)), 2)


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=BAD_DTYPE_IDS)
def test_max_pool2d_bad_dtype(dtype):
    raises_unmodified(TypeError, rf"max_pool2d: x must have dtype float32 or float64, got "
                      rf"{np.dtype(dtype).name}", fastconv.max_pool2d,
                      arr((2, 3, 6, 6), dtype), 2)


def test_max_pool2d_list_input():
    raises_unmodified(TypeError, r"max_pool2d: x must be a numpy.ndarray, got list",
                      fastconv.max_pool2d, PX().tolist(), 2)


@pytest.mark.parametrize("name", ["kernel_size", "stride", "dilation"])
@pytest.mark.parametrize("value, shown", [(0, "(0, 0)"), (-1, "(-1, -1)"), ((2, 0), "(2, 0)")],
                         ids=["0", "-1", "(2,0)"])
def test_max_pool2d_not_positive(name, value, shown):
    kwargs = {"kernel_size": 2, name: value}
    raises_unmodified(ValueError, rf"max_pool2d: {name} must be positive, got "
                      rf"{re.escape(shown)}", fastconv.max_pool2d, PX(), **kwargs)


@pytest.mark.parametrize("kernel_size, padding, shown_k, shown_p",
                         [(3, 2, "(3, 3)", "(2, 2)"), (2, 2, "(2, 2)", "(2, 2)"),
                          ((3, 4), (1, 3), "(3, 4)", "(1, 3)"), (3, -1, "(3, 3)", "(-1, -1)")],
                         ids=["k3p2", "k2p2", "k34p13", "negative"])
def test_max_pool2d_padding_more_than_half_kernel(kernel_size, padding, shown_k, shown_p):
    raises_unmodified(ValueError, rf"max_pool2d: padding must be between 0 and half the kernel "
                      rf"size {re.escape(shown_k)}, got padding={re.escape(shown_p)}",
                      fastconv.max_pool2d, PX(), kernel_size, padding=padding)


def test_max_pool2d_kernel_larger_than_padded_input():
    raises_unmodified(ValueError, r"max_pool2d: the window \(9, 9\) with dilation \(1, 1\) "
                      r"spans \(9, 9\), larger than the padded input \(8, 8\)",
                      fastconv.max_pool2d, PX(), 9, padding=1)


def test_max_pool2d_dilated_window_larger_than_input():
    raises_unmodified(ValueError, r"max_pool2d: the window \(3, 3\) with dilation \(3, 3\) "
                      r"spans \(7, 7\), larger than the padded input \(6, 6\)",
                      fastconv.max_pool2d, PX(), 3, dilation=3)


@pytest.mark.parametrize("name", ["kernel_size", "stride", "padding", "dilation"])
@pytest.mark.parametrize("value", [1.5, (2, 1.5), "2"], ids=["1.5", "(2,1.5)", "str"])
def test_max_pool2d_int_args_not_int(name, value):
    kwargs = {"kernel_size": 2, name: value}
    raises_unmodified(TypeError, rf"max_pool2d: {name} must be an int or a pair of ints, got "
                      rf"{re.escape(repr(value))}", fastconv.max_pool2d, PX(), **kwargs)


@pytest.mark.parametrize("name", ["kernel_size", "stride", "padding", "dilation"])
def test_max_pool2d_int_args_3_tuple(name):
    kwargs = {"kernel_size": 2, name: (1, 1, 1)}
    raises_unmodified(ValueError, rf"max_pool2d: {name} must be an int or a pair of ints, got "
                      rf"\(1, 1, 1\) of length 3", fastconv.max_pool2d, PX(), **kwargs)


@pytest.mark.parametrize("shape", [(2, 3, 0, 6), (2, 3, 6, 0)], ids=["H=0", "W=0"])
def test_max_pool2d_zero_height_width(shape):
    raises_unmodified(ValueError, rf"max_pool2d: x must have non-zero channels, height and "
                      rf"width, got shape {re.escape(str(shape))}", fastconv.max_pool2d,
                      arr(shape), 2)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_max_pool2d_empty_batch_returns_empty(dtype):
    out, idx = fastconv.max_pool2d(arr((0, 3, 7, 7), dtype), 3, 2, 1, return_indices=True)
    assert out.shape == idx.shape == (0, 3, 4, 4)
    assert out.dtype == dtype and idx.dtype == np.int64


def test_max_pool2d_huge_window_does_not_hang():
    rc, out, err = run_python("""
        import numpy as np, fastconv
        x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
        o, i = fastconv.max_pool2d(x, 2**30, padding=2**29, return_indices=True)
        print(o.shape, float(o.ravel()[0]), int(i.ravel()[0]))
        """, timeout=3)
    assert rc == 0, f"rc={rc} (None = still running after 3 s) {err[-2000:]}"
    assert out.split() == ["(1,", "1,", "1,", "1)", "5.0", "5"], out


def test_max_pool2d_huge_dilation_is_value_error():
    raises_unmodified(ValueError, r"max_pool2d: dilation must be at most 2\*\*31 - 1",
                      fastconv.max_pool2d, arr((1, 1, 8, 8)), 5, stride=1, dilation=2**62 + 1)


def test_max_pool2d_window_span_message():
    info = raises_unmodified(ValueError, r"max_pool2d: the window \(3, 3\) with dilation "
                             r"\(1073741824, 1073741824\) spans", fastconv.max_pool2d,
                             arr((1, 1, 4, 4)), 3, dilation=2**30)
    assert "spans (2147483649, 2147483649)" in str(info.value), str(info.value)


def test_max_pool2d_ceil_mode_huge_stride():
    x = arr((1, 1, 4, 4))
    out = fastconv.max_pool2d(x, 2, stride=2**31 - 1, ceil_mode=True)
    assert out.shape == (1, 1, 1, 1)
    assert out[0, 0, 0, 0] == x[0, 0, :2, :2].max()
    raises_unmodified(ValueError, r"max_pool2d: stride must be at most 2\*\*31 - 1",
                      fastconv.max_pool2d, x, 2, stride=2**63 - 1, ceil_mode=True)


# ----------------------------------------------------------------- relu

def test_relu_list_input():
    raises_unmodified(TypeError, r"relu: x must be a numpy.ndarray, got list",
                      fastconv.relu, [1.0, -1.0])


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=BAD_DTYPE_IDS)
def test_relu_bad_dtype(dtype):
    raises_unmodified(TypeError, rf"relu: x must have dtype float32 or float64, got "
                      rf"{np.dtype(dtype).name}", fastconv.relu, arr((3, 4), dtype))


# ----------------------------------------------------------------- linear

def LX(dtype=F32):
    return arr((3, 5), dtype, 5)


def LW(dtype=F32):
    return arr((4, 5), dtype, 6)


def LB(dtype=F32):
    return arr((4,), dtype, 7)


@pytest.mark.parametrize("which, shape, ndim, layout",
                         [("x", (3, 5, 1), 2, r"\(N, in_features\)"),
                          ("x", (5,), 2, r"\(N, in_features\)"),
                          ("weight", (4, 5, 1), 2, r"\(out_features, in_features\)"),
                          ("weight", (5,), 2, r"\(out_features, in_features\)"),
                          ("bias", (4, 1), 1, r"\(out_features,\)")],
                         ids=["x3d", "x1d", "w3d", "w1d", "b2d"])
def test_linear_wrong_rank(which, shape, ndim, layout):
    args = {"x": LX(), "weight": LW(), "bias": LB()}
    args[which] = arr(shape)
    raises_unmodified(ValueError, rf"linear: {which} must have {ndim} dimensions? {layout}, got "
                      rf"{len(shape)} \(shape {re.escape(str(shape))}\)",
                      fastconv.linear, args["x"], args["weight"], args["bias"])


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=BAD_DTYPE_IDS)
@pytest.mark.parametrize("which", ["x", "weight", "bias"])
def test_linear_bad_dtype(which, dtype):
    args = {"x": LX(), "weight": LW(), "bias": LB()}
    args[which] = arr(args[which].shape, dtype)
    raises_unmodified(TypeError, rf"linear: {which} must have dtype float32 or float64, got "
                      rf"{np.dtype(dtype).name}",
                      fastconv.linear, args["x"], args["weight"], args["bias"])


@pytest.mark.parametrize("which", ["weight", "bias"])
def test_linear_mixed_dtypes(which):
    args = {"x": LX(F32), "weight": LW(F32), "bias": LB(F32)}
    args[which] = args[which].astype(F64)
    raises_unmodified(TypeError, rf"linear: {which} has dtype float64 but x has dtype float32; "
                      rf"they must match", fastconv.linear, args["x"], args["weight"],
                      args["bias"])


@pytest.mark.parametrize("which", ["x", "weight", "bias"])
def test_linear_list_input(which):
    args = {"x": LX(), "weight": LW(), "bias": LB()}
    args[which] = args[which].tolist()
    raises_unmodified(TypeError, rf"linear: {which} must be a numpy.ndarray, got list",
                      fastconv.linear, args["x"], args["weight"], args["bias"])


def test_linear_feature_mismatch():
    raises_unmodified(ValueError, r"linear: weight has 6 input features \(weight.shape\[1\]\) "
                      r"but x has 5 \(x.shape\[1\]\)", fastconv.linear, LX(), arr((4, 6)))


def test_linear_wrong_bias_shape():
    raises_unmodified(ValueError, r"linear: bias must have shape \(4,\) to match "
                      r"weight.shape\[0\], got \(5,\)", fastconv.linear, LX(), LW(), arr((5,)))


def test_linear_empty_batch_returns_empty():
    out = fastconv.linear(arr((0, 5)), LW(), LB())
    assert out.shape == (0, 4) and out.dtype == F32


# ----------------------------------------------------------------- runtime settings

@pytest.fixture
def default_threads():
    """Leave the thread count at its default (following OMP_NUM_THREADS) afterwards."""
    yield
    fastconv.set_num_threads(None)


def test_set_num_threads_zero(default_threads):
    before = fastconv.get_num_threads()
    with pytest.raises(ValueError, match=r"set_num_threads: n must be non-zero, got 0"):
        fastconv.set_num_threads(0)
    assert fastconv.get_num_threads() == before


@pytest.mark.parametrize("n, tname", [(1.5, "1.5"), ("2", "'2'"), (True, "True"),
                                      (2.0, "2.0"), ([2], r"\[2\]")])
def test_set_num_threads_not_int(n, tname, default_threads):
    before = fastconv.get_num_threads()
    with pytest.raises(TypeError, match=rf"set_num_threads: n must be an int or None, got "
                       rf"{tname}"):
        fastconv.set_num_threads(n)
    assert fastconv.get_num_threads() == before


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@pytest.mark.parametrize("n", [-1, -2, -3, -10**6])
def test_set_num_threads_negative_counts_back_from_cpus(n, default_threads):
    fastconv.set_num_threads(n)
    assert fastconv.get_num_threads() == max(1, _cpus() + 1 + n)


def test_set_num_threads_accepts_numpy_int(default_threads):
    fastconv.set_num_threads(np.int64(3))
    assert fastconv.get_num_threads() == 3
    assert type(fastconv.get_num_threads()) is int


@pytest.mark.parametrize("n", [1025, 200000, 2**31])
def test_set_num_threads_absurd_count_is_rejected(n, default_threads):
    before = fastconv.get_num_threads()
    with pytest.raises(ValueError, match=rf"set_num_threads: n must be at most 1024, got {n}"):
        fastconv.set_num_threads(n)
    assert fastconv.get_num_threads() == before


@pytest.mark.parametrize("level", ["sse9", "AVX2", "", None, "avx-512"])
def test_set_simd_unknown_level(level):
    before = fastconv._get_simd()
    with pytest.raises(ValueError, match=rf"SIMD level {re.escape(repr(level))} is not "
                       rf"supported here; available: \[.*'portable'.*\]"):
        fastconv._set_simd(level)
    assert fastconv._get_simd() == before


def test_set_simd_level_above_cpu():
    missing = [lv for lv in ("avx2", "avx512") if lv not in fastconv._simd_levels()]
    if not missing:
        pytest.skip("this CPU supports every SIMD level")
    with pytest.raises(ValueError, match=rf"SIMD level '{missing[-1]}' is not supported here"):
        fastconv._set_simd(missing[-1])
