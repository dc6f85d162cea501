"""grader_version hashes the folders that decide a score, not a hand-kept list (fast: no sandbox)."""
import shutil

import pytest

from autograder import assignment, grade, layout

pytestmark = pytest.mark.unit


def _files():
    return {str(p.relative_to(layout.ROOT)) for p in grade.deciding_files(assignment.current())}


def test_every_file_of_the_deciding_folders_counts():
    files = _files()
    task = assignment.current()
    folders = ("autograder/execute", "autograder/check", "autograder/score", str(task.folder.relative_to(layout.ROOT)))
    for folder in folders:
        on_disk = {str(p.relative_to(layout.ROOT)) for p in (layout.ROOT / folder).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}
        assert on_disk and on_disk <= files, folder
    for name in ("grader_config.py", "autograder/grade.py", "autograder/execute/child/harness.py",
                 "autograder/course/lec03/probes.py", "autograder/course/lec03/hidden_tests/mlp.py",
                 "solutions/lec03/reference.py", "assignments/lec03/co2.csv"):
        assert name in files, name


def test_presentation_and_storage_do_not_count():
    files = _files()
    assert not any(f.startswith(("autograder/publish/", "autograder/record/", "autograder/ingest/submissions",
                                 "autograder/batch/", "tests/", "examples/")) for f in files)


def test_a_new_file_in_the_assignment_folder_changes_the_version(monkeypatch, tmp_path):
    """On a copy of the assignment folder (the repository's own is never written)."""
    task = assignment.current()
    copy = tmp_path / task.id
    shutil.copytree(task.folder, copy, ignore=shutil.ignore_patterns("__pycache__"))
    copied = assignment.load(copy, task.course_root)
    monkeypatch.setattr(assignment, "current", lambda: copied)
    grade.grader_version.cache_clear()
    try:
        before = grade.grader_version()
        extra = copy / "hidden_tests" / "zz_new.py"
        extra.write_text("# a new hidden test file\n")
        assert extra in grade.deciding_files(copied)
        grade.grader_version.cache_clear()
        assert grade.grader_version() != before
    finally:
        grade.grader_version.cache_clear()
