"""grader_version hashes the folders that decide a score, not a hand-kept list (fast: no sandbox)."""
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
    task = assignment.current()
    before = grade.deciding_files(task)
    extra = task.folder / "hidden_tests" / "zz_probe_for_test.py"
    extra.write_text("# temporary\n")
    try:
        grade.grader_version.cache_clear()
        assert extra in grade.deciding_files(task) and extra not in before
        changed = grade.grader_version()
    finally:
        extra.unlink()
        grade.grader_version.cache_clear()
    assert changed != grade.grader_version()
