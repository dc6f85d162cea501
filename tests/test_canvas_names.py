"""Canvas "Download Submissions" zip names: every form K-LMS writes, read back (autograder.ingest.names)."""
import pytest

from autograder.ingest import names


@pytest.mark.parametrize("entry, expect", [
    # (name slug, late, user id, anonymous id, attachment id, file name)
    ("keiotaro_1001_555001_lec03.ipynb", ("keiotaro", False, "1001", None, "555001", "lec03.ipynb")),
    ("keiotaro_LATE_1001_555001_lec03.ipynb", ("keiotaro", True, "1001", None, "555001", "lec03.ipynb")),
    ("keiotaro_late_1001_555001_lec03.ipynb", ("keiotaro", True, "1001", None, "555001", "lec03.ipynb")),
    ("mitahanako_1002_555002_lec03-1.ipynb", ("mitahanako", False, "1002", None, "555002", "lec03-1.ipynb")),
    ("mitahanako_1002_555003_lec03-2.ipynb", ("mitahanako", False, "1002", None, "555003", "lec03-2.ipynb")),
    ("慶應太郎_1003_555004_lec03.ipynb", ("慶應太郎", False, "1003", None, "555004", "lec03.ipynb")),
    ("anon_x7Ya2_555005_lec03.ipynb", (None, False, None, "x7Ya2", "555005", "lec03.ipynb")),
    ("LATE_anon_x7Ya2_555005_lec03.ipynb", (None, True, None, "x7Ya2", "555005", "lec03.ipynb")),
    ("late_anon_Qq9Zk_555006_my lec03 (final).ipynb", (None, True, None, "Qq9Zk", "555006", "my lec03 (final).ipynb")),
    # the student's own file name may hold underscores and digit runs
    ("yagamiken_1004_555007_lec03_v2_10_3.ipynb", ("yagamiken", False, "1004", None, "555007", "lec03_v2_10_3.ipynb")),
    # a name with an underscore that Canvas kept (no digits after it)
    ("o_brien_1005_555008_lec03.ipynb", ("o_brien", False, "1005", None, "555008", "lec03.ipynb")),
    # a display name Canvas sanitised (slashes become underscores): never a path
    ("hiyoshi_1006_555009_.._.._etc_passwd.ipynb", ("hiyoshi", False, "1006", None, "555009", ".._.._etc_passwd.ipynb")),
    # LATE with an empty name slug
    ("LATE_1007_555010_lec03.ipynb", ("", True, "1007", None, "555010", "lec03.ipynb")),
])
def test_upload_names(entry, expect):
    z = names.parse(entry)
    assert (z.name_slug, z.late, z.user_id, z.anonymous_id, z.attachment_id, z.filename) == expect
    assert z.kind == "upload"
    assert z.student_key == (expect[2] if expect[2] else f"anon_{expect[3]}")
    assert z.anonymous == (expect[2] is None)


@pytest.mark.parametrize("entry, kind, key, late", [
    ("keiotaro_1001_text.html", "text", "1001", False),
    ("keiotaro_LATE_1001_link.html", "link", "1001", True),
    ("anon_x7Ya2_text.html", "text", "anon_x7Ya2", False),
    ("LATE_anon_x7Ya2_link.html", "link", "anon_x7Ya2", True),
])
def test_text_and_link_entries(entry, kind, key, late):
    z = names.parse(entry)
    assert (z.kind, z.student_key, z.late, z.attachment_id) == (kind, key, late, None)


@pytest.mark.parametrize("entry", ["lec03.ipynb", "keiotaro_lec03.ipynb", "README", "", "_1001_.ipynb",
                                   "keiotaro_1001_lec03.ipynb"])
def test_names_not_from_canvas(entry):
    assert names.parse(entry) is None


