"""Incremental re-extraction: each input file's results, kept in the output's ``.cache/``.

``extract`` is a pure function of (file contents, file path as given, settings, tool version),
file by file, until the cross-file steps (ranks, neighbours, duplicates), which are always
recomputed. So a file whose size, modification time and sha256 are unchanged since the last
run need not be parsed again: its rows, JSON fragment and curve block are copied from the cache.
Studies that are still running add a few files between runs; re-extracting then costs little
more than a stat of each file and writing the outputs.

A file need not even be hashed again when its stat proves it unchanged, as git's index does
(:func:`unchanged`): its size, mtime, ctime, inode and device all equal those recorded, and
the recorded file was "settled": its mtime and ctime were older than :data:`RACY_WINDOW_NS`
before the run that recorded it started. Writing a file sets its mtime and ctime to the time of
the write (``utime`` can set the mtime back, not the ctime), and replacing it gives another
inode; what the stat cannot show is a write within the same timestamp tick as the recorded
stat. A file changed that recently before the run that recorded it is "racy" and is hashed
again, as is every file whose stat differs in anything but size and mtime (those two differing
mean it changed). The run's start itself is not stored, so two runs over unchanged, settled
inputs write the same cache bytes.

Layout (written into the staging directory with the outputs, so it is committed atomically
with them and always describes the output set beside it):

- ``.cache/files.jsonl``: line 1 is the header ``{"format", "tool_version", "settings"}``; a
  cache whose header differs from the current run's is ignored as a whole. Then one line per
  file a reader read: ``{"path", "reader", "size", "mtime_ns", "ctime_ns", "inode", "device",
  "settled", "sha256", "depends", "problems", "entries"}`` (the stat taken before the file was
  read; ``depends``: :func:`dependency_digest` of the other files a reader's reading of it
  used, such as a study dump's metadata file beside it, so that a change of those reads it
  again),
  where ``problems`` are the reader's own ``[code, message, severity]`` (not the cross-file
  ones) and ``entries`` locate each trial in the blob file as ``[offset, row bytes,
  fragment bytes, curve bytes, [curve metric names]]``.
- ``.cache/findings.jsonl``: the findings of the run (line 1 ``{"format", "key", "sha256"}``,
  then one finding a line, lossless JSON). ``key`` is
  :func:`hpo_analysis.analyze.findings_key`, a digest of every value the findings read, of
  ``top_k``, of this package's source and of the libraries' versions: a run whose rows give
  the same key takes the findings from here instead of computing them again (a quarter of a
  run at 12,000 trials). A file that does not match its ``sha256`` is ignored.
- ``.cache/answers.bin``: each finding's answer for each budget (see
  :mod:`hpo_analysis.analyze.memo`), for a run whose findings differ from the last run's: the
  budgets whose rows did not change take their answers from here. Line 1 ``{"format",
  "entries", "sha256"}`` (of the rest), then per answer its 32-byte digest, its length (8
  bytes, little-endian) and its pickle of built-in values. A file that does not match its
  ``sha256`` is ignored.
- ``.cache/run.json``: what the run found and said: line 1 ``{"format", "key", "sha256"}``
  (of line 2), line 2 ``{"result", "said", "inputs", "outputs"}``. ``key`` digests what
  decides every output besides the input files' contents: the header, this package's source and the
  libraries' versions, the command line, the sources, ``SOURCE_DATE_EPOCH`` and every
  discovered file with its status and reader;
  ``outputs`` is the sha256 of every file of the output set but the cache, as the run wrote
  it. A run with the same key, whose every input file is proven unchanged as above (hashed
  when racy) and in the cache, and whose output set still has those bytes and no other file,
  would write the same bytes again: it keeps the set as it is. ``inputs``
  (:meth:`CacheWriter.inputs_digest`) lets it prove the inputs unchanged from their stats
  alone, without this index, when every file was settled.
- ``.cache/blobs.bin``: per trial, its summary row before ranking (lossless JSON), its JSON
  fragment (curve, non-finite log, extra) and its curve block (see
  :mod:`hpo_analysis.write.parquet`). During a run this file is also the spool the output
  writers read from, so keeping the cache costs no extra pass. An incremental run hard-links
  the previous blob file into the new cache and appends only the new files' results (the
  previous index never refers to what is appended, so the previous set stays consistent); when
  more than half of it is no longer referred to, the run copies what is live instead.

Example::

    >>> header = cache_header({"diverge_threshold": 10.0}, "0.1.0")
    >>> header["format"], header["tool_version"]
    (6, '0.1.0')
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, cast

from .finding import Finding
from .jsonio import dumps_lossless, loads_lossless, within_int64
from .model import Problem
from .version import library_versions, source_digest

CACHE_DIR = ".cache"
INDEX_FILE = "files.jsonl"
BLOB_FILE = "blobs.bin"
# 3: rows of one record each (merged later); 4: rows carry last_val_loss; 5: ctime, inode,
# device and whether the file was settled are recorded (stat-proven reuse without hashing)
CACHE_FORMAT = 6
FINDINGS_FILE = "findings.jsonl"
ANSWERS_FILE = "answers.bin"
RUN_FILE = "run.json"
# A file's timestamps come from the kernel's coarse clock (up to a tick behind the wall clock
# read by time.time_ns()) truncated to the file system's granularity (2 s on FAT): a write just
# after a stat can leave a timestamp up to that much older than the wall-clock time of the stat.
# Files changed less than this long before a run started are not "settled": the next run hashes
# them again even when their stat is unchanged.
RACY_WINDOW_NS = 3_000_000_000
_BUFFER = 1 << 20

# (offset, row length, fragment length, curve length) of one trial in blobs.bin
Location = tuple[int, int, int, int]


class Stamp(NamedTuple):
    """What a stat says of a file's identity and last change."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, info: os.stat_result) -> Stamp:
        return cls(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)


