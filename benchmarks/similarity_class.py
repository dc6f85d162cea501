"""Similarity on a generated class: planted copies found, independent students left alone, time taken.

    .venv/bin/python benchmarks/similarity_class.py [--students 300] [--copies 15] [--seed 1]

A class is made from the release notebook: each student fills every stub with one of 3-5 styles per
function (the lecture's style for about half the class), each style with small choices of its own
(``np.sum(r ** 2)`` or ``r @ r`` or ``(r * r).sum()``, an intermediate variable or not, a check or a print),
their own names and formatting, and an exploration cell of their own. Planted copies take another
student's notebook and rename every variable, reformat, reorder the functions, change the comments and
rewrite one function in a style of their own. Printed: the share of planted pairs in the report's list,
the share of independent students flagged (in any listed pair that is not planted), and the seconds
``autograder.publish.similarity.find_similar`` took. The targets (issue 10): >= 95 %, <= 2 %, <= 30 s for 300.
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.publish import similarity  # noqa: E402

RELEASE = ROOT / "assignments" / "lec03" / "lec03.ipynb"

# names a student may use for the same thing (renaming is what copiers do first)
NAMES = {
    "X": ["X", "A", "design", "Xmat", "features", "M"],
    "r": ["r", "res", "resid", "err", "diff", "e", "delta"],
    "p": ["pred", "y_pred", "yhat", "p", "out", "prediction"],
    "g": ["gw", "dw", "grad_w", "dEdw", "g_w"],
    "h": ["gb", "db", "grad_b", "dEdb", "g_b"],
    "i": ["idx", "perm", "order", "ind", "shuffled"],
    "k": ["start", "s", "i", "pos", "lo"],
    "L": ["losses", "history", "hist", "loss_list", "log"],
    "t": ["theta", "coef", "params", "sol", "wb"],
}

# stubs: function name -> styles; a style is a list of lines, a line a list of alternatives ("" = left out)
S = {
    "fit_normal_equation": [
        [["{X} = np.column_stack([x, np.ones_like(x)])", "{X} = np.stack([x, np.ones(len(x))], axis=1)",
          "{X} = np.vstack([x, np.ones_like(x)]).T"],
         ["", "assert {X}.shape[1] == 2", "print({X}.shape)"],
         ["{t} = np.linalg.solve({X}.T @ {X}, {X}.T @ y)", "{t} = np.linalg.inv({X}.T @ {X}) @ {X}.T @ y",
          "{t} = np.linalg.solve(np.dot({X}.T, {X}), np.dot({X}.T, y))"],
         ["return {t}[0], {t}[1]", "w, b = {t}\n    return w, b", "return float({t}[0]), float({t}[1])"]],
        [["xm, ym = x.mean(), y.mean()", "xm = np.mean(x)\n    ym = np.mean(y)"],
         ["w = np.sum((x - xm) * (y - ym)) / np.sum((x - xm) ** 2)",
          "w = ((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum()",
          "w = np.cov(x, y, bias=True)[0, 1] / np.var(x)"],
         ["b = ym - w * xm"], ["", "print(w, b)"], ["return w, b", "return float(w), float(b)"]],
        [["n = len(x)"], ["sx, sy = x.sum(), y.sum()", "sx = np.sum(x)\n    sy = np.sum(y)"],
         ["sxx, sxy = (x * x).sum(), (x * y).sum()", "sxx = np.sum(x ** 2)\n    sxy = np.sum(x * y)"],
         ["d = n * sxx - sx ** 2", "d = n * sxx - sx * sx"],
         ["w = (n * sxy - sx * sy) / d"], ["b = (sxx * sy - sx * sxy) / d", "b = (sy - w * sx) / n"],
         ["return w, b"]],
        [["{X} = np.c_[x, np.ones_like(x)]"], ["{t}, *_ = np.linalg.lstsq({X}, y, rcond=None)",
                                              "{t} = np.linalg.pinv({X}) @ y"],
         ["return {t}[0], {t}[1]", "return tuple({t})"]],
    ],
    "predict": [
        [["return w * x + b", "return x * w + b", "return b + w * x"]],
        [["{p} = w * x + b"], ["", "{p} = np.asarray({p})"], ["return {p}"]],
        [["return np.add(np.multiply(w, x), b)", "return w * np.asarray(x) + b"]],
    ],
    "loss": [
        [["{r} = y - predict(x, w, b)", "{r} = y - (w * x + b)", "{r} = predict(x, w, b) - y"],
         ["return 0.5 * np.sum({r} ** 2)", "return 0.5 * np.sum({r} * {r})", "return 0.5 * ({r} ** 2).sum()",
          "return np.dot({r}, {r}) / 2"]],
        [["return 0.5 * np.sum((y - w * x - b) ** 2)", "return np.sum((y - predict(x, w, b)) ** 2) / 2"]],
        [["total = 0.0"], ["for xi, yi in zip(x, y):", "for n in range(len(x)):"],
         ["    total += (yi - w * xi - b) ** 2", "    total += (y[n] - w * x[n] - b) ** 2"],
         ["return total / 2", "return 0.5 * total"]],
        [["{r} = y - predict(x, w, b)"], ["return 0.5 * {r} @ {r}", "return 0.5 * float({r} @ {r})"]],
    ],
    "gradient": [
        [["{r} = y - predict(x, w, b)", "{r} = y - (w * x + b)"],
         ["{g} = -np.sum({r} * x)", "{g} = -np.dot({r}, x)", "{g} = -({r} * x).sum()"],
         ["{h} = -np.sum({r})", "{h} = -{r}.sum()"], ["", "print({g}, {h})"],
         ["return {g}, {h}", "return np.array([{g}, {h}])"]],
        [["{r} = predict(x, w, b) - y"], ["return np.sum({r} * x), np.sum({r})", "return ({r} * x).sum(), {r}.sum()"]],
        [["{g}, {h} = 0.0, 0.0"], ["for xi, yi in zip(x, y):"], ["    e = w * xi + b - yi"],
         ["    {g} += e * xi"], ["    {h} += e"], ["return {g}, {h}"]],
    ],
    "gd_step": [
        [["{g}, {h} = gradient(x, y, w, b)"], ["n = len(x)", "n = x.shape[0]"],
         ["return w - lr * {g} / n, b - lr * {h} / n", "w = w - lr * {g} / n\n    b = b - lr * {h} / n\n    return w, b"]],
        [["grad = np.array(gradient(x, y, w, b)) / len(x)"], ["return w - lr * grad[0], b - lr * grad[1]"]],
        [["{g}, {h} = gradient(x, y, w, b)"], ["{g} /= len(x)"], ["{h} /= len(x)"],
         ["w -= lr * {g}"], ["b -= lr * {h}"], ["return w, b"]],
    ],
    "minibatch_indices": [
        [["{i} = rng.permutation(n_samples)"],
         ["return [{i}[{k}:{k} + batch_size] for {k} in range(0, n_samples, batch_size)]",
          "return np.array_split({i}, range(batch_size, n_samples, batch_size))"]],
        [["{i} = np.arange(n_samples)"], ["rng.shuffle({i})"], ["batches = []"],
         ["for {k} in range(0, n_samples, batch_size):"], ["    batches.append({i}[{k}:{k} + batch_size])"],
         ["return batches"]],
        [["{i} = rng.permutation(n_samples)"], ["n_batches = int(np.ceil(n_samples / batch_size))",
                                                "n_batches = (n_samples + batch_size - 1) // batch_size"],
         ["return [{i}[j * batch_size:(j + 1) * batch_size] for j in range(n_batches)]"]],
        [["{i} = rng.choice(n_samples, size=n_samples, replace=False)"],
         ["return [{i}[{k}:{k} + batch_size] for {k} in range(0, n_samples, batch_size)]"]],
    ],
    "train_sgd": [
        [["rng = np.random.default_rng(seed)"], ["w, b = w0, b0"], ["{L} = []"],
         ["for epoch in range(n_epochs):", "for _ in range(n_epochs):"],
         ["    for batch in minibatch_indices(len(x), batch_size, rng):"],
         ["        w, b = gd_step(x[batch], y[batch], w, b, lr)"],
         ["    {L}.append(loss(x, y, w, b))"], ["", "    if epoch % 50 == 0:\n            print(epoch, w, b)"],
         ["return w, b, {L}", "return w, b, np.array({L})"]],
        [["rng = np.random.default_rng(seed)"], ["w, b = float(w0), float(b0)"],
         ["{L} = np.zeros(n_epochs)"], ["for epoch in range(n_epochs):"],
         ["    for batch in minibatch_indices(x.shape[0], batch_size, rng):"],
         ["        xb, yb = x[batch], y[batch]"], ["        w, b = gd_step(xb, yb, w, b, lr)"],
         ["    {L}[epoch] = loss(x, y, w, b)"], ["return w, b, {L}"]],
        [["rng = np.random.default_rng(seed)"], ["params = [w0, b0]"], ["{L} = []"],
         ["for epoch in range(n_epochs):"], ["    idx_list = minibatch_indices(len(x), batch_size, rng)"],
         ["    for b_idx in idx_list:"], ["        params = list(gd_step(x[b_idx], y[b_idx], params[0], params[1], lr))"],
         ["    {L}.append(loss(x, y, *params))"], ["return params[0], params[1], {L}"]],
    ],
    "mse": [
        [["return np.mean((y - y_hat) ** 2)", "return ((y - y_hat) ** 2).mean()", "return np.mean(np.square(y - y_hat))"]],
        [["{r} = np.asarray(y) - np.asarray(y_hat)"], ["return float(np.mean({r} ** 2))", "return {r} @ {r} / len({r})"]],
        [["return np.sum((y - y_hat) ** 2) / len(y)"]],
    ],
    "rmse": [
        [["return np.sqrt(mse(y, y_hat))", "return mse(y, y_hat) ** 0.5", "return float(np.sqrt(mse(y, y_hat)))"]],
        [["return np.sqrt(np.mean((y - y_hat) ** 2))"]],
        [["import math"], ["return math.sqrt(mse(y, y_hat))"]],
    ],
    "mae": [
        [["return np.mean(np.abs(y - y_hat))", "return np.abs(y - y_hat).mean()", "return np.mean(abs(y - y_hat))"]],
        [["return np.sum(np.abs(y - y_hat)) / len(y)"]],
        [["{r} = np.abs(np.asarray(y) - np.asarray(y_hat))"], ["return float({r}.mean())"]],
    ],
    "get_device": [
        [['return torch.device("cuda" if torch.cuda.is_available() else "cpu")']],
        [["if torch.cuda.is_available():"], ['    return torch.device("cuda")'], ['return torch.device("cpu")']],
        [['return "cuda" if torch.cuda.is_available() else "cpu"']],
    ],
    "__init__": [
        [["self.fc1 = nn.Linear(n_in, n_hidden1)"], ["self.fc2 = nn.Linear(n_hidden1, n_hidden2)"],
         ["self.fc3 = nn.Linear(n_hidden2, n_out)"]],
        [["self.net = nn.Sequential(", "self.layers = nn.Sequential("], ["    nn.Flatten(),"],
         ["    nn.Linear(n_in, n_hidden1), nn.ReLU(),"], ["    nn.Linear(n_hidden1, n_hidden2), nn.ReLU(),"],
         ["    nn.Linear(n_hidden2, n_out),"], [")"]],
        [["self.l1 = nn.Linear(784, 256)"], ["self.l2 = nn.Linear(256, 128)"], ["self.l3 = nn.Linear(128, 10)"],
         ["", "self.act = nn.ReLU()"]],
    ],
    "forward": [
        [["x = x.view(x.size(0), -1)", "x = x.reshape(-1, 784)", "x = torch.flatten(x, 1)"],
         ["x = F.relu(self.fc1(x))"], ["x = F.relu(self.fc2(x))"], ["return self.fc3(x)"]],
        [["return self.net(x)"]],
        [["x = x.view(-1, 784)"], ["h = torch.relu(self.l1(x))"], ["h = torch.relu(self.l2(h))"], ["return self.l3(h)"]],
    ],
    "train_one_epoch": [
        [["model.train()"], ["total, count = 0.0, 0"], ["for xb, yb in loader:", "for images, labels in loader:"],
         ["    xb, yb = xb.to(device), yb.to(device)"], ["    optimizer.zero_grad()"],
         ["    out = model(xb)"], ["    l = F.cross_entropy(out, yb)", "    l = nn.CrossEntropyLoss()(out, yb)"],
         ["    l.backward()"], ["    optimizer.step()"], ["    total += l.item() * len(xb)"], ["    count += len(xb)"],
         ["return total / count"]],
        [["model.train()"], ["criterion = nn.CrossEntropyLoss(reduction='sum')"], ["running = 0.0"],
         ["for data, target in loader:"], ["    data, target = data.to(device), target.to(device)"],
         ["    optimizer.zero_grad()"], ["    loss_value = criterion(model(data), target)"],
         ["    loss_value.backward()"], ["    optimizer.step()"], ["    running += loss_value.item()"],
         ["return running / len(loader.dataset)"]],
    ],
    "evaluate": [
        [["model.eval()"], ["correct = 0"], ["with torch.no_grad():"], ["    for xb, yb in loader:"],
         ["        xb, yb = xb.to(device), yb.to(device)"], ["        correct += (model(xb).argmax(1) == yb).sum().item()",
                                                           "        correct += (model(xb).argmax(dim=1) == yb).sum().item()"],
         ["return correct / len(loader.dataset)"]],
        [["model.eval()"], ["correct, total = 0, 0"], ["with torch.no_grad():"], ["    for data, target in loader:"],
         ["        pred = model(data.to(device)).argmax(dim=1).cpu()"], ["        correct += int((pred == target).sum())"],
         ["        total += len(target)"], ["return correct / total"]],
    ],
}
FUNCTIONS = list(S)
# statements students add of their own accord (a check, a conversion, a debug print, a spare variable)
EXTRAS = ["x = np.asarray(x, dtype=float)", "y = np.asarray(y, dtype=float)", "n = len(x)",
          "assert len(x) == len(y)", "print('debug', {a})", "# print({a})", "{a} = None",
          "tmp = {a}", "eps = 1e-12", "checked = True", "assert not np.isnan({a}).any()",
          "count = 0", "verbose = False", "result = None"]
LECTURE_SHARE = 0.5          # the lecture's style (style 0) is this common


def draw_style(rng: random.Random, fn: str) -> tuple[int, list[int], list[tuple[int, int]]]:
    """(style, the alternative of each line, extra statements as (position, EXTRAS index))."""
    styles = S[fn]
    k = 0 if rng.random() < LECTURE_SHARE else rng.randrange(len(styles))
    extras = [(rng.randrange(len(styles[k])), rng.randrange(len(EXTRAS))) for _ in range(rng.choice([0, 0, 1, 1, 2]))]
    return k, [rng.randrange(len(alts)) for alts in styles[k]], extras


def draw_student(rng: random.Random) -> dict:
    return {"choices": {fn: draw_style(rng, fn) for fn in FUNCTIONS},
            "names": {k: rng.choice(v) for k, v in NAMES.items()},
            "format": {"tight": rng.random() < 0.3, "comments": rng.random() < 0.5, "blank": rng.random() < 0.3},
            "explore": exploration(rng), "order_seed": None}


def exploration(rng: random.Random) -> str:
    """A cell of the student's own experiments (what makes a notebook someone's own)."""
    lines = []
    for _ in range(rng.randint(2, 6)):
        kind = rng.randrange(6)
        lr = rng.choice(["0.01", "0.02", "0.05", "0.1", "0.2"])
        if kind == 0:
            lines.append(f"for lr_try in [{lr}, {rng.choice(['0.001', '0.005'])}]:\n"
                         f"    w_t, b_t, l_t = train_sgd(x_train, y_train, lr=lr_try, batch_size={rng.choice([16, 32, 50, 64])}, "
                         f"n_epochs={rng.choice([10, 20, 50])}, seed={rng.randint(0, 9)})\n    print(lr_try, l_t[-1])")
        elif kind == 1:
            lines.append(f"plt.hist(y_train - predict(x_train, w_ne, b_ne), bins={rng.choice([20, 30, 50])})\nplt.title('residuals')\nplt.show()")
        elif kind == 2:
            lines.append(f"print('mse', mse(y_test, predict(x_test, w_ne, b_ne)), 'mae', mae(y_test, predict(x_test, w_ne, b_ne)))")
        elif kind == 3:
            lines.append(f"ws = np.linspace(w_ne - {rng.randint(1, 5)}, w_ne + {rng.randint(1, 5)}, {rng.choice([50, 100])})\n"
                         "plt.plot(ws, [loss(x_train, y_train, wv, b_ne) for wv in ws])\nplt.show()")
        elif kind == 4:
            lines.append(f"idx_demo = minibatch_indices({rng.randint(5, 20)}, {rng.randint(2, 5)}, np.random.default_rng({rng.randint(0, 99)}))\n"
                         "print([len(v) for v in idx_demo])")
        else:
            lines.append(f"print(np.corrcoef(x_train, y_train)[0, 1], x_train.std(), y_train.{rng.choice(['mean', 'std', 'max'])}())")
    return "\n".join(lines) + "\n"


def render_body(fn: str, choice: tuple[int, list[int]], names: dict, fmt: dict, indent: str) -> str:
    k, picks, extras = choice
    out = []
    first_arg = "x" if fn not in ("mse", "rmse", "mae") else "y_hat"
    for pos, (alts, pick) in enumerate(zip(S[fn][k], picks)):
        for where, e in extras:
            if where == pos and not (S[fn][k][pos][pick].startswith(" ")):
                out.append(EXTRAS[e].format(a=first_arg))
        line = alts[pick]
        if not line:
            continue
        line = line.format(**names)
        if fmt["tight"]:
            line = line.replace(" = ", "=").replace(" * ", "*").replace(" - ", "-").replace(", ", ",")
        if fmt["comments"] and len(out) == 0:
            out.append("# " + fmt.get("comment_text", "compute it"))
        out.extend(line.split("\n    ") if "\n    " in line else [line])
        if fmt["blank"] and len(out) == 2:
            out.append("")
    return "\n".join(indent + ln if ln else "" for ln in out)


def fill(release: dict, student: dict) -> dict:
    """The release notebook with every stub filled as this student would."""
    nb = copy.deepcopy(release)
    order_rng = random.Random(student["order_seed"]) if student["order_seed"] is not None else None
    cells = []
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            cells.append(cell)
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if "raise NotImplementedError()" in src:
            src = fill_source(src, student)
            if order_rng is not None:
                src = reorder(src, order_rng)
        cell = dict(cell, source=src)
        cells.append(cell)
    cells.append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                  "source": student["explore"]})
    if order_rng is not None:                  # move whole function cells around too
        code_idx = [i for i, c in enumerate(cells) if c.get("cell_type") == "code" and "def " in c["source"]
                    and "raise" not in c["source"]]
        moved = [cells[i] for i in code_idx]
        order_rng.shuffle(moved)
        for i, c in zip(code_idx, moved):
            cells[i] = c
    nb["cells"] = cells
    return nb


def fill_source(src: str, student: dict) -> str:
    lines = src.split("\n")
    out = []
    current = None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("def "):
            current = stripped[4:].split("(")[0]
        if "# YOUR CODE HERE" in line:
            continue
        if stripped == "raise NotImplementedError()" and current in S:
            indent = line[:len(line) - len(line.lstrip())]
            fmt = dict(student["format"], comment_text=student.get("comment_text", "compute it"))
            out.append(render_body(current, student["choices"][current], student["names"], fmt, indent))
            continue
        if stripped.startswith('"""') and student.get("strip_docstrings"):
            continue
        out.append(line)
    return "\n".join(out)


