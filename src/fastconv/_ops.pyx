# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Thin wrappers around the C kernels of csrc/.

Each wrapper checks its arrays (type, dtype, rank, shape agreement), makes inputs
C-contiguous (one copy, only when needed), allocates the output (np.empty's, on a
64-byte boundary from 16 KiB on: _empty),
releases the GIL around the C call and turns its status into an exception.
Scalar arguments arrive already normalised to ints by fastconv.functional; their
ranges are checked here. Every message names the function, the argument, the
value received and what was expected.
"""
import math
import operator

import numpy as np

from libc.stdint cimport int64_t, uint32_t, uint64_t
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from ._cfastconv cimport *

cdef extern from "fc_build_info.h":
    const char *FC_BUILD_INFO

ctypedef fused floating:
    float
    double

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# Largest output we agree to allocate: the element count and the byte size must fit
# comfortably in int64 index arithmetic.
cdef int64_t _MAX_ELEMS = (<int64_t>1) << 56
# Bound of every size argument (stride, padding, dilation, kernel_size, groups): with it,
# no index computed in the kernels can overflow int64.
_MAX_ARG = 2**31 - 1


# ----------------------------------------------------------------- runtime queries

def simd_best():
    """Name of the best SIMD level of this CPU and build."""
    return fc_simd_name(fc_simd_best()).decode()


def simd_get():
    return fc_simd_name(fc_simd_get()).decode()


SIMD_LEVELS = ("portable", "avx2", "avx512")


def simd_set(str level):
    """Select the kernel set by name (capped at simd_best()); returns the level in use."""
    if level not in SIMD_LEVELS:
        raise ValueError(f"SIMD level must be one of {SIMD_LEVELS}, got {level!r}")
    return fc_simd_name(fc_simd_set(SIMD_LEVELS.index(level))).decode()


GEMM_TILES = ("narrow", "wide")


def gemm_tile_default():
    """The AVX-512 float GEMM tile this CPU gets by default: 'wide' or 'narrow'."""
    return GEMM_TILES[fc_wide_tile_default()]


def gemm_tile_get():
    return GEMM_TILES[fc_wide_tile_get()]


def gemm_tile_set(str tile):
    """Select the AVX-512 float GEMM tile ('narrow' 8x16, 'wide' 8x32, or 'default');
    returns the previous setting."""
    if tile not in GEMM_TILES + ("default",):
        raise ValueError(f"GEMM tile must be one of {GEMM_TILES + ('default',)}, got {tile!r}")
    previous = gemm_tile_get()
    fc_wide_tile_set(-1 if tile == "default" else GEMM_TILES.index(tile))
    return previous


def sgemm_tile():
    """'MRxNR' of the float GEMM micro-tile in use (it follows the SIMD level and tile)."""
    return fc_sgemm_tile().decode()


def fma_peak(level=None, double seconds=0.1):
    """Single-thread FP32 FMA rate in GFLOP/s of a SIMD level's kernel set (default: the
    best this CPU has), measured on the calling thread: the fastest of 5 runs of about
    seconds / 5 each of independent FMA chains (a run the machine interrupts is slower,
    never faster)."""
    import time
    if level is None:
        level = simd_best()
    if level not in SIMD_LEVELS:
        raise ValueError(f"level must be one of {SIMD_LEVELS} or None, got {level!r}")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    cdef int lvl = SIMD_LEVELS.index(level)
    cdef int64_t iters = 1 << 12
    cdef double flops = 0, t = 0, best = 0
    while True:  # calibrate: a run of at least 2 ms
        t0 = time.perf_counter()
        with nogil:
            fc_fma_probe(lvl, iters, &flops)
        t = time.perf_counter() - t0
        if t >= 2e-3 or iters >= (1 << 40):
            break
        iters *= 4
    iters = max(1, <int64_t>(iters * (seconds / 5) / t))
    for _ in range(5):
        t0 = time.perf_counter()
        with nogil:
            fc_fma_probe(lvl, iters, &flops)
        t = time.perf_counter() - t0
        best = max(best, flops / t / 1e9)
    return best


def openmp_enabled():
    return bool(fc_openmp_enabled())


def malloc_keep(size_t mmap_threshold, size_t trim_threshold):
    """Set glibc malloc's mmap and trim thresholds; False where there are none."""
    return bool(fc_malloc_keep(mmap_threshold, trim_threshold))


STREAM_MIN_BYTES = FC_STREAM_MIN_BYTES


