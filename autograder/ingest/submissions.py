"""Read a K-LMS "Download Submissions" zip (or a folder of notebooks) safely, and choose each student's
notebook.

Safety: a zip member is refused (recorded, never written) when its name is absolute, holds a ``..`` part,
a NUL or a drive letter, when it is a symlink or another non-regular file, or encrypted. The whole input
is refused when it has more than ``grader_config.MAX_ZIP_FILES`` files or declares more than
``MAX_ZIP_BYTES`` uncompressed; a notebook over ``MAX_NOTEBOOK_BYTES`` is hashed but not extracted or
graded. Members are written under names we make (``<index>_<sanitised name>``) in a fresh work folder,
so no member name ever becomes a path. Bytes are counted while they are read, whatever the headers say.

Ignored without a trace: what macOS adds when a TA re-packs the zip (``__MACOSX/`` and ``._name``
AppleDouble files) and every other dot-file (counted in ``Ingested.ignored``).

Attribution: ``autograder.ingest.names.resolve`` reads each name; a doubtful name (it reads several ways
and the roster confirms none) is not attributed to anybody: it is recorded as a file not graded, for the TA.

Choosing: the zip holds the attachments of each student's latest attempt only. One notebook: graded.
Several: a TA's ``--pick`` wins, else the one named like the assignment (``lec03*.ipynb``) when exactly
one is, else none is graded and the student is flagged ``ambiguous`` for a TA.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.config import grader_config as config

from autograder.digest import sha256_file
from autograder.ingest import names

CHUNK = 1 << 20


class IngestError(Exception):
    """The whole input is refused."""


@dataclass
class Notebook:
    entry_name: str                  # base name in the zip or folder
    sha256: str
    size: int
    path: Path | None                # the file to grade; None when too large
    zname: names.ZipName | None      # Canvas's reading of the name; None if not Canvas's
    too_large: bool = False

    @property
    def student_key(self) -> str:
        return self.zname.student_key if self.zname else f"file:{self.entry_name}"

    @property
    def filename(self) -> str:
        return self.zname.filename if self.zname else self.entry_name


@dataclass
class Skipped:
    name: str
    size: int | None
    reason: str
    zname: names.ZipName | None = None   # Canvas's reading of the name, when it is one

    @property
    def student_key(self) -> str | None:
        return self.zname.student_key if self.zname else None


@dataclass
class Ingested:
    notebooks: list[Notebook] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    input_sha256: str | None = None
    ignored: list[str] = field(default_factory=list)     # macOS metadata and dot-files

    def attachments(self, student_key: str) -> list[Notebook]:
        """One student's notebooks, as read from the names."""
        return [n for n in self.notebooks if n.student_key == student_key]


@dataclass
class StudentFiles:
    key: str
    user_id: str | None
    name_slug: str
    late: bool
    notebooks: list[Notebook]
    others: list[str]
    chosen: Notebook | None = None
    flags: list[str] = field(default_factory=list)


def unsafe_reason(name: str) -> str | None:
    """Why a member name must not be used, or None."""
    if "\x00" in name:
        return "NUL in name"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "absolute path"
    if any(part == ".." for part in norm.split("/")):
        return "path traversal (..)"
    return None


