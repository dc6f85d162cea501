"""The generated release and solutions: up to date, deterministic, and free of solution code."""
from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from autograder import layout
from autograder import assignment
from autograder.build import release as build

ASSIGNMENTS = layout.ROOT / "assignments"


@pytest.fixture(scope="module")
def master():
    return build.read_master()


@pytest.fixture(scope="module")
def release():
    return nbformat.read(assignment.current().release_notebook, as_version=4)


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("lec03_reference", assignment.current().reference_module)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_match_a_fresh_build(tmp_path):
    written = build.build(out_root=tmp_path / "a")
    assert written, "the build wrote nothing"
    for path in written:
        committed = layout.ROOT / path.relative_to(tmp_path / "a")
        assert committed.is_file(), f"{committed} is missing: run python -m autograder build"
        assert committed.read_bytes() == path.read_bytes(), \
            f"{committed.relative_to(layout.ROOT)} is out of date: run python -m autograder build"
    assert build.build(check=True) == [], "python -m autograder build would change files"


def test_build_is_deterministic(tmp_path):
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in build.build(out_root=tmp_path / "a")}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in build.build(out_root=tmp_path / "b")}
    assert first == second


def test_cli_check_passes():
    proc = subprocess.run([sys.executable, "-m", "autograder", "build", "--check"], cwd=layout.ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _searchable_text(path) -> str:
    """What a student can read in a file: for notebooks the cell sources and outputs (not JSON-escaped)."""
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8", errors="replace")
    nb = nbformat.read(path, as_version=4)
    parts = [json.dumps(nb.metadata, ensure_ascii=False)]
    for cell in nb.cells:
        parts.append(cell.source)
        parts.append(json.dumps(cell.metadata, ensure_ascii=False))
        for out in cell.get("outputs", []):
            parts.append(json.dumps(out, ensure_ascii=False))
    return "\n".join(parts)


def _solution_lines(master) -> set[str]:
    lines = set()
    for cell in master.cells:
        for line in build.solution_lines(cell.source):
            if len(line) >= 8 and not line.startswith("#"):
                lines.add(line)
    return lines


# solution lines the task text itself names (the steps of a training loop): stating them gives nothing away
STATED_IN_TASK = {"optimizer.zero_grad()", "optimizer.step()"}


def test_no_solution_line_is_released(master, release):
    lines = _solution_lines(master)
    task_text = "\n".join(c.source for c in release.cells if c.cell_type == "markdown")
    assert all(f"`{line}`" in task_text for line in STATED_IN_TASK)
    lines -= STATED_IN_TASK
    assert len(lines) > 30, "the master should hold the solutions"
    # the check can find them: every one of them is in the solution notebook
    solution_text = _searchable_text(assignment.current().solution_notebook)
    assert all(line in solution_text for line in lines)
    files = [p for p in ASSIGNMENTS.rglob("*") if p.is_file()]
    assert assignment.current().release_notebook in files and len(files) > 2
    for path in files:
        text = _searchable_text(path)
        leaked = sorted(line for line in lines if line in text)
        assert not leaked, f"{path.relative_to(layout.ROOT)} contains solution lines: {leaked[:5]}"


def test_release_has_a_stub_for_every_solution_region(master, release):
    assert [c.id for c in master.cells] == [c.id for c in release.cells]
    n_solution_cells = 0
    for cell, released in zip(master.cells, release.cells):
        regions = cell.source.count(build.BEGIN_SOLUTION)
        assert build.BEGIN_SOLUTION not in released.source and build.END_SOLUTION not in released.source
        if regions:
            n_solution_cells += 1
            assert released.metadata["nbgrader"]["solution"] is True
            assert released.source.count("raise NotImplementedError()") == regions, released.source
        if cell.cell_type == "code":
            assert released.outputs == [] and released.execution_count is None
    assert n_solution_cells >= 10


def test_release_states_the_grading_numbers(release):
    cfg = build.load_config()
    text = "\n".join(c.source for c in release.cells if c.cell_type == "markdown")
    assert not re.search(r"\{\{[A-Z_]", text), "a placeholder was left unfilled"
    for number in (build._percent(cfg.ACCURACY["full"]["full"]), build._percent(cfg.ACCURACY["full"]["floor"]),
                   f"{cfg.LIMITS['cell_timeout_s']} s", f"{cfg.LIMITS['notebook_timeout_s']} s"):
        assert number in text, number
    assert 'datasets.MNIST("./data", train=True, download=True, transform=transform)' in \
        "\n".join(c.source for c in release.cells)


def test_first_code_cell_embeds_tests_and_data(release):
    cfg = build.load_config()
    first = next(c for c in release.cells if c.cell_type == "code")
    tree = ast.parse(first.source)
    literal = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", None) == "_FILES")
    files = ast.literal_eval(literal)
    assert set(files) == {f"tests/{q}.py" for q in cfg.QUESTIONS} | {"co2.csv"}
    assert files["co2.csv"][1] == assignment.current().public_files["co2.csv"].read_text(encoding="utf-8")
    for q in cfg.QUESTIONS:
        digest, text = files[f"tests/{q}.py"]
        # UTF-8 as written (Japanese readable, no \\uXXXX escapes), byte for byte the public test
        assert text == (assignment.current().public_tests_dir / f"{q}.py").read_text(encoding="utf-8")
        assert not text.isascii() and "\\u" not in text, f"tests/{q}.py should keep its Japanese as written"
        assert (assignment.current().release_dir / "tests" / f"{q}.py").read_bytes() == text.encode("utf-8")
        module: dict = {}
        exec(compile(text, f"{q}.py", "exec"), module)   # the public test itself, with otter importable
        assert module["name"] == q and module["OK_FORMAT"] is False
        assert module["points"] == cfg.POINTS[q], f"{q}: public points differ from grader_config.POINTS"
        assert "autograder" not in text


def test_reference_defines_the_numpy_api_without_torch():
    code = ("import runpy, sys; ns = runpy.run_path(sys.argv[1]); "
            "missing = [n for n in sys.argv[2:] if not callable(ns.get(n))]; "
            "assert not missing, missing; assert 'torch' not in sys.modules, 'imports torch'")
    proc = subprocess.run([sys.executable, "-c", code, str(assignment.current().reference_module), *assignment.current().called],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_reference_numbers(reference):
    r = reference
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([2.0, 3.0, 5.0, 4.0])
    w, b = r.fit_normal_equation(list(x), list(y))
    assert np.allclose((w, b), np.polyfit(x, y, 1))                      # (0.8, 1.5)
    assert np.allclose(r.predict(x, 2.0, 1.0), [3.0, 5.0, 7.0, 9.0])
    assert r.loss(x, y, 1.0, 0.0) == pytest.approx(0.5 * (1 + 1 + 4 + 0))
    assert r.gradient(x, y, 1.0, 0.0) == pytest.approx((-(1 * 1 + 1 * 2 + 2 * 3 + 0 * 4), -(1 + 1 + 2 + 0)))
    assert r.gd_step(x, y, 1.0, 0.0, 0.4) == pytest.approx((1.0 + 0.4 * 9 / 4, 0.0 + 0.4 * 4 / 4))
    batches = r.minibatch_indices(10, 4, np.random.default_rng(0))
    assert [len(i) for i in batches] == [4, 4, 2]
    assert np.array_equal(np.concatenate(batches), np.random.default_rng(0).permutation(10))
    w_s, b_s, losses = r.train_sgd(x, y, lr=0.05, batch_size=2, n_epochs=2000, seed=0)
    assert len(losses) == 2000 and losses[-1] == pytest.approx(r.loss(x, y, w_s, b_s))
    assert (w_s, b_s) == pytest.approx((w, b), rel=0.05)
    assert r.train_sgd(x, y, lr=0.0, batch_size=2, n_epochs=1, seed=0)[:2] == (1.0, 2.0)
    assert r.mse([1, 2, 3, 4], [1, 3, 2, 6]) == pytest.approx(1.5)
    assert r.rmse([1, 2, 3, 4], [1, 3, 2, 6]) == pytest.approx(np.sqrt(1.5))
    assert r.mae([1, 2, 3, 4], [1, 3, 2, 6]) == pytest.approx(1.0)


def test_solution_notebook_is_the_release_with_answers(master, release):
    solution = nbformat.read(assignment.current().solution_notebook, as_version=4)
    for cell, released, solved in zip(master.cells, release.cells, solution.cells, strict=True):
        assert solved.metadata == released.metadata                  # what a student's submission carries
        assert build.BEGIN_SOLUTION not in solved.source
        if build.BEGIN_SOLUTION not in cell.source and cell.id != "setup":
            assert solved.source == released.source
    assert solution.metadata == release.metadata


def _markdown(release) -> str:
    return "\n".join(c.source for c in release.cells if c.cell_type == "markdown")


def test_release_states_the_rubric_per_part(release):
    cfg = build.load_config()
    cells = {c.id: c.source for c in release.cells}
    text = _markdown(release)
    headings = {"normal_equation": "q1-md", "loss": "q2-md", "gradient": "q3-md", "gd_step": "q4-md",
                "minibatches": "q5-md", "sgd": "q6-md", "metrics": "q7-md", "mlp": "q8-md"}
    assert set(headings) == set(cfg.QUESTIONS)
    for q, cell_id in headings.items():
        line = build.rubric(cfg, q)
        assert line in cells[cell_id], (q, line)
        for part, points in cfg.PARTS.get(q, {}).items():
            label = assignment.current().part_labels.get(part, (f"`{part}`", f"`{part}`"))
            assert f"{label[0]} {points:g} 点" in line and f"{label[1]} {points:g}" in line, (q, part, line)
            assert f"{label[1]}: {points:g}" in text, (q, part)                  # the rubric table
    assert build.rubric(cfg, "mlp").count(" 点") == len(cfg.PARTS["mlp"]) + 1
    # the old all-or-nothing sentence is gone; sgd's single part is explained in both languages
    assert "Q1–Q7 score when all of the question's checks pass" not in text
    assert "`train_sgd` is one part" in cells["q6-md"] and "`train_sgd` は 1 つの部分です" in cells["q6-md"]
    assert f"合計 {sum(cfg.POINTS.values()):g} 点" in text


def test_rubric_refuses_parts_that_do_not_sum_to_the_points(monkeypatch):
    cfg = build.load_config()
    monkeypatch.setattr(cfg, "PARTS", dict(cfg.PARTS, metrics={"mse": 4, "rmse": 3, "mae": 2}))
    with pytest.raises(build.BuildError, match="sums to 9"):
        build.placeholder_values(cfg)


def test_release_names_the_packages_the_grader_offers(release):
    import importlib.util

    text = _markdown(release)
    pins = build.pinned_versions()
    listed = ", ".join(build.GRADER_PACKAGES)
    assert text.count(listed) == 2, "the package list, in Japanese and in English"
    assert f"torch {pins['torch']}, torchvision {pins['torchvision']}" in text
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")
    modules = {"scikit-learn": "sklearn"}
    for package in build.GRADER_PACKAGES:
        assert package in pins, f"{package} is not pinned in requirements.txt"
        assert importlib.util.find_spec(modules.get(package, package)) is not None, f"{package} is not installed"
    assert "これ以外のパッケージは採点環境にありません" in text and "Other packages are not available there" in text


def test_release_words(release):
    cells = {c.id: c.source for c in release.cells}
    text = _markdown(release)
    assert cells["title"].startswith("# 機械学習基礎 第3回「基礎の概念」課題")
    assert "基本的な概念" not in text and "基本的な概念" not in (layout.ROOT / "README.md").read_text(encoding="utf-8")
    assert "正解率に比例" not in text
    assert "直線的に増える部分点" in text and "the credit is linear" in text
    assert "`losses[0]` は 1 エポック目の後" in cells["q6-md"] and "`losses[0]` is the loss after the first epoch" in cells["q6-md"]
    for q_cell in ("q2-md", "q7-md"):
        assert "リストで動く必要はありません" in cells[q_cell] and "lists need not work" in cells[q_cell]
    assert "リストでも動くようにしてください" in cells["q1-md"] and "lists must work too" in cells["q1-md"]
    for words in ("`torch.compile` は採点環境では使えません", "`torch.compile` is not supported by the grader"):
        assert words in cells["title"] and words in cells["q8-md"]
    assert "`MLP` may be a class or a function returning an `nn.Module`" in cells["q8-md"]
    assert "クラスでも、`nn.Module` (例えば `nn.Sequential`) を返す関数でもかまいません" in cells["q8-md"]
    assert "(結果をキャッシュしない)" in cells["q8-md"] and "do not cache the answer" in cells["q8-md"]
    assert "**重み**" in cells["title"] and "gets 0 for the accuracy part" in cells["title"]