def stream_output(a):
    """Whether the kernels that stage output rows write the array a with streaming
    stores (fastconv.h, fc_stream_output): its size and the residency of its pages."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"stream_output: a must be a numpy.ndarray, got {type(a).__name__}")
    return bool(fc_stream_output(<const void *><size_t>a.ctypes.data, <size_t>a.nbytes))


def max_threads():
    return fc_max_threads()


def parallel_min_flops(flops=None):
    """The flops below which a convolution or GEMM runs on one thread; sets it when
    flops is given (tests use 0 so that every shape runs its parallel paths). Returns
    the value before."""
    return fc_parallel_min_flops(-1.0 if flops is None else float(flops))


def build_info():
    """How the extension was compiled: {'compiler', 'cflags', 'isa_cflags'}."""
    import json
    return json.loads(FC_BUILD_INFO.decode())


# ----------------------------------------------------------------- argument checks

cdef _check_ndarray(str fn, str name, object a):
    if not isinstance(a, np.ndarray):
        what = f"a NumPy scalar ({type(a).__name__})" if isinstance(a, np.generic) else \
            type(a).__name__
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {what}")
    if a.dtype not in _FLOATS:
        raise TypeError(f"{fn}: {name} must have dtype float32 or float64, got {a.dtype}")


cdef object _array(str fn, str name, object a, int ndim, str layout):
    """a as a C-contiguous float32/float64 array of rank ndim (copied only if needed)."""
    _check_ndarray(fn, name, a)
    if a.ndim != ndim:
        raise ValueError(f"{fn}: {name} must have {ndim} dimension{'s' if ndim > 1 else ''} "
                         f"{layout}, got {a.ndim} (shape {a.shape})")
    return np.ascontiguousarray(a)


cdef _same_dtype(str fn, str name, object a, object ref, str ref_name):
    if a.dtype != ref.dtype:
        raise TypeError(f"{fn}: {name} has dtype {a.dtype} but {ref_name} has dtype "
                        f"{ref.dtype}; they must match")


cdef _in_range(str fn, str name, object value, int lowest):
    """Each int of value (an int or a tuple) lies in [lowest, 2**31 - 1]."""
    for v in (value if isinstance(value, tuple) else (value,)):
        if v < lowest:
            kind = "positive" if lowest == 1 else "non-negative"
            raise ValueError(f"{fn}: {name} must be {kind}, got {value}")
        if v > _MAX_ARG:
            raise ValueError(f"{fn}: {name} must be at most 2**31 - 1, got {value}")


cdef _window_fits(str fn, str what, tuple size, tuple kernel, tuple padding, tuple dilation,
                  str name):
    """The dilated window fits in the padded input, in exact (Python int) arithmetic."""
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    padded = tuple(n + 2 * p for n, p in zip(size, padding))
    if span[0] > padded[0] or span[1] > padded[1]:
        raise ValueError(f"{fn}: the {what} {kernel} with dilation {dilation} spans {span}, "
                         f"larger than the padded input {padded} ({name})")


cdef _check_status(str fn, fc_status st):
    if st == FC_ENOMEM:
        raise MemoryError(f"{fn}: out of memory for the kernel's workspace")
    if st != FC_OK:
        raise ValueError(f"{fn}: the kernel rejected its arguments (status {<int>st})")


cdef _check_out(str fn, object out, tuple shape, object dtype, tuple inputs):
    """An out= argument: a writeable C-contiguous ndarray of the result's shape and
    dtype that shares no memory with the inputs."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{fn}: out must have dtype {np.dtype(dtype)} (that of x), "
                        f"got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{fn}: out must have the result's shape {shape}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{fn}: out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{fn}: out must be writeable")
    for a in inputs:
        if isinstance(a, np.ndarray) and np.may_share_memory(out, a):
            raise ValueError(f"{fn}: out must not share memory with an input")


cdef _check_elems(str fn, tuple shape, str what="the output shape"):
    cdef object total = 1
    for s in shape:
        total *= s
    if total > _MAX_ELEMS:
        raise ValueError(f"{fn}: {what} {shape} has {total} elements, more than "
                         f"this library can index (at most 2**56)")


# Every output of 16 KiB or more that a wrapper allocates starts on a 64-byte boundary
# (a cache line; an AVX-512 vector), as PyTorch's CPU tensors do: np.empty promises 16
# bytes, and a kernel that stores whole vectors along an output plane then splits every
# store over two lines. Intel Xeon VM, 1 thread: fmnist_c1's forward at batch 64 into an
# output on a 64-byte boundary took 0.83 of the time of one 16, 32 or 48 bytes past it
# (0.353 against 0.426 ms; batch 8: 0.85, batch 1: 0.94; r18_conv1: 0.98), and with
# outputs it allocates, 0.397-0.405 -> 0.333-0.338 ms. Below 16 KiB, np.empty's own.
cdef int64_t _OUT_ALIGN = 64
cdef int64_t _OUT_ALIGN_MIN_BYTES = 16384


cdef object _empty(tuple shape, object dtype):
    """np.empty(shape, dtype), C-contiguous, on a 64-byte boundary when 16 KiB or more.
    The array is a view of a byte buffer (its base) a little larger than it."""
    dt = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
    cdef int64_t n = 1
    for s in shape:
        n *= <int64_t>s
    cdef int64_t nbytes = n * <int64_t>dt.itemsize
    if nbytes < _OUT_ALIGN_MIN_BYTES:
        return np.empty(shape, dt)
    buf = np.empty(nbytes + _OUT_ALIGN, np.uint8)
    cdef Py_buffer view
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    cdef size_t addr = <size_t>view.buf
    PyBuffer_Release(&view)
    return np.ndarray(shape, dt, buf, <int64_t>((-addr) & <size_t>(_OUT_ALIGN - 1)))


cdef inline floating *_ptr(floating[::1] a) noexcept:
    """Data pointer of an optional 1-D view of an output (NULL for None)."""
    return NULL if a is None else &a[0]


cdef inline const floating *_cptr(const floating[::1] a) noexcept:
    return NULL if a is None else &a[0]


cdef object _flat(object a):
    """A C-contiguous array (or None) as a 1-D view of the same memory."""
    return None if a is None else a.reshape(-1)


def _needs(str fn, object needs):
    """needs as a tuple of three bools (grad_x, grad_w, grad_b)."""
    if not isinstance(needs, (tuple, list)) or len(needs) != 3:
        raise ValueError(f"{fn}: needs must be a sequence of three bools "
                         f"(grad_x, grad_w, grad_b), got {needs!r}")
    for v in needs:
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{fn}: needs must hold bools, got {needs!r}")
    return tuple(bool(v) for v in needs)


# ----------------------------------------------------------------- conv2d

# Algorithm codes of conv2d_forward / conv2d_backward (functional.py maps the names).
ALGO_IM2COL = 0
ALGO_DIRECT = 1
ALGO_WINOGRAD = 2


