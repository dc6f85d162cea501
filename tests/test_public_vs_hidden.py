"""The public self-checks catch what the grader takes points for (issue 9, part 5).

Every common mistake (the catalog of ``test_grade_mistakes.MISTAKES`` plus a forgotten
``optimizer.zero_grad()``, an MLP without ReLU and a ``get_device`` that caches its answer) goes, one
mistake per notebook, through

- the public checks, as a student runs them: the variant's cells executed in a fresh Python (MNIST
  training on a 2,048-image subset of the training set), then every ``tests/<question>.py`` of the release
  run by otter-grader against the namespace the cells left; and
- the grader (the ``grader`` fixture: small MNIST profile; numpy-only variants without the PyTorch part).

The test fails when the grader takes points from a question and no public check of that question fails
(an MNIST accuracy below the band's full marks excepted: the notebook prints the accuracy). It also fails
when a mistake in one question fails the public checks of another (a helper's bug must fail the helper's
self-check only), and when honest variants the grader accepts (an ``MLP`` factory function, a cached
``get_device`` that has ``cache_clear``, d2l's ``try_gpu`` idiom, tqdm in ``train_one_epoch``, scikit-learn's
metrics) fail a public check, and when a wrong helper fails the public case of its caller (loss and gradient
are judged with the student's own ``predict``, rmse with the student's own ``mse``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import notebook_variants as nv
import pytest
import test_grade_mistakes as tm

from autograder import layout
from autograder import assignment

# name -> (question, graded name, the mistake): a new definition or (old, new) replacements, as in tm.MISTAKES
EXTRA_MISTAKES = {
    "forgotten_zero_grad": ("mlp", "train_one_epoch", [("        optimizer.zero_grad()\n", "")]),
    "mlp_without_relu": ("mlp", "MLP", [("x = F.relu(self.fc1(x))", "x = self.fc1(x)"),
                                        ("x = F.relu(self.fc2(x))", "x = self.fc2(x)")]),
    "get_device_cached": ("mlp", "get_device", '''
        def get_device():
            if not hasattr(get_device, "answer"):
                get_device.answer = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            return get_device.answer
        '''),
}
MISTAKES = {name: (q, graded, mistake) for name, (_, q, graded, mistake, _) in tm.MISTAKES.items()}
MISTAKES.update(EXTRA_MISTAKES)

# honest code the grader accepts: every public check must pass. name -> list of (graded name, mistake)
HONEST = {
    "mlp_factory_function": [("MLP", '''
        def MLP():
            return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                 nn.Linear(128, 10))
        ''')],
    "get_device_lru_cache": [("get_device", '''
        import functools


        @functools.lru_cache(maxsize=None)
        def get_device():
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        ''')],
    "get_device_d2l_try_gpu": [("get_device", '''
        def get_device(i=0):
            if torch.cuda.device_count() >= i + 1:
                return torch.device(f"cuda:{i}")
            return torch.device("cpu")
        ''')],
    # packages the grader offers (as Colab does)
    "train_one_epoch_with_tqdm": [("train_one_epoch", [("    for images, labels in loader:\n",
                                                        "    from tqdm.auto import tqdm\n"
                                                        "    for images, labels in tqdm(loader, leave=False):\n")])],
    "metrics_with_sklearn": [("mse", '''
        def mse(y, y_hat):
            from sklearn.metrics import mean_squared_error
            return float(mean_squared_error(y, y_hat))
        '''), ("mae", '''
        def mae(y, y_hat):
            from sklearn.metrics import mean_absolute_error
            return float(mean_absolute_error(y, y_hat))
        ''')],
    # arrays only, as the task text allows for Q2 and Q7 (no np.asarray: a list would fail)
    "arrays_only_loss_and_metrics": [("predict", '''
        def predict(x, w, b):
            return w * x + b
        '''), ("loss", '''
        def loss(x, y, w, b):
            return float(0.5 * ((y - (w * x + b)) ** 2).sum())
        '''), ("mse", '''
        def mse(y, y_hat):
            return float(((y - y_hat) ** 2).mean())
        '''), ("mae", '''
        def mae(y, y_hat):
            return float(abs(y - y_hat).mean())
        ''')],
}
NUMPY_ONLY_HONEST = {"metrics_with_sklearn", "arrays_only_loss_and_metrics"}
# a wrong helper and, in the same question, a caller that is right with it: the helper's public case fails,
# the caller's passes (name -> question, graded name, mistake, failing case, passing case)
PART_MISTAKES = {
    "predict_off_by_one": ("loss", "predict", [("return w * np.asarray(x, dtype=float) + b",
                                                "return w * np.asarray(x, dtype=float) + b + 1.0")],
                           "test_predict", "test_loss_is_half_sum"),
    "mse_as_sum": ("metrics", "mse", [("np.mean(error ** 2)", "np.sum(error ** 2)")], "test_mse", "test_rmse"),
}
MLP_QUESTIONS = {"mlp"}

# runs in a fresh Python: executes each variant's code cells in a namespace of its own, then the public
# tests of the release against it (with otter-grader, as on Colab)
CHILD = r'''
import json, os, sys
import matplotlib
matplotlib.use("Agg")
from otter.test_files.exception_test import ExceptionTestFile

variants = json.load(open(sys.argv[1], encoding="utf-8"))
questions = json.loads(sys.argv[3])
os.chdir(sys.argv[2])
out = {}
for name, nb in variants.items():
    ns = {"__name__": "__main__"}
    errors = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            exec(compile(src, f"<cell {i}>", "exec"), ns)
        except Exception as exc:
            errors.append(f"cell {i}: {type(exc).__name__}: {exc}")
    public = {}
    for q in questions[name]:
        tf = ExceptionTestFile.from_file(os.path.join("tests", q + ".py"))
        tf.run(ns)
        public[q] = [[r.test_case.body.test_func.__name__, r.passed, r.message] for r in tf.test_case_results]
    out[name] = {"errors": errors, "public": public}
with open(sys.argv[4], "w", encoding="utf-8") as f:
    json.dump(out, f)
'''


def _mistaken(nb: dict, graded: str, mistake) -> dict:
    if isinstance(mistake, str):
        return nv.replace_def(nb, graded, mistake)
    for old, new in mistake:
        nb = nv.edit_def(nb, graded, old, new)
    return nb


def variant(name: str) -> tuple[dict, bool]:
    """(the solution with the one mistake or honest change ``name``, whether it keeps the PyTorch part)."""
    nb = nv.solution()
    if name in HONEST:
        changes, with_mlp = HONEST[name], name not in NUMPY_ONLY_HONEST
    elif name == "solution":
        changes, with_mlp = [], True
    else:
        q, graded, mistake = MISTAKES[name] if name in MISTAKES else PART_MISTAKES[name][:3]
        changes, with_mlp = [(graded, mistake)], q in MLP_QUESTIONS
    for graded, mistake in changes:
        nb = _mistaken(nb, graded, mistake)
    return (nv.without_otter(nb) if with_mlp else nv.lean(nb)), with_mlp


def small_training(nb: dict) -> dict:
    """The notebook with the MNIST loaders cut to 2,048 training and 1,000 test images (the public side
    needs a trained `model`, not a good one)."""
    at = next(i for i, c in enumerate(nb["cells"])
              if c.get("cell_type") == "code" and "train_loader = DataLoader(" in nv._src(c))
    return nv.insert_cells(nb, at + 1, """
        train_loader = DataLoader(torch.utils.data.Subset(train_dataset, range(2048)), batch_size=64, shuffle=True)
        test_loader = DataLoader(torch.utils.data.Subset(test_dataset, range(1000)), batch_size=1000)
        """)


NAMES = ["solution", *MISTAKES, *HONEST, *PART_MISTAKES]


@pytest.fixture(scope="module")
def public(tmp_path_factory):
    """name -> {"errors": [...], "public": {question: [[case, passed, message], ...]}}."""
    if not (layout.MNIST_RAW / "train-images-idx3-ubyte").is_file():
        pytest.fail(f"MNIST is missing in {layout.MNIST_RAW}: run python -m autograder fetch-data")
    work = tmp_path_factory.mktemp("public")
    folder = work / "lec03"
    shutil.copytree(assignment.current().release_dir, folder)
    (folder / "data").symlink_to(layout.DATA_DIR, target_is_directory=True)
    groups = {True: {}, False: {}}
    for name in NAMES:
        nb, with_mlp = variant(name)
        groups[with_mlp][name] = small_training(nb) if with_mlp else nb
    procs = []
    for with_mlp, variants in groups.items():
        questions = list(nv.ALL_QUESTIONS if with_mlp else nv.NUMPY_QUESTIONS)
        source, result = work / f"variants-{with_mlp}.json", work / f"public-{with_mlp}.json"
        source.write_text(json.dumps(variants), encoding="utf-8")
        env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
        procs.append((result, subprocess.Popen(
            [sys.executable, "-c", CHILD, str(source), str(folder),
             json.dumps({name: questions for name in variants}), str(result)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    out = {}
    for result, proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err.decode("utf-8", "replace")[-3000:]
        out.update(json.loads(result.read_text(encoding="utf-8")))
    return out


@pytest.fixture(scope="module")
def hidden(grader):
    names = sorted((n for n in NAMES if n != "solution"), key=lambda n: not variant(n)[1])   # trainings first
    return grader.many({n: (lambda n=n: variant(n)[0]) for n in names})


def public_failures(public_result: dict, question: str) -> list[str]:
    return [f"{case}: {message}" for case, passed, message in public_result["public"].get(question, [])
            if not passed]


def lost_points(result: dict, questions) -> dict[str, list[str]]:
    """question -> the messages of its failing checks, for every question that lost points."""
    return {q: nv.failed_messages(result, q) for q in questions
            if result["questions"][q]["score"] < result["questions"][q]["max_score"]}


def only_accuracy_below_band(result: dict, question: str) -> bool:
    """The question lost points only through the MNIST accuracy, and that is below full marks."""
    from autograder.grade import config

    if question != "mlp":
        return False
    is_accuracy = lambda c: c.get("part") == "accuracy" or "accuracy" in c["name"]  # noqa: E731
    others_pass = all(c["passed"] for c in result["questions"][question]["checks"] if not is_accuracy(c))
    accuracy = result.get("measurements", {}).get("mnist_accuracy")
    return others_pass and accuracy is not None and accuracy < config().ACCURACY["small"]["full"]


def test_the_solution_passes_every_public_check(public):
    r = public["solution"]
    assert r["errors"] == [], r["errors"]
    assert set(r["public"]) == set(nv.ALL_QUESTIONS)
    failing = {q: public_failures(r, q) for q in r["public"] if public_failures(r, q)}
    assert not failing, failing


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistake_fails_a_public_check_of_its_question(public, mistake):
    question = MISTAKES[mistake][0]
    r = public[mistake]
    assert public_failures(r, question), (mistake, r["errors"])


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistake_fails_no_public_check_of_another_question(public, mistake):
    question = MISTAKES[mistake][0]
    r = public[mistake]
    others = {q: public_failures(r, q) for q in r["public"] if q != question and public_failures(r, q)}
    assert not others, (mistake, others)


@pytest.mark.parametrize("name", list(HONEST))
def test_honest_code_passes_every_public_check(public, name):
    r = public[name]
    assert r["errors"] == [], r["errors"]
    failing = {q: public_failures(r, q) for q in r["public"] if public_failures(r, q)}
    assert not failing, (name, failing)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "solution"])
def test_where_the_grader_takes_points_a_public_check_fails(public, hidden, name):
    result = hidden[name]
    assert result["status"] == "ok", result["message"]
    with_mlp = variant(name)[1]
    lost = lost_points(result, nv.ALL_QUESTIONS if with_mlp else nv.NUMPY_QUESTIONS)
    unwarned = {q: messages for q, messages in lost.items()
                if not public_failures(public[name], q) and not only_accuracy_below_band(result, q)}
    assert not unwarned, (name, unwarned, nv.scores(result))


# the hint each extra mistake's public failure must carry (tm.MISTAKES carries the grader's hints)
EXTRA_HINTS = {"forgotten_zero_grad": "optimizer.zero_grad()", "mlp_without_relu": "ReLU",
               "get_device_cached": "キャッシュしない"}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_public_failure_carries_the_graders_hint(public, mistake):
    question = MISTAKES[mistake][0]
    hint = tm.MISTAKES[mistake][4] if mistake in tm.MISTAKES else EXTRA_HINTS[mistake]
    messages = public_failures(public[mistake], question)
    assert any(hint in m for m in messages), (mistake, hint, messages)


@pytest.mark.parametrize("name", list(PART_MISTAKES))
def test_a_wrong_helper_fails_its_own_case_not_its_callers(public, name):
    question, _, _, failing, passing = PART_MISTAKES[name]
    cases = {case: passed for case, passed, _ in public[name]["public"][question]}
    assert cases[failing] is False and cases[passing] is True, (name, cases)
    others = {q: public_failures(public[name], q) for q in public[name]["public"]
              if q != question and public_failures(public[name], q)}
    assert not others, (name, others)
