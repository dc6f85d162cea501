"""Where things live in the repository. Paths only, no behaviour.

An assignment's own paths (its master notebook, release, solutions, hidden and public tests) come from
``autograder.assignment``; this module knows only where the engine, the configuration and the data are.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the trusted configuration; AUTOGRADER_CONFIG points at another course's grader_config.py (whose folder
# then holds that course's source/, assignments/ and solutions/)
CONFIG_FILE = Path(os.environ.get("AUTOGRADER_CONFIG") or ROOT / "grader_config.py").resolve()
COURSE_DIR = ROOT / "autograder" / "course"      # one grading folder per assignment
EXAMPLES_DIR = ROOT / "examples"
# MNIST lives outside git; AUTOGRADER_DATA moves it (CI and tests share one copy this way)
DATA_DIR = Path(os.environ.get("AUTOGRADER_DATA", ROOT / "data"))
MNIST_RAW = DATA_DIR / "MNIST" / "raw"
SECRET_FILE = Path(os.environ.get("AUTOGRADER_SECRET_FILE", ROOT / ".grader_secret"))