cdef _conv2d_call(floating[:, :, :, ::1] out, const floating[:, :, :, ::1] x,
                  const floating[:, :, :, ::1] w, object b, fc_conv2d_geom *g, int algo,
                  int num_threads):
    cdef const floating[::1] bmv
    cdef const floating *bp = NULL
    cdef fc_status st
    if b is not None:
        bmv = b
        bp = &bmv[0]
    cdef floating *op = &out[0, 0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    with nogil:
        if floating is float:
            if algo == 1:
                st = fc_conv2d_forward_direct_f32(op, xp, wp, bp, g, num_threads)
            elif algo == 2:
                st = fc_conv2d_forward_winograd_f32(op, xp, wp, bp, g, num_threads)
            else:
                st = fc_conv2d_forward_im2col_f32(op, xp, wp, bp, g, num_threads)
        else:
            if algo == 1:
                st = fc_conv2d_forward_direct_f64(op, xp, wp, bp, g, num_threads)
            elif algo == 2:
                st = fc_conv2d_forward_winograd_f64(op, xp, wp, bp, g, num_threads)
            else:
                st = fc_conv2d_forward_im2col_f64(op, xp, wp, bp, g, num_threads)
    _check_status("conv2d", st)


def conv2d_geometry(x_shape, w_shape, tuple stride, tuple padding, tuple dilation,
                    object groups, bint same=False, str fn="conv2d"):
    """Check a convolution's shapes and return (OH, OW).

    padding holds the top/left padding; with same=True the output keeps the input's
    size (stride 1), the remainder of an odd total padding going to the bottom/right.
    """
    cdef int64_t OH, OW
    N, C, H, W = x_shape
    OC, Cg, KH, KW = w_shape
    _in_range(fn, "stride", stride, 1)
    _in_range(fn, "dilation", dilation, 1)
    _in_range(fn, "groups", groups, 1)
    if same:
        _in_range(fn, "the padding that padding='same' needs,", padding, 0)
    else:
        _in_range(fn, "padding", padding, 0)
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"{fn}: x must have non-zero channels, height and width, "
                         f"got shape {tuple(x_shape)}")
    if OC == 0 or Cg == 0 or KH == 0 or KW == 0:
        raise ValueError(f"{fn}: weight must have no zero-size dimension, got shape "
                         f"{tuple(w_shape)}")
    if C % groups:
        raise ValueError(f"{fn}: groups={groups} must divide the input channels C={C}")
    if OC % groups:
        raise ValueError(f"{fn}: groups={groups} must divide the output channels "
                         f"(weight.shape[0]={OC})")
    if Cg * groups != C:
        raise ValueError(f"{fn}: weight has {Cg} input channels per group "
                         f"(weight.shape[1]), expected C/groups = {C}/{groups} = {C // groups} "
                         f"for x of shape {tuple(x_shape)}")
    if same:
        if stride != (1, 1):
            raise ValueError(f"{fn}: padding='same' needs stride 1, got stride={stride}")
        return H, W
    _window_fits(fn, "kernel", (H, W), (KH, KW), padding, dilation, "weight")
    # Safe in int64 now: every term is below 2**62.
    fc_out_size(H, KH, stride[0], padding[0], dilation[0], 0, &OH)
    fc_out_size(W, KW, stride[1], padding[1], dilation[1], 0, &OW)
    return OH, OW


cdef dict _geometry_cache = {}


cdef bint _exact_ints(tuple t):
    for v in t:
        if type(v) is not int:
            return False
    return True


cdef tuple _geometry(tuple x_shape, tuple w_shape, tuple stride, tuple padding,
                     tuple dilation, object groups, bint same, str fn):
    """conv2d_geometry, answered from a cache for arguments already checked once. Only
    plain ints are cached, so an argument of another type (True, 1.0, an np.int64,
    which compare equal to an int) is always checked as given; and only results are
    cached, so a bad call raises every time."""
    if not (type(groups) is int and _exact_ints(stride) and _exact_ints(padding)
            and _exact_ints(dilation)):
        return conv2d_geometry(x_shape, w_shape, stride, padding, dilation, groups, same, fn)
    key = (x_shape, w_shape, stride, padding, dilation, groups, same)
    hit = _geometry_cache.get(key)
    if hit is None:
        hit = conv2d_geometry(x_shape, w_shape, stride, padding, dilation, groups, same, fn)
        if len(_geometry_cache) >= 1024:
            _geometry_cache.clear()
        _geometry_cache[key] = hit
    return hit


cdef fc_conv2d_geom _conv_geom(tuple x_shape, tuple w_shape, tuple stride, tuple padding,
                               tuple dilation, object groups, int64_t OH, int64_t OW):
    """The C geometry of a convolution already checked by conv2d_geometry."""
    cdef fc_conv2d_geom g
    g.N, g.C, g.H, g.W = x_shape
    g.OC, _, g.KH, g.KW = w_shape
    g.SH, g.SW = stride
    g.PH, g.PW = padding
    g.DH, g.DW = dilation
    g.G = groups
    g.OH, g.OW = OH, OW
    return g


def conv2d_forward(x, weight, bias, tuple stride, tuple padding, tuple dilation, object groups,
                   bint same, int algo, int num_threads, out=None):
    """out = conv2d(x, weight, bias); see fastconv.conv2d. algo: an ALGO_* code
    (ALGO_WINOGRAD only for 3x3 kernels, stride 1, dilation 1). out: None, or the
    array to write the result into (checked before anything is written)."""
    given = (x, weight, bias)
    x = _array("conv2d", "x", x, 4, "(N, C, H, W)")  # IN
    weight = _array("conv2d", "weight", weight, 4, "(OC, C/groups, KH, KW)")  # IN
    _same_dtype("conv2d", "weight", weight, x, "x")
    if bias is not None:  # IN
        bias = _array("conv2d", "bias", bias, 1, "(OC,)")
        _same_dtype("conv2d", "bias", bias, x, "x")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"conv2d: bias must have shape ({weight.shape[0]},) to match "
                             f"weight.shape[0], got {bias.shape}")
    OH, OW = _geometry(x.shape, weight.shape, stride, padding, dilation, groups, same,
                       "conv2d")
    oshape = (x.shape[0], weight.shape[0], OH, OW)
    _check_elems("conv2d", oshape)
    if out is None:
        out = _empty(oshape, x.dtype)  # OUT
    else:
        _check_out("conv2d", out, oshape, x.dtype, given)
    if x.shape[0] == 0:
        return out
    cdef fc_conv2d_geom g = _conv_geom(x.shape, weight.shape, stride, padding, dilation,
                                       groups, OH, OW)
    if x.dtype == np.float32:
        _conv2d_call[float](out, x, weight, bias, &g, algo, num_threads)
    else:
        _conv2d_call[double](out, x, weight, bias, &g, algo, num_threads)
    return out


