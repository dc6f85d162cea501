"""Common mistakes each cost exactly their part's points (the graded function's share of its question,
grader_config.PARTS), with a message that names the mistake.

A notebook here carries several mistakes, each in a different question, and leaves the other questions as
in the solution: a mistake must zero its own part and nothing else. The helpers a question calls
(gd_step calls gradient, train_sgd calls minibatch_indices, gd_step and loss) are wrong in the same notebook
as the intact question that calls them, so each notebook also shows that a wrong helper does not leak into
its caller's question. The two mlp mistakes run the real MNIST training (the accuracy part must pass).

For every mistake: its part scores 0, a failing check's message carries the mistake's hint, and no
message shows a hidden input or expected value (no number beyond the small ones the hints themselves use).
"""
from __future__ import annotations

import re

import notebook_variants as nv
import pytest

# name -> (notebook, question, graded name, the mistake, hint the message must carry). The mistake is a new
# definition, or (old, new) text replacements in the solution's definition (a KeyError if the solution's
# text changed: then update the replacement, the mistake itself is still worth testing).
SGD_LOOP = "        for idx in minibatch_indices(len(x), batch_size, rng):\n"
MISTAKES = {
    # -- notebook "a": gd_step and sgd intact; their helpers gradient, loss, minibatch_indices are wrong
    "fit_without_bias": ("a", "normal_equation", "fit_normal_equation", '''
        def fit_normal_equation(x, y):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            return float(np.sum(x * y) / np.sum(x * x)), 0.0
        ''', "バイアス"),
    "loss_as_mean": ("a", "loss", "loss", [("np.sum(residual ** 2)", "np.mean(residual ** 2)")], "和ではなく平均"),
    "gradient_with_means": ("a", "gradient", "gradient",
                            [("np.sum(-residual * x)", "np.mean(-residual * x)"),
                             ("np.sum(-residual))", "np.mean(-residual))")], "平均ではなく和"),
    "dropped_last_batch": ("a", "minibatches", "minibatch_indices",
                           [("range(0, n_samples, batch_size)", "range(0, n_samples - batch_size + 1, batch_size)")],
                           "捨てられて"),
    "rmse_without_sqrt": ("a", "metrics", "rmse", [("np.sqrt(mse(y, y_hat))", "mse(y, y_hat)")], "平方根"),
    # -- notebook "b": normal_equation, gradient and sgd intact; sgd's helpers gd_step, minibatch_indices wrong
    "loss_without_half": ("b", "loss", "loss", [("0.5 * np.sum(residual ** 2)", "np.sum(residual ** 2)")], "½"),
    "gd_step_without_len": ("b", "gd_step", "gd_step", [(" / n, ", ", "), ("dE_db / n", "dE_db")], "len(x)"),
    "minibatch_global_permutation": ("b", "minibatches", "minibatch_indices",
                                     [("rng.permutation(n_samples)", "np.random.permutation(n_samples)")],
                                     "rng.permutation"),
    "rmse_over_n_minus_1": ("b", "metrics", "rmse", '''
        def rmse(y, y_hat):
            error = np.asarray(y, dtype=float) - np.asarray(y_hat, dtype=float)
            return float(np.sqrt(np.sum(error ** 2) / (len(error) - 1)))
        ''', "N − 1"),
    # -- notebook "c"
    "no_reshuffle": ("c", "sgd", "train_sgd",
                     [("    rng = np.random.default_rng(seed)\n",
                       "    order = np.arange(len(x))\n"
                       "    batches = [order[i:i + batch_size] for i in range(0, len(x), batch_size)]\n"),
                      (SGD_LOOP, "        for idx in batches:\n")], "毎エポック同じ順番"),
    "mae_without_abs": ("c", "metrics", "mae", [("np.mean(np.abs(error))", "np.mean(error)")], "絶対値"),
    # -- notebook "cpu": real training
    "reshuffle_only_once": ("cpu", "sgd", "train_sgd",
                            [("    rng = np.random.default_rng(seed)\n",
                              "    rng = np.random.default_rng(seed)\n"
                              "    batches = minibatch_indices(len(x), batch_size, rng)\n"),
                             (SGD_LOOP, "        for idx in batches:\n")], "毎エポック同じ順番"),
    "cpu_only_device": ("cpu", "mlp", "get_device",
                        [('"cuda" if torch.cuda.is_available() else "cpu"', '"cpu"')], "cuda"),
    # -- notebook "batch_mean": real training
    "sgd_unseeded_rng": ("batch_mean", "sgd", "train_sgd",
                         [("np.random.default_rng(seed)", "np.random.default_rng()")], "default_rng(seed)"),
    "train_one_epoch_mean_of_batches": ("batch_mean", "mlp", "train_one_epoch",
                                        [("batch_loss.item() * len(labels)", "batch_loss.item()"),
                                         ("n += len(labels)", "n += 1")], "サンプル数で平均"),
}
# the notebooks: numpy-only ones are lean; the mlp ones keep the real training cell
BASES = {"a": "lean", "b": "lean", "c": "lean", "cpu": "training", "batch_mean": "training"}
# numbers a hint may itself contain (½ Σ, N − 1, 0..n-1, "(w, b)"): anything else could be a hidden value
ALLOWED_NUMBERS = {"0", "1", "2"}


