"""Honest work scores full, however it is written: the solution scores 80/80, the release 0, and a catalog of
honest variants (other styles, other types, other algorithms, Colab leftovers, odd cell orders, old file
formats, a different network) loses nothing.

Each variant is derived from the current solution notebook (``notebook_variants``). Variants about the NumPy
questions drop the PyTorch part (``lean``/``without_mlp``) and assert nothing about mlp; the solution, the
release and the Dropout MLP run the real MNIST training. All are graded in one module-scoped batch.
"""
from __future__ import annotations

import notebook_variants as nv
import pytest

NUMPY = nv.NUMPY_QUESTIONS


# --- the variants ------------------------------------------------------------------------------------------
def pure_python() -> dict:
    """Loops over lists, Python floats and math.sqrt: no NumPy in the graded arithmetic."""
    nb = nv.lean(nv.solution())
    nb = nv.replace_def(nb, "fit_normal_equation", '''
        def fit_normal_equation(x, y):
            xs = [float(v) for v in x]
            ys = [float(v) for v in y]
            n = len(xs)
            sx = sy = sxx = sxy = 0.0
            for xi, yi in zip(xs, ys):
                sx += xi
                sy += yi
                sxx += xi * xi
                sxy += xi * yi
            det = sxx * n - sx * sx
            return (sxy * n - sx * sy) / det, (sxx * sy - sx * sxy) / det
        ''')
    nb = nv.replace_def(nb, "predict", '''
        def predict(x, w, b):
            return [w * float(xi) + b for xi in x]
        ''')
    nb = nv.replace_def(nb, "loss", '''
        def loss(x, y, w, b):
            total = 0.0
            for xi, yi in zip(x, y):
                total += (float(yi) - (w * float(xi) + b)) ** 2
            return total / 2
        ''')
    nb = nv.replace_def(nb, "gradient", '''
        def gradient(x, y, w, b):
            dw = db = 0.0
            for xi, yi in zip(x, y):
                r = float(yi) - (w * float(xi) + b)
                dw += -r * float(xi)
                db += -r
            return dw, db
        ''')
    nb = nv.replace_def(nb, "gd_step", '''
        def gd_step(x, y, w, b, lr):
            dw, db = gradient(x, y, w, b)
            return w - lr * dw / len(x), b - lr * db / len(x)
        ''')
    nb = nv.replace_def(nb, "minibatch_indices", '''
        def minibatch_indices(n_samples, batch_size, rng):
            order = [int(i) for i in rng.permutation(n_samples)]
            return [order[i:i + batch_size] for i in range(0, n_samples, batch_size)]
        ''')
    nb = nv.replace_def(nb, "train_sgd", '''
        def train_sgd(x, y, lr, batch_size, n_epochs, seed, w0=1.0, b0=2.0):
            xs, ys = [float(v) for v in x], [float(v) for v in y]
            rng = np.random.default_rng(seed)
            w, b, losses = w0, b0, []
            for epoch in range(n_epochs):
                for batch in minibatch_indices(len(xs), batch_size, rng):
                    w, b = gd_step([xs[i] for i in batch], [ys[i] for i in batch], w, b, lr)
                losses.append(loss(xs, ys, w, b))
            return w, b, losses
        ''')
    nb = nv.replace_def(nb, "mse", '''
        def mse(y, y_hat):
            return sum((float(a) - float(p)) ** 2 for a, p in zip(y, y_hat)) / len(y)
        ''')
    nb = nv.replace_def(nb, "rmse", '''
        def rmse(y, y_hat):
            import math
            return math.sqrt(mse(y, y_hat))
        ''')
    return nv.replace_def(nb, "mae", '''
        def mae(y, y_hat):
            return sum(abs(float(a) - float(p)) for a, p in zip(y, y_hat)) / len(y)
        ''')


