"""Command line of fastconv.

    python -m fastconv demo    train a small CNN on Fashion-MNIST (the main job)
    python -m fastconv edges   the edge-detection kernel on one image, as text
    python -m fastconv bench   time conv2d on real layers next to PyTorch and NumPy
"""
import argparse
import sys

from . import bench, demo, edges


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastconv", description="fastconv command line")
    commands = parser.add_subparsers(dest="command", required=True)
    demo.add_arguments(commands.add_parser(
        "demo", help="train a small CNN on Fashion-MNIST and write weights and pictures"))
    edges.add_arguments(commands.add_parser(
        "edges", help="edge detection on one image: conv2d -> relu -> max_pool2d, as text"))
    bench.add_arguments(commands.add_parser(
        "bench", help="time conv2d (each algorithm and auto) on real layers next to PyTorch "
                      "and NumPy; print tables, write JSON and a bar chart"))
    args = parser.parse_args(argv)
    return args.run(args, parser)


if __name__ == "__main__":
    sys.exit(main())