def reorder(src: str, rng: random.Random) -> str:
    """Swap the top-level functions of a cell."""
    parts = [p for p in ("\n" + src).split("\ndef ") if p.strip()]
    if len(parts) < 2 or not all(p.lstrip().split("(")[0].isidentifier() for p in parts):
        return src
    rng.shuffle(parts)
    return "\n\n".join("def " + p.strip("\n") for p in parts) + "\n"


def plant_copy(rng: random.Random, source: dict) -> dict:
    """A copy of ``source``: every name changed, reformatted, functions reordered, comments changed, one
    function rewritten in a fresh style; the exploration cell kept or not."""
    twin = copy.deepcopy(source)
    twin["names"] = {k: rng.choice([n for n in v if n != source["names"][k]]) for k, v in NAMES.items()}
    twin["format"] = {"tight": not source["format"]["tight"], "comments": not source["format"]["comments"],
                      "blank": not source["format"]["blank"]}
    twin["comment_text"] = rng.choice(["my answer", "自分で書いた", "see lecture slides", "TODO check"])
    twin["strip_docstrings"] = rng.random() < 0.5
    twin["order_seed"] = rng.randrange(1 << 30)
    rewritten = rng.choice([f for f in FUNCTIONS if len(S[f]) > 1])
    old = source["choices"][rewritten][0]
    k = rng.choice([i for i in range(len(S[rewritten])) if i != old])
    twin["choices"][rewritten] = (k, [rng.randrange(len(a)) for a in S[rewritten][k]], [])
    if rng.random() < 0.5:
        twin["explore"] = exploration(rng)
    return twin


