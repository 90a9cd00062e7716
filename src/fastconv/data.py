"""Fashion-MNIST from its IDX files, batching, normalisation and augmentation.

The data set is read from a directory holding the four standard IDX files
(plain or gzip)::

    train-images-idx3-ubyte[.gz]   train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]    t10k-labels-idx1-ubyte[.gz]

The directory is, in order: the ``root`` argument, ``$FASTCONV_DATA``, or
``/usr/share/datasets/fashion-mnist`` (where Debian's ``dataset-fashion-mnist``
package installs it). A class-balanced sample (3500 training and 1000 test
images, MIT licence, see ``sample_data/README.md``) ships inside the package, so
``load_fashion_mnist(split, sample=True)`` works on any machine.

Examples
--------
>>> from fastconv import data
>>> images, labels = data.load_fashion_mnist(split="train", sample=True)
>>> images.shape, images.dtype, labels.dtype
((3500, 28, 28), dtype('uint8'), dtype('int64'))
>>> x = data.normalize(images)                      # float32 (N, 1, 28, 28)
>>> for xb, yb in data.batches(x, labels, 128, shuffle=True, rng=0):
...     xb = data.random_shift_flip(xb, rng=1, fill=data.normalize(0))
"""

import numbers
import os
from pathlib import Path

import numpy as np

__all__ = [
    "CLASSES",
    "DEFAULT_DATA_DIR",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "Batches",
    "batches",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "normalize",
    "random_shift_flip",
    "read_idx",
]

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
DATA_ENV = "FASTCONV_DATA"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DOWNLOAD_URL = "https://github.com/zalandoresearch/fashion-mnist#get-the-data"
_SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"

#: The ten Fashion-MNIST classes; label ``k`` is ``CLASSES[k]``.
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# Mean and population (ddof=0) standard deviation of all 60000*28*28 pixels of
# the Fashion-MNIST training images scaled to [0, 1]. Computed exactly, with
# fractions.Fraction, from the counts of each pixel value (np.bincount), then
# rounded to float; x = load_fashion_mnist(split="train")[0] / 255.0 and
# x.mean(), x.std() in float64 agree to 1e-16.
FASHION_MNIST_MEAN = 0.2860405969887955
FASHION_MNIST_STD = 0.3530242445149226

_SPLITS = {"train": "train", "test": "t10k"}
_IDX_UBYTE = 0x08          # IDX type code of unsigned bytes, the third magic byte
_IDX_MAX_DIMS = 8          # a larger dimension count means this is not an IDX file
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 24


# --- IDX files ------------------------------------------------------------------------------

