"""examples/ is generated from the solution notebook: the committed zip and roster must be current."""
from __future__ import annotations

import importlib.util

from autograder import layout


def test_committed_examples_match_their_generator(tmp_path):
    spec = importlib.util.spec_from_file_location("make_examples", layout.EXAMPLES_DIR / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(out_dir=tmp_path)
    for name in ("submissions.zip", "roster.csv"):
        assert (tmp_path / name).read_bytes() == (layout.EXAMPLES_DIR / name).read_bytes(), (
            f"examples/{name} is out of date: run .venv/bin/python examples/make_examples.py")