def make_class(n_students: int, n_copies: int, seed: int = 1) -> tuple[dict[str, dict], set[tuple[str, str]]]:
    """{key: notebook} for ``n_students`` (of which ``n_copies`` are planted copies) and the planted pairs."""
    rng = random.Random(seed)
    release = json.loads(RELEASE.read_text(encoding="utf-8"))
    students = {f"s{i:03d}": draw_student(rng) for i in range(n_students - n_copies)}
    originals = rng.sample(sorted(students), n_copies)
    planted = set()
    for j, src in enumerate(originals):
        key = f"c{j:03d}"
        students[key] = plant_copy(rng, students[src])
        planted.add(tuple(sorted((src, key))))
    return {k: fill(release, s) for k, s in students.items()}, planted


def measure(n_students: int, n_copies: int, seed: int = 1) -> dict:
    notebooks, planted = make_class(n_students, n_copies, seed)
    start = time.perf_counter()
    flags = similarity.find_similar(notebooks, RELEASE)
    seconds = time.perf_counter() - start
    listed = {tuple(sorted((f.a, f.b))) for f in flags}
    copiers = {k for pair in planted for k in pair}
    independent = [k for k in notebooks if k not in copiers]
    flagged_independent = {k for pair in listed - planted for k in pair if k not in copiers}
    return {"students": len(notebooks), "planted": len(planted), "listed": len(flags),
            "planted_found": len(planted & listed), "recall": len(planted & listed) / len(planted) if planted else 1.0,
            "independent": len(independent), "independent_flagged": len(flagged_independent),
            "independent_flagged_share": len(flagged_independent) / len(independent) if independent else 0.0,
            "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=300)
    ap.add_argument("--copies", type=int, default=15, help="planted copies among the students")
    ap.add_argument("--seed", type=int, action="append", help="class seeds (default: 1 2 3)")
    args = ap.parse_args()
    for seed in args.seed or [1, 2, 3]:
        m = measure(args.students, args.copies, seed)
        print(f"seed {seed}: {m['students']} students, {m['planted']} planted copies: "
              f"{m['planted_found']}/{m['planted']} planted pairs listed ({100 * m['recall']:.1f} %), "
              f"{m['independent_flagged']}/{m['independent']} independent students flagged "
              f"({100 * m['independent_flagged_share']:.2f} %), {m['listed']} pairs listed, "
              f"{m['seconds']:.2f} s")


if __name__ == "__main__":
    main()