def stamp_of(path: Path) -> Stamp | None:
    """The stat of ``path`` (following symbolic links), or None when it cannot be taken."""
    try:
        return Stamp.of(os.stat(path))
    except OSError:
        return None


class FileKey(NamedTuple):
    """What must be unchanged for a file's cached results to be reused. ``settled``: read from
    a cache, the file's mtime and ctime were older than :data:`RACY_WINDOW_NS` before the run
    that recorded it started (:meth:`CacheWriter.record` decides it when writing). (A named
    tuple: an incremental run makes one per file and path, twice, from the compact index.)"""

    reader: str
    stamp: Stamp
    sha256: str
    settled: bool = False
    # the digest of the other files its reading used (see dependency_digest), else ""
    depends: str = ""

    @property
    def size(self) -> int:
        return self.stamp.size


@dataclass
class CachedFile:
    key: FileKey
    problems: list[Problem]
    entries: list[Location]
    metrics: list[list[str]]  # the curve metric names of each entry


# one trial as the pipeline keeps it: its row, where its blobs are, its curve metric names
Kept = tuple[dict[str, Any], Location, list[str]]


def cache_header(settings: dict[str, Any], tool_version: str) -> dict[str, Any]:
    return {"format": CACHE_FORMAT, "tool_version": tool_version, "settings": settings}


def sha256_of(path: Path) -> str | None:
    """sha256 of a file's contents, or None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def input_entry(name: str, reader: str, stamp: Stamp, depends: str) -> bytes:
    """What :meth:`CacheWriter.inputs_digest` takes of one file."""
    return dumps_lossless([name, reader, *stamp, depends]) + b"\n"


def dependency_digest(paths: Sequence[Path]) -> str:
    """sha256 over the names and contents of ``paths`` (absent or unreadable files count as
    such), the other files a reading of one file used; taken before that reading, so a
    change during it is seen by the next run."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            content = _content_sha256(path).encode()
        except OSError:
            content = b"-"
        digest.update(os.fsencode(path) + b"\0" + content + b"\0")
    return digest.hexdigest()


def _content_sha256(path: Path) -> str:
    """sha256 of a regular file's contents (OSError for anything else: see
    :func:`_open_regular`)."""
    with _open_regular(path) as handle:
        reader = cast(io.BufferedReader, handle)  # (what open gives)
        return hashlib.file_digest(reader, "sha256").hexdigest()