cdef _conv2d_bwd_call(floating[::1] dx, floating[::1] dw, floating[::1] db,
                      const floating[::1] dout, const floating[::1] x,
                      const floating[::1] w, fc_conv2d_geom *g, int algo, int num_threads):
    cdef fc_status st
    cdef floating *dxp = _ptr(dx)
    cdef floating *dwp = _ptr(dw)
    cdef floating *dbp = _ptr(db)
    cdef const floating *doutp = &dout[0]
    cdef const floating *xp = &x[0]
    cdef const floating *wp = &w[0]
    with nogil:
        if floating is float:
            if algo == 1:
                st = fc_conv2d_backward_direct_f32(dxp, dwp, dbp, doutp, xp, wp, g, num_threads)
            elif algo == 2:
                st = fc_conv2d_backward_winograd_f32(dxp, dwp, dbp, doutp, xp, wp, g,
                                                     num_threads)
            else:
                st = fc_conv2d_backward_im2col_f32(dxp, dwp, dbp, doutp, xp, wp, g, num_threads)
        else:
            if algo == 1:
                st = fc_conv2d_backward_direct_f64(dxp, dwp, dbp, doutp, xp, wp, g, num_threads)
            elif algo == 2:
                st = fc_conv2d_backward_winograd_f64(dxp, dwp, dbp, doutp, xp, wp, g,
                                                     num_threads)
            else:
                st = fc_conv2d_backward_im2col_f64(dxp, dwp, dbp, doutp, xp, wp, g, num_threads)
    _check_status("conv2d_backward", st)


def conv2d_backward(grad_out, x, weight, tuple stride, tuple padding, tuple dilation,
                    object groups, bint same, int algo_x, int algo_w, needs,
                    int num_threads):
    """(grad_x, grad_w, grad_b) of conv2d; see fastconv.conv2d_backward.

    algo_x / algo_w (ALGO_* codes) pick the algorithm of the input gradient and of the
    weight (and bias) gradient; when they differ the kernels run in two calls.
    ALGO_WINOGRAD: 3x3 kernels, stride 1, dilation 1; for the input gradient also
    padding <= 2.
    """
    fn = "conv2d_backward"
    needs = _needs(fn, needs)
    grad_out = _array(fn, "grad_out", grad_out, 4, "(N, OC, OH, OW)")  # IN
    x = _array(fn, "x", x, 4, "(N, C, H, W)")  # IN
    weight = _array(fn, "weight", weight, 4, "(OC, C/groups, KH, KW)")  # IN
    _same_dtype(fn, "weight", weight, x, "x")
    _same_dtype(fn, "grad_out", grad_out, x, "x")
    OH, OW = _geometry(x.shape, weight.shape, stride, padding, dilation, groups, same, fn)
    expected = (x.shape[0], weight.shape[0], OH, OW)
    if grad_out.shape != expected:
        raise ValueError(f"{fn}: grad_out must have the forward output's shape {expected} "
                         f"(N, OC, OH, OW), got {grad_out.shape}")
    gx = _empty(x.shape, x.dtype) if needs[0] else None  # OUT
    gw = _empty(weight.shape, x.dtype) if needs[1] else None  # OUT
    gb = np.empty(weight.shape[0], dtype=x.dtype) if needs[2] else None  # OUT
    if x.shape[0] == 0 or not any(needs):
        for a in (gw, gb):
            if a is not None:
                a[...] = 0
        return gx, gw, gb
    cdef fc_conv2d_geom g = _conv_geom(x.shape, weight.shape, stride, padding, dilation,
                                       groups, OH, OW)
    if algo_x == algo_w:
        jobs = [(gx, gw, gb, algo_x)]
    else:
        jobs = [(gx, None, None, algo_x), (None, gw, gb, algo_w)]
    for dx, dw, db, algo in jobs:
        if dx is None and dw is None and db is None:
            continue
        if x.dtype == np.float32:
            _conv2d_bwd_call[float](_flat(dx), _flat(dw), db, grad_out.reshape(-1),
                                    x.reshape(-1), weight.reshape(-1), &g, algo, num_threads)
        else:
            _conv2d_bwd_call[double](_flat(dx), _flat(dw), db, grad_out.reshape(-1),
                                     x.reshape(-1), weight.reshape(-1), &g, algo, num_threads)
    return gx, gw, gb


# ----------------------------------------------------------------- max_pool2d

cdef _maxpool_call(floating[:, :, :, ::1] out, int64_t[:, :, :, ::1] idx,
                   const floating[:, :, :, ::1] x, fc_pool2d_geom *g, int num_threads):
    cdef int64_t *ip = NULL
    cdef fc_status st
    if idx is not None:
        ip = &idx[0, 0, 0, 0]
    with nogil:
        if floating is float:
            st = fc_maxpool2d_forward_f32(&out[0, 0, 0, 0], ip, &x[0, 0, 0, 0], g, num_threads)
        else:
            st = fc_maxpool2d_forward_f64(&out[0, 0, 0, 0], ip, &x[0, 0, 0, 0], g, num_threads)
    _check_status("max_pool2d", st)


cdef bint _windows_see_input(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d,
                             int64_t nout):
    """True when every one of the nout windows has a tap inside [0, n)."""
    cdef int64_t o, start, first
    for o in range(nout):
        start = o * s - p
        first = 0 if start >= 0 else (-start + d - 1) // d
        if first >= k or start + first * d >= n:
            return False
    return True