def float32() -> dict:
    """Everything computed in float32 (a student who copied a PyTorch habit), float32 results returned."""
    nb = nv.lean(nv.solution())
    nb = nv.insert_before_def(nb, "fit_normal_equation", "F = np.float32")
    nb = nv.replace_def(nb, "fit_normal_equation", '''
        def fit_normal_equation(x, y):
            x, y = np.asarray(x, dtype=F), np.asarray(y, dtype=F)
            A = np.array([[np.sum(x * x), np.sum(x)], [np.sum(x), F(len(x))]], dtype=F)
            c = np.array([np.sum(x * y), np.sum(y)], dtype=F)
            w, b = np.linalg.solve(A, c)
            return w, b
        ''')
    nb = nv.replace_def(nb, "predict", '''
        def predict(x, w, b):
            return F(w) * np.asarray(x, dtype=F) + F(b)
        ''')
    nb = nv.replace_def(nb, "loss", '''
        def loss(x, y, w, b):
            r = np.asarray(y, dtype=F) - predict(x, w, b)
            return F(0.5) * np.sum(r * r)
        ''')
    nb = nv.replace_def(nb, "gradient", '''
        def gradient(x, y, w, b):
            x = np.asarray(x, dtype=F)
            r = np.asarray(y, dtype=F) - predict(x, w, b)
            return np.sum(-r * x), np.sum(-r)
        ''')
    nb = nv.replace_def(nb, "gd_step", '''
        def gd_step(x, y, w, b, lr):
            dw, db = gradient(x, y, w, b)
            n = F(len(x))
            return F(w) - F(lr) * dw / n, F(b) - F(lr) * db / n
        ''')
    nb = nv.replace_def(nb, "minibatch_indices", '''
        def minibatch_indices(n_samples, batch_size, rng):
            perm = rng.permutation(n_samples).astype(np.int32)
            return [perm[i:i + batch_size] for i in range(0, n_samples, batch_size)]
        ''')
    nb = nv.replace_def(nb, "train_sgd", '''
        def train_sgd(x, y, lr, batch_size, n_epochs, seed, w0=1.0, b0=2.0):
            x, y = np.asarray(x, dtype=F), np.asarray(y, dtype=F)
            rng = np.random.default_rng(seed)
            w, b = F(w0), F(b0)
            losses = np.zeros(n_epochs, dtype=F)
            for epoch in range(n_epochs):
                for idx in minibatch_indices(len(x), batch_size, rng):
                    w, b = gd_step(x[idx], y[idx], w, b, lr)
                    w, b = F(w), F(b)
                losses[epoch] = loss(x, y, w, b)
            return w, b, losses
        ''')
    nb = nv.replace_def(nb, "mse", '''
        def mse(y, y_hat):
            e = np.asarray(y, dtype=F) - np.asarray(y_hat, dtype=F)
            return np.mean(e * e)
        ''')
    nb = nv.replace_def(nb, "rmse", '''
        def rmse(y, y_hat):
            return np.sqrt(mse(y, y_hat))
        ''')
    return nv.replace_def(nb, "mae", '''
        def mae(y, y_hat):
            return np.mean(np.abs(np.asarray(y, dtype=F) - np.asarray(y_hat, dtype=F)))
        ''')


