"""``python -m fastconv demo``: train a small CNN on Fashion-MNIST, the package's main job.

The network is the course's: convolutions with several 3x3 kernels, BatchNorm,
ReLU and 2x2 max pooling, then a fully connected head with softmax
cross-entropy for one label per image (under 100K parameters). Training uses the
course's practice: the learning-rate finder first, then a one-cycle schedule.

Written into the output folder:
  model.npz            the trained weights (``Module.load``; names as PyTorch's)
  history.csv          per-epoch train loss, test loss and accuracy, seconds
  lr_find.csv          learning rates and smoothed losses of the finder
  kernels.txt          the first layer's 3x3 kernels as numbers and text pictures
  feature_maps.txt     one test image after conv -> ReLU -> max pooling, as text
and, when matplotlib is installed (``pip install fastconv[plot]``), training.png,
lr_find.png, kernels.png and feature_maps.png.
"""
import csv
import sys
import time
from pathlib import Path

import numpy as np

import fastconv

from . import data, nn, optim
from .edges import render
from .training import ProgressBar, evaluate, train_epoch

DEFAULTS = dict(epochs=12, batch_size=128, lr=0.1, seed=0, out="fastconv-demo", max_shift=0)


def build_model(rng=None, dtype=np.float32):
    """The demo's CNN for 1x28x28 images and 10 classes (about 51K parameters)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, dtype=dtype, rng=rng),    # 32 x 28 x 28
        nn.BatchNorm2d(32, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),                                         # 32 x 14 x 14
        nn.Conv2d(32, 64, 3, padding=1, dtype=dtype, rng=rng),   # 64 x 14 x 14
        nn.BatchNorm2d(64, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),                                         # 64 x 7 x 7
        nn.Flatten(),
        nn.Dropout(0.25, rng=rng),
        nn.Linear(64 * 7 * 7, 10, dtype=dtype, rng=rng),
    )


def count_parameters(model):
    return sum(p.data.size for p in model.parameters())


def add_arguments(parser):
    """The options of ``python -m fastconv demo``."""
    d = DEFAULTS
    parser.add_argument("--data", metavar="DIR",
                        help="folder with the Fashion-MNIST IDX files (default: $FASTCONV_DATA, "
                             "then /usr/share/datasets/fashion-mnist; without them the sample "
                             "shipped in the package)")
    parser.add_argument("--sample", action="store_true",
                        help="train on the small sample shipped in the package")
    parser.add_argument("--epochs", type=int, default=d["epochs"],
                        help=f"epochs (default {d['epochs']})")
    parser.add_argument("--batch-size", type=int, default=d["batch_size"],
                        help=f"images per batch (default {d['batch_size']})")
    parser.add_argument("--lr", type=float, default=d["lr"],
                        help=f"peak learning rate of the one-cycle schedule (default {d['lr']})")
    parser.add_argument("--threads", type=int, default=None,
                        help="kernel threads (default: OMP_NUM_THREADS or all CPUs)")
    parser.add_argument("--out", metavar="DIR", default=d["out"],
                        help=f"output folder (default ./{d['out']})")
    parser.add_argument("--seed", type=int, default=d["seed"], help="random seed")
    parser.add_argument("--max-shift", type=int, default=d["max_shift"],
                        help="augmentation: random horizontal flips and shifts of up to this "
                             f"many pixels (default {d['max_shift']}; 0 = flips only)")
    parser.add_argument("--no-lr-find", dest="lr_find", action="store_false",
                        help="skip the learning-rate finder")
    parser.set_defaults(run=run)


def load_data(args, log):
    """(train images, train labels, test images, test labels, description)."""
    root = None if args.sample else data.find_fashion_mnist(args.data)
    if root is None and not args.sample:
        log("note: Fashion-MNIST not found (install Debian's dataset-fashion-mnist package, or "
            "point --data / FASTCONV_DATA at the four IDX files); training on the sample "
            "shipped in the package instead")
    xtr, ytr = data.load_fashion_mnist(root, split="train", sample=root is None)
    xte, yte = data.load_fashion_mnist(root, split="test", sample=root is None)
    where = f"Fashion-MNIST ({root})" if root is not None else \
        "the Fashion-MNIST sample in the package"
    return xtr, ytr, xte, yte, f"{where}, {len(xtr)} train / {len(xte)} test images"


def run(args, parser=None, stream=None):
    """Train, report and write the outputs; returns 0 (the exit status)."""
    out = sys.stdout if stream is None else stream

    def log(text=""):
        print(text, file=out, flush=True)

    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            message = f"--{name.replace('_', '-')} must be at least 1"
            if parser is not None:
                parser.error(message)
            raise ValueError(message)
    if args.threads is not None:
        fastconv.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    xtr, ytr, xte, yte, description = load_data(args, log)
    xtr, xte = data.normalize(xtr), data.normalize(xte)

    model = build_model(rng)
    loss_fn = nn.CrossEntropyLoss()
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    log(f"fastconv {fastconv.__version__} demo: {description}")
    log(f"model: {count_parameters(model):,} parameters, {fastconv.get_num_threads()} threads, "
        f"SIMD {fastconv._get_simd()}")
    log(str(model))

    background = data.normalize(0)  # the value of a black pixel after normalisation

    def train_batches(epoch_rng):
        for xb, yb in data.batches(xtr, ytr, args.batch_size, shuffle=True, rng=epoch_rng,
                                   drop_last=len(xtr) > args.batch_size):
            yield data.random_shift_flip(xb, epoch_rng, max_shift=args.max_shift,
                                         fill=background), yb

    finder = None
    if args.lr_find:
        steps = min(100, max(10, len(xtr) // args.batch_size))
        finder = optim.lr_find(model, loss_fn, train_batches(np.random.default_rng(args.seed + 1)),
                               start=1e-4, end=10.0, steps=steps,
                               optimizer=optim.SGD(model.parameters(), lr=1e-4, momentum=0.9))
        log(f"lr_find: {len(finder.lrs)} steps, suggested learning rate {finder.suggestion:.3g} "
            f"(training with a one-cycle peak of {args.lr:g})")

    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                    weight_decay=5e-4)
    steps_per_epoch = sum(1 for _ in data.batches(xtr, ytr, args.batch_size,
                                                  drop_last=len(xtr) > args.batch_size))
    sched = optim.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    history = []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        bar = ProgressBar(steps_per_epoch, epoch, args.epochs)
        train_loss = train_epoch(model, loss_fn, opt, train_batches(rng), scheduler=sched,
                                 progress=bar)
        test_loss, accuracy = evaluate(model, loss_fn, xte, yte)
        seconds = time.perf_counter() - t0
        history.append((epoch, train_loss, test_loss, accuracy, seconds))
        log(f"epoch {epoch:2d}/{args.epochs}  train loss {train_loss:.4f}  test loss "
            f"{test_loss:.4f}  test accuracy {accuracy:.4f}  ({seconds:.1f} s)")
    total = time.perf_counter() - start
    log(f"final test accuracy {history[-1][3]:.4f} after {args.epochs} epochs, "
        f"{total:.1f} s of training")

    write_outputs(outdir, model, history, finder, xte, log)
    return 0


# ----------------------------------------------------------------------- outputs

def write_outputs(outdir, model, history, finder, xte, log):
    model.save(outdir / "model.npz")
    with open(outdir / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "train_loss", "test_loss", "test_accuracy", "seconds"])
        w.writerows(history)
    if finder is not None:
        with open(outdir / "lr_find.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["lr", "smoothed_loss"])
            w.writerows(zip(finder.lrs, finder.losses))
    kernels = model[0].weight.data[:, 0]  # (32, 3, 3)
    (outdir / "kernels.txt").write_text(kernels_text(kernels))
    stages = feature_maps(model, xte[:1])
    (outdir / "feature_maps.txt").write_text(feature_maps_text(stages))
    written = ["model.npz", "history.csv"] + (["lr_find.csv"] if finder else []) + \
        ["kernels.txt", "feature_maps.txt"]
    written += write_plots(outdir, history, finder, kernels, stages)
    log(f"wrote {', '.join(written)} to {outdir}/")


def feature_maps(model, image):
    """One image through the first conv -> ReLU -> max pooling (BatchNorm folded in
    between, as the network runs it): dict of stage name -> (1, C, H, W)."""
    conv, bn, relu, pool = (model[i] for i in range(4))
    with nn.no_grad():
        model.eval()
        x = conv(image)
        stages = {"input": image, "conv": x}
        x = relu(bn(x))
        stages["relu"] = x
        stages["max_pool"] = pool(x)
    return stages


def kernels_text(kernels):
    lines = [f"first-layer kernels, {kernels.shape[0]} x {kernels.shape[1]}x{kernels.shape[2]}"]
    for i, k in enumerate(kernels):
        lines.append(f"\nkernel {i}:")
        lines += ["  " + " ".join(f"{v:+.3f}" for v in row) for row in k]
    lines.append("\nas pictures (dark = negative, bright = positive):")
    lines.append(render(kernels[None]))
    return "\n".join(lines) + "\n"


def feature_maps_text(stages, channels=8):
    parts = []
    for name, x in stages.items():
        shown = x[:, :channels]
        parts.append(f"{name} {x.shape}" + (f", first {shown.shape[1]} channels"
                                             if x.shape[1] > shown.shape[1] else ""))
        parts.append(render(shown))
    return "\n\n".join(parts) + "\n"


def write_plots(outdir, history, finder, kernels, stages):
    """PNG pictures when matplotlib is available; returns the names written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    h = np.array(history, dtype=float)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].plot(h[:, 0], h[:, 1], "o-", label="train")
    ax[0].plot(h[:, 0], h[:, 2], "o-", label="test")
    ax[0].set(xlabel="epoch", ylabel="cross-entropy loss")
    ax[0].legend()
    ax[1].plot(h[:, 0], h[:, 3], "o-")
    ax[1].set(xlabel="epoch", ylabel="test accuracy")
    fig.tight_layout()
    fig.savefig(outdir / "training.png", dpi=100)
    written.append("training.png")
    if finder is not None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.semilogx(finder.lrs, finder.losses)
        ax.axvline(finder.suggestion, color="k", ls=":", label=f"{finder.suggestion:.2g}")
        ax.set(xlabel="learning rate", ylabel="smoothed loss", title="lr_find")
        ax.legend()
        fig.tight_layout()
        fig.savefig(outdir / "lr_find.png", dpi=100)
        written.append("lr_find.png")
    n = kernels.shape[0]
    cols = 8
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(cols, (n + cols - 1) // cols))
    lim = float(np.abs(kernels).max())
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < n:
            ax.imshow(kernels[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle("first-layer kernels")
    fig.savefig(outdir / "kernels.png", dpi=100)
    written.append("kernels.png")
    rows = len(stages)
    fig, axes = plt.subplots(rows, 8, figsize=(12, 1.6 * rows))
    for r, (name, x) in enumerate(stages.items()):
        for c in range(8):
            ax = axes[r, c]
            ax.axis("off")
            if c < x.shape[1]:
                ax.imshow(x[0, c], cmap="gray")
        axes[r, 0].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(outdir / "feature_maps.png", dpi=100)
    written.append("feature_maps.png")
    plt.close("all")
    return written