def max_pool2d_forward(x, tuple kernel_size, tuple stride, tuple padding, tuple dilation,
                       bint ceil_mode, bint return_indices, int num_threads, indices_out=None):
    """out[, indices] = max_pool2d(x, ...); see fastconv.max_pool2d.

    indices_out: an int64 C-contiguous array the indices may be written into when its
    shape fits (nn.MaxPool2d reuses one between steps: fresh pages cost time).
    """
    fn = "max_pool2d"
    x = _array(fn, "x", x, 4, "(N, C, H, W)")  # IN
    _in_range(fn, "kernel_size", kernel_size, 1)
    _in_range(fn, "stride", stride, 1)
    _in_range(fn, "dilation", dilation, 1)
    for p, k in zip(padding, kernel_size):
        if p < 0 or 2 * p > k:
            raise ValueError(f"{fn}: padding must be between 0 and half the kernel size "
                             f"{kernel_size}, got padding={padding}")
    cdef fc_pool2d_geom g
    g.N, g.C, g.H, g.W = x.shape
    if g.C == 0 or g.H == 0 or g.W == 0:
        raise ValueError(f"{fn}: x must have non-zero channels, height and width, "
                         f"got shape {x.shape}")
    _window_fits(fn, "window", (g.H, g.W), kernel_size, padding, dilation, "kernel_size")
    g.KH, g.KW = kernel_size
    g.SH, g.SW = stride
    g.PH, g.PW = padding
    g.DH, g.DW = dilation
    # Safe in int64 now: every term is below 2**62.
    fc_out_size(g.H, g.KH, g.SH, g.PH, g.DH, ceil_mode, &g.OH)
    fc_out_size(g.W, g.KW, g.SW, g.PW, g.DW, ceil_mode, &g.OW)
    if (not _windows_see_input(g.H, g.KH, g.SH, g.PH, g.DH, g.OH)
            or not _windows_see_input(g.W, g.KW, g.SW, g.PW, g.DW, g.OW)):
        raise ValueError(f"{fn}: with padding={padding} and dilation={dilation} some window "
                         f"of size {kernel_size} covers only padding (input "
                         f"{g.H}x{g.W}); its maximum would have no input position")
    oshape = (g.N, g.C, g.OH, g.OW)
    _check_elems(fn, oshape)
    out = _empty(oshape, x.dtype)  # OUT
    idx = None
    if return_indices:
        reuse = (isinstance(indices_out, np.ndarray) and indices_out.shape == oshape
                 and indices_out.dtype == np.int64 and indices_out.flags.c_contiguous
                 and indices_out.flags.writeable)
        idx = indices_out if reuse else _empty(oshape, np.int64)  # OUT
    if out.size:
        if x.dtype == np.float32:
            _maxpool_call[float](out, idx, x, &g, num_threads)
        else:
            _maxpool_call[double](out, idx, x, &g, num_threads)
    return (out, idx) if return_indices else out


cdef fc_status _maxpool_bwd_call(floating[::1] dx, const floating[::1] dout,
                                 const int64_t[::1] idx, int64_t planes, int64_t HW,
                                 int64_t OHW, int num_threads):
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_maxpool2d_backward_f32(&dx[0], &dout[0], &idx[0], planes, HW, OHW,
                                           num_threads)
        else:
            st = fc_maxpool2d_backward_f64(&dx[0], &dout[0], &idx[0], planes, HW, OHW,
                                           num_threads)
    return st


cdef _pool_indices_check(str fn, object indices, int64_t HW):
    """ValueError naming the first index of indices outside [0, HW), if there is one."""
    lo, hi = int(indices.min()), int(indices.max())
    if lo < 0 or hi >= HW:
        bad = int(np.flatnonzero((indices < 0) | (indices >= HW))[0])
        raise ValueError(f"{fn}: indices must lie in [0, H*W) = [0, {HW}), got "
                         f"{int(indices.reshape(-1)[bad])} at flat position {bad}")


def max_pool2d_backward(grad_out, indices, input_shape, int num_threads):
    """grad_x of max_pool2d from its indices; see fastconv.max_pool2d_backward."""
    fn = "max_pool2d_backward"
    grad_out = _array(fn, "grad_out", grad_out, 4, "(N, C, OH, OW)")  # IN
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"{fn}: indices must be a numpy.ndarray, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{fn}: indices must have an integer dtype (int64), got {indices.dtype}")
    if indices.shape != grad_out.shape:
        raise ValueError(f"{fn}: indices must have grad_out's shape {grad_out.shape}, "
                         f"got {indices.shape}")
    try:
        if any(isinstance(v, (bool, np.bool_)) for v in input_shape):
            raise TypeError
        shape = tuple(operator.index(v) for v in input_shape)
    except TypeError:
        raise TypeError(f"{fn}: input_shape must be a sequence of 4 ints (N, C, H, W), "
                        f"got {input_shape!r}") from None
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError(f"{fn}: input_shape must be 4 non-negative ints (N, C, H, W), "
                         f"got {input_shape!r}")
    if shape[:2] != grad_out.shape[:2]:
        raise ValueError(f"{fn}: input_shape {shape} must start with grad_out's (N, C) = "
                         f"{grad_out.shape[:2]}")
    _check_elems(fn, shape, "input_shape")
    HW = shape[2] * shape[3]
    if HW == 0 and grad_out.size:
        raise ValueError(f"{fn}: input_shape {shape} has no positions for {grad_out.size} "
                         f"gradients")
    if indices.dtype != np.int64 and indices.size:
        # checked before the cast to int64, so no value wraps; int64 indices are
        # checked by the kernel as it reads them (one pass, not three)
        _pool_indices_check(fn, indices, HW)
    indices = np.ascontiguousarray(indices, dtype=np.int64)  # IN
    gx = _empty(shape, grad_out.dtype)  # OUT
    if gx.size == 0:
        return gx
    planes, OHW = shape[0] * shape[1], grad_out.shape[2] * grad_out.shape[3]
    if OHW == 0:
        gx[...] = 0
        return gx
    cdef fc_status st
    if grad_out.dtype == np.float32:
        st = _maxpool_bwd_call[float](gx.reshape(-1), grad_out.reshape(-1),
                                      indices.reshape(-1), planes, HW, OHW, num_threads)
    else:
        st = _maxpool_bwd_call[double](gx.reshape(-1), grad_out.reshape(-1),
                                       indices.reshape(-1), planes, HW, OHW, num_threads)
    if st == FC_EINVAL:  # an index out of range: gx is dropped, never returned
        _pool_indices_check(fn, indices, HW)
    _check_status(fn, st)
    return gx


# ----------------------------------------------------------------- batch norm passes
# Internal helpers of nn.BatchNorm2d, which checks its input first; x and g are
# C-contiguous (N, C, H, W) arrays of one float dtype, per-channel vectors float64.

cdef _bn_dims(x):
    return x.shape[0], x.shape[1], x.shape[2] * x.shape[3]


