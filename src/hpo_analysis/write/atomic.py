"""Crash-safe output: build the whole output set in a staging directory, then swap it in.

A run writes every file into ``<parent>/.<name>.staging-<pid>``, fsyncs them, and only then
replaces ``<out>``: on Linux with one atomic ``renameat2(RENAME_EXCHANGE)``, elsewhere with two
renames. A run killed at any moment therefore leaves the previous complete output set (or, with
the two-rename fallback, a complete set in ``.<name>.old-*`` that the next run restores). A lock
file beside the output directory keeps two concurrent runs from interleaving.

An existing output directory is only replaced when it is empty or holds a ``manifest.csv``
written by this tool, so pointing ``--out`` at a folder of your own never deletes it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import HpoAnalysisError
from ..schema import MANIFEST_COLUMNS

MANIFEST_HEADER_START = ",".join(MANIFEST_COLUMNS[:3]) + ","


class OutputError(HpoAnalysisError):
    """The output directory cannot be used; the message says why."""

    exit_code = 2  # an output directory that cannot be used: a usage error


def is_our_output(directory: Path) -> bool:
    if not directory.exists():
        return True
    if not directory.is_dir():
        return False
    if not any(directory.iterdir()):
        return True
    manifest = directory / "manifest.csv"
    try:
        with open(manifest, encoding="utf-8") as handle:
            # the first columns are stable across versions; later ones may be added
            return handle.readline().startswith(MANIFEST_HEADER_START)
    except OSError:
        return False


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Exclusive lock for everything that writes into ``out`` (extract, annotate).

    The lock belongs to the real directory (symlinks resolved), so two runs reaching one
    output set through different spellings or links still exclude each other.
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        yield


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold the exclusive lock file beside ``out`` (``.<name>.lock``): flock on POSIX, the
    platform's own lock elsewhere (filelock), so concurrent runs wait instead of interleaving."""
    from filelock import FileLock

    with FileLock(out.parent / f".{out.name}.lock"):
        yield


def _remove_stale_staging(out: Path) -> None:
    """Staging directories left by killed runs (we hold the lock, so none is in use)."""
    for stale in out.parent.glob(f".{out.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _restore_interrupted_swap(out: Path) -> None:
    """A previous two-rename swap was killed between its renames: put the old set back."""
    if out.exists():
        for stale in out.parent.glob(f".{out.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return
    leftovers = sorted(out.parent.glob(f".{out.name}.old-*"))
    if leftovers:
        os.rename(leftovers[-1], out)


def fsync_tree(directory: Path) -> None:
    for path in sorted(directory.iterdir()):
        if path.is_dir() and not path.is_symlink():  # e.g. the incremental cache, .cache/
            fsync_tree(path)
        elif path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(directory)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, os.replace: readers see old or new, never half."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False if unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


class Staging:
    """The directory a run writes into before :meth:`commit` swaps it into place."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)  # mkdtemp makes 0700; outputs are for sharing

    def file(self, name: str) -> Path:
        return self.path / name

    def commit(self) -> None:
        fsync_tree(self.path)
        out = self.out
        if not out.exists():
            os.rename(self.path, out)
        elif _exchange(self.path, out):
            shutil.rmtree(self.path)
        else:
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.rename(out, old)
            os.rename(self.path, out)
            shutil.rmtree(old, ignore_errors=True)
        fsync_dir(out.parent)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@contextmanager
def staged_output(out: Path) -> Iterator[Staging]:
    """Stage a complete output set for ``out``; commit explicitly, discard on any error.

    A symlinked ``out`` is resolved once: the set is staged beside the real directory and
    swapped there, so the link stays a link and points at the new set.
    """
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out.parent}: cannot create directory: {err.strerror}") from None
    with _locked(out):
        _restore_interrupted_swap(out)
        _remove_stale_staging(out)
        if not is_our_output(out):
            raise OutputError(
                f"{out}: refusing to replace a directory that is not an hpo-analysis output "
                "(it is not empty and has no manifest.csv written by this tool)"
            )
        staging = Staging(out)
        try:
            yield staging
        finally:
            if staging.path.exists():
                staging.discard()
