"""Whole files only: a file written beside its target and renamed over it, so that a process reading the
target at the same moment (a grading worker, another writer building the same file) sees the old file or
the new one, never half of one. One definition for the engine (MNIST's files, build's outputs)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable


def write_atomically(target: Path, write: Callable[[Path], None], mode: int | None = None) -> None:
    """``write(tmp)`` to a temporary file of this writer's own beside ``target`` (named
    ``.<target>.<pid>.<random>.part``), give it ``mode`` if one is given, and rename it over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        write(tmp)
        if mode is not None:
            tmp.chmod(mode)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
