"""The K-LMS gradebook CSV read back with the rules of Canvas's importer (GradebookImporter), and the
per-question CSV; on a gradebook built from hand-written results (see test_gradebook.make_gradebook)."""
import csv
import io
import re

import pytest

import grader_config
from autograder.record import gradebook
from autograder.__main__ import main
from autograder.ingest.roster import RosterRow
from test_gradebook import ROSTER, make_gradebook, nb, result, sha

BOM = b"\xef\xbb\xbf"
TITLE_ID = re.compile(r"\A(.*)\s\((\d+)\)\Z")    # Canvas: /\A(.*)\s\((\d+)\)\z/
IGNORED = re.compile(r"(Current|Final|Override|Unposted).*(Score|Points|Grade)")


def read_like_canvas(path):
    """What K-LMS's importer sees: {assignment id: (title, points)}, {user id: {assignment id: cell}}."""
    data = path.read_bytes()
    assert data.startswith(BOM), "K-LMS exports (and we write) UTF-8 with a BOM"
    rows = list(csv.reader(io.StringIO(data[len(BOM):].decode("utf-8"), newline="")))
    header = rows[0]
    assert header[:2] == ["Student", "ID"]
    i = 2
    if header[i] == "SIS User ID":
        i += 1
    assert header[i] == "SIS Login ID"
    i += 1
    while header[i] in ("Integration ID", "Root Account"):
        i += 1
    assert header[i] == "Section", "the last student-information column must be Section"
    first_assignment = i + 1
    assignments = {}
    for col in range(first_assignment, len(header)):
        if IGNORED.search(header[col]):
            continue
        m = TITLE_ID.match(header[col])
        assert m, f"{header[col]!r} does not carry an assignment id"
        assignments[col] = m.groups()
    body = rows[1:]
    points = {}
    if body and "Points Possible" in body[0][0]:
        points = {assignments[c][1]: body[0][c] for c in assignments}
        body = body[1:]
    students = {}
    for row in body:
        assert row[1] not in students, "one row per student"
        students[row[1]] = {assignments[c][1]: row[c] for c in assignments}
        students[row[1]]["_name"] = row[0]
    return {aid: (title, points.get(aid)) for title, aid in assignments.values()}, students, rows


def export(db, tmp_path, *extra):
    out, qs = tmp_path / "klms.csv", tmp_path / "questions.csv"
    code = main(["export", "--db", str(db), "--canvas-csv", str(out), "--assignment-id", "12345",
                 "--title", "Lecture 3 assignment", "--questions-csv", str(qs), *extra])
    assert code == 0
    return out, qs


def test_klms_csv_reads_back_with_canvas_rules(tmp_path, capsys):
    conn, _ = make_gradebook(tmp_path, results={sha(nb("taro")): result({"mlp": 3.25}), sha(nb("fuji")): None,
                                                sha(nb("hanako")): result(status="crashed", scores={"mlp": 0.0})})
    gradebook.add_override(conn, "1004", question=None, score=None, excused=True, reason="medical", by="ta")
    out, _ = export(tmp_path / "gradebook.db", tmp_path)
    assignments, students, rows = read_like_canvas(out)
    assert assignments == {"12345": ("Lecture 3 assignment", "80.0")}
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lecture 3 assignment (12345)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "80.0"]
    # students with a score or an excuse, in roster order; no blank cell ever (a blank erases in K-LMS)
    assert [r[1] for r in rows[2:]] == ["1001", "1002", "1004"]
    assert rows[2] == ["慶應 太郎", "1001", "80012345", "taro@keio.jp", "月2", "73.25"]
    assert students["1002"]["12345"] == "70.0"          # crashed notebooks keep the points they earned
    assert "1003" not in students                       # ambiguous: nothing guessed, K-LMS keeps its value
    assert students["1004"]["12345"] == "EX"            # excused, although nothing was submitted
    assert "1009" not in students                       # not graded yet
    for cells in students.values():
        assert re.fullmatch(r"\d+\.\d+|EX", cells["12345"])
    err = capsys.readouterr().err
    assert "anonymous submissions are not exported" in err and "anon_x7Ya2" in err
    assert "not in the roster" in err and "1009" in err


def test_export_is_deterministic_and_lists_questions(tmp_path):
    conn, _ = make_gradebook(tmp_path, results={sha(nb("taro")): result({"gradient": 0.0, "metrics": 5.0})})
    gradebook.add_override(conn, "1001", question="metrics", score=10.0, excused=False, reason="sqrt was there",
                           by="ta")
    out1, qs1 = export(tmp_path / "gradebook.db", tmp_path)
    first = out1.read_bytes(), qs1.read_bytes()
    out2, qs2 = export(tmp_path / "gradebook.db", tmp_path)
    assert (out2.read_bytes(), qs2.read_bytes()) == first
    assert qs1.read_bytes().startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(qs1.read_text(encoding="utf-8-sig"), newline="")))
    by_id = {r["ID"] or r["Student"]: r for r in rows}
    taro = by_id["1001"]
    assert [taro[q] for q in grader_config.QUESTIONS] == ["10.0", "10.0", "0.0", "10.0", "10.0", "10.0", "10.0", "10.0"]
    assert (taro["total"], taro["final"], taro["status"], taro["late"]) == ("70.0", "70.0", "ok", "")
    assert "metrics=10.0 by ta" in taro["overrides"] and "sqrt was there" in taro["overrides"]
    assert by_id["1002"]["late"] == "late"
    assert by_id["1004"]["status"] == "missing" and by_id["1004"]["final"] == ""
    assert by_id["anon_x7Ya2"]["flags"] == "anonymous_unmatched"     # listed for the TA, never sent to K-LMS
    assert {r["ID"] for r in rows} >= {r.user_id for r in ROSTER}


