"""``python -m autograder fetch-data``: fetch and verify MNIST."""
from __future__ import annotations

import sys

from autograder.data import mnist


def add_arguments(parser) -> None:
    parser.add_argument("--raw", help="folder for the four IDX files (default: data/MNIST/raw)")


def run(args) -> int:
    try:
        raw = mnist.fetch(args.raw)
    except mnist.MnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"MNIST ready in {raw} (sha256 verified)")
    return 0