def return_types() -> dict:
    """Other containers and scalar types: 0-d arrays, numpy scalars, one-element arrays, lists for tuples,
    arrays for pairs, a tuple of lists for the minibatches (drawn with rng.choice), np.polyfit's array."""
    nb = nv.lean(nv.solution())
    nb = nv.replace_def(nb, "fit_normal_equation", '''
        def fit_normal_equation(x, y):
            return np.polyfit(np.asarray(x, dtype=float), np.asarray(y, dtype=float), 1)   # array([w, b])
        ''')
    nb = nv.replace_def(nb, "predict", '''
        def predict(x, w, b):
            return (w * np.asarray(x, dtype=float) + b).tolist()
        ''')
    nb = nv.replace_def(nb, "loss", '''
        def loss(x, y, w, b):
            r = np.asarray(y, dtype=float) - np.asarray(predict(x, w, b))
            return np.array(0.5 * np.sum(r ** 2))        # a 0-d array
        ''')
    nb = nv.replace_def(nb, "gradient", '''
        def gradient(x, y, w, b):
            x = np.asarray(x, dtype=float)
            r = np.asarray(y, dtype=float) - np.asarray(predict(x, w, b))
            return np.array([np.sum(-r * x), np.sum(-r)])
        ''')
    nb = nv.replace_def(nb, "gd_step", '''
        def gd_step(x, y, w, b, lr):
            g = np.asarray(gradient(x, y, w, b))
            return list(np.array([w, b]) - lr * g / len(x))
        ''')
    nb = nv.replace_def(nb, "minibatch_indices", '''
        def minibatch_indices(n_samples, batch_size, rng):
            perm = rng.choice(n_samples, size=n_samples, replace=False)
            return tuple(perm[i:i + batch_size].tolist() for i in range(0, n_samples, batch_size))
        ''')
    nb = nv.replace_def(nb, "train_sgd", '''
        def train_sgd(x, y, lr, batch_size, n_epochs, seed, w0=1.0, b0=2.0):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            rng = np.random.default_rng(seed)
            w, b = np.float64(w0), np.float64(b0)
            losses = []
            for _ in range(n_epochs):
                for idx in minibatch_indices(len(x), batch_size, rng):
                    w, b = gd_step(x[list(idx)], y[list(idx)], w, b, lr)
                losses.append(np.asarray(loss(x, y, w, b)))
            return [np.asarray(w), np.asarray(b), np.array(losses)]
        ''')
    nb = nv.replace_def(nb, "mse", '''
        def mse(y, y_hat):
            return np.mean((np.asarray(y) - np.asarray(y_hat)) ** 2)        # numpy.float64
        ''')
    nb = nv.replace_def(nb, "rmse", '''
        def rmse(y, y_hat):
            return np.sqrt(np.asarray(mse(y, y_hat))).reshape(1)         # a one-element array
        ''')
    return nv.replace_def(nb, "mae", '''
        def mae(y, y_hat):
            return np.asarray(np.mean(np.abs(np.subtract(y, y_hat))))
        ''')


def alternatives() -> dict:
    """Other algorithms: lstsq for the normal equation, matrix products, rng.shuffle of an index array,
    train_sgd that inlines the update and the loss instead of calling gd_step and loss."""
    nb = nv.lean(nv.solution())
    nb = nv.replace_def(nb, "fit_normal_equation", '''
        def fit_normal_equation(x, y):
            X = np.column_stack([np.asarray(x, dtype=float), np.ones(len(x))])
            (w, b), *_ = np.linalg.lstsq(X, np.asarray(y, dtype=float), rcond=None)
            return w, b
        ''')
    nb = nv.replace_def(nb, "gradient", '''
        def gradient(x, y, w, b):
            X = np.column_stack([np.asarray(x, dtype=float), np.ones(len(x))])
            r = np.asarray(y, dtype=float) - X @ np.array([w, b])
            dw, db = -(X.T @ r)
            return dw, db
        ''')
    nb = nv.replace_def(nb, "minibatch_indices", '''
        def minibatch_indices(n_samples, batch_size, rng):
            idx = np.arange(n_samples)
            rng.shuffle(idx)
            return np.array_split(idx, range(batch_size, n_samples, batch_size))
        ''')
    nb = nv.replace_def(nb, "train_sgd", '''
        def train_sgd(x, y, lr, batch_size, n_epochs, seed, w0=1.0, b0=2.0):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            rng = np.random.default_rng(seed)
            w, b = w0, b0
            losses = []
            for _ in range(n_epochs):
                order = rng.permutation(len(x))
                for start in range(0, len(x), batch_size):
                    idx = order[start:start + batch_size]
                    r = y[idx] - (w * x[idx] + b)
                    w, b = w + lr * np.mean(r * x[idx]), b + lr * np.mean(r)
                losses.append(0.5 * np.sum((y - w * x - b) ** 2))
            return w, b, losses
        ''')
    nb = nv.replace_def(nb, "mse", '''
        def mse(y, y_hat):
            return np.average(np.square(np.subtract(y, y_hat)))
        ''')
    return nv.replace_def(nb, "mae", '''
        def mae(y, y_hat):
            e = np.subtract(y, y_hat)
            return np.linalg.norm(e, 1) / len(e)
        ''')


