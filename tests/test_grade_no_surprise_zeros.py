"""No surprise zeros: honest code that lost points before, partial credit per function, a mistake charged once.

Each variant is derived from the current solution (``notebook_variants``). NumPy variants are lean (no MNIST
training); the PyTorch variants keep the real training on the small MNIST profile. All are graded in one
module-scoped batch, two at a time.
"""
from __future__ import annotations

import json

import notebook_variants as nv
import pytest

NUMPY = nv.NUMPY_QUESTIONS


# --- honest code whose helpers return other containers (stand-ins must behave like the student's own) -------
def arrays_between_own_functions() -> dict:
    """gradient returns an ndarray and gd_step divides it; loss returns a 0-d array; minibatch_indices
    returns np.array_split's list of arrays; predict returns an (n, 1) column."""
    nb = nv.lean(nv.solution())
    nb = nv.replace_def(nb, "gradient", '''
        def gradient(x, y, w, b):
            x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
            r = y - (w * x + b)
            return np.array([np.sum(-r * x), np.sum(-r)])
        ''')
    nb = nv.replace_def(nb, "gd_step", '''
        def gd_step(x, y, w, b, lr):
            g = gradient(x, y, w, b) / len(x)
            return w - lr * g[0], b - lr * g[1]
        ''')
    nb = nv.replace_def(nb, "loss", '''
        def loss(x, y, w, b):
            r = np.asarray(y) - (w * np.asarray(x) + b)
            return 0.5 * np.sum(r ** 2, keepdims=False) * np.ones(())
        ''')
    nb = nv.replace_def(nb, "minibatch_indices", '''
        def minibatch_indices(n_samples, batch_size, rng):
            perm = rng.permutation(n_samples)
            return np.array_split(perm, range(batch_size, n_samples, batch_size))
        ''')
    nb = nv.replace_def(nb, "train_sgd", '''
        def train_sgd(x, y, lr, batch_size, n_epochs, seed, w0=1.0, b0=2.0):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            rng = np.random.default_rng(seed)
            params = np.array([w0, b0], dtype=float)
            losses = []
            for _ in range(n_epochs):
                for idx in minibatch_indices(len(x), batch_size, rng):
                    params = np.array(gd_step(x[idx], y[idx], params[0], params[1], lr))
                losses.append(loss(x, y, *params).item())
            return params[0], params[1], losses
        ''')
    return nb


def lists_between_own_functions() -> dict:
    """gradient returns a list and gd_step unpacks it with numpy scalars; minibatch_indices returns lists."""
    nb = nv.lean(nv.solution())
    nb = nv.replace_def(nb, "gradient", '''
        def gradient(x, y, w, b):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            r = y - (w * x + b)
            return [np.float64(np.sum(-r * x)), np.float64(np.sum(-r))]
        ''')
    nb = nv.replace_def(nb, "gd_step", '''
        def gd_step(x, y, w, b, lr):
            g = np.array(gradient(x, y, w, b)) / len(x)
            return tuple(np.array([w, b]) - lr * g)
        ''')
    nb = nv.replace_def(nb, "minibatch_indices", '''
        def minibatch_indices(n_samples, batch_size, rng):
            perm = rng.permutation(n_samples).tolist()
            return [perm[i:i + batch_size] for i in range(0, n_samples, batch_size)]
        ''')
    return nb


def compensating_caller() -> dict:
    """gradient returns the mean (wrong: Q3 loses) and gd_step therefore does not divide by N: in this
    notebook gd_step takes exactly the task's step, so Q4 keeps its points (a mistake is charged once)."""
    nb = nv.lean(nv.solution())
    nb = nv.edit_def(nb, "gradient", "np.sum(-residual * x)", "np.mean(-residual * x)")
    nb = nv.edit_def(nb, "gradient", "np.sum(-residual))", "np.mean(-residual))")
    nb = nv.replace_def(nb, "gd_step", '''
        def gd_step(x, y, w, b, lr):
            dw, db = gradient(x, y, w, b)
            return w - lr * dw, b - lr * db
        ''')
    return nb


def float32_normal_equation() -> dict:
    """The lecture's formula, in float32."""
    nb = nv.lean(nv.solution())
    return nv.replace_def(nb, "fit_normal_equation", '''
        def fit_normal_equation(x, y):
            x = np.asarray(x, dtype=np.float32)
            y = np.asarray(y, dtype=np.float32)
            A = np.array([[np.sum(x * x), np.sum(x)], [np.sum(x), len(x)]], dtype=np.float32)
            c = np.array([np.sum(x * y), np.sum(y)], dtype=np.float32)
            w, b = np.linalg.solve(A, c)
            return w, b
        ''')