def unchanged(path: Path, key: FileKey, stamp: Stamp | None) -> bool:
    """True when ``path``, whose stat is now ``stamp``, still has the size, mtime and sha256
    recorded in ``key``.

    The sha256 is not computed when the stat proves the file unchanged: ``stamp`` equals
    ``key.stamp`` (size, mtime, ctime, inode, device) and ``key.settled`` (the file's mtime and
    ctime were before the recording run's start less :data:`RACY_WINDOW_NS`). Any write after
    that moment, so after the recorded stat, would have set the ctime (and the mtime, unless
    set back) to a later time. Otherwise, when size and mtime match, the file is hashed and
    compared, as when the stat proves nothing.
    """
    if stamp is None or stamp.mtime_ns != key.stamp.mtime_ns or stamp.size != key.stamp.size:
        return False
    if key.settled and stamp == key.stamp:
        return True
    return sha256_of(path) == key.sha256


class CacheWriter:
    """The new cache (and this run's spool), written into the staging directory."""

    def __init__(
        self,
        directory: Path,
        header: dict[str, Any],
        keep: bool = True,
        previous: PreviousCache | None = None,
        started_ns: int | None = None,
    ) -> None:
        """``keep=False``: only the spool for this run (no index; rows are not stored).
        ``previous``: the cache being replaced, whose blob file is reused when worth it.
        ``started_ns``: the run's start, taken before any input file was looked at (default:
        now)."""
        directory.mkdir(exist_ok=True)
        self.keep = keep
        self.directory = directory
        self.linked = False
        blob_path = directory / BLOB_FILE
        if keep and previous is not None and previous.mostly_live():
            try:
                os.link(previous.directory / BLOB_FILE, blob_path)
                self.linked = True
            except OSError:  # no hard links here: copy what is reused instead
                pass
        # large buffers: one trial is three small writes, and the writers read the blobs back
        # in (nearly) the order they were written
        self._blobs = open(blob_path, "ab", buffering=_BUFFER)  # noqa: SIM115
        self._index = open(directory / INDEX_FILE, "wb", buffering=_BUFFER)  # noqa: SIM115
        self._reader: Any = None
        # before any input file is looked at: files changed since are not settled
        self.started_ns = time.time_ns() if started_ns is None else started_ns
        self._index.write(dumps_lossless(header) + b"\n")
        self._offset = self._blobs.tell()
        # every recorded file's input_entry, while all are settled (see inputs_digest)
        self._inputs = hashlib.sha256()
        self._all_settled = True

    def append(self, row_json: bytes, fragment: bytes, curve: bytes) -> Location:
        location = (self._offset, len(row_json), len(fragment), len(curve))
        self._blobs.write(row_json)
        self._blobs.write(fragment)
        self._blobs.write(curve)
        self._offset += len(row_json) + len(fragment) + len(curve)
        return location

    def record(
        self,
        path: str,
        key: FileKey | None,
        problems: Sequence[Problem],
        entries: Sequence[tuple[Location, list[str]]],
    ) -> None:
        """The index line of one read file; files without a complete key are not reusable.
        ``key.stamp`` is a stat taken during this run, before the file was read."""
        if key is None or not self.keep:
            self._all_settled = False
            return
        settled = max(key.stamp.mtime_ns, key.stamp.ctime_ns) < self.started_ns - RACY_WINDOW_NS
        self._all_settled = self._all_settled and settled
        self._inputs.update(input_entry(path, key.reader, key.stamp, key.depends))
        line = {
            "path": path,
            "reader": key.reader,
            "size": key.stamp.size,
            "mtime_ns": key.stamp.mtime_ns,
            "ctime_ns": key.stamp.ctime_ns,
            "inode": key.stamp.inode,
            "device": key.stamp.device,
            "settled": settled,
            "sha256": key.sha256,
            "depends": key.depends,
            "problems": [[p.code, p.message, p.severity] for p in problems],
            "entries": [[*location, names] for location, names in entries],
        }
        self._index.write(dumps_lossless(line) + b"\n")

    def inputs_digest(self) -> str | None:
        """sha256 of the :func:`input_entry` of every file recorded, in order, when each was
        settled (else None): a later run whose files give the same digest from their stats has
        every file unchanged, by the rule of :func:`unchanged`, without reading this index."""
        return self._inputs.hexdigest() if self._all_settled else None

    def _read(self, offset: int, size: int) -> bytes:
        if self._reader is None:
            self._blobs.flush()
            self._reader = open(self._blobs.name, "rb", buffering=_BUFFER)  # noqa: SIM115
        self._reader.seek(offset)  # within the buffer when reading forward: no system call
        return self._reader.read(size)

    def fragment(self, location: Location) -> bytes:
        offset, row, fragment, _ = location
        return self._read(offset + row, fragment)

    def curve(self, location: Location) -> bytes:
        offset, row, fragment, curve = location
        return self._read(offset + row + fragment, curve) if curve else b""

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._blobs.close()
        self._index.close()