def keyword_arguments() -> dict:
    """Helpers called with keyword arguments, as the notebook itself calls ``gd_step(..., lr=0.05)``.

    While gd_step and train_sgd are graded, their helpers are the grader's oracles: those must take the
    helpers' keyword arguments as the student's own functions do."""
    nb = nv.lean(nv.solution())
    nb = nv.edit_def(nb, "loss", "predict(x, w, b)", "predict(x, w=w, b=b)")
    nb = nv.edit_def(nb, "gd_step", "gradient(x, y, w, b)", "gradient(x, y, w=w, b=b)")
    nb = nv.edit_def(nb, "train_sgd", "minibatch_indices(len(x), batch_size, rng)",
                     "minibatch_indices(len(x), batch_size=batch_size, rng=rng)")
    nb = nv.edit_def(nb, "train_sgd", "gd_step(x[idx], y[idx], w, b, lr)", "gd_step(x[idx], y[idx], w, b, lr=lr)")
    return nv.edit_def(nb, "train_sgd", "loss(x, y, w, b)", "loss(x, y, w=w, b=b)")


def colab_and_noise() -> dict:
    """A notebook saved from Colab: drive mounting, ``!pip``/``%pip`` lines, ``%matplotlib inline``; graded
    functions that print to stderr, warn and plot; the set-up cell and the self-checks kept."""
    nb = nv.with_colab_lines(nv.without_mlp(nv.solution()))
    nb = nv.insert_before_def(nb, "fit_normal_equation", "import sys\nimport warnings")
    nb = nv.edit_def(nb, "fit_normal_equation", "    w, b = np.linalg.solve(A, c)\n",
                     "    w, b = np.linalg.solve(A, c)\n"
                     "    plt.figure()\n    plt.scatter(x, y, s=2)\n    plt.plot(x, w * x + b)\n    plt.close()\n")
    nb = nv.edit_def(nb, "loss", "    residual =",
                     "    print('loss called with', len(x), 'points', file=sys.stderr)\n    residual =")
    nb = nv.edit_def(nb, "gradient", "    x = np.asarray",
                     "    warnings.warn('gradient: check the sign!', UserWarning)\n    x = np.asarray")
    nb = nv.edit_def(nb, "mse", "    error =", "    sys.stderr.write('mse\\n')\n    print('debug: mse')\n    error =")
    return nv.append_cells(nb, "import warnings\nwarnings.warn('done', DeprecationWarning)\n"
                               "print('all done', file=sys.stderr)")


def reordered() -> dict:
    """Helpers defined after the functions that use them (predict, gradient, mse), every code cell run
    twice, extra empty, comment and markdown cells, and a cell that raises."""
    nb = nv.lean(nv.solution())
    nb = nv.move_def_after(nb, "predict", "gradient")        # loss and gradient call predict
    nb = nv.move_def_after(nb, "gradient", "gd_step")        # gd_step calls gradient
    mse_text = nv.definition(nb, "mse")
    nb = nv.replace_def(nb, "mse", "pass  # mse is at the end of the notebook\n")
    nb = nv.append_cells(nb, mse_text)                        # rmse calls mse
    nb = nv.duplicate_cells(nb)
    nb = nv.insert_after_def(nb, "fit_normal_equation", "", "# nothing here yet\n", "undefined_name + 1")
    nb["cells"].insert(3, nv.markdown_cell("## メモ / notes"))
    return nb


def rebound() -> dict:
    """Graded names rebound to non-functions later on: the result of ``rmse(...)`` stored in ``rmse``, a
    PyTorch loss object stored in ``loss`` (the functions before them are what is graded)."""
    nb = nv.lean(nv.solution())
    return nv.append_cells(nb, """
        y_pred = predict(x_test, w_ne, b_ne)
        rmse = rmse(y_test, y_pred)
        mae = mae(y_test, y_pred)
        print(rmse, mae)
        """, """
        import torch
        loss = torch.nn.CrossEntropyLoss()
        gradient = None
        """)


def nbformat3() -> dict:
    return nv.to_nbformat3(nv.without_mlp(nv.solution()))