def metrics_arrays_only_and_one_wrong() -> dict:
    """Metrics that work on arrays only (as the task asks), mae squared (wrong): mse and rmse keep their
    part of Q7."""
    nb = nv.lean(nv.solution())
    nb = nv.replace_def(nb, "mse", '''
        def mse(y, y_hat):
            return ((y - y_hat) ** 2).mean()
        ''')
    nb = nv.replace_def(nb, "rmse", '''
        def rmse(y, y_hat):
            return np.sqrt(((y - y_hat) ** 2).mean())
        ''')
    nb = nv.replace_def(nb, "mae", '''
        def mae(y, y_hat):
            return ((y - y_hat) ** 2).mean()
        ''')
    # loss on arrays only too
    return nv.replace_def(nb, "loss", '''
        def loss(x, y, w, b):
            return 0.5 * ((y - (w * x + b)) ** 2).sum()
        ''')


def rotation_shuffle() -> dict:
    """A random rotation of 0..n-1 is a permutation in chunks, fresh each call: not a shuffle."""
    nb = nv.lean(nv.solution())
    return nv.replace_def(nb, "minibatch_indices", '''
        def minibatch_indices(n_samples, batch_size, rng):
            perm = np.roll(np.arange(n_samples), rng.integers(n_samples))
            return [perm[i:i + batch_size] for i in range(0, n_samples, batch_size)]
        ''')


def torch_styles() -> dict:
    """d2l's try_gpu (device_count), a cached get_device, MLP as a factory of nn.Sequential, tqdm in the
    training loop, `loss` reused for the cross-entropy module (the NumPy loss stays graded from its def),
    and `rmse = rmse(...)` rebinding a metric to a number."""
    nb = nv.without_otter(nv.solution())
    nb = nv.replace_def(nb, "get_device", '''
        @functools.lru_cache(maxsize=None)
        def get_device():
            if torch.cuda.device_count() >= 1:
                return torch.device(f"cuda:{0}")
            return torch.device("cpu")
        ''')
    nb = nv.replace_text(nb, "import time\n", "import functools\nimport time\n\nfrom tqdm.auto import tqdm\n")
    nb = nv.replace_def(nb, "MLP", '''
        def MLP():
            return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                 nn.Linear(128, 10))
        ''')
    nb = nv.replace_def(nb, "train_one_epoch", '''
        def train_one_epoch(model, loader, optimizer, device):
            model.train()
            total, n = 0.0, 0
            for images, labels in tqdm(loader, leave=False):
                images, labels = images.to(device), labels.to(device)
                optimizer.zero_grad()
                batch_loss = loss(model(images), labels)
                batch_loss.backward()
                optimizer.step()
                total += batch_loss.item() * len(labels)
                n += len(labels)
            return total / n
        ''')
    nb = nv.insert_before_def(nb, "train_one_epoch", "loss = nn.CrossEntropyLoss()")
    return nv.append_cells(nb, "rmse = rmse(y_test, predict(x_test, w_ne, b_ne))\nprint(rmse)")


def torch_mistakes() -> dict:
    """A forgotten zero_grad: the train_one_epoch part scores 0 with the zero_grad hint (the model trained
    with accumulated gradients may lose the accuracy part too); get_device, MLP and evaluate keep theirs.
    And a package the grader does not have."""
    nb = nv.without_otter(nv.solution())
    nb = nv.edit_def(nb, "train_one_epoch", "        optimizer.zero_grad()\n", "")
    return nv.append_cells(nb, "import lightgbm")


def lone_surrogate() -> dict:
    """A cell raising a message with a lone surrogate: the result must still be valid UTF-8 JSON."""
    nb = nv.lean(nv.solution())
    return nv.append_cells(nb, 'raise RuntimeError("debug: \\ud83d")')


VARIANTS = {
    "arrays_between_own_functions": arrays_between_own_functions,
    "lists_between_own_functions": lists_between_own_functions,
    "compensating_caller": compensating_caller,
    "float32_normal_equation": float32_normal_equation,
    "metrics_arrays_only_and_one_wrong": metrics_arrays_only_and_one_wrong,
    "rotation_shuffle": rotation_shuffle,
    "torch_styles": torch_styles,
    "torch_mistakes": torch_mistakes,
    "lone_surrogate": lone_surrogate,
}