def _open_regular(path: Path, buffering: int = -1) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; OSError otherwise. The cache is
    inside the output directory, where anyone who can write may have put a named pipe or a
    device under a cache file's name: opening one would block the run."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


class _Index:
    """The previous run's index, path by path, kept compact: the stat, sha256, reader and
    blob locations of the usual file in machine arrays (about 250 bytes a file with its
    path), a :class:`CachedFile` made when asked for. A file with anything else (problems, a
    dependency digest, a sha256 of another form) is kept as its :class:`CachedFile`.

    The index of 122,401 files took about 265 MB as one CachedFile of Python objects a file,
    memory that stayed with the process through the rest of an incremental run.
    """

    def __init__(self) -> None:
        self._at: dict[str, int] = {}  # path -> slot of the arrays
        self._odd: dict[str, CachedFile] = {}
        self._readers: dict[str, int] = {}
        self._reader_names: list[str] = []
        self._reader_of = array("q")
        self._stamps = array("q")  # five a slot
        self._sha256 = bytearray()  # 32 a slot
        self._settled = bytearray()
        self._starts = array("q", [0])  # the entries of slot i: _starts[i] to _starts[i + 1]
        self._entries = array("q")  # four an entry (a Location)
        self._metric_sets: dict[tuple[str, ...], int] = {}
        self._metric_lists: list[list[str]] = []  # one list per metric set
        self._metrics_of = array("q")  # an entry's metric set

    def add(self, item: dict[str, Any]) -> None:
        """One line of the index (KeyError when a field is missing, ValueError when a stat is not
        a 64-bit integer or a blob location not one of at least 0: a damaged index, not used; a
        later line of the same path replaces an earlier one)."""
        path = item["path"]
        reader, settled, depends = item["reader"], item["settled"] is True, str(item["depends"])
        stamp = (item["size"], item["mtime_ns"], item["ctime_ns"], item["inode"], item["device"])
        sha256, problems, entries = item["sha256"], item["problems"], item["entries"]
        if not _machine_integers(stamp) or type(entries) is not list:
            raise ValueError("a damaged index: a stat or the entries of another type")
        if not all(_compact_entry(e) for e in entries):
            raise ValueError("a damaged index: a blob location of another type")
        self._at.pop(path, None)
        self._odd.pop(path, None)
        digest = _digest_bytes(sha256)
        if digest is None or depends or problems != [] or type(reader) is not str:
            self._odd[path] = CachedFile(
                FileKey(reader, Stamp(*stamp), sha256, settled, depends),
                [Problem(c, m, v) for c, m, v in problems],
                [(e[0], e[1], e[2], e[3]) for e in entries],
                [self._metric_lists[self._metric_set(tuple(e[4]))] for e in entries],
            )
            return
        self._at[path] = len(self._settled)
        if reader not in self._readers:
            self._readers[reader] = len(self._reader_names)
            self._reader_names.append(reader)
        self._reader_of.append(self._readers[reader])
        self._stamps.extend(stamp)
        self._sha256 += digest
        self._settled.append(settled)
        for entry in entries:
            self._entries.extend(entry[:4])
            self._metrics_of.append(self._metric_set(tuple(entry[4])))
        self._starts.append(len(self._metrics_of))

    def _metric_set(self, names: tuple[str, ...]) -> int:
        """The place of a metric set's one list (the trials of a study share theirs)."""
        at = self._metric_sets.setdefault(names, len(self._metric_lists))
        if at == len(self._metric_lists):
            self._metric_lists.append(list(names))
        return at

    def key(self, path: str) -> FileKey | None:
        slot = self._at.get(path)
        if slot is None:
            odd = self._odd.get(path)
            return odd.key if odd is not None else None
        return self._key(slot)

    def _key(self, slot: int) -> FileKey:
        return FileKey(
            self._reader_names[self._reader_of[slot]],
            Stamp._make(self._stamps[5 * slot : 5 * slot + 5]),
            self._sha256[32 * slot : 32 * slot + 32].hex(),
            bool(self._settled[slot]),
        )

    def __getitem__(self, path: str) -> CachedFile:
        slot = self._at.get(path)
        if slot is None:
            return self._odd[path]
        first, last = self._starts[slot], self._starts[slot + 1]
        return CachedFile(
            self._key(slot),
            [],
            [cast(Location, tuple(self._entries[4 * e : 4 * e + 4])) for e in range(first, last)],
            [self._metric_lists[self._metrics_of[e]] for e in range(first, last)],
        )

    def live_bytes(self) -> int:
        """The bytes of the blob file that the index refers to."""
        live = sum(r + f + c for item in self._odd.values() for _, r, f, c in item.entries)
        entries = self._entries
        for slot in self._at.values():
            for e in range(4 * self._starts[slot], 4 * self._starts[slot + 1], 4):
                live += entries[e + 1] + entries[e + 2] + entries[e + 3]
        return live

    def clear(self) -> None:
        _Index.__init__(self)