def dropout_mlp() -> dict:
    """Other PyTorch styles, trained for real: an MLP with Dropout (model.train()/model.eval() matter) built
    with nn.Sequential, get_device returning a string, train_one_epoch with a global criterion and
    len(loader.dataset), evaluate returning a 0-d tensor."""
    nb = nv.without_otter(nv.solution())
    nb = nv.replace_def(nb, "get_device", '''
        def get_device():
            return "cuda:0" if torch.cuda.is_available() else "cpu"
        ''')
    nb = nv.replace_def(nb, "train_one_epoch", '''
        def train_one_epoch(model, loader, optimizer, device):
            model.train()
            running = 0.0
            for batch_idx, (data, target) in enumerate(loader):
                data, target = data.to(device), target.to(device)
                optimizer.zero_grad()
                loss = criterion(model(data), target)
                loss.backward()
                optimizer.step()
                running += loss.item() * data.size(0)
            return running / len(loader.dataset)
        ''')
    nb = nv.insert_before_def(nb, "train_one_epoch", "criterion = nn.CrossEntropyLoss()")
    nb = nv.replace_def(nb, "evaluate", '''
        def evaluate(model, loader, device):
            model.eval()
            correct = torch.tensor(0)
            with torch.no_grad():
                for data, target in loader:
                    correct += (model(data.to(device)).argmax(1) == target.to(device)).sum()
            return correct / len(loader.dataset)
        ''')
    return nv.replace_def(nb, "MLP", '''
        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(
                    nn.Flatten(),
                    nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                    nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2),
                    nn.Linear(128, 10),
                )

            def forward(self, x):
                return self.net(x)
        ''')


HONEST = {  # name -> (builder, the questions that must score full)
    "dropout_mlp": (dropout_mlp, nv.ALL_QUESTIONS),
    "colab_and_noise": (colab_and_noise, NUMPY),
    "nbformat3": (nbformat3, NUMPY),
    "reordered": (reordered, NUMPY),
    "pure_python": (pure_python, NUMPY),
    "float32": (float32, NUMPY),
    "return_types": (return_types, NUMPY),
    "alternatives": (alternatives, NUMPY),
    "rebound": (rebound, NUMPY),
    "keyword_arguments": (keyword_arguments, NUMPY),
}


@pytest.fixture(scope="module")
def results(grader):
    # the real trainings first: they take longest
    subs = {"solution": nv.solution, "release": nv.release}
    subs.update({name: build for name, (build, _) in HONEST.items()})
    return grader.many(subs)


# --- the solution and the release ------------------------------------------------------------------------
def test_solution_scores_full(results, solution_result):
    r = results["solution"]
    assert r is solution_result or r == solution_result
    assert r["status"] == "ok", r["message"]
    assert r["total"] == r["max_total"] == 80.0, {q: nv.failed_messages(r, q) for q in nv.ALL_QUESTIONS}
    assert all(c["status"] == "ok" for c in r["cells"]), [c for c in r["cells"] if c["status"] != "ok"]
    assert r["mnist_profile"] == "small" and r["measurements"]["mnist_accuracy"] >= 0.90


def test_release_scores_zero_and_runs(results):
    r = results["release"]
    assert r["status"] == "ok", r["message"]
    assert r["total"] == 0.0
    for q in nv.ALL_QUESTIONS:
        assert r["questions"][q]["score"] == 0.0
        assert nv.failed_messages(r, q), q
    # the stubs raise NotImplementedError: each question says so, in words a student understands
    for q in NUMPY:
        assert any("not implemented yet" in m for m in nv.failed_messages(r, q)), nv.failed_messages(r, q)
    # the cells ran (and some raised, as a stub does), none crashed or hung
    assert {c["status"] for c in r["cells"]} <= {"ok", "error"}
    assert any(c["status"] == "error" for c in r["cells"])


# --- honest variants ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(HONEST))
def test_honest_variant_scores_full(results, name):
    r = results[name]
    questions = HONEST[name][1]
    lost = {q: nv.failed_messages(r, q) for q in questions if r["questions"][q]["score"] != nv.full(q)}
    assert not lost, lost
    assert r["status"] == "ok", r["message"]


def test_variants_really_differ_from_the_solution():
    """Guard against a helper silently doing nothing: every variant's code differs from the solution's."""
    base = nv.code_sources(nv.lean(nv.solution()))
    for name, (build, _) in HONEST.items():
        nb = build()
        if "worksheets" in nb:
            continue
        assert nv.code_sources(nb) != base, name
