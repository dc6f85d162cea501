"""Lecture 3 (「基礎の概念」 / basic concepts) as data: what the engine needs to know about this assignment.

Points, parts, tolerances and limits live in ``grader_config.py``; the hidden and public otter tests in
``hidden_tests/`` and ``public_tests/``; the child-side probes of the PyTorch question in ``probes.py``;
the checks only this lecture needs in ``checks.py``. See ``autograder/assignment.py`` for what each name
below means to the engine.
"""
from autograder.course.lec03 import co2
from autograder.course.lec03.minibatch_oracle import minibatch_oracle
from autograder.execute.stand_ins import oracle

ID = "lec03"
TITLE = ("第3回 課題", "Lecture 3 assignment")

# in the notebook's order (the question number is the position); "functions": what the rubric table names
QUESTIONS = {
    "normal_equation": {"title": ("正規方程式", "normal equation"), "functions": ("fit_normal_equation",)},
    "loss": {"title": ("損失関数", "loss"), "functions": ("predict", "loss")},
    "gradient": {"title": ("勾配", "gradient"), "functions": ("gradient",)},
    "gd_step": {"title": ("勾配降下法の 1 ステップ", "one gradient-descent step"), "functions": ("gd_step",)},
    "minibatches": {"title": ("ミニバッチ", "minibatches"), "functions": ("minibatch_indices",)},
    "sgd": {"title": ("確率的勾配降下法", "SGD"), "functions": ("train_sgd",)},
    "metrics": {"title": ("評価指標", "metrics"), "functions": ("mse", "rmse", "mae")},
    "mlp": {"title": ("MLP (MNIST)", "MLP (MNIST)"),
            "functions": ("get_device", "MLP", "train_one_epoch", "evaluate", "model")},
}

# graded functions the hidden tests call by name; solutions/lec03/reference.py defines each of them
CALLED = ("fit_normal_equation", "predict", "loss", "gradient", "gd_step", "minibatch_indices", "train_sgd",
          "mse", "rmse", "mae")
# graded names reached through probes.py only, with what the child keeps of them after each cell
PROBED = {"get_device": "function", "MLP": "class", "train_one_epoch": "function", "evaluate": "function",
          "model": "module"}

# the helpers each graded function may call (the solution's own calls, and those students commonly make):
# while it runs they are the reference's (oracles below), or the student's own
CALLS = {
    "fit_normal_equation": ("predict", "loss", "gradient"),
    "loss": ("predict",),
    "gradient": ("predict", "loss"),
    "gd_step": ("gradient", "predict", "loss"),
    "train_sgd": ("minibatch_indices", "gd_step", "gradient", "loss", "predict"),
    "rmse": ("mse",),
    "mae": ("mse",),
}


def oracles(ref) -> dict:
    """Trusted reference functions the child may call while one call runs (the reference never enters it)."""
    return dict(
        predict=oracle(ref.predict, 1), loss=oracle(ref.loss, 2), gradient=oracle(ref.gradient, 2),
        gd_step=oracle(ref.gd_step, 2), minibatch_indices=minibatch_oracle(ref.minibatch_indices),
        mse=oracle(ref.mse, 2),
    )


# files of the release folder every sandbox gets next to the notebook, with the generator the build checks
# the committed file against
PUBLIC_FILES = {"co2.csv": co2.generate}
# shared data sets: the sandbox sees MNIST's visible part read-only; hidden tests get ``mnist`` and ``band``
DATASETS = ("mnist",)
# how the rubric names a part that is not a function
PART_LABELS = {"accuracy": ("学習済み `model` の正解率", "accuracy of the trained `model`")}
# the release opens on Colab with a GPU (the MLP trains on the T4 when there is one)
COLAB_GPU = True
# what the probe calls do (the timeout explanation in feedback names them; LIMITS["probe_timeout_s"])
PROBE_CALLS = ("MNIST の学習・評価", "MNIST training and evaluation")
