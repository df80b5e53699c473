"""Walk the sources and decide, for every file seen, which reader takes it (or why none does).

Every file under a source gets exactly one :class:`Found` record, so the manifest can account
for it: claimed by a reader, ignored (OS/editor scratch files, formats no reader claims) or an
error (unreadable directory, symlink loop). The walk is sorted, so runs are deterministic.

Symlinks whose target lies outside the source are not followed unless ``follow_symlinks``
(``--follow-symlinks``): a link to ``/etc`` or to a device such as ``/proc/kmsg`` would
otherwise pull unrelated files into the manifest or block the run on a read that never ends.
They are listed as ignored with the target named. Files that are not regular files (devices,
FIFOs, sockets) are never opened.

A source that is a storage URL (``sqlite:///runs/optuna.db``, ``postgresql://...``) is not a
path: it yields one record carrying the ``url``, displayed with its password masked.

Example::

    >>> [(f.display, f.reader) for f in discover("postgresql://ana:pw@db/optuna")]
    [('postgresql://ana:***@db/optuna', 'optuna_storage')]
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..normalize import name_text
from .optuna_storage import NAME as STORAGE_READER
from .optuna_storage import is_storage_url, mask_url, sqlite_file
from .registry import claim, ignore_reason

NO_READER = (
    "no reader for this file (not per-trial JSON such as <study>/trials/trial_0001.json, a "
    "study dump, best_params.json, an Optuna SQLite file, journal or log, a Ray Tune "
    "experiment, a KerasTuner project, an MLflow store, or a runs table: W&B export, "
    "scikit-learn cv_results_, or the columns of hpo-analysis.toml [table])"
)

SCRATCH_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini", ".directory"}
SCRATCH_SUFFIXES = (".tmp", ".swp", ".swo", ".swx", ".bak", ".part", ".crdownload", ".partial")


@dataclass(frozen=True)
class Found:
    path: Path
    display: str  # the path as the user would write it (source as given + relative part)
    reader: str | None  # name of the reader that claims the file
    status: str  # "read" | "ignored" | "rejected"
    reason: str = ""
    url: str | None = None  # set when the source is a storage URL rather than a path

    @property
    def source(self) -> Path | str:
        """What the reader opens: the URL when there is one, else the path."""
        return self.url if self.url is not None else self.path


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
        return Found(path, display, None, "ignored", ignore_reason(path) or NO_READER)
    return Found(path, display, reader, "read")


def discover(source: str | Path, *, follow_symlinks: bool = False) -> Iterator[Found]:
    """Yield one record per file under ``source`` (or for ``source`` itself), sorted by path."""
    if isinstance(source, str) and is_storage_url(source):
        file = sqlite_file(source)
        yield Found(file or Path(), mask_url(source), STORAGE_READER, "read", url=source)
        return
    source = Path(source)
    display_root = name_text(source.as_posix())
    if source.is_file():
        yield _classify(source, display_root)
        return
    visited: set[tuple[int, int]] = set()
    root = None if follow_symlinks else os.path.realpath(source)
    yield from _walk(source, display_root, visited, root)


def _special_file_reason(mode: int) -> str:
    """Why a file that is not a regular file is skipped, naming what it is."""
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISFIFO(mode):
        kind = "a FIFO (named pipe)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "of an unknown type"
    return f"not a regular file ({kind}); not read"


def _outside(target: str, root: str) -> bool:
    return target != root and not target.startswith(root.rstrip(os.sep) + os.sep)


def _walk(
    directory: Path, display: str, visited: set[tuple[int, int]], root: str | None
) -> Iterator[Found]:
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
    searchable = os.access(directory, os.X_OK)
    for entry in entries:
        path = Path(entry.path)
        child_display = f"{display}/{name_text(entry.name)}"
        if root is not None and entry.is_symlink():
            target = os.path.realpath(entry.path)
            if _outside(target, root):
                yield Found(
                    path,
                    child_display,
                    None,
                    "ignored",
                    f"symlink to {target}, outside the source: not followed "
                    "(--follow-symlinks follows it)",
                )
                continue
        # the listing's file type, without a stat of each file (which needs the directory
        # to be searchable: without that, the stat below says why the file cannot be read)
        if searchable and not entry.is_symlink():
            if entry.is_file(follow_symlinks=False):
                yield _classify(path, child_display)
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(path, child_display, visited, root)
                continue
        try:
            mode = os.stat(entry.path).st_mode
        except OSError as err:
            reason = "broken symlink" if entry.is_symlink() else (err.strerror or str(err))
            yield Found(path, child_display, None, "rejected", f"cannot stat: {reason}")
            continue
        if stat.S_ISDIR(mode):
            yield from _walk(path, child_display, visited, root)
        elif stat.S_ISREG(mode):
            yield _classify(path, child_display)
        else:
            kind = (
                "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a FIFO (named pipe)"
                if stat.S_ISFIFO(mode)
                else "a socket"
                if stat.S_ISSOCK(mode)
                else "not a regular file"
            )
            yield Found(
                path, child_display, None, "ignored", f"not a regular file ({kind}); not read"
            )