def test_ambiguous_names_resolved_by_roster_names_only():
    # a sortable name ending in "_12" (Canvas only collapses "_<digits>_" runs) reads two ways
    entry = "a_12_1001_555_f.ipynb"
    readings = [(c.user_id, c.attachment_id, c.filename) for c in names.candidates(entry)]
    assert readings == [("12", "1001", "555_f.ipynb"), ("1001", "555", "f.ipynb")]
    # the roster confirms a reading by user id AND the name Canvas writes for that student
    assert names.resolve(entry, {"1001": "A_12, Someone"})[0] is None      # name "a_12someone" != "a_12"
    assert names.resolve(entry, {"1001": "a_12"})[0].user_id == "1001"
    assert names.resolve(entry, {"12": "a"})[0].user_id == "12"
    # user ids alone (no names) confirm nothing: doubtful
    got, doubt = names.resolve(entry, {"1001"})
    assert got is None and "doubtful" in doubt and "user 12" in doubt and "user 1001" in doubt
    # a student whose sortable name is "anon" versus an anonymous id made of digits
    assert names.resolve("anon_1008_555_lec03.ipynb")[0] is None
    assert names.resolve("anon_1008_555_lec03.ipynb", {"1008": "Anon"})[0].user_id == "1008"
    assert names.parse("anon_x7Ya2_555_lec03.ipynb").anonymous


def test_attack_file_name_never_moves_a_file_to_another_student():
    # user 3005 (not on the roster) uploads "lec03_1002_1_lec03.ipynb"
    entry = names.entry_name(names.canvas_prefix("Outsider, Eve", 3005), 777, "lec03_1002_1_lec03.ipynb")
    assert entry == "outsidereve_3005_777_lec03_1002_1_lec03.ipynb"
    assert [c.user_id for c in names.candidates(entry)] == ["3005", "1002"]
    roster = {"1001": "慶應, 太郎", "1002": "三田, 花子"}
    got, doubt = names.resolve(entry, roster)
    assert got is None and "doubtful" in doubt           # 1002's name is not "outsidereve_3005_777_lec03"
    # the same file name uploaded by a roster student whose name Canvas wrote: that student's, no doubt
    entry2 = names.entry_name(names.canvas_prefix("三田, 花子", 1002), 778, "lec03_1001_1_lec03.ipynb")
    got, doubt = names.resolve(entry2, roster)
    assert doubt is None and got.user_id == "1002" and got.filename == "lec03_1001_1_lec03.ipynb"
    # Canvas's own reading (the leftmost) when no one else could be meant
    entry3 = names.entry_name(names.canvas_prefix("Outsider, Eve", 3005), 779, "lec03.ipynb")
    assert names.resolve(entry3, roster)[0].user_id == "3005"


@pytest.mark.parametrize("sortable, uid, late, anon, display, entry", [
    ("Keio, Taro", 1001, True, None, "lec03.ipynb", "keiotaro_LATE_1001_5_lec03.ipynb"),
    ("慶應, 太郎", 1003, False, None, "lec03.ipynb", "慶應太郎_1003_5_lec03.ipynb"),
    ("Mita-Smith, Hanako", 1002, False, None, "lec03-1.ipynb", "mitasmithhanako_1002_5_lec03-1.ipynb"),
    ("Abc_12_Def, X", 1009, False, None, "lec03.ipynb", "abc12defx_1009_5_lec03.ipynb"),
    (None, None, True, "x7Ya2", "lec03.ipynb", "LATE_anon_x7Ya2_5_lec03.ipynb"),
    ("Keio, Taro", 1001, False, None, 'a/b\\c:d*e?f"g<h>i|j.ipynb', "keiotaro_1001_5_a_b_c_d_e_f_g_h_i_j.ipynb"),
])
def test_names_built_as_canvas_builds_them(sortable, uid, late, anon, display, entry):
    made = names.entry_name(names.canvas_prefix(sortable, uid, late=late, anonymous_id=anon), 5, display)
    assert made == entry
    z = names.parse(made)
    assert z.late == late and z.attachment_id == "5"
    assert z.student_key == (str(uid) if uid else f"anon_{anon}")
    assert "/" not in z.filename and "\\" not in z.filename


def test_traversal_in_display_name_never_survives():
    made = names.entry_name(names.canvas_prefix("Evil, Eve", 1010), 5, "../../../etc/cron.d/x.ipynb")
    assert "/" not in made
    assert names.parse(made).filename == ".._.._.._etc_cron.d_x.ipynb"
