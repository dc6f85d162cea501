"""The `autograder` console script (installed by `make` with `pip install -e .`) works from any folder, with
paths relative to where the TA stands."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "autograder"


def test_the_console_script_runs_from_any_folder(tmp_path):
    out = subprocess.run([str(SCRIPT), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: autograder") and "batch" in out.stdout and "export" in out.stdout


def test_relative_paths_are_read_from_where_the_command_runs(tmp_path):
    (tmp_path / "mine.ipynb").write_text("not a notebook", encoding="utf-8")
    out = subprocess.run([str(SCRIPT), "grade", "mine.ipynb", "--json"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    result = json.loads(out.stdout)
    assert result["status"] == "invalid" and "not a Jupyter notebook" in result["message"], result