def read_idx(path):
    """Read an IDX file of unsigned bytes, plain or gzip-compressed.

    IDX is the format of MNIST and Fashion-MNIST: a big-endian header (magic
    ``0x0000TTDD``, ``TT`` the type code, ``DD`` the number of dimensions, then one
    32-bit size per dimension) followed by the values in C order. Images are
    ``0x00000803`` (N, rows, cols), labels ``0x00000801`` (N,). Compression is
    recognised from the content, not the file name.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    numpy.ndarray
        A writable ``uint8`` array with the shape the header gives.

    Raises
    ------
    ValueError
        The file is not an unsigned-byte IDX file (bad magic), is truncated, has
        bytes after the data, or its gzip stream is corrupt. The message names the
        path.
    OSError
        The file cannot be opened (``FileNotFoundError`` when it does not exist).

    Examples
    --------
    >>> read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").shape
    ... # doctest: +SKIP
    (10000,)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            return _read_idx_stream(raw, path)
    import gzip
    import zlib
    try:
        with gzip.open(path, "rb") as f:
            return _read_idx_stream(f, path)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


def _read_exactly(f, size):
    """Up to ``size`` bytes from ``f``, fewer only at the end of the file."""
    buf = bytearray()
    while len(buf) < size:
        chunk = f.read(min(_CHUNK, size - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _read_idx_stream(f, path):
    header = _read_exactly(f, 4)
    if len(header) < 4:
        raise ValueError(f"{path}: truncated IDX file: {len(header)} bytes, "
                         "shorter than the 4-byte magic number")
    magic = int.from_bytes(header, "big")
    kind, ndim = header[2], header[3]
    if header[:2] != b"\0\0" or not 1 <= ndim <= _IDX_MAX_DIMS:
        raise ValueError(f"{path}: not an IDX file (magic {magic:#010x}; expected 0x00000801 "
                         "for labels or 0x00000803 for images)")
    if kind != _IDX_UBYTE:
        raise ValueError(f"{path}: IDX data type {kind:#04x} is not supported (magic "
                         f"{magic:#010x}); only unsigned bytes (0x08) are read")
    sizes = _read_exactly(f, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX file: header ends before its {ndim} sizes")
    shape = tuple(int.from_bytes(sizes[4 * i:4 * i + 4], "big") for i in range(ndim))
    count = 1
    for n in shape:
        count *= n
    # One byte more than needed, so that trailing bytes are noticed.
    data = _read_exactly(f, count + 1)
    if len(data) < count:
        raise ValueError(f"{path}: truncated IDX file: header gives shape {shape} "
                         f"({count} bytes of data), found {len(data)}")
    if len(data) > count:
        raise ValueError(f"{path}: unexpected bytes after the {count} bytes of data that "
                         f"the header's shape {shape} gives")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


# --- Fashion-MNIST --------------------------------------------------------------------------

def _split_prefix(split):
    if not isinstance(split, str) or split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _SPLITS[split]


def _file_names(prefix):
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_file(directory, name):
    """``directory/name`` or ``directory/name.gz``, whichever exists, else None."""
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _resolve_root(root):
    """``(directory, how it was chosen)`` from the argument, the environment, the default."""
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a str, os.PathLike or None, got {type(root).__name__}")
        return Path(root), "the root argument"
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env), f"${DATA_ENV}"
    return DEFAULT_DATA_DIR, "the default directory"


def _missing_message(directory, origin, missing):
    files = ", ".join(f"{name}[.gz]" for name in missing)
    return (
        f"Fashion-MNIST not found in {directory} (from {origin}): missing {files}.\n"
        "To get it, either\n"
        f"  - install the Debian/Ubuntu package: sudo apt install {DEBIAN_PACKAGE}\n"
        f"    (it puts the files in {DEFAULT_DATA_DIR}), or\n"
        "  - download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
        "    t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from\n"
        f"    {DOWNLOAD_URL} into a directory DIR\n"
        f"    and pass it as --data DIR (python -m fastconv), root=DIR, or ${DATA_ENV}=DIR.\n"
        "Without either, the small sample shipped with fastconv works:\n"
        "load_fashion_mnist(split, sample=True)."
    )


def find_fashion_mnist(root=None):
    """The directory holding all four Fashion-MNIST files, or None to use the sample.

    The directory is ``root`` when given, else ``$FASTCONV_DATA`` when set and
    not empty, else :data:`DEFAULT_DATA_DIR` (``/usr/share/datasets/fashion-mnist``).

    Parameters
    ----------
    root : str, os.PathLike or None
        A directory named by the user (``--data DIR``).

    Returns
    -------
    pathlib.Path or None
        The directory when it holds the four files (plain or ``.gz``). ``None``
        when no directory was named (``root`` is None and ``$FASTCONV_DATA`` unset)
        and the default directory lacks them: the caller may then fall back to
        the embedded sample, ``load_fashion_mnist(split, sample=True)``.

    Raises
    ------
    FileNotFoundError
        A directory was named (argument or environment) and lacks some of the
        files. The message says how to get the data.

    Examples
    --------
    >>> root = find_fashion_mnist(args.data)   # doctest: +SKIP
    >>> x, y = load_fashion_mnist(root, "train", sample=root is None)  # doctest: +SKIP
    """
    directory, origin = _resolve_root(root)
    missing = [name for prefix in _SPLITS.values() for name in _file_names(prefix)
               if _find_file(directory, name) is None]
    if not missing:
        return directory
    if root is None and not os.environ.get(DATA_ENV):
        return None
    raise FileNotFoundError(_missing_message(directory, origin, missing))


def load_fashion_mnist(root=None, split="train", *, sample=False):
    """Load one split of Fashion-MNIST: 28x28 grey images of clothes in ten classes.

    Parameters
    ----------
    root : str, os.PathLike or None
        Directory holding the IDX files of the split (standard names, plain or
        ``.gz``). None means ``$FASTCONV_DATA`` when set and not empty, else
        ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).
    split : {"train", "test"}
        The 60000 training images or the 10000 test images.
    sample : bool
        Load the class-balanced sample shipped inside the package instead:
        3500 training images (the first 350 of each class) and 1000 test images
        (the first 100 of each class), in the order of the full set. Needs no
        files; ``root`` must then be None.

    Returns
    -------
    images : numpy.ndarray
        ``uint8``, shape ``(N, 28, 28)``, pixel values 0 (background) to 255.
    labels : numpy.ndarray
        ``int64``, shape ``(N,)``, values 0 to 9; ``CLASSES[label]`` names them.

    Raises
    ------
    FileNotFoundError
        The files are not in the directory. The message names the directory and
        both ways to get the data (the Debian package ``dataset-fashion-mnist``,
        or downloading the files and pointing ``--data DIR`` / ``$FASTCONV_DATA``
        at them) and mentions ``sample=True``.
    ValueError
        Bad ``split``, ``root`` given with ``sample=True``, or a file that is not
        a Fashion-MNIST IDX file (bad magic, truncated, wrong shape, labels that
        disagree with the images).
    TypeError
        ``root`` is not a path, or ``sample`` is not a bool.

    Examples
    --------
    >>> images, labels = load_fashion_mnist(split="test", sample=True)
    >>> images.shape, labels.shape
    ((1000, 28, 28), (1000,))
    >>> CLASSES[labels[0]]
    'Ankle boot'
    """
    prefix = _split_prefix(split)
    if not isinstance(sample, (bool, np.bool_)):
        raise TypeError(f"sample must be a bool, got {type(sample).__name__}")
    if sample:
        if root is not None:
            raise ValueError(f"root must be None when sample=True (the sample is inside the "
                             f"package), got root={root!r}")
        directory, origin = _SAMPLE_DIR, "the embedded sample"
    else:
        directory, origin = _resolve_root(root)
    names = _file_names(prefix)
    paths = [_find_file(directory, name) for name in names]
    missing = [name for name, path in zip(names, paths) if path is None]
    if missing:
        if sample:
            raise FileNotFoundError(f"the embedded Fashion-MNIST sample is missing from "
                                    f"{directory} ({', '.join(missing)}): fastconv was "
                                    "installed without its package data")
        raise FileNotFoundError(_missing_message(directory, origin, missing))
    images_path, labels_path = paths
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected images of shape (N, 28, 28), "
                         f"got {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected labels of shape (N,), got {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{labels_path} has {len(labels)} labels but {images_path} has "
                         f"{len(images)} images")
    if labels.size and labels.max() >= len(CLASSES):
        raise ValueError(f"{labels_path}: label {int(labels.max())} is out of range 0..9")
    return images, labels.astype(np.int64)


# --- Normalisation --------------------------------------------------------------------------

def _check_real(value, name, *, positive=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or (positive and value <= 0):
        expected = "a finite number > 0" if positive else "a finite number"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return value


def normalize(images, mean=None, std=None):
    """Scale ``uint8`` images to [0, 1], then standardise: ``(x / 255 - mean) / std``.

    Parameters
    ----------
    images : numpy.ndarray or int
        ``uint8`` pixel values, shape ``(N, H, W)`` or ``(N, 1, H, W)``. A single
        ``int`` 0..255 returns that value normalised as a ``float`` (for instance
        ``normalize(0)``, the background, as the ``fill`` of
        :func:`random_shift_flip`).
    mean, std : float or None
        Statistics of the pixel values in [0, 1]. Default: those of the
        Fashion-MNIST training set, :data:`FASHION_MNIST_MEAN` (0.2860) and
        :data:`FASHION_MNIST_STD` (0.3530).

    Returns
    -------
    numpy.ndarray
        ``float32``, shape ``(N, 1, H, W)``, ready for ``Conv2d(1, ...)``. Each
        value is computed in float64 and rounded once.

    Raises
    ------
    TypeError
        ``images`` is not a ``uint8`` array, or ``mean``/``std`` not real numbers.
    ValueError
        Wrong shape, or ``std`` not > 0, or a statistic not finite.

    Examples
    --------
    >>> x = normalize(np.array([[[0, 255]]], dtype=np.uint8))
    >>> x.shape, x.dtype
    ((1, 1, 1, 2), dtype('float32'))
    """
    mean = FASHION_MNIST_MEAN if mean is None else _check_real(mean, "mean")
    std = FASHION_MNIST_STD if std is None else _check_real(std, "std", positive=True)
    if isinstance(images, numbers.Integral) and not isinstance(images, (bool, np.bool_)):
        if not 0 <= images <= 255:
            raise ValueError(f"images must be a pixel value 0..255, got {images}")
        return (int(images) / 255.0 - mean) / std
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy.ndarray of uint8, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"images must have dtype uint8 (pixel values 0..255), "
                        f"got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (N, H, W) or (N, 1, H, W), got {images.shape}")
    table = ((np.arange(256) / 255.0 - mean) / std).astype(np.float32)
    return table[images]


# --- Batching -------------------------------------------------------------------------------

def _as_generator(rng, name="rng"):
    """A numpy Generator from None (fresh entropy), a seed >= 0, or a Generator."""
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"{name} must be a seed >= 0, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(rng).__name__}")


def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class Batches:
    """Mini-batches of ``(x, y)``, one epoch per iteration; see :func:`batches`."""

    def __init__(self, x, y, batch_size, *, shuffle=False, rng=None, drop_last=False):
        for name, array in (("x", x), ("y", y)):
            if not isinstance(array, np.ndarray):
                raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
            if array.ndim == 0:
                raise ValueError(f"{name} must have at least one dimension (the samples)")
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
        if not isinstance(drop_last, (bool, np.bool_)):
            raise TypeError(f"drop_last must be a bool, got {type(drop_last).__name__}")
        self.x, self.y = x, y
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.rng = _as_generator(rng) if shuffle else None

    def __len__(self):
        """Number of batches per epoch."""
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n, b = len(self.x), self.batch_size
        stop = len(self) * b
        if not self.shuffle:
            for start in range(0, min(stop, n), b):
                yield self.x[start:start + b], self.y[start:start + b]
            return
        order = self.rng.permutation(n)
        for start in range(0, min(stop, n), b):
            index = order[start:start + b]
            yield self.x[index], self.y[index]

    def __repr__(self):
        return (f"Batches(n={len(self.x)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, batches={len(self)})")


def batches(x, y, batch_size, *, shuffle=False, rng=None, drop_last=False):
    """Iterate over ``(x, y)`` in mini-batches, like a PyTorch ``DataLoader``.

    The result is re-iterable: each ``for`` loop over it is one epoch, and
    ``len()`` is the number of batches per epoch.

    Parameters
    ----------
    x, y : numpy.ndarray
        Inputs and targets, the samples along the first axis, same length.
    batch_size : int
        Samples per batch, >= 1.
    shuffle : bool
        Visit the samples in a new random order in every epoch.
    rng : None, int or numpy.random.Generator
        Source of the shuffling (ignored without ``shuffle``). A seed makes the
        whole sequence of epochs reproducible: the same seed gives the same
        orders, epoch after epoch, and each epoch a different one. A Generator
        is used (and advanced) directly. None takes fresh entropy.
    drop_last : bool
        Leave out the last batch when it has fewer than ``batch_size`` samples.

    Returns
    -------
    Batches
        Yields ``(xb, yb)``. Without shuffling these are views of ``x`` and
        ``y`` (do not modify them in place); with shuffling, copies.

    Raises
    ------
    TypeError
        ``x``/``y`` not arrays, ``batch_size`` not an int, a flag not a bool,
        ``rng`` of another type.
    ValueError
        ``x`` and ``y`` of different lengths, ``batch_size`` < 1, negative seed.

    Examples
    --------
    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [yb.tolist() for _, yb in batches(x, y, 2)]
    [[0, 1], [2, 3], [4]]
    >>> len(batches(x, y, 2, drop_last=True))
    2
    """
    return Batches(x, y, batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last)


# --- Augmentation ---------------------------------------------------------------------------

def random_shift_flip(xb, rng=None, max_shift=2, flip=True, *, fill=0):
    """Randomly mirror each image left-right and translate it by a few pixels.

    Each image is independently flipped horizontally with probability 1/2 (when
    ``flip``), then shifted by ``dy, dx`` drawn uniformly from
    ``-max_shift..max_shift``; pixels shifted in from outside take ``fill``. The
    light augmentation of the training demo, vectorised over the batch.

    Parameters
    ----------
    xb : numpy.ndarray
        A batch, shape ``(N, C, H, W)`` or ``(N, H, W)``, any numeric dtype.
    rng : None, int or numpy.random.Generator
        A seed (reproducible), a Generator (used and advanced) or None.
    max_shift : int
        Largest translation in pixels, >= 0 and smaller than ``H`` and ``W``.
    flip : bool
        Whether to flip at random.
    fill : float
        Value of the uncovered pixels: 0 (black) for raw ``uint8`` images; for
        normalised images the normalised black, ``normalize(0)``.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype; ``xb`` is unchanged.

    Raises
    ------
    TypeError
        ``xb`` not a numeric array, ``max_shift`` not an int, ``flip`` not a bool,
        ``fill`` not a real number, ``rng`` of another type.
    ValueError
        Wrong rank, ``max_shift`` out of range, ``fill`` not representable in
        an integer ``xb``'s dtype.

    Examples
    --------
    >>> xb = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    >>> random_shift_flip(xb, rng=0, max_shift=1).shape
    (2, 1, 4, 4)
    """
    if not isinstance(xb, np.ndarray):
        raise TypeError(f"xb must be a numpy.ndarray, got {type(xb).__name__}")
    if xb.dtype.kind not in "biuf":
        raise TypeError(f"xb must have a numeric dtype, got {xb.dtype}")
    if xb.ndim not in (3, 4):
        raise ValueError(f"xb must have shape (N, C, H, W) or (N, H, W), got {xb.shape}")
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"flip must be a bool, got {type(flip).__name__}")
    fill = _check_real(fill, "fill")
    if xb.dtype.kind in "bui" and (fill != int(fill) or not _fits(int(fill), xb.dtype)):
        raise ValueError(f"fill must be representable in xb's dtype {xb.dtype}, got {fill}")
    m = _check_int(max_shift, "max_shift", 0)
    height, width = xb.shape[-2:]
    if m >= min(height, width):
        raise ValueError(f"max_shift must be smaller than the image size {height}x{width}, "
                         f"got {m}")
    gen = _as_generator(rng)
    n = xb.shape[0]
    x4 = xb if xb.ndim == 4 else xb[:, None]
    dy = gen.integers(-m, m + 1, size=n)
    dx = gen.integers(-m, m + 1, size=n)
    mirrored = gen.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)

    # out[r, c] = img[r - dy, c - dx] (img mirrored first when flipped), read from
    # a copy padded by m on every side so that out-of-image reads give fill.
    padded = np.full(x4.shape[:2] + (height + 2 * m, width + 2 * m), fill, dtype=xb.dtype)
    padded[:, :, m:m + height, m:m + width] = x4
    rows = np.arange(height)[None, :] - dy[:, None] + m                  # (N, H)
    cols = np.arange(width)[None, :] - dx[:, None]                       # (N, W), image coords
    cols = np.where(mirrored[:, None], width - 1 - cols, cols) + m
    out = np.take_along_axis(padded, rows[:, None, :, None], axis=2)
    out = np.take_along_axis(out, cols[:, None, None, :], axis=3)
    return out if xb.ndim == 4 else out[:, 0]


def _fits(value, dtype):
    if dtype.kind == "b":
        return value in (0, 1)
    info = np.iinfo(dtype)
    return info.min <= value <= info.max
