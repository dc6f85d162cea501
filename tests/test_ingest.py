"""Safe reading of submission zips and folders, and the choice of each student's notebook."""
import os
import stat
import struct
import shutil
import zipfile

import pytest

import grader_config
from autograder.ingest import submissions as ingest
from autograder.ingest.canvas_zip import write_zip

NB = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def _zip_with(path, members):
    """members: (name, data, external_attr or None)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, attr in members:
            info = zipfile.ZipInfo(name, date_time=(2026, 5, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = (attr if attr is not None else 0o100644) << 16
            zf.writestr(info, data)
    return path


def test_unsafe_members_are_refused_and_nothing_escapes(tmp_path):
    src = _zip_with(tmp_path / "in.zip", [
        ("../keiotaro_1001_1_lec03.ipynb", NB, None),
        ("/tmp/mitahanako_1002_2_lec03.ipynb", NB, None),
        ("C:\\evil_1003_3_lec03.ipynb", NB, None),
        ("sub/../../evil_1004_4_lec03.ipynb", NB, None),
        ("sub\\..\\..\\evil_1005_5_lec03.ipynb", NB, None),
        ("link_1006_6_lec03.ipynb", b"/etc/passwd", stat.S_IFLNK | 0o777),
        ("fifo_1007_7_lec03.ipynb", b"", stat.S_IFIFO | 0o644),
        ("nul\x00_1008_8_lec03.ipynb", NB, None),
        ("hiyoshiichiro_1009_9_lec03.ipynb", NB, None),
    ])
    work = tmp_path / "work"
    got = ingest.ingest(src, work)
    reasons = {s.name: s.reason for s in got.skipped}
    assert reasons["../keiotaro_1001_1_lec03.ipynb"] == "path traversal (..)"
    assert reasons["/tmp/mitahanako_1002_2_lec03.ipynb"] == "absolute path"
    assert reasons["C:\\evil_1003_3_lec03.ipynb"] == "absolute path"
    assert reasons["sub/../../evil_1004_4_lec03.ipynb"] == "path traversal (..)"
    assert reasons["sub\\..\\..\\evil_1005_5_lec03.ipynb"] == "path traversal (..)"
    assert reasons["link_1006_6_lec03.ipynb"] == "symlink"
    assert reasons["fifo_1007_7_lec03.ipynb"] == "not a regular file"
    assert [nb.entry_name for nb in got.notebooks] == ["hiyoshiichiro_1009_9_lec03.ipynb"]
    nb = got.notebooks[0]
    assert nb.path.parent == work and nb.path.read_bytes() == NB and nb.student_key == "1009"
    # nothing was written anywhere but the work folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zip", "work"]
    assert not os.path.exists("/tmp/mitahanako_1002_2_lec03.ipynb")


def test_non_notebooks_are_recorded_with_their_student(tmp_path):
    src = tmp_path / "in.zip"
    write_zip(src, [("keiotaro_1001_11_lec03.ipynb", NB), ("keiotaro_1001_12_notes.pdf", b"%PDF"),
                    ("mitahanako_1002_text.html", b"<p>hi</p>"), ("README.txt", b"x")])
    got = ingest.ingest(src, tmp_path / "w")
    assert {(s.name, s.reason, s.student_key) for s in got.skipped} == {
        ("keiotaro_1001_12_notes.pdf", "not a notebook", "1001"),
        ("mitahanako_1002_text.html", "text entry submission, not a notebook", "1002"),
        ("README.txt", "not a notebook", None),
    }
    students = ingest.choose(got)
    assert students["1001"].chosen.entry_name == "keiotaro_1001_11_lec03.ipynb"
    assert students["1001"].flags == ["other_files: notes.pdf"]
    assert students["1002"].chosen is None and students["1002"].notebooks == []


def test_file_count_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(grader_config, "MAX_ZIP_FILES", 3)
    src = tmp_path / "in.zip"
    write_zip(src, [(f"s_{1000 + i}_{i}_lec03.ipynb", NB) for i in range(4)])
    with pytest.raises(ingest.IngestError, match="MAX_ZIP_FILES"):
        ingest.ingest(src, tmp_path / "w")


def test_declared_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(grader_config, "MAX_ZIP_BYTES", 1000)
    src = tmp_path / "in.zip"
    write_zip(src, [("s_1001_1_lec03.ipynb", b" " * 2000)])   # compresses to a few bytes
    with pytest.raises(ingest.IngestError, match="MAX_ZIP_BYTES"):
        ingest.ingest(src, tmp_path / "w")


def test_lying_size_header_is_caught(tmp_path):
    src = tmp_path / "in.zip"
    write_zip(src, [("s_1001_1_lec03.ipynb", b"\0" * 100_000)])
    data = bytearray(src.read_bytes())
    # claim 100 bytes uncompressed in the local header and in the central directory
    struct.pack_into("<I", data, 22, 100)
    cd = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 100)
    src.write_bytes(bytes(data))
    got = ingest.ingest(src, tmp_path / "w")
    assert got.notebooks == []
    assert got.skipped[0].reason.startswith("unreadable member")


def test_notebook_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(grader_config, "MAX_NOTEBOOK_BYTES", 100)
    src = tmp_path / "in.zip"
    write_zip(src, [("keiotaro_1001_1_lec03.ipynb", b"{" + b" " * 500 + b"}"), ("mita_1002_2_lec03.ipynb", NB)])
    got = ingest.ingest(src, tmp_path / "w")
    big = next(nb for nb in got.notebooks if nb.student_key == "1001")
    assert big.too_large and big.path is None and big.size == 502
    assert not any(p.name.endswith("keiotaro_1001_1_lec03.ipynb") for p in (tmp_path / "w").iterdir())
    students = ingest.choose(got)
    assert students["1001"].flags == ["too_large: 502 bytes > MAX_NOTEBOOK_BYTES"]
    assert students["1002"].flags == [] and not students["1002"].chosen.too_large


def test_folder_input_skips_symlinks(tmp_path):
    folder = tmp_path / "subs"
    (folder / "inner").mkdir(parents=True)
    (folder / "keiotaro_1001_1_lec03.ipynb").write_bytes(NB)
    (folder / "inner" / "mitahanako_LATE_1002_2_lec03.ipynb").write_bytes(NB + b" ")
    (folder / "own.ipynb").write_bytes(NB + b"  ")
    (folder / "evil_1003_3_lec03.ipynb").symlink_to("/etc/passwd")
    (folder / "linkdir").symlink_to(tmp_path)
    got = ingest.ingest(folder, tmp_path / "unused")
    assert sorted(nb.student_key for nb in got.notebooks) == ["1001", "1002", "file:own.ipynb"]
    assert {s.name: s.reason for s in got.skipped} == {"evil_1003_3_lec03.ipynb": "symlink", "linkdir": "symlink"}
    assert next(nb for nb in got.notebooks if nb.student_key == "1002").zname.late
    assert not (tmp_path / "unused").exists()


def test_choice_among_several_notebooks(tmp_path):
    src = tmp_path / "in.zip"
    write_zip(src, [
        ("keiotaro_1001_11_lec03.ipynb", NB), ("keiotaro_1001_12_scratch.ipynb", NB + b" "),
        ("mitahanako_1002_21_lec03.ipynb", NB), ("mitahanako_1002_22_lec03-1.ipynb", NB + b" "),
        ("yagamiken_1003_31_a.ipynb", NB), ("yagamiken_1003_32_b.ipynb", NB + b" "),
        ("hiyoshi_1004_41_homework.ipynb", NB),
    ])
    got = ingest.ingest(src, tmp_path / "w")
    s = ingest.choose(got)
    assert s["1001"].chosen.filename == "lec03.ipynb"
    assert s["1001"].flags == ["other_notebooks: lec03.ipynb (attachment 11), scratch.ipynb (attachment 12)"]
    # two notebooks named like the assignment: a TA decides, nothing is guessed; the ids for --pick are shown
    assert s["1002"].chosen is None
    assert s["1002"].flags == ["ambiguous: lec03.ipynb (attachment 21), lec03-1.ipynb (attachment 22)"]
    assert s["1003"].chosen is None and s["1003"].flags == ["ambiguous: a.ipynb (attachment 31), b.ipynb (attachment 32)"]
    # one notebook is graded whatever its name
    assert s["1004"].chosen.filename == "homework.ipynb" and s["1004"].flags == []
    picked = ingest.choose(got, {"1002": "22"})
    assert picked["1002"].chosen.filename == "lec03-1.ipynb"
    assert picked["1002"].flags[0].startswith("picked_by_ta: lec03-1.ipynb")


@pytest.mark.parametrize("name, like", [("lec03.ipynb", True), ("LEC03-1.ipynb", True), ("lec03_final.ipynb", True),
                                        ("my_lec03.ipynb", False), ("lec03.py", False)])
def test_assignment_like(name, like):
    assert ingest.assignment_like(name) == like


def test_members_with_bare_permissions_are_regular_files(tmp_path):
    """ZipFile.writestr(name, data) stores mode 0o600 without file-type bits: still a regular file."""
    import zipfile

    from autograder.ingest import submissions as ingest

    zpath = tmp_path / "bare.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("keiotaro_1001_70001_lec03.ipynb", '{"nbformat": 4, "cells": []}')
    info = zipfile.ZipFile(zpath).infolist()[0]
    assert info.external_attr >> 16 == 0o600
    found = ingest.ingest(zpath, tmp_path / "out")
    assert not [s for s in found.skipped if "regular" in s.reason]


def test_macos_repacked_zip_ignores_metadata(tmp_path):
    """A zip re-packed on macOS: __MACOSX/ and ._name AppleDouble files and .DS_Store are ignored, so the
    student is not made ambiguous by a copy of the metadata with the same attachment id."""
    src = tmp_path / "in.zip"
    write_zip(src, [
        ("submissions/keiotaro_1001_11_lec03.ipynb", NB),
        ("__MACOSX/submissions/._keiotaro_1001_11_lec03.ipynb", b"\x00\x05\x16\x07 AppleDouble"),
        ("submissions/._keiotaro_1001_11_lec03.ipynb", b"\x00\x05\x16\x07 AppleDouble"),
        ("submissions/.DS_Store", b"\x00\x00\x00\x01Bud1"),
        (".hidden/mitahanako_1002_21_lec03.ipynb", NB),
    ])
    got = ingest.ingest(src, tmp_path / "w")
    assert [n.entry_name for n in got.notebooks] == ["keiotaro_1001_11_lec03.ipynb"]
    assert got.skipped == [] and len(got.ignored) == 4
    s = ingest.choose(got)
    assert list(s) == ["1001"] and s["1001"].chosen is not None and s["1001"].flags == []


def test_macos_metadata_in_a_folder_is_ignored(tmp_path):
    folder = tmp_path / "subs"
    (folder / "__MACOSX").mkdir(parents=True)
    (folder / "keiotaro_1001_11_lec03.ipynb").write_bytes(NB)
    (folder / "._keiotaro_1001_11_lec03.ipynb").write_bytes(b"AppleDouble")
    (folder / "__MACOSX" / "._keiotaro_1001_11_lec03.ipynb").write_bytes(b"AppleDouble")
    got = ingest.ingest(folder, tmp_path / "unused")
    assert [n.entry_name for n in got.notebooks] == ["keiotaro_1001_11_lec03.ipynb"] and got.skipped == []
    assert ingest.choose(got)["1001"].chosen is not None


def test_attack_file_name_from_a_student_not_on_the_roster(tmp_path):
    """Issue 8 part 8: user 3005 (not on the roster) names a file lec03_1002_1_lec03.ipynb. Student 1002's
    own notebook is still the one graded for 1002; the doubtful file goes to the TA alone."""
    src = tmp_path / "in.zip"
    write_zip(src, [
        ("mitahanako_1002_21_lec03.ipynb", NB),
        ("outsidereve_3005_777_lec03_1002_1_lec03.ipynb", NB + b"  "),
        ("keiotaro_1001_11_lec03.ipynb", NB + b"   "),
    ])
    roster = {"1001": "Keio, Taro", "1002": "Mita, Hanako"}
    for known in (roster, set(roster), None):
        got = ingest.ingest(src, tmp_path / "w", known)
        s = ingest.choose(got)
        assert s["1002"].chosen is not None and s["1002"].chosen.entry_name == "mitahanako_1002_21_lec03.ipynb"
        assert s["1002"].flags == [] and len(s["1002"].notebooks) == 1
        assert s["1001"].chosen is not None and s["1001"].flags == []
        assert "3005" not in s                               # doubtful: attributed to nobody
        [doubtful] = got.skipped
        assert doubtful.name == "outsidereve_3005_777_lec03_1002_1_lec03.ipynb" and doubtful.student_key is None
        assert "doubtful" in doubtful.reason and "user 3005" in doubtful.reason
        shutil.rmtree(tmp_path / "w", ignore_errors=True)


def test_attack_file_name_without_a_victim_file(tmp_path):
    """The victim submitted nothing: the attack file must not give them a submission either."""
    src = tmp_path / "in.zip"
    write_zip(src, [("outsidereve_3005_777_lec03_1002_1_lec03.ipynb", NB)])
    got = ingest.ingest(src, tmp_path / "w", {"1002": "Mita, Hanako"})
    assert ingest.choose(got) == {} and got.notebooks == [] and len(got.skipped) == 1
