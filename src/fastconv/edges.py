"""``python -m fastconv edges``: the edge detector of the course, on one image.

Runs edge detection on one 28x28 image, conv2d -> relu -> max_pool2d, and
prints each stage as text. The image is a Fashion-MNIST test item when the
data set is found (``--data DIR``, else ``$FASTCONV_DATA``, else
``/usr/share/datasets/fashion-mnist``), otherwise a generated pattern.
"""

import os
from pathlib import Path

import numpy as np

import fastconv
from fastconv.data import read_idx

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGES_FILE = "t10k-images-idx3-ubyte"

# Positive where brightness increases downwards; its transpose, rightwards.
HORIZONTAL_EDGE = np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], dtype=np.float32)
EDGE_KERNELS = np.stack([HORIZONTAL_EDGE, HORIZONTAL_EDGE.T])[:, None]  # (2, 1, 3, 3)
KERNEL_NAMES = ("horizontal", "vertical")

# The generated image: a bright rectangle, off-centre and not square so that
# rows and columns cannot be mixed up. [start, stop) in each direction.
RECT_ROWS = (6, 18)
RECT_COLS = (9, 23)
PATTERN_DESCRIPTION = ("generated pattern, a bright rectangle at "
                       f"rows {RECT_ROWS[0]}-{RECT_ROWS[1] - 1}, "
                       f"columns {RECT_COLS[0]}-{RECT_COLS[1] - 1}")

SHADES = " .:-=+*#%@"


def make_pattern(size=28):
    """A (size, size) float32 image: 1 inside the rectangle, 0 elsewhere."""
    image = np.zeros((size, size), dtype=np.float32)
    image[slice(*RECT_ROWS), slice(*RECT_COLS)] = 1.0
    return image


def read_idx_image(path, index=0):
    """Item ``index`` of an IDX unsigned-byte image file (gzip or not), scaled to [0, 1]."""
    images = read_idx(path)
    if images.ndim != 3:
        raise ValueError(f"{path}: not a file of images (IDX rank {images.ndim})")
    if not 0 <= index < len(images):
        raise ValueError(f"{path}: index {index} is out of range, the file has "
                         f"{len(images)} images")
    return images[index].astype(np.float32) / 255


def load_image(data_dir=None, index=0):
    """Return ``(image, description)``: a Fashion-MNIST item, or the pattern.

    Falls back to the pattern only when no directory was named (by argument or
    ``$FASTCONV_DATA``) and the default one has no data; a named directory
    without the images file is an error.
    """
    named = data_dir or os.environ.get("FASTCONV_DATA")
    directory = Path(named) if named else DEFAULT_DATA_DIR
    for name in (IMAGES_FILE, IMAGES_FILE + ".gz"):
        path = directory / name
        if path.is_file():
            return read_idx_image(path, index), f"Fashion-MNIST test image {index} ({path})"
    if named:
        raise FileNotFoundError(f"no {IMAGES_FILE} or {IMAGES_FILE}.gz in {directory}")
    return make_pattern(), PATTERN_DESCRIPTION


def edge_pipeline(image):
    """Run conv2d (edge kernels) -> relu -> 2x2 max_pool2d on an (H, W) image.

    Returns the stages in order as a dict of name -> (1, C, H, W) float32 array.
    """
    x = np.ascontiguousarray(image, dtype=np.float32)[None, None]
    edges = fastconv.conv2d(x, EDGE_KERNELS)
    rectified = fastconv.relu(edges)
    pooled = fastconv.max_pool2d(rectified, 2)
    return {"input": x, "conv2d": edges, "relu": rectified, "max_pool2d": pooled}


def render(stage, labels=None):
    """The channels of a (1, C, H, W) array side by side, framed, one character per pixel.

    Shading runs from ``SHADES[0]`` at the stage's minimum to ``SHADES[-1]`` at
    its maximum; a constant stage is blank.
    """
    lo, hi = float(stage.min()), float(stage.max())
    scale = (len(SHADES) - 1) / (hi - lo) if hi > lo else 0.0
    levels = np.rint((stage[0] - lo) * scale).astype(int)  # (C, H, W)
    width = levels.shape[2]
    frame = " ".join("+" + "-" * width + "+" for _ in levels)
    lines = []
    if labels:
        lines.append(" ".join(f" {label[:width]:<{width}} " for label in labels))
    lines.append(frame)
    for r in range(levels.shape[1]):
        row = ("|" + "".join(SHADES[v] for v in channel[r]) + "|" for channel in levels)
        lines.append(" ".join(row))
    lines.append(frame)
    return "\n".join(line.rstrip() for line in lines)


def run_demo(image, description):
    stages = edge_pipeline(image)

    print(f"fastconv {fastconv.__version__} demo: conv2d -> relu -> max_pool2d(2)")
    print(f"image: {description}")
    print(f"kernels, weight shape {EDGE_KERNELS.shape}:")
    for name, kernel in zip(KERNEL_NAMES, EDGE_KERNELS[:, 0]):
        print(f"  {name:<10} {kernel.astype(int).tolist()}")
    for name, stage in stages.items():
        labels = None if name == "input" else KERNEL_NAMES
        print(f"\n{name:<11} {stage.shape}  values {stage.min():g} .. {stage.max():g}")
        print(render(stage, labels))
    return 0


def add_arguments(parser):
    """The options of ``python -m fastconv edges``."""
    parser.add_argument("--data", metavar="DIR",
                        help=f"folder holding {IMAGES_FILE}[.gz] (default: $FASTCONV_DATA, "
                             f"then {DEFAULT_DATA_DIR}, else a generated pattern)")
    parser.add_argument("--index", type=int, default=0, help="which test image (default: 0)")
    parser.add_argument("--pattern", action="store_true",
                        help="use the generated pattern even when the data set is present")
    parser.set_defaults(run=run)


def run(args, parser):
    if args.pattern:
        image, description = make_pattern(), PATTERN_DESCRIPTION
    else:
        try:
            image, description = load_image(args.data, args.index)
        except (OSError, ValueError) as exc:
            parser.error(str(exc))
    return run_demo(image, description)
