"""Read a submitted .ipynb as data: the source of its code cells, nothing else.

Stored outputs, execution counts and metadata are ignored (they are whatever the student's file says).
nbformat 4 and 3 are read; anything else is an ``InvalidNotebook`` with a message for the student.
"""
from __future__ import annotations

import json


class InvalidNotebook(ValueError):
    pass


def _text(source) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    raise InvalidNotebook("a cell's source is neither text nor a list of lines")


def code_cells(data: bytes) -> list[str]:
    """The code cells' sources, in file order."""
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidNotebook("the file is not a Jupyter notebook (.ipynb is JSON text)") from None
    except RecursionError:
        raise InvalidNotebook("the file's JSON is nested too deeply to be a notebook") from None
    if not isinstance(nb, dict):
        raise InvalidNotebook("the file is not a Jupyter notebook (no notebook object)")
    major = nb.get("nbformat")
    if major == 4 and isinstance(nb.get("cells"), list):
        cells = [c for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") == "code"]
        return [_text(c.get("source", "")) for c in cells]
    if major == 3 and isinstance(nb.get("worksheets"), list):
        cells = [c for ws in nb["worksheets"] if isinstance(ws, dict) for c in ws.get("cells", [])
                 if isinstance(c, dict) and c.get("cell_type") == "code"]
        return [_text(c.get("input", "")) for c in cells]
    raise InvalidNotebook(f"unsupported notebook format (nbformat {major!r}); save it with Jupyter or Colab")
