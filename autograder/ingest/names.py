"""File names inside Canvas's "Download Submissions" zip.

Canvas (``lib/content_zipper.rb``) names each attachment of a student's latest attempt

    <prefix>_<attachment_id>_<display name>
    prefix = [sortable name, "LATE" if late, user_id].join("_") with every non-word character removed

where the sortable name is lower-cased and any ``_<digits>_`` run in it is collapsed to ``<digits>`` first
(Canvas itself relies on that to find the ids again). Under anonymous grading the prefix is
``[LATE_]anon_<anonymous_id>``: no name and no user id. Text-entry and URL submissions are
``<prefix>_text.html`` and ``<prefix>_link.html``. Older Canvas wrote ``late`` in lower case.
The display name is the student's own file name with ``\\ / : * ? " < > |`` and NUL replaced by ``_``;
a ``-1``/``-2`` before the extension is Canvas renaming a re-uploaded file, part of the student's name.

``parse`` reads such a name back. Names are ambiguous in rare cases (a sortable name ending in
``_<digits>``, a display name holding ``_<digits>_<digits>_``); ``candidates`` lists every reading.

Attribution (``resolve``): the user id Canvas wrote, the first numeric field after the name and the LATE
marker, decides whose file it is. A student's own file name cannot move it: ``lec03_1002_1_lec03.ipynb``
uploaded by user 3005 reads ``x_3005_777_lec03_1002_1_lec03.ipynb``, and user 1002 being on the roster
does not make it 1002's. When a name reads several ways, a reading counts as confirmed only when the
roster has its user id *and* the name before it is exactly what Canvas writes for that student's sortable
name; exactly one confirmed reading wins, otherwise the file is *doubtful*: it belongs to nobody and goes
to the TA's table on its own (a file never changes another student's status).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Mapping

# matched at every "_" in turn (``match(name, pos)``), so no "^"
_UPLOAD_TAIL = re.compile(r"(?:(?P<late>late)_)?(?P<uid>\d+)_(?P<aid>\d+)_(?P<file>.+)$",
                          re.IGNORECASE | re.DOTALL)
_ANON_UPLOAD = re.compile(r"^(?:(?P<late>late)_)?anon_(?P<anon>[0-9A-Za-z]+)_(?P<aid>\d+)_(?P<file>.+)$",
                          re.IGNORECASE | re.DOTALL)
_INLINE = re.compile(r"^(?:(?P<name>.*?)_)??(?:(?P<late>late)_)?(?P<uid>\d+)_(?P<kind>text|link)\.html$",
                     re.IGNORECASE | re.DOTALL)
_ANON_INLINE = re.compile(r"^(?:(?P<late>late)_)?anon_(?P<anon>[0-9A-Za-z]+)_(?P<kind>text|link)\.html$",
                          re.IGNORECASE | re.DOTALL)
_ATTACHMENT_BAD = re.compile(r'[\x00/\\:*?"<>|]+')


@dataclass(frozen=True)
class ZipName:
    """One reading of a zip entry's name."""

    raw: str                      # the name as it stands in the zip (base name)
    name_slug: str | None         # Canvas's sanitised sortable name ("keiotaro"); None when anonymous
    late: bool                    # Canvas marked the attempt LATE
    user_id: str | None           # Canvas user id; None when anonymous
    anonymous_id: str | None      # anonymous grading id; None when not anonymous
    attachment_id: str | None     # None for text/link entries
    filename: str                 # the student's own file name (display name), "" for text/link entries
    kind: str = "upload"          # "upload", "text" or "link"

    @property
    def student_key(self) -> str:
        """The gradebook's key: the Canvas user id, or ``anon_<id>`` for an anonymous submission."""
        return self.user_id if self.user_id is not None else f"anon_{self.anonymous_id}"

    @property
    def anonymous(self) -> bool:
        return self.user_id is None


def _is_word(ch: str) -> bool:
    # Ruby's [[:word:]]: letters, marks, decimal digits and connector punctuation (the underscore)
    cat = unicodedata.category(ch)
    return cat[0] in "LM" or cat in ("Nd", "Pc")


def sanitize_file_name(text: str) -> str:
    """Canvas's ``sanitize_file_name``: drop every non-word character."""
    return "".join(ch for ch in text if _is_word(ch))


