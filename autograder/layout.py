"""Where things live in the repository. Paths only, no behaviour."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "lec03"
SOURCE_NOTEBOOK = ROOT / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE_DIR = ROOT / "assignments" / ASSIGNMENT
RELEASE_NOTEBOOK = RELEASE_DIR / f"{ASSIGNMENT}.ipynb"
SOLUTION_DIR = ROOT / "solutions" / ASSIGNMENT
SOLUTION_NOTEBOOK = SOLUTION_DIR / f"{ASSIGNMENT}.ipynb"
REFERENCE_MODULE = SOLUTION_DIR / "reference.py"
HIDDEN_TESTS_DIR = ROOT / "autograder" / "hidden_tests" / ASSIGNMENT
PUBLIC_TESTS_DIR = ROOT / "autograder" / "public_tests" / ASSIGNMENT
CO2_CSV = RELEASE_DIR / "co2.csv"
CONFIG_FILE = ROOT / "grader_config.py"
EXAMPLES_DIR = ROOT / "examples"
# MNIST lives outside git; AUTOGRADER_DATA moves it (CI and tests share one copy this way)
DATA_DIR = Path(os.environ.get("AUTOGRADER_DATA", ROOT / "data"))
MNIST_RAW = DATA_DIR / "MNIST" / "raw"
SECRET_FILE = Path(os.environ.get("AUTOGRADER_SECRET_FILE", ROOT / ".grader_secret"))
