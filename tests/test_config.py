"""grader_config is one object, loaded once and validated (autograder.config)."""
import copy
import types

import pytest

import grader_config
from autograder import config, grade
from autograder.build import release as build
from autograder.publish import klms_csv as export
from autograder.publish import feedback
from autograder.record import gradebook
from autograder.ingest import submissions as ingest
from autograder.publish import report


def test_every_module_sees_the_same_configuration_object():
    loaded = config.load()
    assert loaded is grader_config is grade.config() is build.load_config()
    assert gradebook.config is export.config is ingest.config is loaded
    assert feedback.grader_config is report.grader_config is loaded


def test_a_patch_in_one_place_reaches_every_module(monkeypatch):
    monkeypatch.setattr(grader_config, "LATE_POLICY", "zero")
    assert gradebook.config.LATE_POLICY == grade.config().LATE_POLICY == "zero"


def _copy():
    cfg = types.SimpleNamespace(**{k: copy.deepcopy(v) for k, v in vars(grader_config).items()
                                   if k.isupper()})
    config.validate(cfg)  # the real one is valid
    return cfg


@pytest.mark.parametrize("change, words", [
    (lambda c: setattr(c, "LATE_POLICY", "half"), "LATE_POLICY must be one of"),
    (lambda c: setattr(c, "LATE_FRACTION", 1.5), "LATE_FRACTION"),
    (lambda c: c.PARTS.__setitem__("metrics", {"mse": 4, "rmse": 3, "mae": 2}), "sums to 9"),
    (lambda c: c.PARTS.__setitem__("nope", {"a": 1}), "PARTS['nope']"),
    (lambda c: c.POINTS.__setitem__("loss", "10"), "POINTS['loss']"),
    (lambda c: setattr(c, "QUESTIONS", ("loss",)), "QUESTIONS"),
    (lambda c: c.ACCURACY.__setitem__("full", {"full": 0.9, "floor": 0.95}), "floor < full"),
    (lambda c: setattr(c, "MNIST_PROFILE", "huge"), "no ACCURACY band"),
    (lambda c: c.LIMITS.__setitem__("call_timeout_s", 0), "LIMITS['call_timeout_s']"),
    (lambda c: c.LIMITS.pop("submission_budget_s"), "submission_budget_s"),
])
def test_a_setting_the_grader_cannot_work_with_is_named(change, words):
    cfg = _copy()
    change(cfg)
    with pytest.raises(config.ConfigError, match=words.replace("[", r"\[").replace("(", r"\(")):
        config.validate(cfg)