def _digest_bytes(sha256: Any) -> bytes | None:
    """The 32 bytes of a sha256 written as 64 lowercase hexadecimal digits, else None."""
    if type(sha256) is not str or len(sha256) != 64:
        return None
    try:
        digest = bytes.fromhex(sha256)
    except ValueError:
        return None
    return digest if digest.hex() == sha256 else None


_INT, _STR = frozenset({int}), frozenset({str})


def _machine_integers(values: Sequence[Any]) -> bool:
    """Integers (not flags) of 64 bits, all of them."""
    return _INT.issuperset(map(type, values)) and within_int64(values)


def _compact_entry(entry: Any) -> bool:
    """(offset, row, fragment and curve lengths, metric names): 64-bit integers of at least 0
    (a negative one sent the reading of the blob file astray) and a list of texts."""
    return (
        type(entry) is list
        and len(entry) == 5
        and _machine_integers(entry[:4])
        and min(entry[:4]) >= 0
        and type(entry[4]) is list
        and _STR.issuperset(map(type, entry[4]))
    )


class PreviousCache:
    """The cache of the output set being replaced, if it matches this run's header."""

    def __init__(self, directory: Path, files: _Index) -> None:
        self.directory = directory
        self.files = files
        self._blobs = _open_regular(directory / BLOB_FILE, _BUFFER)

    @classmethod
    def open(cls, out_dir: Path, header: dict[str, Any]) -> PreviousCache | None:
        directory = out_dir / CACHE_DIR
        try:
            with _open_regular(directory / INDEX_FILE) as handle:
                if loads_lossless(handle.readline()) != header:
                    return None
                files = _Index()
                for line in handle:
                    files.add(loads_lossless(line))
            return cls(directory, files)
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return None  # no cache, or one this version cannot read: a full run

    def mostly_live(self) -> bool:
        """At least half of the blob file is still referred to by the index."""
        live = self.files.live_bytes()
        try:
            size = os.fstat(self._blobs.fileno()).st_size
        except OSError:
            return False
        return 2 * live >= size

    def rows(self, path: str) -> list[Kept] | None:
        """The cached trials of ``path`` without their blobs (for a linked blob file); None if
        the blob file does not hold them."""
        cached = self.files[path]
        size = os.fstat(self._blobs.fileno()).st_size
        out: list[Kept] = []
        for location, names in zip(cached.entries, cached.metrics, strict=True):
            offset, row_len, fragment_len, curve_len = location
            if offset + row_len + fragment_len + curve_len > size:
                return None
            self._blobs.seek(offset)
            row_json = self._blobs.read(row_len)
            if len(row_json) != row_len:
                return None
            try:
                row = loads_lossless(row_json)
            except ValueError:
                return None
            if not isinstance(row, dict):
                return None
            out.append((row, location, names))
        return out

    def key(self, path: str) -> FileKey | None:
        return self.files.key(path)

    def entries(self, path: str) -> list[tuple[dict[str, Any], bytes, bytes, bytes]] | None:
        """(row, row JSON, fragment, curve block) of each trial cached for ``path``; None if
        the blob file does not hold them (then the file is simply read again)."""
        out = []
        for offset, row_len, fragment_len, curve_len in self.files[path].entries:
            size = row_len + fragment_len + curve_len
            self._blobs.seek(offset)
            data = self._blobs.read(size)
            if len(data) != size:
                return None
            row_json = data[:row_len]
            try:
                row = loads_lossless(row_json)
            except ValueError:
                return None
            out.append(
                (
                    row,
                    row_json,
                    data[row_len : row_len + fragment_len],
                    data[row_len + fragment_len :],
                )
            )
        return out

    def close(self) -> None:
        self._blobs.close()
        self.files.clear()  # the run keeps what it took; free the rest before writing


