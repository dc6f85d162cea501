"""``grader_config.py``, loaded once and validated: the one configuration object every module uses.

``grader_config`` is the module object (also ``sys.modules["grader_config"]``, so ``import grader_config``
anywhere, and a test's ``monkeypatch.setattr(grader_config, ...)``, reach the same object). It is loaded
from ``layout.CONFIG_FILE`` whatever the current folder, and checked when loaded: a wrong type, an unknown
late policy or parts that do not sum to their question's points stop the grader before it grades anyone.
"""
from __future__ import annotations

import importlib.util
import numbers
import sys
from pathlib import Path
from types import ModuleType

from autograder import layout

LATE_POLICIES = ("none", "fraction", "zero")
LIMIT_KEYS = ("cell_timeout_s", "notebook_timeout_s", "call_timeout_s", "probe_timeout_s", "memory_bytes",
              "cpu_seconds", "file_bytes", "tmpfs_bytes", "processes", "open_files", "output_bytes",
              "message_bytes", "restarts", "submission_budget_s")


class ConfigError(ValueError):
    """grader_config.py says something the grader cannot work with."""


def load() -> ModuleType:
    """The grader_config module of this repository (loaded once per process), validated."""
    module = sys.modules.get("grader_config")
    if module is None or Path(getattr(module, "__file__", "")).resolve() != layout.CONFIG_FILE.resolve():
        spec = importlib.util.spec_from_file_location("grader_config", layout.CONFIG_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules["grader_config"] = module
        spec.loader.exec_module(module)
    validate(module)
    return module


def _number(value, what: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (positive and not value > 0):
        raise ConfigError(f"grader_config.{what} must be a {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


def validate(cfg) -> None:
    """Raise ConfigError, naming the setting, when grader_config cannot be graded with."""
    points = getattr(cfg, "POINTS", None)
    if not isinstance(points, dict) or not points:
        raise ConfigError("grader_config.POINTS must map each question to its points")
    for question, value in points.items():
        _number(value, f"POINTS[{question!r}]")
    if not isinstance(getattr(cfg, "ASSIGNMENT", None), str):
        raise ConfigError("grader_config.ASSIGNMENT must name the assignment (its folder under autograder/course/)")
    if tuple(getattr(cfg, "QUESTIONS", ())) != tuple(points):
        raise ConfigError("grader_config.QUESTIONS must list the questions of POINTS in their order")
    for question, parts in getattr(cfg, "PARTS", {}).items():
        if question not in points or not isinstance(parts, dict) or not parts:
            raise ConfigError(f"grader_config.PARTS[{question!r}] must be a dict of parts of a question in POINTS")
        total = sum(_number(v, f"PARTS[{question!r}][{p!r}]") for p, v in parts.items())
        if abs(total - points[question]) > 1e-9:
            raise ConfigError(f"grader_config.PARTS[{question!r}] sums to {total:g}, but the question is worth "
                              f"{points[question]:g} points")
    if getattr(cfg, "LATE_POLICY", None) not in LATE_POLICIES:
        raise ConfigError(f"grader_config.LATE_POLICY must be one of {', '.join(LATE_POLICIES)}, "
                          f"got {getattr(cfg, 'LATE_POLICY', None)!r}")
    fraction = _number(getattr(cfg, "LATE_FRACTION", None), "LATE_FRACTION", positive=False)
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"grader_config.LATE_FRACTION must be between 0 and 1, got {fraction!r}")
    bands = getattr(cfg, "ACCURACY", {})
    if hasattr(cfg, "MNIST_PROFILE") and cfg.MNIST_PROFILE not in bands:
        raise ConfigError(f"grader_config.MNIST_PROFILE {getattr(cfg, 'MNIST_PROFILE', None)!r} has no ACCURACY band")
    for name, band in bands.items():
        if not (isinstance(band, dict) and 0.0 <= _number(band.get("floor"), f"ACCURACY[{name!r}]['floor']",
                                                             positive=False)
                < _number(band.get("full"), f"ACCURACY[{name!r}]['full']") <= 1.0):
            raise ConfigError(f"grader_config.ACCURACY[{name!r}] needs 0 <= floor < full <= 1, got {band!r}")
    limits = getattr(cfg, "LIMITS", None)
    if not isinstance(limits, dict):
        raise ConfigError("grader_config.LIMITS must be a dict")
    for key in LIMIT_KEYS:
        _number(limits.get(key), f"LIMITS[{key!r}]", positive=key != "restarts")


grader_config = load()
