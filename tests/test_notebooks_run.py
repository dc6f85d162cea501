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

from autograder import layout
from autograder import assignment
from autograder.build import release as build

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
    shutil.copytree(assignment.current().release_dir, work)
    shutil.copy(assignment.current().solution_notebook, work / assignment.current().release_notebook.name)   # the one notebook there
    _link_data(work)
    nb = _execute(work / assignment.current().release_notebook.name, work, python3_kernel, allow_errors=False)

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
    shutil.copy(assignment.current().release_notebook, work)          # the notebook alone, as opened on Colab
    _link_data(work)
    nb = _execute(work / assignment.current().release_notebook.name, work, python3_kernel, allow_errors=True)

    # the first code cell wrote the public tests and the data, byte for byte as released
    shipped = [assignment.current().public_files["co2.csv"]] + sorted((assignment.current().release_dir / "tests").glob("*.py"))
    for path in shipped:
        written = work / path.relative_to(assignment.current().release_dir)
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


# --- the set-up cell where otter-grader cannot be used -----------------------------------------------------
# Runs in a fresh Python: the release's set-up cell, then the solution's numpy cells, then self-checks.
# argv: mode ("no_otter" or "cp932"), the set-up cell, the numpy cells (JSON list), a wrong `loss`.
SETUP_CHILD = r'''
import builtins, json, os, sys

mode, setup, cells, wrong_loss = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
if mode == "no_otter":
    class NoOtter:                       # this Python has no otter-grader, and pip cannot install it
        def find_spec(self, name, path=None, target=None):
            if name == "otter" or name.startswith("otter."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None
    sys.meta_path.insert(0, NoOtter())
    sys.executable = os.path.join(os.getcwd(), "no-such-python")
elif mode == "cp932":                    # a Japanese Windows: text files open in cp932 unless told otherwise
    _open = builtins.open
    def cp932_open(file, mode="r", buffering=-1, encoding=None, *args, **kwargs):
        if "b" not in mode and encoding is None:
            encoding = "cp932"
        return _open(file, mode, buffering, encoding, *args, **kwargs)
    builtins.open = cp932_open

ns = {"__name__": "__main__"}
exec(compile(setup, "<set-up cell>", "exec"), ns)
grader = ns["grader"]
report = {"grader": type(grader).__name__, "otter_stand_in": None, "otter_reads_utf8": None}
if mode == "no_otter":
    report["otter_stand_in"] = sys.modules["otter.test_files"].test_case.__name__
if mode == "cp932":                      # what otter-grader 7.0.0 would have read: open(path), no encoding
    from otter.test_files.exception_test import ExceptionTestFile
    try:
        report["otter_reads_utf8"] = ExceptionTestFile.from_file("tests/loss.py").source == \
            _open("tests/loss.py", encoding="utf-8").read()
    except (UnicodeError, SyntaxError):
        report["otter_reads_utf8"] = False
for source in cells:
    exec(compile(source, "<cell>", "exec"), ns)
report["passed"] = {q: repr(grader.check(q)) for q in ("normal_equation", "loss", "sgd", "metrics")}
exec(compile(wrong_loss, "<wrong loss>", "exec"), ns)
report["wrong_loss"] = repr(grader.check("loss"))
report["all"] = repr(grader.check_all())
print("REPORT " + json.dumps(report))
'''


def _run_setup_child(mode, tmp_path):
    import subprocess

    import notebook_variants as nv

    release = nbformat.read(assignment.current().release_notebook, as_version=4)
    setup = next(c.source for c in release.cells if c.cell_type == "code")
    numpy_part = nv.lean(nv.solution())
    cells = [nv._src(c) for c in numpy_part["cells"] if c.get("cell_type") == "code"]
    wrong_loss = nv.edit_def(nv.solution(), "loss", "np.sum(residual ** 2)", "np.mean(residual ** 2)")
    wrong_loss = nv.definition(wrong_loss, "loss")
    proc = subprocess.run([sys.executable, "-c", SETUP_CHILD, mode, setup, json.dumps(cells), wrong_loss],
                          cwd=tmp_path, capture_output=True, text=True, encoding="utf-8", timeout=300,
                          env={**__import__("os").environ, "MPLBACKEND": "Agg", "PIP_NO_INDEX": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed, report = proc.stdout.rsplit("REPORT ", 1)
    return printed, json.loads(report)


def _assert_self_checks_work(report):
    for q, shown in report["passed"].items():
        assert shown == f"{q} results: All test cases passed!", shown
    wrong = report["wrong_loss"]
    assert "test_loss_is_half_sum: ❌ failed" in wrong and "和ではなく平均になっていないか" in wrong and "not a mean" in wrong, wrong
    assert "test_predict: ✅ passed" in wrong
    shown_all = report["all"]
    for q in build.load_config().QUESTIONS:
        assert f"{q} results:" in shown_all, q
    assert "mlp results:\n" in shown_all and "MLP が定義されていません" in shown_all   # no PyTorch part was run


def test_setup_without_otter_says_so_and_self_checks_still_run(tmp_path):
    printed, report = _run_setup_child("no_otter", tmp_path)
    assert "otter-grader をインストール・読み込みできませんでした" in printed, printed
    assert "otter-grader could not be installed or imported" in printed, printed
    assert report["grader"] == "_SelfCheck" and report["otter_stand_in"] == "_test_case", report
    _assert_self_checks_work(report)
    # the files were written (UTF-8, as released)
    for path in sorted((assignment.current().release_dir / "tests").glob("*.py")):
        assert (tmp_path / "tests" / path.name).read_bytes() == path.read_bytes()


def test_setup_on_a_cp932_locale_uses_the_utf8_runner(tmp_path):
    printed, report = _run_setup_child("cp932", tmp_path)
    assert report["otter_reads_utf8"] is False, "otter would have read the UTF-8 test files fine: no fallback needed"
    assert "既定の文字コード" in printed and "default encoding" in printed, printed
    assert "installing otter-grader" not in printed
    assert report["grader"] == "_SelfCheck", report
    _assert_self_checks_work(report)


def test_setup_with_otter_uses_otter(tmp_path):
    import subprocess

    release = nbformat.read(assignment.current().release_notebook, as_version=4)
    setup = next(c.source for c in release.cells if c.cell_type == "code")
    code = "import sys; ns = {}; exec(compile(sys.argv[1], 'setup', 'exec'), ns); print(type(ns['grader']).__module__)"
    proc = subprocess.run([sys.executable, "-c", code, setup], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines() == ["otter.check.notebook"], proc.stdout