def build(notebook: str) -> dict:
    nb = nv.solution()
    nb = nv.lean(nb) if BASES[notebook] == "lean" else nv.without_otter(nb)
    for notebook_, _, name, mistake, _ in MISTAKES.values():
        if notebook_ != notebook:
            continue
        if isinstance(mistake, str):
            nb = nv.replace_def(nb, name, mistake)
        else:
            for old, new in mistake:
                nb = nv.edit_def(nb, name, old, new)
    return nb


def wrong_questions(notebook: str) -> set[str]:
    return {q for nb_, q, *_ in MISTAKES.values() if nb_ == notebook}


@pytest.fixture(scope="module")
def results(grader):
    order = sorted(BASES, key=lambda n: BASES[n] != "training")  # the trainings first
    return grader.many({n: (lambda n=n: build(n)) for n in order})


def part_of(question: str, name: str) -> str:
    """The part of ``question`` that grades ``name`` (grader_config.PARTS; the question when it is whole)."""
    from autograder.grade import config

    parts = config().PARTS.get(question, {})
    return name if name in parts else question


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_mistake_costs_its_part_with_a_hint(results, mistake):
    """The mistake's part (the graded function) scores 0; the question's other parts keep their points."""
    notebook, question, name, _, hint = MISTAKES[mistake]
    r = results[notebook]
    assert r["status"] == "ok", r["message"]
    scored = r["questions"][question]
    part = part_of(question, name)
    assert scored["parts"][part]["score"] == 0.0, (mistake, scored["parts"])
    assert scored["score"] == scored["max_score"] - scored["parts"][part]["max_score"], (mistake, scored["parts"])
    messages = nv.failed_messages(r, question)
    assert any(hint in m for m in messages), (mistake, hint, messages)
    for m in messages:
        numbers = set(re.findall(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", m))
        assert numbers <= ALLOWED_NUMBERS, (mistake, m)


@pytest.mark.parametrize("notebook", list(BASES))
def test_other_questions_keep_full_marks(results, notebook):
    r = results[notebook]
    intact = [q for q in (nv.ALL_QUESTIONS if BASES[notebook] == "training" else nv.NUMPY_QUESTIONS)
              if q not in wrong_questions(notebook)]
    lost = {q: nv.failed_messages(r, q) for q in intact if r["questions"][q]["score"] != nv.full(q)}
    assert not lost, lost


def test_mlp_mistakes_fail_only_their_check(results, grader):
    """The mlp mistakes cost the question through their own check; the trained model itself is fine (the
    real training ran and reached the band's full-marks accuracy)."""
    from autograder.grade import config

    full = config().ACCURACY["small"]["full"]
    for notebook, failing in (("cpu", "get_device_follows_cuda_availability"),
                              ("batch_mean", "train_one_epoch_averages_over_samples")):
        r = results[notebook]
        checks = {c["name"]: c["passed"] for c in r["questions"]["mlp"]["checks"]}
        assert [n for n, ok in checks.items() if not ok] == [failing], (notebook, checks)
        assert r["measurements"]["mnist_accuracy"] >= full, r["measurements"]


def test_every_mistake_really_changes_the_code():
    for mistake, (notebook, _, name, _, _) in MISTAKES.items():
        assert nv.definition(build(notebook), name) != nv.definition(nv.solution(), name), mistake