def sanitize_user_name(sortable_name: str) -> str:
    """Canvas's ``sanitize_user_name``: collapse ``_<digits>_`` runs, lower-case."""
    return re.sub(r"_(\d+)_", r"\1", sortable_name).lower()


def sanitize_attachment_filename(display_name: str) -> str:
    """Canvas's ``sanitize_attachment_filename``."""
    return _ATTACHMENT_BAD.sub("_", display_name)


def canvas_prefix(sortable_name: str | None, user_id: int | str | None, *, late: bool = False,
                  anonymous_id: str | None = None) -> str:
    """The prefix Canvas writes for one submission (``get_filename``)."""
    ident = f"anon_{anonymous_id}" if anonymous_id is not None else str(user_id)
    parts = [] if anonymous_id is not None or sortable_name is None else [sanitize_user_name(sortable_name)]
    parts += (["LATE"] if late else []) + [ident]
    return sanitize_file_name("_".join(parts))


def entry_name(prefix: str, attachment_id: int | str, display_name: str) -> str:
    """The zip entry name of one uploaded attachment (``add_upload_submission``)."""
    return f"{prefix}_{attachment_id}_{sanitize_attachment_filename(display_name)}"


def candidates(name: str) -> list[ZipName]:
    """Every reading of ``name`` (a base name), the most likely first; empty if it is not Canvas's.

    Order: the anonymous upload reading, the named upload readings (leftmost split first), then the
    text/link readings (which carry no attachment id).
    """
    out: list[ZipName] = []
    m = _ANON_UPLOAD.match(name)
    if m:
        out.append(ZipName(name, None, bool(m["late"]), None, m["anon"], m["aid"], m["file"]))
    # uploads: try every place where "[late_]<uid>_<aid>_" could start, leftmost first
    for start in [0] + [i + 1 for i, ch in enumerate(name) if ch == "_"]:
        m = _UPLOAD_TAIL.match(name, start)
        if not m:
            continue
        name_slug = name[:start - 1] if start else ""
        if name_slug.rsplit("_", 1)[-1].lower() == "late":
            continue  # the same split with the LATE marker read as part of the name: read above already
        out.append(ZipName(name, name_slug, bool(m["late"]), m["uid"], None, m["aid"], m["file"]))
    m = _ANON_INLINE.match(name)
    if m:
        out.append(ZipName(name, None, bool(m["late"]), None, m["anon"], None, "", m["kind"].lower()))
    m = _INLINE.match(name)
    if m:
        out.append(ZipName(name, m["name"] or "", bool(m["late"]), m["uid"], None, None, "", m["kind"].lower()))
    return out


def confirmed_by(cand: ZipName, roster: Mapping[str, str]) -> bool:
    """The roster has this reading's user id and the name part is what Canvas writes for that student."""
    if cand.user_id is None or cand.user_id not in roster or not roster[cand.user_id]:
        return False
    prefix = canvas_prefix(roster[cand.user_id], cand.user_id, late=cand.late)
    return cand.raw.lower().startswith(prefix.lower() + "_")


def resolve(name: str, roster: Mapping[str, str] | None = None) -> tuple[ZipName | None, str | None]:
    """(the reading to use, None) or (None, why the name is doubtful); (None, None): not Canvas's name.

    ``roster`` maps Canvas user ids to the roster's sortable names ("Keio, Taro"); a set of ids (no names)
    confirms nothing. One reading: it. Several: the one reading the roster confirms (see module docstring),
    else doubtful.
    """
    found = candidates(name)
    if not found:
        return None, None
    uploads = [c for c in found if c.kind == "upload"]
    group = uploads or found
    if len(group) == 1:
        return group[0], None
    names_known = roster if isinstance(roster, Mapping) else {}
    confirmed = [c for c in group if confirmed_by(c, names_known)]
    if len(confirmed) == 1:
        return confirmed[0], None
    readings = "; ".join(f"user {c.student_key} file {c.filename or c.kind!r}" for c in group)
    return None, f"doubtful name, reads {len(group)} ways ({readings}): not attributed, rename it or grade by hand"


def parse(name: str, known_user_ids: Mapping[str, str] | None = None) -> ZipName | None:
    """The reading to use (``resolve``); a doubtful name gives Canvas's leftmost reading; None if none."""
    got, doubt = resolve(name, known_user_ids)
    if got is None and doubt is not None:
        return candidates(name)[0]
    return got