@pytest.fixture(scope="module")
def results(grader):
    order = sorted(VARIANTS, key=lambda n: not n.startswith("torch"))  # the trainings first
    return grader.many({n: VARIANTS[n] for n in order})


def _lost(result, questions):
    return {q: nv.failed_messages(result, q) for q in questions if result["questions"][q]["score"] != nv.full(q)}


@pytest.mark.parametrize("name", ["arrays_between_own_functions", "lists_between_own_functions",
                                  "float32_normal_equation", "lone_surrogate"])
def test_honest_numpy_variants_score_full(results, name):
    r = results[name]
    assert r["status"] == "ok", r["message"]
    assert not _lost(r, NUMPY), _lost(r, NUMPY)


def test_a_helpers_mistake_is_charged_once(results):
    r = results["compensating_caller"]
    assert r["questions"]["gradient"]["score"] == 0.0
    assert any("平均ではなく和" in m for m in nv.failed_messages(r, "gradient"))
    assert not _lost(r, [q for q in NUMPY if q != "gradient"]), _lost(r, NUMPY)


def test_partial_credit_per_function(results):
    r = results["metrics_arrays_only_and_one_wrong"]
    metrics = r["questions"]["metrics"]
    assert metrics["parts"]["mae"]["score"] == 0.0
    assert metrics["parts"]["mse"]["score"] == metrics["parts"]["mse"]["max_score"] > 0
    assert metrics["parts"]["rmse"]["score"] == metrics["parts"]["rmse"]["max_score"] > 0
    assert metrics["score"] == metrics["max_score"] - metrics["parts"]["mae"]["max_score"]
    failed = [c for c in metrics["checks"] if not c["passed"]]
    assert [c["part"] for c in failed] == ["mae"] and "2 乗ではなく絶対値" in failed[0]["message"]
    # arrays only: loss and metrics are not asked to take lists
    assert r["questions"]["loss"]["score"] == nv.full("loss"), nv.failed_messages(r, "loss")


def test_a_rotation_is_not_a_shuffle(results):
    r = results["rotation_shuffle"]
    assert r["questions"]["minibatches"]["score"] == 0.0
    assert any("ランダムではありません" in m for m in nv.failed_messages(r, "minibatches"))
    # train_sgd is judged with the reference's minibatch_indices: it keeps its points
    assert r["questions"]["sgd"]["score"] == nv.full("sgd"), nv.failed_messages(r, "sgd")


def test_torch_styles_score_full_and_rebinding_is_flagged(results):
    r = results["torch_styles"]
    assert r["status"] == "ok", r["message"]
    assert not _lost(r, nv.ALL_QUESTIONS), _lost(r, nv.ALL_QUESTIONS)
    assert r["measurements"]["device"] == "cpu"   # this machine has no GPU: the result says where it ran
    flags = {f["kind"]: f["message"] for f in r["flags"]}
    assert "rebound" in flags and "loss" in flags["rebound"] and "rmse" in flags["rebound"], flags


def test_torch_mistakes_cost_their_part_and_a_missing_package_is_flagged(results):
    r = results["torch_mistakes"]
    mlp = r["questions"]["mlp"]
    assert mlp["parts"]["train_one_epoch"]["score"] == 0.0
    for part in ("get_device", "MLP", "evaluate"):
        assert mlp["parts"][part]["score"] == mlp["parts"][part]["max_score"] > 0, mlp
    assert any("zero_grad" in m for m in nv.failed_messages(r, "mlp")), nv.failed_messages(r, "mlp")
    assert [f for f in r["flags"] if f["kind"] == "missing_package" and "lightgbm" in f["message"]], r["flags"]


def test_lone_surrogate_result_is_valid_utf8(results):
    r = results["lone_surrogate"]
    text = json.dumps(r, ensure_ascii=False)
    text.encode("utf-8")  # raises on a lone surrogate
    assert any("debug" in str((c.get("error") or {}).get("evalue", "")) for c in r["cells"])


def test_deeply_nested_json_is_invalid(grader):
    r = grader(b"[" * 200_000 + b"]" * 200_000)
    assert r["status"] == "invalid", r["message"]
    assert r["total"] == 0.0
