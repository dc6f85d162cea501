"""Training time and test accuracy of the reference MLP set-up of lec03, per torch seed and thread count.

The model and the training functions are the cells tagged "mlp" of the solution notebook (so this measures
exactly what students are given as the answer); the data and the training loop are the notebook's: MNIST
with ToTensor + Normalize((0.1307,), (0.3081,)), batches of 64 (shuffled) / 1000, Adam lr 1e-3, 2 epochs,
on the CPU. Goal: at least 97 % test accuracy within 30 s of training.

    .venv/bin/python benchmarks/mlp_training.py [--seeds 0 1 2 3] [--threads 1 2] [--epochs 2]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import nbformat
import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autograder import layout  # noqa: E402
from autograder import assignment

GOAL_ACCURACY = 0.97
GOAL_SECONDS = 30.0


def notebook_definitions() -> dict:
    """get_device, MLP, train_one_epoch and evaluate from the solution notebook's cells tagged "mlp"."""
    nb = nbformat.read(assignment.current().solution_notebook, as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        if "mlp" in cell.metadata.get("tags", []):
            exec(compile(cell.source, f"{assignment.current().solution_notebook.name}:{cell.id}", "exec"), namespace)
    return namespace


def loaders():
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    root = str(layout.DATA_DIR)
    train = datasets.MNIST(root, train=True, download=False, transform=transform)
    test = datasets.MNIST(root, train=False, download=False, transform=transform)
    return DataLoader(train, batch_size=64, shuffle=True), DataLoader(test, batch_size=1000, shuffle=False)


def run_once(ns: dict, seed: int, epochs: int, train_loader, test_loader) -> tuple[float, float]:
    device = torch.device("cpu")
    torch.manual_seed(seed)
    model = ns["MLP"]().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(epochs):
        ns["train_one_epoch"](model, train_loader, optimizer, device)
    seconds = time.perf_counter() - start
    return seconds, ns["evaluate"](model, test_loader, device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)

    ns = notebook_definitions()
    train_loader, test_loader = loaders()
    print(f"torch {torch.__version__}, {args.epochs} epochs, CPU; goal >= {GOAL_ACCURACY:.0%} within {GOAL_SECONDS:g} s")
    ok = True
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows = []
        for seed in args.seeds:
            seconds, accuracy = run_once(ns, seed, args.epochs, train_loader, test_loader)
            rows.append((seconds, accuracy))
            met = accuracy >= GOAL_ACCURACY and seconds <= GOAL_SECONDS
            ok &= met
            print(f"threads {threads}  seed {seed}:  train {seconds:5.1f} s  test accuracy {100 * accuracy:.2f}%"
                  f"{'' if met else '  (misses the goal)'}")
        secs, accs = zip(*rows)
        print(f"threads {threads}  mean:    train {statistics.mean(secs):5.1f} s  test accuracy "
              f"{100 * statistics.mean(accs):.2f}% (min {100 * min(accs):.2f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