def cached_findings(out_dir: Path, key: str) -> list[Finding] | None:
    """The findings the previous run into ``out_dir`` kept under ``key``; None when there are
    none, their key differs or the file is damaged."""
    try:
        with _open_regular(out_dir / CACHE_DIR / FINDINGS_FILE) as handle:
            # the body (17 MB at 120,000 trials) is read only when the key matches
            record = loads_lossless(handle.readline(1 << 16).rstrip(b"\n"))
            if not isinstance(record, dict) or record.get("key") != key:
                return None
            body = handle.read()
        if record != {
            "format": CACHE_FORMAT,
            "key": key,
            "sha256": hashlib.sha256(body).hexdigest(),
        }:
            return None
        return [Finding.from_dict(loads_lossless(line)) for line in body.splitlines()]
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None  # RecursionError: a line nested deeper than the JSON parser goes


def keep_findings(directory: Path, key: str, findings: Sequence[Finding]) -> None:
    """Keep ``findings`` under ``key`` in the new cache ``directory`` (nothing when a value
    has no exact JSON form)."""
    try:
        lines = [dumps_lossless(f.to_dict()) for f in findings]
    except (TypeError, ValueError):
        return
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line)
        digest.update(b"\n")
    head = {"format": CACHE_FORMAT, "key": key, "sha256": digest.hexdigest()}
    _write_pieces(directory / FINDINGS_FILE, [dumps_lossless(head)], lines, b"\n")


def cached_answers(out_dir: Path) -> dict[str, bytes | memoryview]:
    """The per-budget answers the previous run into ``out_dir`` kept (digest → pickle, each a
    view of the file's bytes: one block of memory, let go as one); none when the file is
    missing or damaged."""
    try:
        with _open_regular(out_dir / CACHE_DIR / ANSWERS_FILE) as handle:
            head, _, body = handle.read().partition(b"\n")
        record = loads_lossless(head)
        if not isinstance(record, dict) or record.get("format") != CACHE_FORMAT:
            return {}
        if record.get("sha256") != hashlib.sha256(body).hexdigest():
            return {}
        answers: dict[str, bytes | memoryview] = {}
        view, at = memoryview(body), 0
        while at < len(view):
            key = bytes(view[at : at + 32]).hex()
            size = int.from_bytes(view[at + 32 : at + 40], "little")
            if len(key) != 64 or at + 40 + size > len(view):
                return {}
            answers[key] = view[at + 40 : at + 40 + size]
            at += 40 + size
        return answers if len(answers) == record.get("entries") else {}
    except (OSError, ValueError, TypeError, RecursionError):
        return {}


def carry_answers(out_dir: Path, directory: Path) -> None:
    """The previous run's answers into the new cache ``directory`` as they are (a run whose
    findings are the previous run's computes no answer)."""
    try:
        with _open_regular(out_dir / CACHE_DIR / ANSWERS_FILE) as handle:
            data = handle.read()
    except OSError:
        return
    (directory / ANSWERS_FILE).write_bytes(data)


