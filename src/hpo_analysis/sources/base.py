"""What every reader returns, and the guarded file read they share."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cache import Stamp
from ..jsonio import MAX_DEPTH, JsonReadError, LoadedJson, load_json_bytes
from ..model import Problem, Trial
from ..normalize import CurveColumns

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


@dataclass
class ReadResult:
    """One input file's outcome: its fingerprint, the trials it yielded and its problems."""

    size_bytes: int | None = None
    sha256: str = ""
    trials: list[Trial] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # the file's stat, as :func:`read_bytes_checked` found it on the open file
    stamp: Stamp | None = None

    def add(self, built: Trial | Problem) -> None:
        """Keep a normalized trial (with its warnings), or record why it was not usable."""
        if isinstance(built, Problem):
            self.problems.append(built)
        else:
            self.problems.extend(built.problems)
            self.trials.append(built)

    @property
    def rejected(self) -> bool:
        return any(p.severity == "rejected" for p in self.problems)


@dataclass
class CleanTrial:
    """A clean trial read by a reader's quick path: the fields of its Trial by name, without
    the Trial object (see :func:`~hpo_analysis.normalize.clean_columns`), and its learning
    curve as columns (None when it has none)."""

    fields: dict[str, Any]
    curve: CurveColumns | None
    # the compact JSON of ``curve.entries`` when the reader has it (the file's parse encoded
    # them already), else None
    curve_json: bytes | None = None


@dataclass
class CleanRead:
    """A file read by a reader's quick path (``read_clean``): its outcome without the trials,
    and its trials in the file's order, each a :class:`CleanTrial` or (for one the quick path
    is not sure of) a Trial, whose problems are in ``result``."""

    result: ReadResult
    trials: list[CleanTrial | Trial]


def head_bytes(path: Path, size: int) -> bytes | None:
    """The first ``size`` bytes of a file, for a reader's cheap sniff; None when unreadable."""
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return None


def read_bytes_checked(path: Path, max_bytes: int, result: ReadResult) -> bytes | None:
    """Read a whole file, filling size and sha256; None (and a rejecting problem) on failure.

    The file is read through its descriptor (no file object): one ``fstat`` for its size and
    stamp, then one read of its size and a byte more. A read of exactly its size has reached
    the end (a regular file reads short only there); any other count (a file that changed
    size meanwhile, or a zero-size file of a pseudo file system) is read on to the end, as a
    file object's ``read()`` would.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY)
    except OSError as err:
        _unreadable(err, result)
        return None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):  # what open() says of a directory
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        size = info.st_size
        result.size_bytes, result.stamp = size, Stamp.of(info)
        if size > max_bytes:
            result.problems.append(
                Problem(
                    "too_large",
                    f"file is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:g} MiB limit "
                    "(raise it with --max-file-size)",
                    "rejected",
                )
            )
            result.sha256 = _sha256_stream(fd)
            return None
        data = os.read(fd, size + 1)
        if len(data) != size:
            parts = [data]
            while parts[-1]:
                parts.append(os.read(fd, 1 << 20))
            data = b"".join(parts)
    except OSError as err:
        _unreadable(err, result)
        return None
    finally:
        os.close(fd)
    result.sha256 = hashlib.sha256(data).hexdigest()
    return data


def _unreadable(err: OSError, result: ReadResult) -> None:
    result.problems.append(Problem("unreadable", f"cannot read: {err.strerror or err}", "rejected"))


def _sha256_stream(fd: int) -> str:
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while block := os.read(fd, 1 << 20):
        digest.update(block)
    return digest.hexdigest()


# A study dump is read by its own reader and by the best-trial file beside it (which
# cross-checks it); the two are neighbours in the sorted walk. The first of them keeps its
# parse (by the sha256 of the bytes), the second takes it: one parse, and one kept at most.
_shared: tuple[str, LoadedJson] | None = None


def load_json_shared(data: bytes, sha256: str) -> LoadedJson:
    """:func:`~hpo_analysis.jsonio.load_json_bytes` of ``data`` (whose sha256 is ``sha256``),
    for a file read twice: the parse kept by the first read of the same bytes, taken, or this
    one, kept for the second read (replacing any other). Its readers only read the value."""
    global _shared
    if _shared is not None and _shared[0] == sha256:
        loaded, _shared = _shared[1], None
        return loaded
    loaded = load_json_bytes(data)
    _shared = (sha256, loaded)
    return loaded


def read_json_checked(
    path: Path,
    max_bytes: int,
    result: ReadResult,
    shared: bool = False,
    apart: tuple[str, ...] = (),
) -> LoadedJson | None:
    """:func:`read_bytes_checked` then the strict JSON loader; None (and a rejecting problem,
    e.g. ``invalid JSON at line 3, column 1 (…)``) when the file is not usable JSON.
    ``shared``: a file read twice (see :func:`load_json_shared`); ``apart``: an array the
    caller writes again (see :func:`~hpo_analysis.jsonio.load_json_bytes`)."""
    data = read_bytes_checked(path, max_bytes, result)
    if data is None:
        return None
    try:
        loaded = load_json_shared(data, result.sha256) if shared else load_json_bytes(data, apart)
    except JsonReadError as err:
        result.problems.append(Problem("invalid_json", str(err), "rejected"))
        return None
    if loaded.surrogates:
        fields = ", ".join(loaded.surrogates[:5]) + (", ..." if len(loaded.surrogates) > 5 else "")
        result.problems.append(
            Problem(
                "lone_surrogate",
                f"lone surrogate code point(s) (not valid Unicode text) replaced by U+FFFD in "
                f"{fields}",
            )
        )
    if loaded.too_deep:
        result.problems.append(
            Problem(
                "too_deep",
                f"value(s) nested more than {MAX_DEPTH} levels deep kept as JSON text in "
                + ", ".join(loaded.too_deep[:5])
                + (", ..." if len(loaded.too_deep) > 5 else ""),
            )
        )
    return loaded


def json_kind(value: object) -> str:
    """What a JSON value is, for a message: ``an array``, ``a string``, ``null``, ….

    >>> json_kind([1]), json_kind(None), json_kind(4.5)
    ('an array', 'null', 'a number')
    """
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return "null" if value is None else kinds.get(type(value), "a number")


def duplicate_keys_problem(loaded: LoadedJson) -> Problem | None:
    """The warning for a file whose objects repeat a key (the last occurrence is used)."""
    if not loaded.duplicate_keys:
        return None
    return Problem(
        "duplicate_keys",
        "duplicate key(s) "
        + ", ".join(repr(k) for k in loaded.duplicate_keys[:5])
        + "; the last occurrence is used",
    )
