"""The roster as K-LMS writes it (Grades > Export): every variant of its gradebook export."""
import pytest

from autograder.ingest import roster

HEAD = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lecture 3 assignment (12345)",
        "Current Score", "Final Score"]
SPLIT_HEAD = ["LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID", "Section",
              "Lecture 3 assignment (12345)", "Current Points", "Final Grade"]
POINTS = ["    Points Possible", "", "", "", "", "80.00", "(read only)", "(read only)"]
ROWS = [["慶應, 太郎", "1001", "80012345", "taro@keio.jp", "月2", "", "0", "0"],
        ["Mita, Hanako", "1002", "80012346", "hanako@keio.jp", "月2", "70", "70", "70"],
        ["Student, Test", "9999", "", "", "月2", "", "", ""]]


def csv_text(rows, sep):
    def q(c):
        return f'"{c}"' if (sep in c or '"' in c or "," in c) else c
    return "\r\n".join(sep.join(q(c) for c in r) for r in rows) + "\r\n"


def split(rows):
    out = []
    for r in rows:
        last, _, first = r[0].partition(", ")
        out.append([last, first] + r[1:])
    return out


@pytest.mark.parametrize("layout", ["student", "split"])
@pytest.mark.parametrize("sep", [",", ";"])
@pytest.mark.parametrize("bom", [True, False])
def test_every_export_variant(tmp_path, layout, sep, bom):
    if layout == "student":
        rows = [HEAD, POINTS, *ROWS]
    else:
        rows = [SPLIT_HEAD, ["    Points Possible", "", *POINTS[1:], ""], *split(ROWS)]
    data = csv_text(rows, sep).encode("utf-8")
    path = tmp_path / "roster.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    r = roster.read_roster_full(path)
    assert [(s.name, s.user_id, s.sis_user_id, s.sis_login_id, s.section) for s in r.rows] == [
        ("慶應, 太郎", "1001", "80012345", "taro@keio.jp", "月2"),
        ("Mita, Hanako", "1002", "80012346", "hanako@keio.jp", "月2")]       # no "Student, Test"
    assert r.assignments == [("Lecture 3 assignment", "12345")]            # Current/Final columns are not
    assert r.warnings == []


def test_unreadable_roster_says_which_columns_it_found(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("name,number,group\nTaro,1001,A\n", encoding="utf-8")
    with pytest.raises(roster.RosterError) as info:
        roster.read_roster_full(path)
    msg = str(info.value)
    assert "'ID'" in msg and "'Section'" in msg and "found ['name', 'number', 'group']" in msg
    with pytest.raises(roster.RosterError, match="no such file"):
        roster.read_roster_full(tmp_path / "nope.csv")


def test_several_assignment_columns_give_no_default(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("Student,ID,SIS Login ID,Section,Lecture 2 (111),Lecture 3 (222)\nA,1,a,s,,\n", encoding="utf-8")
    r = roster.read_roster_full(path)
    assert r.assignments == [("Lecture 2", "111"), ("Lecture 3", "222")] and [s.user_id for s in r.rows] == ["1"]
