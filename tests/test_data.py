"""fastconv.data: IDX reader, Fashion-MNIST loader and sample, normalize, batches, augmentation."""

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest

from fastconv import data

FULL_DIR = Path("/usr/share/datasets/fashion-mnist")
FULL_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
HAVE_FULL = all((FULL_DIR / n).is_file() or (FULL_DIR / (n + ".gz")).is_file()
                for n in FULL_FILES)
SAMPLE_PER_CLASS = {"train": 350, "test": 100}


def idx_bytes(array, magic=None):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) if magic is None else magic.to_bytes(4, "big")
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def write_file(path, payload, gz):
    path = Path(path)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_fashion_dir(directory, n_train=20, n_test=10, seed=0, gz=(True, False)):
    """Small fake Fashion-MNIST files: train gzip, test plain by default."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for (prefix, n), compressed in zip((("train", n_train), ("t10k", n_test)), gz):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        suffix = ".gz" if compressed else ""
        write_file(directory / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), compressed)
        write_file(directory / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), compressed)
        arrays[prefix] = images, labels
    return arrays


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """Neither $FASTCONV_DATA nor the default directory holds the data."""
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    monkeypatch.setattr(data, "DEFAULT_DATA_DIR", tmp_path / "no-such-dir")
    return tmp_path


# --- read_idx --------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("shape", [(7,), (5, 28, 28), (3, 4, 6)], ids=["labels", "images", "rect"])
def test_read_idx_round_trip(tmp_path, gz, shape):
    array = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    path = write_file(tmp_path / ("f.idx" + (".gz" if gz else "")), idx_bytes(array), gz)
    got = data.read_idx(path)
    assert got.dtype == np.uint8 and got.shape == shape
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable
    np.testing.assert_array_equal(data.read_idx(str(path)), array)


def test_read_idx_detects_gzip_by_content(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_no_suffix = write_file(tmp_path / "compressed", idx_bytes(array), gz=True)
    plain_gz_suffix = write_file(tmp_path / "plain.gz", idx_bytes(array), gz=False)
    np.testing.assert_array_equal(data.read_idx(gz_no_suffix), array)
    np.testing.assert_array_equal(data.read_idx(plain_gz_suffix), array)


def test_read_idx_empty_dimension(tmp_path):
    path = write_file(tmp_path / "empty", idx_bytes(np.zeros((0, 28, 28))), gz=False)
    assert data.read_idx(path).shape == (0, 28, 28)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("payload, match", [
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "not an IDX file"),
    (bytes([1, 0, 8, 3]) + bytes(100), "not an IDX file"),
    (bytes([0, 0, 8, 0]) + bytes(100), "not an IDX file"),
    (bytes([0, 0, 8, 200]) + bytes(100), "not an IDX file"),
    (idx_bytes(np.zeros(4), magic=0x0D01), "0x0d is not supported"),
], ids=["png", "high-bytes", "zero-dims", "many-dims", "float-type"])
def test_read_idx_bad_magic(tmp_path, gz, payload, match):
    path = write_file(tmp_path / "bad.idx", payload, gz)
    with pytest.raises(ValueError, match=match) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("cut, match", [
    (lambda b: b[:-1], "truncated IDX file"),          # one data byte short
    (lambda b: b[:10], "truncated IDX file"),          # header ends in the sizes
    (lambda b: b[:2], "truncated IDX file"),           # not even a magic number
    (lambda b: b"", "truncated IDX file"),
    (lambda b: b + b"\0", "unexpected bytes after"),
], ids=["data", "sizes", "magic", "empty", "trailing"])
def test_read_idx_truncated(tmp_path, gz, cut, match):
    payload = cut(idx_bytes(np.ones((2, 28, 28))))
    path = write_file(tmp_path / "short.idx", payload, gz)
    with pytest.raises(ValueError, match=match) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_truncated_gzip_stream(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(4000) % 251))
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(compressed[:len(compressed) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_and_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "nothing")
    with pytest.raises(TypeError, match="path must be"):
        data.read_idx(3)


# --- the embedded sample ---------------------------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
def test_sample_loads(split, no_data):
    images, labels = data.load_fashion_mnist(split=split, sample=True)
    k = SAMPLE_PER_CLASS[split]
    assert images.dtype == np.uint8 and images.shape == (10 * k, 28, 28)
    assert labels.dtype == np.int64 and labels.shape == (10 * k,)
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [k] * 10)
    assert images.min() == 0 and images.max() == 255
    assert (images.reshape(len(images), -1).max(axis=1) > 0).all()  # no blank image
    assert len(data.CLASSES) == 10


def test_sample_errors_and_size():
    with pytest.raises(ValueError, match="root must be None when sample=True"):
        data.load_fashion_mnist("/tmp", sample=True)
    with pytest.raises(TypeError, match="sample must be a bool"):
        data.load_fashion_mnist(sample="yes")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        data.load_fashion_mnist(split="valid", sample=True)
    folder = Path(data.__file__).parent / "sample_data"
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 2_000_000
    licence = (folder / "LICENSE-fashion-mnist.txt").read_text()
    assert "Copyright (c) 2017 Zalando SE" in licence and "MIT" in licence


# --- locating the data -----------------------------------------------------------------------

def test_missing_data_message(no_data):
    for call in (lambda: data.load_fashion_mnist(),                 # default directory
                 lambda: data.load_fashion_mnist(no_data, "test")):  # named directory
        with pytest.raises(FileNotFoundError) as info:
            call()
        message = str(info.value)
        for needle in ("dataset-fashion-mnist", "FASTCONV_DATA", "--data DIR", "sample=True",
                       "t10k-images-idx3-ubyte" if "t10k" in message else "train-images"):
            assert needle in message


def test_fastconv_data_env_is_honoured(tmp_path, monkeypatch, no_data):
    arrays = write_fashion_dir(tmp_path / "env")
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "env"))
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = data.load_fashion_mnist(split=split)
        np.testing.assert_array_equal(images, arrays[prefix][0])
        np.testing.assert_array_equal(labels, arrays[prefix][1])
        assert labels.dtype == np.int64
    assert data.find_fashion_mnist() == tmp_path / "env"
    # The argument wins over the environment.
    other = write_fashion_dir(tmp_path / "arg", n_train=30, seed=1)
    np.testing.assert_array_equal(data.load_fashion_mnist(tmp_path / "arg")[0], other["train"][0])
    # A named directory without the data is an error, not a fallback.
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"from \$FASTCONV_DATA"):
        data.load_fashion_mnist()
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.find_fashion_mnist()


def test_find_fashion_mnist(tmp_path, no_data):
    assert data.find_fashion_mnist() is None  # nothing named, nothing at the default: sample
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.find_fashion_mnist(tmp_path / "empty")
    write_fashion_dir(tmp_path / "full")
    assert data.find_fashion_mnist(tmp_path / "full") == tmp_path / "full"
    (tmp_path / "full" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="missing t10k-labels-idx1-ubyte"):
        data.find_fashion_mnist(tmp_path / "full")
    with pytest.raises(TypeError, match="root must be"):
        data.find_fashion_mnist(5)


@pytest.mark.parametrize("images, labels, match", [
    (np.zeros((3, 27, 28)), np.zeros(3), r"shape \(N, 28, 28\)"),
    (np.zeros((3, 28, 28)), np.zeros((3, 1)), r"shape \(N,\)"),
    (np.zeros((3, 28, 28)), np.zeros(4), "has 4 labels but"),
    (np.zeros((3, 28, 28)), np.array([0, 10, 1]), "label 10 is out of range"),
])
def test_load_rejects_wrong_files(tmp_path, images, labels, match):
    write_file(tmp_path / "train-images-idx3-ubyte", idx_bytes(images), gz=False)
    write_file(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels), gz=False)
    with pytest.raises(ValueError, match=match):
        data.load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not HAVE_FULL, reason=f"full Fashion-MNIST not installed in {FULL_DIR} "
                                          "(Debian package dataset-fashion-mnist)")
def test_full_data_set(monkeypatch):
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = data.load_fashion_mnist(split=split)
        assert images.shape == (n, 28, 28) and labels.shape == (n,)
        np.testing.assert_array_equal(np.bincount(labels), [n // 10] * 10)
        # The sample is the first k of each class, in order.
        k = SAMPLE_PER_CLASS[split]
        index = np.sort(np.concatenate([np.flatnonzero(labels == c)[:k] for c in range(10)]))
        sample_images, sample_labels = data.load_fashion_mnist(split=split, sample=True)
        np.testing.assert_array_equal(sample_images, images[index])
        np.testing.assert_array_equal(sample_labels, labels[index])
    x = images / 255.0  # the test split's statistics are close to the training set's
    assert abs(x.mean() - data.FASHION_MNIST_MEAN) < 0.01
    assert abs(x.std() - data.FASHION_MNIST_STD) < 0.01


# --- normalize -------------------------------------------------------------------------------

def test_normalize_shape_dtype_values():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)  # (1, 2, 2)
    for x in (images, images[:, None]):
        out = data.normalize(x)
        assert out.dtype == np.float32 and out.shape == (1, 1, 2, 2)
        expected = (images[:, None] / 255.0 - data.FASHION_MNIST_MEAN) / data.FASHION_MNIST_STD
        np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert data.normalize(0) == pytest.approx(-data.FASHION_MNIST_MEAN / data.FASHION_MNIST_STD)
    np.testing.assert_allclose(data.normalize(images, mean=0.5, std=0.25)[0, 0, 0],
                               [-2.0, 2.0], rtol=1e-6)


def test_normalize_statistics():
    images, _ = data.load_fashion_mnist(sample=True)
    out = data.normalize(images)
    assert abs(out.mean()) < 0.05 and abs(out.std() - 1) < 0.05  # sample vs training-set stats
    x = images / 255.0
    out = data.normalize(images, mean=x.mean(), std=x.std())
    assert abs(out.mean(dtype=np.float64)) < 1e-6
    assert abs(out.std(dtype=np.float64) - 1) < 1e-6


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(images=np.zeros((2, 28, 28), np.float32)), TypeError, "dtype uint8"),
    (dict(images=[[[0]]]), TypeError, "numpy.ndarray of uint8"),
    (dict(images=np.zeros((2, 3, 28, 28), np.uint8)), ValueError, r"\(N, 1, H, W\)"),
    (dict(images=np.zeros((28, 28), np.uint8)), ValueError, r"\(N, H, W\)"),
    (dict(images=256), ValueError, "0..255"),
    (dict(std=0.0), ValueError, "std must be a finite number > 0"),
    (dict(std=float("nan")), ValueError, "std must be"),
    (dict(mean="0.5"), TypeError, "mean must be a real number"),
])
def test_normalize_errors(kwargs, error, match):
    kwargs.setdefault("images", np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(error, match=match):
        data.normalize(**kwargs)


# --- batches ---------------------------------------------------------------------------------

def paired(n):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)  # row i is (2i, 2i + 1)
    return x, np.arange(n)


def epoch_order(loader):
    order = []
    for xb, yb in loader:
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)  # x and y stay paired
        order.append(yb)
    return np.concatenate(order) if order else np.array([], dtype=int)


def test_batches_in_order_and_last_partial():
    x, y = paired(10)
    loader = data.batches(x, y, 3)
    assert len(loader) == 4
    assert [yb.tolist() for _, yb in loader] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    dropped = data.batches(x, y, 3, drop_last=True)
    assert len(dropped) == 3
    assert [len(yb) for _, yb in dropped] == [3, 3, 3]
    assert len(data.batches(x, y, 5, drop_last=True)) == 2
    assert [len(yb) for _, yb in data.batches(x, y, 20)] == [10]
    assert list(data.batches(x, y, 20, drop_last=True)) == []
    assert list(data.batches(x[:0], y[:0], 4)) == []


@pytest.mark.parametrize("n, batch_size", [(10, 3), (128, 32), (1000, 128), (7, 1)])
def test_batches_shuffle_covers_every_index_once(n, batch_size):
    x, y = paired(n)
    loader = data.batches(x, y, batch_size, shuffle=True, rng=0)
    first, second = epoch_order(loader), epoch_order(loader)
    for order in (first, second):
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
    if n > 5:
        assert not np.array_equal(first, second)  # a new order each epoch
        assert not np.array_equal(first, np.arange(n))
    sizes = [len(yb) for _, yb in loader]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])


def test_batches_seeded_shuffle_reproducible():
    x, y = paired(100)
    a = data.batches(x, y, 16, shuffle=True, rng=42)
    b = data.batches(x, y, 16, shuffle=True, rng=42)
    c = data.batches(x, y, 16, shuffle=True, rng=43)
    for _ in range(3):  # epoch by epoch
        order_a, order_b, order_c = epoch_order(a), epoch_order(b), epoch_order(c)
        np.testing.assert_array_equal(order_a, order_b)
        assert not np.array_equal(order_a, order_c)
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(epoch_order(data.batches(x, y, 16, shuffle=True, rng=g1)),
                                  epoch_order(data.batches(x, y, 16, shuffle=True, rng=g2)))
    assert g1.random() == g2.random()  # the Generator is used and advanced


def test_batches_drop_last_shuffled():
    x, y = paired(10)
    order = epoch_order(data.batches(x, y, 4, shuffle=True, rng=0, drop_last=True))
    assert len(order) == 8 and len(set(order.tolist())) == 8


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((np.zeros(4), np.zeros(4), 0), {}, ValueError, "batch_size must be >= 1"),
    ((np.zeros(4), np.zeros(4), 2.0), {}, TypeError, "batch_size must be an int"),
    ((np.zeros(4), np.zeros(4), True), {}, TypeError, "batch_size must be an int"),
    ((np.zeros(4), np.zeros(5), 2), {}, ValueError, "same length, got 4 and 5"),
    (([0, 1], np.zeros(2), 2), {}, TypeError, "x must be a numpy.ndarray"),
    ((np.zeros(2), np.float64(1.0), 2), {}, TypeError, "y must be a numpy.ndarray"),
    ((np.zeros(2), np.array(1.0), 2), {}, ValueError, "y must have at least one dimension"),
    ((np.zeros(4), np.zeros(4), 2), dict(shuffle=True, rng="seed"), TypeError, "rng must be"),
    ((np.zeros(4), np.zeros(4), 2), dict(shuffle=True, rng=-1), ValueError, "rng must be a seed"),
    ((np.zeros(4), np.zeros(4), 2), dict(shuffle=1), TypeError, "shuffle must be a bool"),
    ((np.zeros(4), np.zeros(4), 2), dict(drop_last=None), TypeError, "drop_last must be a bool"),
])
def test_batches_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        data.batches(*args, **kwargs)


# --- random_shift_flip -----------------------------------------------------------------------

def shifted(image, dy, dx, fill):
    """Reference: out[r, c] = image[r - dy, c - dx], fill outside (loops)."""
    height, width = image.shape[-2:]
    out = np.full_like(image, fill)
    for r, c in itertools.product(range(height), range(width)):
        if 0 <= r - dy < height and 0 <= c - dx < width:
            out[..., r, c] = image[..., r - dy, c - dx]
    return out


def candidates(image, max_shift, flip, fill):
    sources = [image, image[..., ::-1]] if flip else [image]
    shifts = range(-max_shift, max_shift + 1)
    return [(src is not image, dy, dx, shifted(src, dy, dx, fill))
            for src in sources for dy in shifts for dx in shifts]


def which(out, image, max_shift, flip, fill):
    matches = [(f, dy, dx) for f, dy, dx, ref in candidates(image, max_shift, flip, fill)
               if np.array_equal(out, ref)]
    assert matches, "output is no flip/shift of its input"
    return matches


@pytest.fixture
def batch():
    return np.random.default_rng(3).normal(size=(32, 2, 9, 11)).astype(np.float32)


def test_augment_shape_dtype_reproducible(batch):
    before = batch.copy()
    out = data.random_shift_flip(batch, rng=5)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    np.testing.assert_array_equal(batch, before)  # input untouched
    np.testing.assert_array_equal(out, data.random_shift_flip(batch, rng=5))
    assert not np.array_equal(out, data.random_shift_flip(batch, rng=6))
    images = np.random.default_rng(0).integers(0, 256, size=(16, 28, 28), dtype=np.uint8)
    out8 = data.random_shift_flip(images, np.random.default_rng(1))
    assert out8.shape == images.shape and out8.dtype == np.uint8
    np.testing.assert_array_equal(data.random_shift_flip(batch, rng=0, max_shift=0, flip=False),
                                  batch)


def test_augment_flips_correctly(batch):
    out = data.random_shift_flip(batch, rng=0, max_shift=0, flip=True)
    flipped = [bool(which(o, x, 0, True, 0)[0][0]) for o, x in zip(out, batch)]
    assert any(flipped) and not all(flipped)
    # A flipped image is mirrored left-right, the same for every channel.
    i = flipped.index(True)
    np.testing.assert_array_equal(out[i], batch[i][:, :, ::-1])


def test_augment_shifts_with_fill(batch):
    out = data.random_shift_flip(batch, rng=1, max_shift=2, flip=False, fill=-1.5)
    seen = set()
    for o, x in zip(out, batch):
        seen.update(which(o, x, 2, False, -1.5))
    assert len(seen) > 5  # several different shifts drawn
    out = data.random_shift_flip(batch, rng=2, max_shift=1, flip=True, fill=0)
    kinds = {which(o, x, 1, True, 0)[0][0] for o, x in zip(out, batch)}
    assert kinds == {False, True}
    images = np.full((8, 6, 6), 200, dtype=np.uint8)  # (N, H, W) keeps its rank
    out = data.random_shift_flip(images, rng=3, max_shift=2)
    for o, x in zip(out, images):
        which(o, x, 2, True, 0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(max_shift=9), ValueError, "max_shift must be smaller than the image size 9x11"),
    (dict(max_shift=-1), ValueError, "max_shift must be >= 0"),
    (dict(max_shift=1.5), TypeError, "max_shift must be an int"),
    (dict(flip="yes"), TypeError, "flip must be a bool"),
    (dict(fill=None), TypeError, "fill must be a real number"),
    (dict(xb=np.zeros((2, 28, 28), np.uint8), fill=-1), ValueError, "representable"),
    (dict(xb=np.zeros((2, 28, 28), np.uint8), fill=0.5), ValueError, "representable"),
    (dict(xb=np.zeros((28, 28))), ValueError, r"\(N, C, H, W\) or \(N, H, W\)"),
    (dict(xb=np.zeros((2, 3, 3), dtype=object)), TypeError, "numeric dtype"),
    (dict(xb=[[[0.0]]]), TypeError, "xb must be a numpy.ndarray"),
    (dict(rng=1.5), TypeError, "rng must be"),
])
def test_augment_errors(batch, kwargs, error, match):
    kwargs.setdefault("xb", batch)
    kwargs.setdefault("rng", 0)
    with pytest.raises(error, match=match):
        data.random_shift_flip(**kwargs)
