"""Write a zip shaped like K-LMS's "Download Submissions" (for examples/ and the tests).

Byte-deterministic: members in the order given, one fixed timestamp, fixed permissions, deflate level 9.
Entry names are built with ``autograder.ingest.names`` exactly as Canvas builds them.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from autograder.ingest import names

FIXED_TIME = (2026, 5, 1, 9, 0, 0)


@dataclass(frozen=True)
class Attachment:
    sortable_name: str | None       # "Keio, Taro" / "慶應, 太郎"; None under anonymous grading
    user_id: int | None
    attachment_id: int
    display_name: str               # the student's own file name, e.g. "lec03-1.ipynb"
    data: bytes
    late: bool = False
    anonymous_id: str | None = None

    @property
    def entry_name(self) -> str:
        prefix = names.canvas_prefix(self.sortable_name, self.user_id, late=self.late,
                                     anonymous_id=self.anonymous_id)
        return names.entry_name(prefix, self.attachment_id, self.display_name)


def write_zip(path: str | Path, members: list[tuple[str, bytes]]) -> None:
    """A deterministic zip of (entry name, bytes) pairs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def write_submissions_zip(path: str | Path, attachments: list[Attachment]) -> list[str]:
    """Write the zip; returns the entry names in order."""
    members = [(a.entry_name, a.data) for a in attachments]
    write_zip(path, members)
    return [m[0] for m in members]