def keep_answers(directory: Path, answers: Mapping[str, bytes | memoryview]) -> None:
    """Keep the per-budget ``answers`` in the new cache ``directory``."""
    pieces: list[bytes | memoryview] = []
    digest = hashlib.sha256()
    for key, data in sorted(answers.items()):
        for piece in (bytes.fromhex(key), len(data).to_bytes(8, "little"), data):
            digest.update(piece)
            pieces.append(piece)
    head = {"format": CACHE_FORMAT, "entries": len(answers), "sha256": digest.hexdigest()}
    _write_pieces(directory / ANSWERS_FILE, [dumps_lossless(head), b"\n"], pieces)


def _write_pieces(
    path: Path,
    head: Sequence[bytes],
    pieces: Sequence[bytes | memoryview],
    end: bytes = b"",
) -> None:
    """Write ``head`` then each piece (followed by ``end``) without joining them: the findings
    and answers of a run at 120,000 trials are tens of MB, and one joined copy of them (two,
    with the head put in front) raised the run's peak memory."""
    with open(path, "wb") as handle:
        handle.writelines(head)
        if end:
            handle.write(end)
        for piece in pieces:
            handle.write(piece)
            if end:
                handle.write(end)


# the libraries whose versions can change an output's bytes (Parquet's writer records its
# own, the figures are drawn by matplotlib and encoded by Pillow)
_OUTPUT_LIBRARIES = ("numpy", "optuna", "pyarrow", "orjson", "matplotlib", "pillow")


def run_key(header: dict[str, Any], what: Sequence[Any]) -> str:
    """The digest of what decides a run's outputs besides its input files' contents: the
    cache ``header``, the package's source, the libraries' versions and ``what`` (lossless
    JSON: the command line, the sources, the discovered files...)."""
    digest = hashlib.sha256(dumps_lossless([header, source_digest()]))
    digest.update(dumps_lossless([list(v) for v in library_versions(_OUTPUT_LIBRARIES)]))
    digest.update(dumps_lossless(list(what)))
    return digest.hexdigest()


def _output_digests(out_dir: Path) -> dict[str, str] | None:
    """The sha256 of every file of the output set in ``out_dir`` (all but the cache), by
    relative path (a link: its target); None when one cannot be read."""
    digests: dict[str, str] = {}
    try:
        pending = [(out_dir, "")]
        while pending:
            directory, prefix = pending.pop()
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = prefix + entry.name
                    if name == CACHE_DIR:
                        continue
                    if entry.is_symlink():
                        digests[name] = "link:" + os.readlink(entry.path)
                    elif entry.is_dir():
                        pending.append((Path(entry.path), name + "/"))
                    else:
                        digests[name] = _content_sha256(Path(entry.path))
    except OSError:
        return None
    return dict(sorted(digests.items()))


def keep_run(
    stage: Path, key: str, result: dict[str, Any], said: Sequence[str], inputs: str | None
) -> None:
    """Record in the output set staged in ``stage`` the run's ``key``, its ``result`` counts,
    the lines it ``said``, its ``inputs`` (:meth:`CacheWriter.inputs_digest`) and the sha256
    of every file of the set but the cache (line 1 ``{"format", "key", "sha256"}``, the sha256
    of line 2, which holds the rest)."""
    outputs = _output_digests(stage)
    if outputs is None:
        return
    record = {"result": result, "said": list(said), "inputs": inputs, "outputs": outputs}
    body = dumps_lossless(record)
    head = {"format": CACHE_FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()}
    (stage / CACHE_DIR / RUN_FILE).write_bytes(dumps_lossless(head) + b"\n" + body)


def run_record(out_dir: Path, key: str) -> dict[str, Any] | None:
    """The record of the previous run into ``out_dir`` (``{"result", "said", "inputs",
    "outputs"}``) when it was made under ``key`` and is whole; None otherwise."""
    try:
        with _open_regular(out_dir / CACHE_DIR / RUN_FILE) as handle:
            head, _, body = handle.read().partition(b"\n")
        expected = {"format": CACHE_FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()}
        if loads_lossless(head) != expected:
            return None
        record = loads_lossless(body)
    except (OSError, ValueError, TypeError, RecursionError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("result"), dict):
        return None
    return record


def outputs_as_recorded(out_dir: Path, record: dict[str, Any]) -> bool:
    """Whether the output set in ``out_dir`` holds the files ``record`` lists, with their
    bytes, and no other. (That the inputs are unchanged is for the caller to prove.)"""
    return _output_digests(out_dir) == record.get("outputs")