def ignorable(name: str) -> bool:
    """macOS metadata (``__MACOSX/``, ``._x``, ``.DS_Store``) and other dot-files or dot-folders."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    return any(p == "__MACOSX" or p.startswith(".") for p in parts)


def _read_name(base: str, known) -> tuple[names.ZipName | None, str | None]:
    return names.resolve(base, known)


def _safe_local_name(index: int, base: str) -> str:
    cleaned = re.sub(r"[^\w.-]", "_", base)[-80:].lstrip(".") or "notebook.ipynb"
    return f"{index:05d}_{cleaned}"


def _is_notebook(base: str) -> bool:
    return base.lower().endswith(".ipynb")


def _copy_counted(src, dst_path: Path | None, limit: int) -> tuple[str, int, bool]:
    """Stream ``src`` into ``dst_path`` (or only hash it); (sha256, size, over_limit)."""
    h, size, over = hashlib.sha256(), 0, False
    out = open(dst_path, "xb") if dst_path is not None else None
    try:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
            if size > limit:
                over = True
            if out is not None and not over:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    if over and dst_path is not None:
        dst_path.unlink()
    return h.hexdigest(), size, over


def ingest(source: str | Path, workdir: str | Path, known_user_ids=None) -> Ingested:
    """Read a submissions zip or folder; notebooks from a zip are written under ``workdir``.

    ``known_user_ids``: the roster, {Canvas user id: sortable name} (``gradebook.roster_names``); it only
    settles names that read several ways (see ``autograder.ingest.names.resolve``)."""
    source = Path(source)
    if source.is_dir():
        return _ingest_folder(source, known_user_ids)
    if not zipfile.is_zipfile(source):
        raise IngestError(f"{source} is neither a folder nor a zip file")
    return _ingest_zip(source, Path(workdir), known_user_ids)


def _ingest_zip(source: Path, workdir: Path, known: set[str] | None) -> Ingested:
    out = Ingested(input_sha256=sha256_file(source))
    workdir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > config.MAX_ZIP_FILES:
            raise IngestError(f"{source} holds {len(infos)} files, more than MAX_ZIP_FILES={config.MAX_ZIP_FILES}")
        declared = sum(i.file_size for i in infos)
        if declared > config.MAX_ZIP_BYTES:
            raise IngestError(f"{source} unpacks to {declared} bytes, more than MAX_ZIP_BYTES={config.MAX_ZIP_BYTES}")
        read_total = 0   # zipfile stops at the declared sizes; counted again here all the same
        for index, info in enumerate(infos):
            name = info.filename
            base = PurePosixPath(name.replace("\\", "/")).name
            mode = info.external_attr >> 16
            reason = unsafe_reason(name)
            if reason is None and ignorable(name):
                out.ignored.append(name)
                continue
            # only an explicit non-regular type counts: zip writers that store bare permissions
            # (Python's ZipFile.writestr: 0o600, no type bits) write regular files
            if reason is None and info.create_system == 3 and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                reason = "symlink" if stat.S_ISLNK(mode) else "not a regular file"
            if reason is None and info.flag_bits & 0x1:
                reason = "encrypted"
            zname, doubt = _read_name(base, known) if reason is None else (None, None)
            reason = reason or doubt
            if reason is None and not _is_notebook(base):
                reason = _other_reason(zname)
            if reason is not None:
                out.skipped.append(Skipped(name, info.file_size, reason, zname))
                continue
            dest = workdir / _safe_local_name(index, base)
            try:
                with zf.open(info) as src:
                    sha, size, over = _copy_counted(src, dest, config.MAX_NOTEBOOK_BYTES)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                out.skipped.append(Skipped(name, info.file_size, f"unreadable member: {exc}", zname))
                continue
            read_total += size
            if read_total > config.MAX_ZIP_BYTES:
                raise IngestError(f"{source} unpacks to more than MAX_ZIP_BYTES={config.MAX_ZIP_BYTES}")
            out.notebooks.append(Notebook(base, sha, size, None if over else dest, zname, too_large=over))
    return out


def _other_reason(zname: names.ZipName | None) -> str:
    if zname is not None and zname.kind in ("text", "link"):
        return f"{zname.kind} entry submission, not a notebook"
    return "not a notebook"


def _ingest_folder(source: Path, known: set[str] | None) -> Ingested:
    out = Ingested()
    count = 0
    total = 0
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        dirnames.sort()
        for d in list(dirnames):
            if ignorable(d):
                out.ignored.append(os.path.relpath(os.path.join(dirpath, d), source))
                dirnames.remove(d)
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                out.skipped.append(Skipped(os.path.relpath(os.path.join(dirpath, d), source), None, "symlink"))
                dirnames.remove(d)
        for base in sorted(filenames):
            path = Path(dirpath) / base
            rel = str(path.relative_to(source))
            if ignorable(base):
                out.ignored.append(rel)
                continue
            count += 1
            if count > config.MAX_ZIP_FILES:
                raise IngestError(f"{source} holds more than MAX_ZIP_FILES={config.MAX_ZIP_FILES} files")
            st = os.lstat(path)
            zname, doubt = _read_name(base, known)
            if doubt is not None:
                out.skipped.append(Skipped(rel, st.st_size, doubt))
                continue
            if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
                out.skipped.append(Skipped(rel, None, "symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file", zname))
                continue
            if not _is_notebook(base):
                out.skipped.append(Skipped(rel, st.st_size, _other_reason(zname), zname))
                continue
            total += st.st_size
            if total > config.MAX_ZIP_BYTES:
                raise IngestError(f"{source} holds more than MAX_ZIP_BYTES={config.MAX_ZIP_BYTES} bytes")
            with open(path, "rb") as f:
                sha, size, over = _copy_counted(f, None, config.MAX_NOTEBOOK_BYTES)
            out.notebooks.append(Notebook(base, sha, size, None if over else path, zname, too_large=over))
    return out


def assignment_like(filename: str) -> bool:
    """Named like the assignment: ``lec03*.ipynb`` (case ignored; ``lec03-1.ipynb`` too)."""
    return bool(re.fullmatch(re.escape(config.ASSIGNMENT) + r".*\.ipynb", filename, re.IGNORECASE | re.DOTALL))


def choose(ingested: Ingested, picks: dict[str, str] | None = None) -> dict[str, StudentFiles]:
    """Group the files by student and choose the notebook to grade (see the module's docstring)."""
    picks = picks or {}
    students: dict[str, StudentFiles] = {}

    def student(key: str, zname: names.ZipName | None) -> StudentFiles:
        if key not in students:
            students[key] = StudentFiles(key, zname.user_id if zname else None,
                                         (zname.name_slug or "") if zname else key, False, [], [])
        return students[key]

    for nb in ingested.notebooks:
        s = student(nb.student_key, nb.zname)
        s.notebooks.append(nb)
        s.late |= bool(nb.zname and nb.zname.late)
    for sk in ingested.skipped:
        zname = sk.zname
        if zname is not None:
            s = student(sk.student_key, zname)
            s.others.append(zname.filename if zname.kind == "upload" else f"{zname.kind}.html")
            s.late |= zname.late
    for s in students.values():
        nbs = sorted(s.notebooks, key=lambda n: n.entry_name)
        if s.others:
            s.flags.append("other_files: " + ", ".join(sorted(s.others)))
        if len(nbs) == 1:
            s.chosen = nbs[0]
        elif len(nbs) > 1:
            picked = [n for n in nbs if n.zname and n.zname.attachment_id == picks.get(s.key)]
            liked = [n for n in nbs if assignment_like(n.filename)]
            listing = ", ".join(f"{n.filename} (attachment {n.zname.attachment_id})"
                                if n.zname and n.zname.attachment_id else n.filename for n in nbs)
            if len(picked) == 1:
                s.chosen = picked[0]
                s.flags.append(f"picked_by_ta: {picked[0].filename} of {listing}")
            elif len(liked) == 1:
                s.chosen = liked[0]
                s.flags.append(f"other_notebooks: {listing}")
            else:
                s.flags.append(f"ambiguous: {listing}")
        if s.chosen is not None and s.chosen.too_large:
            s.flags.append(f"too_large: {s.chosen.size} bytes > MAX_NOTEBOOK_BYTES")
    return students
