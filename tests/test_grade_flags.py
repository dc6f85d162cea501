"""Flags for a TA, from the cells' errors and the notebook's facts (fast: no sandbox)."""
from autograder import assignment
from autograder.grade import _flags as grade_flags, valid_text


def _flags(cells, facts):
    return grade_flags(cells, facts, assignment.current().graded_names)


def _cell(ename, evalue, traceback=""):
    return {"index": 0, "status": "error", "duration_s": 0.1,
            "error": {"ename": ename, "evalue": evalue, "traceback": traceback}}


def test_missing_package_is_named_once():
    cells = [_cell("ModuleNotFoundError", "No module named 'lightgbm.sklearn'"),
             _cell("ModuleNotFoundError", "No module named 'lightgbm'"),
             _cell("NameError", "name 'lgb' is not defined")]
    flags = _flags(cells, {})
    assert [f["kind"] for f in flags] == ["missing_package"]
    assert "lightgbm" in flags[0]["message"] and "a TA will look" in flags[0]["message"]


def test_torch_compile_failure_is_explained():
    cells = [_cell("BackendCompilerFailed", "backend='inductor' raised: OSError: [Errno 27] File too large",
                   'File "/usr/lib/python3/site-packages/torch/_dynamo/output_graph.py", line 1')]
    assert [f["kind"] for f in _flags(cells, {})] == ["unsupported"]
    assert not _flags([_cell("ValueError", "bad shape")], {})


def test_rebound_names_are_flagged_only_when_graded():
    flags = _flags([], {"rebound": ["loss", "rmse", "x_train", 5]})
    assert [f["kind"] for f in flags] == ["rebound"]
    assert "loss, rmse" in flags[0]["message"] and "x_train" not in flags[0]["message"]


def test_valid_text_replaces_lone_surrogates_everywhere():
    value = valid_text({"a\ud83d": ["ok", ("x\udc00",)], "n": 1.5})
    assert value == {"a?": ["ok", ["x?"]], "n": 1.5}
    for text in ("a?", "x?"):
        text.encode("utf-8")