cdef _bn_apply_call(floating[::1] out, const floating[::1] x, const double[::1] mean,
                    const double[::1] scale, const double[::1] shift, int64_t N, int64_t C,
                    int64_t HW, int nt):
    with nogil:
        if floating is float:
            fc_batchnorm2d_apply_f32(&out[0], &x[0], &mean[0], &scale[0], &shift[0], N, C, HW,
                                     nt)
        else:
            fc_batchnorm2d_apply_f64(&out[0], &x[0], &mean[0], &scale[0], &shift[0], N, C, HW,
                                     nt)


def batchnorm2d_apply(x, mean, scale, shift, int num_threads):
    """out = (x - mean)*scale + shift per channel."""
    N, C, HW = _bn_dims(x)
    out = _empty(x.shape, x.dtype)
    if x.dtype == np.float32:
        _bn_apply_call[float](out.reshape(-1), x.reshape(-1), mean, scale, shift, N, C, HW,
                              num_threads)
    else:
        _bn_apply_call[double](out.reshape(-1), x.reshape(-1), mean, scale, shift, N, C, HW,
                               num_threads)
    return out


cdef _bn_reduce_call(double[::1] gsum, double[::1] gxsum, const floating[::1] g,
                     const floating[::1] x, const double[::1] mean, const double[::1] invstd,
                     int64_t N, int64_t C, int64_t HW, int nt):
    cdef double *gs = NULL if gsum is None else &gsum[0]
    cdef double *gxs = NULL if gxsum is None else &gxsum[0]
    cdef const floating *xp = _cptr(x)
    cdef const double *mp = NULL if mean is None else &mean[0]
    cdef const double *ip = NULL if invstd is None else &invstd[0]
    with nogil:
        if floating is float:
            fc_batchnorm2d_backward_reduce_f32(gs, gxs, &g[0], xp, mp, ip, N, C, HW, nt)
        else:
            fc_batchnorm2d_backward_reduce_f64(gs, gxs, &g[0], xp, mp, ip, N, C, HW, nt)


def batchnorm2d_backward_reduce(g, x, mean, invstd, bint want_gsum, bint want_gxsum,
                                int num_threads):
    """(sum g, sum g*xhat) per channel, float64 (None where not asked), with
    xhat = (x - mean)*invstd formed as x is read (x, mean, invstd may be None when
    the second sum is not asked)."""
    N, C, HW = _bn_dims(g)
    gsum = np.empty(C) if want_gsum else None
    gxsum = np.empty(C) if want_gxsum else None
    if want_gxsum and x is None:
        raise ValueError("batchnorm2d_backward_reduce: sum g*xhat needs x")
    if g.dtype == np.float32:
        _bn_reduce_call[float](gsum, gxsum, g.reshape(-1), _flat(x), mean, invstd, N, C, HW,
                               num_threads)
    else:
        _bn_reduce_call[double](gsum, gxsum, g.reshape(-1), _flat(x), mean, invstd, N, C, HW,
                                num_threads)
    return gsum, gxsum


cdef _bn_bwd_apply_call(floating[::1] gx, const floating[::1] g, const floating[::1] x,
                        const double[::1] mean, const double[::1] invstd,
                        const double[::1] a, const double[::1] b, const double[::1] c0,
                        int64_t N, int64_t C, int64_t HW, int nt):
    cdef const floating *xp = _cptr(x)
    cdef const double *mp = NULL if mean is None else &mean[0]
    cdef const double *ip = NULL if invstd is None else &invstd[0]
    with nogil:
        if floating is float:
            fc_batchnorm2d_backward_apply_f32(&gx[0], &g[0], xp, mp, ip, &a[0], &b[0], &c0[0],
                                              N, C, HW, nt)
        else:
            fc_batchnorm2d_backward_apply_f64(&gx[0], &g[0], xp, mp, ip, &a[0], &b[0], &c0[0],
                                              N, C, HW, nt)


def batchnorm2d_backward_apply(g, x, mean, invstd, a, b, c0, int num_threads):
    """gx = g*a - xhat*b - c0 per channel, xhat = (x - mean)*invstd (no middle term when
    x is None)."""
    N, C, HW = _bn_dims(g)
    gx = _empty(g.shape, g.dtype)
    if g.dtype == np.float32:
        _bn_bwd_apply_call[float](gx.reshape(-1), g.reshape(-1), _flat(x), mean, invstd, a, b,
                                  c0, N, C, HW, num_threads)
    else:
        _bn_bwd_apply_call[double](gx.reshape(-1), g.reshape(-1), _flat(x), mean, invstd, a, b,
                                   c0, N, C, HW, num_threads)
    return gx


cdef _bn_forward_call(floating[::1] out, double[::1] mean, double[::1] var,
                      double[::1] invstd, const floating[::1] x, const double[::1] weight,
                      const double[::1] bias, double eps, int64_t N, int64_t C, int64_t HW,
                      int nt):
    cdef const double *wp = NULL if weight is None else &weight[0]
    cdef const double *bp = NULL if bias is None else &bias[0]
    with nogil:
        if floating is float:
            fc_batchnorm2d_forward_f32(&out[0], &mean[0], &var[0], &invstd[0], &x[0], wp, bp,
                                       eps, N, C, HW, nt)
        else:
            fc_batchnorm2d_forward_f64(&out[0], &mean[0], &var[0], &invstd[0], &x[0], wp, bp,
                                       eps, N, C, HW, nt)


def batchnorm2d_forward(x, weight, bias, double eps, int num_threads):
    """Batch statistics: (out, mean, biased var, invstd), out = (x - mean)*invstd*weight +
    bias per channel (weight, bias float64 or None); both passes of a channel together."""
    N, C, HW = _bn_dims(x)
    out = _empty(x.shape, x.dtype)
    mean, var, invstd = np.empty(C), np.empty(C), np.empty(C)
    if x.dtype == np.float32:
        _bn_forward_call[float](out.reshape(-1), mean, var, invstd, x.reshape(-1), weight, bias,
                                eps, N, C, HW, num_threads)
    else:
        _bn_forward_call[double](out.reshape(-1), mean, var, invstd, x.reshape(-1), weight,
                                 bias, eps, N, C, HW, num_threads)
    return out, mean, var, invstd


