"""Run the generated notebooks in a real kernel, as a student would.

- the solution notebook, in a copy of assignments/lec03 (the Jupyter case: tests/ and co2.csv ship beside
  it): every self-check passes and the MLP reaches 97 % (trains on the full MNIST: full_mnist);
- the release alone in an empty folder (the Colab case): its first cell writes tests/ and co2.csv, and the
  only errors are the stubs' NotImplementedError and the "implement ... first" guards.
"""
from __future__ import annotations

import json
import re
import shutil
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import build, layout

CHECK_CALL = re.compile(r'^grader\.check\("([a-z_]+)"\)$')
FINAL_ACCURACY = re.compile(r"final test accuracy: ([0-9.]+)%")


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch):
    """Pin the kernel named python3 to this interpreter (the venv), whatever kernels the machine has."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (autograder venv)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


def _link_data(work):
    if not (layout.MNIST_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.fail(f"MNIST is missing in {layout.MNIST_RAW}: run python -m autograder fetch-data")
    (work / "data").symlink_to(layout.DATA_DIR, target_is_directory=True)


def _execute(notebook, work, kernel, allow_errors):
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name=kernel, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(work)}})
    client.execute()
    return nb


def _text(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type in ("execute_result", "display_data"):
        return output.data.get("text/plain", "")
    return ""


@pytest.mark.full_mnist
def test_solution_passes_every_check_and_reaches_97_percent(tmp_path, python3_kernel):
    work = tmp_path / "lec03"
    shutil.copytree(layout.RELEASE_DIR, work)
    shutil.copy(layout.SOLUTION_NOTEBOOK, work / layout.RELEASE_NOTEBOOK.name)   # the one notebook there
    _link_data(work)
    nb = _execute(work / layout.RELEASE_NOTEBOOK.name, work, python3_kernel, allow_errors=False)

    checked = []
    for cell in nb.cells:
        match = CHECK_CALL.match(cell.source.strip()) if cell.cell_type == "code" else None
        if match:
            results = [_text(o) for o in cell.outputs if o.output_type == "execute_result"]
            assert len(results) == 1 and "All test cases passed!" in results[0], \
                f"grader.check({match.group(1)!r}) did not pass:\n" + "\n".join(results)
            checked.append(match.group(1))
    assert checked == list(build.load_config().QUESTIONS)

    printed = "\n".join(_text(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    accuracies = FINAL_ACCURACY.findall(printed)
    assert len(accuracies) == 1, "the training cell should print the final test accuracy once"
    assert float(accuracies[0]) >= 97.0, f"the reference MLP reached only {accuracies[0]}%"


def test_release_fails_only_at_the_stubs(tmp_path, python3_kernel):
    work = tmp_path / "colab"
    work.mkdir()
    shutil.copy(layout.RELEASE_NOTEBOOK, work)          # the notebook alone, as opened on Colab
    _link_data(work)
    nb = _execute(work / layout.RELEASE_NOTEBOOK.name, work, python3_kernel, allow_errors=True)

    # the first code cell wrote the public tests and the data, byte for byte as released
    shipped = [layout.CO2_CSV] + sorted((layout.RELEASE_DIR / "tests").glob("*.py"))
    for path in shipped:
        written = work / path.relative_to(layout.RELEASE_DIR)
        assert written.read_bytes() == path.read_bytes(), f"{written.name} differs from the release"

    kinds = {"NotImplementedError": 0, "guard": 0}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type != "error":
                continue
            if out.ename == "NotImplementedError":
                kinds["NotImplementedError"] += 1
            elif out.ename == "RuntimeError" and "first" in out.evalue and "先に" in out.evalue:
                kinds["guard"] += 1
            else:
                pytest.fail(f"cell {cell.id} failed with {out.ename}: {out.evalue}")
            assert "def " not in cell.source and not CHECK_CALL.match(cell.source.strip()), \
                f"cell {cell.id} (a definition or a check) must not fail in the release"
    assert kinds["NotImplementedError"] > 0 and kinds["guard"] > 0, kinds
