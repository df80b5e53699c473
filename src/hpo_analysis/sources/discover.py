"""Walk the sources and decide, for every file seen, which reader takes it (or why none does).

Every file under a source gets exactly one :class:`Found` record, so the manifest can account
for it: claimed by a reader, ignored (OS/editor scratch files, formats no reader claims) or an
error (unreadable directory, symlink loop). The walk is sorted, so runs are deterministic.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .registry import claim

SCRATCH_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", ".directory"}
SCRATCH_SUFFIXES = (".tmp", ".swp", ".swo", ".swx", ".bak", ".part", ".crdownload", ".partial")


@dataclass(frozen=True)
class Found:
    path: Path
    display: str  # the path as the user would write it (source as given + relative part)
    reader: str | None  # name of the reader that claims the file
    status: str  # "read" | "ignored" | "rejected"
    reason: str = ""


def scratch_reason(name: str) -> str | None:
    """Why a file name looks like an OS or editor by-product, or None."""
    if name in SCRATCH_NAMES:
        return "operating-system metadata file"
    if name.startswith("._"):
        return "macOS resource-fork file"
    if name.startswith(".#") or name.endswith("~") or name.endswith(SCRATCH_SUFFIXES):
        return "editor backup or temporary file"
    return None


def _classify(path: Path, display: str) -> Found:
    reason = scratch_reason(path.name)
    if reason:
        return Found(path, display, None, "ignored", reason)
    reader = claim(path)
    if reader is None:
        return Found(
            path,
            display,
            None,
            "ignored",
            "no reader for this file (not a per-trial JSON file such as "
            "<study>/trials/trial_0001.json)",
        )
    return Found(path, display, reader, "read")


def discover(source: Path) -> Iterator[Found]:
    """Yield one record per file under ``source`` (or for ``source`` itself), sorted by path."""
    display_root = source.as_posix()
    if source.is_file():
        yield _classify(source, display_root)
        return
    visited: set[tuple[int, int]] = set()
    yield from _walk(source, display_root, visited)


def _walk(directory: Path, display: str, visited: set[tuple[int, int]]) -> Iterator[Found]:
    try:
        info = directory.stat()
    except OSError as err:
        yield Found(
            directory,
            display + "/",
            None,
            "rejected",
            f"cannot open directory: {err.strerror or err}",
        )
        return
    key = (info.st_dev, info.st_ino)
    if key in visited:
        yield Found(
            directory,
            display + "/",
            None,
            "ignored",
            "symlink loop: this directory was already visited",
        )
        return
    visited.add(key)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as err:
        yield Found(
            directory,
            display + "/",
            None,
            "rejected",
            f"cannot list directory: {err.strerror or err}",
        )
        return
    if not entries:
        yield Found(directory, display + "/", None, "ignored", "empty directory: no trial files")
        return
    for entry in entries:
        path = Path(entry.path)
        child_display = f"{display}/{entry.name}"
        try:
            mode = os.stat(entry.path).st_mode
        except OSError as err:
            reason = "broken symlink" if entry.is_symlink() else (err.strerror or str(err))
            yield Found(path, child_display, None, "rejected", f"cannot stat: {reason}")
            continue
        if stat.S_ISDIR(mode):
            yield from _walk(path, child_display, visited)
        elif stat.S_ISREG(mode):
            yield _classify(path, child_display)
        else:
            yield Found(path, child_display, None, "ignored", "not a regular file")