cdef _bn_backward_call(floating[::1] gx, double[::1] gsum, double[::1] gxsum,
                       const floating[::1] g, const floating[::1] x, const double[::1] mean,
                       const double[::1] invstd, const double[::1] scale, int64_t N,
                       int64_t C, int64_t HW, int nt):
    with nogil:
        if floating is float:
            fc_batchnorm2d_backward_f32(&gx[0], &gsum[0], &gxsum[0], &g[0], &x[0], &mean[0],
                                        &invstd[0], &scale[0], N, C, HW, nt)
        else:
            fc_batchnorm2d_backward_f64(&gx[0], &gsum[0], &gxsum[0], &g[0], &x[0], &mean[0],
                                        &invstd[0], &scale[0], N, C, HW, nt)


def batchnorm2d_backward(g, x, mean, invstd, scale, int num_threads):
    """Batch statistics: (gx, sum g, sum g*xhat), gx = g*scale - xhat*(scale*sum g*xhat/M)
    - scale*(sum g)/M per channel, M = N*H*W; both passes of a channel together."""
    N, C, HW = _bn_dims(g)
    gx = _empty(g.shape, g.dtype)
    gsum, gxsum = np.empty(C), np.empty(C)
    if g.dtype == np.float32:
        _bn_backward_call[float](gx.reshape(-1), gsum, gxsum, g.reshape(-1), x.reshape(-1),
                                 mean, invstd, scale, N, C, HW, num_threads)
    else:
        _bn_backward_call[double](gx.reshape(-1), gsum, gxsum, g.reshape(-1), x.reshape(-1),
                                  mean, invstd, scale, N, C, HW, num_threads)
    return gx, gsum, gxsum


# ----------------------------------------------------------------- dropout

cdef _dropout_call(floating[::1] out, floating[::1] mask, const floating[::1] x, uint64_t key,
                   uint32_t thr, double scale, int nt):
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_dropout_forward_f32(&out[0], &mask[0], &x[0], x.shape[0], key, thr,
                                        <float>scale, nt)
        else:
            st = fc_dropout_forward_f64(&out[0], &mask[0], &x[0], x.shape[0], key, thr, scale,
                                        nt)
    _check_status("dropout", st)