@pytest.mark.parametrize("policy", ["fraction", "zero"])
def test_late_policy_warning(tmp_path, monkeypatch, capsys, policy):
    monkeypatch.setattr(grader_config, "LATE_POLICY", policy)
    make_gradebook(tmp_path)
    out, qs = export(tmp_path / "gradebook.db", tmp_path)
    assert "deducts a second time" in capsys.readouterr().err
    hanako = next(r for r in csv.reader(io.StringIO(qs.read_text(encoding="utf-8-sig"))) if r[1] == "1002")
    assert hanako[13:15] == ["80.0", "64.0" if policy == "fraction" else "0.0"]   # raw total, final


def test_no_late_warning_by_default(tmp_path, capsys):
    make_gradebook(tmp_path)
    export(tmp_path / "gradebook.db", tmp_path)
    assert "second time" not in capsys.readouterr().err


def test_bad_assignment_id_and_missing_gradebook(tmp_path, capsys):
    make_gradebook(tmp_path)
    assert main(["export", "--db", str(tmp_path / "gradebook.db"), "--canvas-csv", str(tmp_path / "x.csv"),
                 "--assignment-id", "lec03"]) == 1
    assert main(["export", "--db", str(tmp_path / "none.db"), "--canvas-csv", str(tmp_path / "x.csv"),
                 "--assignment-id", "1"]) == 1
    assert not (tmp_path / "none.db").exists()


def test_override_cli(tmp_path, capsys):
    make_gradebook(tmp_path)
    db = str(tmp_path / "gradebook.db")
    assert main(["override", "--db", db, "taro@keio.jp", "mlp", "7.5", "--reason", "partial", "--by", "ta1"]) == 0
    assert main(["override", "--db", db, "1002", "--excuse", "--reason", "illness"]) == 0
    assert main(["override", "--db", db, "1003", "99", "--reason", "too much"]) == 1
    with pytest.raises(SystemExit) as info:                  # usage errors go through argparse: exit 2
        main(["override", "--db", db, "1003", "5", "--reason", " "])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["override", "--db", db, "1003", "five", "--reason", "x"])
    assert info.value.code == 2
    out, _ = export(tmp_path / "gradebook.db", tmp_path)
    _, students, _ = read_like_canvas(out)
    assert students["1001"]["12345"] == "77.5" and students["1002"]["12345"] == "EX"
    conn = gradebook.connect(db, create=False)
    rows = conn.execute("SELECT by, action FROM audit WHERE action IN ('override', 'excuse') ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [("ta1", "override"), (gradebook.who(), "excuse")]


def test_missing_policy_and_summary(tmp_path, capsys):
    roster = ROSTER + [RosterRow("湘南 藤", "1005", "", "", "月3")]
    make_gradebook(tmp_path, roster=roster, results={sha(nb("fuji")): None})
    out, _ = export(tmp_path / "gradebook.db", tmp_path)
    _, students, _ = read_like_canvas(out)
    assert "1004" not in students and "1005" not in students and "1003" not in students
    said = capsys.readouterr()
    assert "policy --missing leave" in said.out and "2 submitted nothing" in said.out
    out, _ = export(tmp_path / "gradebook.db", tmp_path, "--missing", "zero")
    _, students, _ = read_like_canvas(out)
    assert students["1004"]["12345"] == "0.0" and students["1005"]["12345"] == "0.0"
    assert "1003" not in students and "1009" not in students       # they did submit: no score is not a 0
    assert "policy --missing zero: 2 students who submitted nothing get 0" in capsys.readouterr().out


def test_invalid_notebooks_are_warned_about(tmp_path, capsys):
    make_gradebook(tmp_path, results={sha(nb("hanako")): result({q: 0.0 for q in grader_config.POINTS},
                                                                status="invalid", message="not JSON")})
    out, _ = export(tmp_path / "gradebook.db", tmp_path)
    _, students, _ = read_like_canvas(out)
    assert students["1002"]["12345"] == "0.0"
    err = capsys.readouterr().err
    assert "1 students get 0.0 because their notebook could not be read (invalid)" in err and "1002" in err


def test_assignment_id_and_title_default_from_the_roster(tmp_path, capsys):
    make_gradebook(tmp_path)
    conn = gradebook.connect(tmp_path / "gradebook.db", create=False)
    db, out = str(tmp_path / "gradebook.db"), tmp_path / "k.csv"
    with pytest.raises(SystemExit) as info:           # no roster default yet: a usage error
        main(["export", "--db", db, "--canvas-csv", str(out)])
    assert info.value.code == 2 and "--assignment-id" in capsys.readouterr().err
    gradebook.set_meta(conn, "klms_assignment_id", "777")
    gradebook.set_meta(conn, "klms_title", "第3回 課題")
    assert main(["export", "--db", db, "--canvas-csv", str(out)]) == 0
    assert read_like_canvas(out)[0] == {"777": ("第3回 課題", "80.0")}
    assert main(["export", "--db", db, "--canvas-csv", str(out), "--assignment", "12345", "--title", "X"]) == 0
    assert read_like_canvas(out)[0] == {"12345": ("X", "80.0")}
