"""Make the Fashion-MNIST sample shipped in src/fastconv/sample_data/.

    python tools/make_sample.py [--data DIR]

Reads the full data set with fastconv.data (``--data DIR``, else
``$FASTCONV_DATA``, else /usr/share/datasets/fashion-mnist) and writes the first
350 images of each class of the training split and the first 100 of each class
of the test split, in their original order, as gzip-compressed IDX files with
the standard names. The output is byte-for-byte reproducible (gzip level 9, no
file name, mtime 0) and must stay under 2 MB with its README and licence.
"""

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

from fastconv import data

PER_CLASS = {"train": 350, "test": 100}
MAX_TOTAL_BYTES = 2_000_000
OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "fastconv" / "sample_data"
PREFIX = {"train": "train", "test": "t10k"}


def first_per_class(labels, k):
    """Indices of the first ``k`` items of each class, in increasing order."""
    picked = []
    for c in range(len(data.CLASSES)):
        index = np.flatnonzero(labels == c)[:k]
        if len(index) < k:
            raise SystemExit(f"class {c} has only {len(index)} items, {k} wanted")
        picked.append(index)
    return np.sort(np.concatenate(picked))


def idx_bytes(array):
    """An unsigned-byte IDX file holding ``array``."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def write_gzip(path, payload):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            f.write(payload)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", metavar="DIR", help="folder with the full data set")
    parser.add_argument("--out", metavar="DIR", default=str(OUT_DIR),
                        help=f"output folder (default: {OUT_DIR})")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, k in PER_CLASS.items():
        images, labels = data.load_fashion_mnist(args.data, split)
        index = first_per_class(labels, k)
        stem = PREFIX[split]
        write_gzip(out / f"{stem}-images-idx3-ubyte.gz", idx_bytes(images[index]))
        write_gzip(out / f"{stem}-labels-idx1-ubyte.gz", idx_bytes(labels[index]))
        # Check the round trip through the loader.
        x, y = data.load_fashion_mnist(out, split)
        assert np.array_equal(x, images[index]) and np.array_equal(y, labels[index])
        print(f"{split}: {len(index)} images ({k} per class) of {len(images)}, "
              f"indices {index[0]}..{index[-1]}")
    total = 0
    for path in sorted(out.iterdir()):
        size = path.stat().st_size
        total += size
        print(f"  {size:>9,d}  {path.name}")
    print(f"  {total:>9,d}  total")
    if total > MAX_TOTAL_BYTES:
        print(f"error: the sample is over {MAX_TOTAL_BYTES:,d} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