def dropout_forward(x, double p, uint64_t key, int num_threads):
    """Internal helper of nn.Dropout (0 < p < 1, x a float array it has checked):
    (out, mask), mask = 1/(1 - p) in x's dtype where an element is kept, else 0, and
    out = x * mask. An element is kept when a 24-bit draw from (key, its index) is at
    least ceil(p * 2^24)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = _empty(x.shape, x.dtype)
    mask = _empty(x.shape, x.dtype)
    cdef uint32_t thr = <uint32_t>math.ceil(p * 16777216.0)
    if flat.shape[0]:
        if x.dtype == np.float32:
            _dropout_call[float](out.reshape(-1), mask.reshape(-1), flat, key, thr,
                                 1.0 / (1.0 - p), num_threads)
        else:
            _dropout_call[double](out.reshape(-1), mask.reshape(-1), flat, key, thr,
                                  1.0 / (1.0 - p), num_threads)
    return out, mask


# ----------------------------------------------------------------- relu, linear

cdef _relu_call(floating[::1] out, const floating[::1] x, int num_threads):
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_relu_forward_f32(&out[0], &x[0], x.shape[0], num_threads)
        else:
            st = fc_relu_forward_f64(&out[0], &x[0], x.shape[0], num_threads)
    _check_status("relu", st)


def relu_forward(x, int num_threads):
    """max(x, 0) elementwise, any shape, NaN propagating; see fastconv.relu."""
    _check_ndarray("relu", "x", x)
    flat = np.ascontiguousarray(x).reshape(-1)  # IN
    out = _empty(x.shape, x.dtype)  # OUT
    if flat.shape[0]:
        if x.dtype == np.float32:
            _relu_call[float](out.reshape(-1), flat, num_threads)
        else:
            _relu_call[double](out.reshape(-1), flat, num_threads)
    return out


cdef _relu_bwd_call(floating[::1] dx, const floating[::1] dout, const floating[::1] x,
                    int num_threads):
    cdef fc_status st
    with nogil:
        if floating is float:
            st = fc_relu_backward_f32(&dx[0], &dout[0], &x[0], x.shape[0], num_threads)
        else:
            st = fc_relu_backward_f64(&dx[0], &dout[0], &x[0], x.shape[0], num_threads)
    _check_status("relu_backward", st)


def relu_backward(grad_out, x, int num_threads):
    """grad_out where x > 0 (or NaN), else 0; see fastconv.relu_backward."""
    fn = "relu_backward"
    _check_ndarray(fn, "grad_out", grad_out)
    _check_ndarray(fn, "x", x)
    _same_dtype(fn, "grad_out", grad_out, x, "x")
    if grad_out.shape != x.shape:
        raise ValueError(f"{fn}: grad_out must have x's shape {x.shape}, got {grad_out.shape}")
    gx = _empty(x.shape, x.dtype)  # OUT
    if gx.size:
        dout = np.ascontiguousarray(grad_out).reshape(-1)  # IN
        xf = np.ascontiguousarray(x).reshape(-1)  # IN
        if x.dtype == np.float32:
            _relu_bwd_call[float](gx.reshape(-1), dout, xf, num_threads)
        else:
            _relu_bwd_call[double](gx.reshape(-1), dout, xf, num_threads)
    return gx


cdef _linear_bwd_call(floating[::1] dx, floating[::1] dw, floating[::1] db,
                      const floating[::1] dout, const floating[::1] x, const floating[::1] w,
                      int64_t N, int64_t IN, int64_t OUT, int num_threads):
    cdef fc_status st
    cdef floating *dxp = _ptr(dx)
    cdef floating *dwp = _ptr(dw)
    cdef floating *dbp = _ptr(db)
    cdef const floating *doutp = &dout[0]
    cdef const floating *xp = _cptr(x)
    cdef const floating *wp = _cptr(w)
    with nogil:
        if floating is float:
            st = fc_linear_backward_f32(dxp, dwp, dbp, doutp, xp, wp, N, IN, OUT, num_threads)
        else:
            st = fc_linear_backward_f64(dxp, dwp, dbp, doutp, xp, wp, N, IN, OUT, num_threads)
    _check_status("linear_backward", st)


def linear_backward(grad_out, x, weight, needs, int num_threads):
    """(grad_x, grad_w, grad_b) of linear; see fastconv.linear_backward."""
    fn = "linear_backward"
    needs = _needs(fn, needs)
    grad_out = _array(fn, "grad_out", grad_out, 2, "(N, out_features)")  # IN
    x = _array(fn, "x", x, 2, "(N, in_features)")  # IN
    weight = _array(fn, "weight", weight, 2, "(out_features, in_features)")  # IN
    _same_dtype(fn, "weight", weight, x, "x")
    _same_dtype(fn, "grad_out", grad_out, x, "x")
    N, IN = x.shape
    OUT = weight.shape[0]
    if weight.shape[1] != IN:
        raise ValueError(f"{fn}: weight has {weight.shape[1]} input features "
                         f"(weight.shape[1]) but x has {IN} (x.shape[1])")
    if grad_out.shape != (N, OUT):
        raise ValueError(f"{fn}: grad_out must have shape {(N, OUT)} (N, out_features), "
                         f"got {grad_out.shape}")
    gx = _empty(x.shape, x.dtype) if needs[0] else None  # OUT
    gw = _empty(weight.shape, x.dtype) if needs[1] else None  # OUT
    gb = np.empty(OUT, dtype=x.dtype) if needs[2] else None  # OUT
    if N == 0 or IN == 0 or OUT == 0:
        for a in (gx, gw, gb):
            if a is not None:
                a[...] = 0
        return gx, gw, gb
    if x.dtype == np.float32:
        _linear_bwd_call[float](_flat(gx), _flat(gw), gb, grad_out.reshape(-1), x.reshape(-1),
                                weight.reshape(-1), N, IN, OUT, num_threads)
    else:
        _linear_bwd_call[double](_flat(gx), _flat(gw), gb, grad_out.reshape(-1), x.reshape(-1),
                                 weight.reshape(-1), N, IN, OUT, num_threads)
    return gx, gw, gb


cdef _linear_call(floating[:, ::1] out, const floating[:, ::1] x, const floating[:, ::1] w,
                  object b, int num_threads):
    cdef const floating[::1] bmv
    cdef const floating *bp = NULL
    cdef fc_status st
    if b is not None:
        bmv = b
        bp = &bmv[0]
    with nogil:
        if floating is float:
            st = fc_linear_forward_f32(&out[0, 0], &x[0, 0], &w[0, 0], bp, x.shape[0],
                                       x.shape[1], w.shape[0], num_threads)
        else:
            st = fc_linear_forward_f64(&out[0, 0], &x[0, 0], &w[0, 0], bp, x.shape[0],
                                       x.shape[1], w.shape[0], num_threads)
    _check_status("linear", st)


def linear_forward(x, weight, bias, int num_threads):
    """x @ weight.T + bias; see fastconv.linear."""
    fn = "linear"
    x = _array(fn, "x", x, 2, "(N, in_features)")  # IN
    weight = _array(fn, "weight", weight, 2, "(out_features, in_features)")  # IN
    _same_dtype(fn, "weight", weight, x, "x")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"{fn}: weight has {weight.shape[1]} input features "
                         f"(weight.shape[1]) but x has {x.shape[1]} (x.shape[1])")
    if bias is not None:  # IN
        bias = _array(fn, "bias", bias, 1, "(out_features,)")
        _same_dtype(fn, "bias", bias, x, "x")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"{fn}: bias must have shape ({weight.shape[0]},) to match "
                             f"weight.shape[0], got {bias.shape}")
    out = _empty((x.shape[0], weight.shape[0]), x.dtype)  # OUT
    if out.size == 0:
        return out
    if x.shape[1] == 0:
        out[...] = 0 if bias is None else bias
        return out
    if x.dtype == np.float32:
        _linear_call[float](out, x, weight, bias, num_threads)
    else:
        _linear_call[double](out, x, weight, bias, num_threads)
    return out


# ----------------------------------------------------------------- gemm (benchmarks, tests)

cdef _gemm_call(floating[:, ::1] c, const floating[:, ::1] a, const floating[:, ::1] b,
                int num_threads):
    cdef fc_status st
    cdef int64_t M = a.shape[0], K = a.shape[1], N = b.shape[1]
    with nogil:
        if floating is float:
            st = fc_sgemm(M, N, K, &a[0, 0], K, 1, &b[0, 0], N, 1, &c[0, 0], N, 0, num_threads)
        else:
            st = fc_dgemm(M, N, K, &a[0, 0], K, 1, &b[0, 0], N, 1, &c[0, 0], N, 0, num_threads)
    _check_status("matmul", st)


def matmul(a, b, int num_threads, out=None):
    """a @ b for 2-D float arrays with the library's GEMM (benchmarks and tests).

    out: optional C-contiguous array of the result's shape and dtype, overwritten
    (so a benchmark can time the product without a fresh allocation)."""
    a = _array("matmul", "a", a, 2, "(M, K)")
    b = _array("matmul", "b", b, 2, "(K, N)")
    _same_dtype("matmul", "b", b, a, "a")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: a.shape[1]={a.shape[1]} must equal b.shape[0]={b.shape[0]}")
    shape = (a.shape[0], b.shape[1])
    if out is None:
        c = _empty(shape, a.dtype)
    else:
        if (not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != a.dtype
                or not out.flags.c_contiguous or not out.flags.writeable):
            raise ValueError(f"matmul: out must be a writeable C-contiguous {a.dtype} array "
                             f"of shape {shape}")
        if np.shares_memory(out, a) or np.shares_memory(out, b):
            raise ValueError("matmul: out must not overlap a or b")
        c = out
    if c.size and a.shape[1]:
        if a.dtype == np.float32:
            _gemm_call[float](c, a, b, num_threads)
        else:
            _gemm_call[double](c, a, b, num_threads)
    elif c.size:
        c[...] = 0
    return c
