"""``extract``: sources → normalize → derive → analyze → write, as one library call.

Memory stays flat in the number of epochs: each trial's learning curve (and any unknown keys)
is serialized once, as soon as the file is read, into a spool file inside the staging
directory (its JSON fragment and its columnar curve block); only one small flat row per trial
is kept for ranking and neighbour search. The spool is also the incremental cache (see
:mod:`hpo_analysis.cache`): files unchanged since the last run are not parsed again.

Example::

    >>> from hpo_analysis import extract  # doctest: +SKIP
    >>> result = extract(["outputs/hpo"], "outputs/analysis")  # doctest: +SKIP
    >>> result.n_trials, result.n_diverged  # doctest: +SKIP
    (600, 14)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from .annotations import (
    ANNOTATIONS_CSV,
    WRITTEN_CELLS,
    Annotation,
    AnnotationError,
    harvest_summary_edits,
    read_annotations,
    read_written_cells,
    render_annotations,
    summary_cells,
    written_cells,
)
from .api import study_summaries
from .cache import (
    CACHE_DIR,
    CacheWriter,
    FileKey,
    Kept,
    Location,
    PreviousCache,
    Stamp,
    cache_header,
    cached_answers,
    cached_findings,
    carry_answers,
    dependency_digest,
    input_entry,
    keep_answers,
    keep_findings,
    keep_run,
    outputs_as_recorded,
    run_key,
    run_record,
    stamp_of,
    unchanged,
)
from .derive import (
    assign_arch_style,
    assign_ranks,
    assign_similar_successful,
    finish_rows,
    record_row,
    record_row_columns,
)
from .errors import UsageProblem
from .finding import Finding
from .jsonio import INT64_MAX, INT64_MIN, dumps_bytes, dumps_lossless, orjson, within_int64
from .memory import collector_paused, release_memory
from .merge import MERGE_ORDER_TEXT, Conflict, Record, merge_records
from .model import CurvePoint, ManifestRow, Problem, Settings, Trial
from .normalize import CurveColumns, name_text
from .schema import COLUMNS
from .sources import Found, claim, discover, reader_named, study_meta
from .sources.base import CleanRead, CleanTrial, ReadResult
from .sources.optuna_common import not_selected
from .sources.optuna_storage import NAME as STORAGE_READER
from .sources.optuna_storage import (
    MissingExtra,
    is_storage_url,
    mask_url,
    require_optuna,
    sqlite_file,
)
from .sources.runs_table import configure as configure_runs_table
from .validate import validate_dir
from .version import __version__
from .write import outputs
from .write.atomic import staged_output
from .write.parquet import _HEADER as _CURVE_HEADER
from .write.parquet import _NAME as _CURVE_NAME
from .write.parquet import (
    CurveEncodeError,
    _packed,
    curve_metric_names,
    decode_curve,
    encode_curve,
)

PARALLEL_MIN_FILES = 2000
PARALLEL_CHUNK = 128

# (flat row, the row as lossless JSON, JSON fragment, curve block) of one trial
Entry = tuple[dict[str, Any], bytes, bytes, bytes]
STUDY_META = study_meta.NAME


class SourceError(UsageProblem):
    """A source given by the user cannot be used at all (e.g. it does not exist)."""


@dataclass
class ExtractResult:
    out_dir: Path
    n_files: int = 0
    n_trials: int = 0
    n_studies: int = 0
    n_diverged: int = 0
    n_warnings: int = 0
    n_rejected: int = 0
    n_ignored: int = 0
    orphan_annotations: int = 0
    validation_failures: list[str] = field(default_factory=list)
    # nothing changed since the last run into out_dir: its output set was kept as it is
    kept: bool = False

    def summary_line(self) -> str:
        done = "nothing changed since the last run, kept" if self.kept else "wrote"
        return (
            f"{self.n_trials} trials in {self.n_studies} studies from {self.n_files} files "
            f"({self.n_diverged} diverged): {self.n_warnings} warnings, {self.n_rejected} "
            f"rejected, {self.n_ignored} ignored; {done} {self.out_dir}"
        )


# the counts of ExtractResult a run records for a later run that keeps its outputs
_RESULT_COUNTS = (
    "n_trials",
    "n_studies",
    "n_diverged",
    "n_warnings",
    "n_rejected",
    "n_ignored",
    "orphan_annotations",
)


@dataclass
class _FileOutcome:
    found: Found
    read: ReadResult | None
    entries: list[Entry]
    stamp: Stamp | None = None  # the file's stat, taken before it was read
    cached: bool = False  # unchanged since the last run: take the entries from the cache
    # the curve metric names of each entry's curve block, when the reader knows them (else
    # they are read back from the blocks)
    names: list[list[str]] | None = None


def heavy_fragment(trial: Trial, non_finite_values: bool = True) -> bytes:
    """The bulky part of a trial's JSON object (curve, non-finite log, extra), serialized once.

    Returned without the enclosing braces so the writer can splice it into the trial object.
    ``non_finite_values=False`` (the curve is known to be finite) skips the scan for them.
    """
    curve = [{"epoch": point.epoch, **point.metrics} for point in trial.curve]
    non_finite = []
    if non_finite_values:
        for point in trial.curve:
            for metric, value in point.metrics.items():
                if value is not None and not math.isfinite(value):
                    token = (
                        "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
                    )
                    non_finite.append({"epoch": point.epoch, "metric": metric, "value": token})
    text = dumps_bytes(
        {"learning_curve": curve, "learning_curve_non_finite": non_finite, "extra": trial.extra}
    )
    return text[1:-1]


INT64 = (INT64_MIN, INT64_MAX)
_INT_COLUMNS = tuple(c.name for c in COLUMNS if c.type == "int")
# isinstance(value, int), as a filter run in C
_IS_INT: Callable[[Any], TypeGuard[int]] = int.__instancecheck__  # type: ignore[assignment]


def _fits_int64(row: dict[str, Any], problems: list[Problem]) -> bool:
    """Integer columns hold 64-bit integers (as Parquet and DuckDB do): a larger value is left
    empty with a warning; a trial number that large rejects the trial."""
    ints = list(filter(_IS_INT, map(row.get, _INT_COLUMNS)))
    if within_int64(ints):
        return True  # the usual case, checked without a Python loop over the columns
    for name in _INT_COLUMNS:
        value = row.get(name)
        if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
            if name == "trial_num":
                problems.append(
                    Problem(
                        "out_of_range",
                        f"trial_number {value} does not fit a 64-bit integer; trial not used",
                        "rejected",
                    )
                )
                return False
            problems.append(
                Problem(
                    "out_of_range",
                    f"{name} {value} does not fit a 64-bit integer; left empty",
                )
            )
            row[name] = None
    return True


def _curve_in_int64(trial: Trial, problems: list[Problem]) -> Trial:
    """The trial without curve points whose epoch does not fit a 64-bit integer, with a warning.

    Parquet and DuckDB store epochs as int64; dropping such points before anything is derived
    keeps every output (summary metrics, hpo_full.json, curves.parquet) and validate agreeing.
    """
    kept = tuple(p for p in trial.curve if INT64[0] <= p.epoch <= INT64[1])
    if len(kept) == len(trial.curve):
        return trial
    dropped = [p.epoch for p in trial.curve if not INT64[0] <= p.epoch <= INT64[1]]
    problems.append(
        Problem(
            "out_of_range",
            f"{len(dropped)} learning-curve point(s) of trial {trial.trial_num} with an epoch "
            f"beyond 64-bit integers (e.g. {dropped[0]}) left out of every output",
        )
    )
    return dataclasses.replace(trial, curve=kept)


# A file as it is sent to a worker process, and its outcome as it comes back: plain tuples of
# strings, numbers and bytes. Pickling a Path, a Found or a ReadResult (a class looked up and
# an object built per file) cost more than the rows themselves: at 12,000 files, 0.4 CPU s to
# unpickle the Found and ReadResult objects alone, and as much again to pickle them. The parent
# keeps its Found objects and pairs them with the outcomes by position.
_FoundWire = tuple[str, str, str | None, str, str, str | None]
_OutcomeWire = tuple[
    tuple[int | None, str, list[Trial], list[Problem], Stamp | None] | None,
    list[Entry],
    Stamp | None,
    list[list[str]] | None,
]


def _to_wire(found: Found) -> _FoundWire:
    return (str(found.path), found.display, found.reader, found.status, found.reason, found.url)


def _read_chunk(files: Sequence[_FoundWire], settings: Settings, keep: bool) -> list[_OutcomeWire]:
    """What a worker process does: read each file (see :data:`_FoundWire`)."""
    out: list[_OutcomeWire] = []
    for path, display, reader, status, reason, url in files:
        outcome = _read_one(Found(Path(path), display, reader, status, reason, url), settings, keep)
        read = outcome.read
        out.append(
            (
                None
                if read is None
                else (read.size_bytes, read.sha256, read.trials, read.problems, read.stamp),
                outcome.entries,
                outcome.stamp,
                outcome.names,
            )
        )
    return out


def _from_wire(found: Found, wire: _OutcomeWire) -> _FileOutcome:
    """A file's outcome from what its worker sent back (the inverse of :func:`_read_chunk`)."""
    read, entries, stamp, names = wire
    result = None
    if read is not None:
        size_bytes, sha256, trials, problems, read_stamp = read
        result = ReadResult(size_bytes, sha256, trials, problems, read_stamp)
    return _FileOutcome(found, result, entries, stamp, names=names)


def _cacheable(found: Found) -> bool:
    """Whether a read file's results may stand for it in a later run: its reader's results
    depend on this file and the files it names (``depends_on``, see :func:`_dependencies`)
    alone (``CACHEABLE``, and the reader's ``cacheable(path)`` when it has one: a SQLite file
    with a write-ahead log beside it is not), and it is not a database named by a URL (read
    afresh, with its journal files)."""
    reader = reader_named(found.reader or "")
    if not getattr(reader, "CACHEABLE", True) or found.url is not None:
        return False
    check = getattr(reader, "cacheable", None)
    return check is None or bool(check(found.path))


def _cache_name(found: Found) -> str:
    """The name a file's results are kept under in the cache: its display path, made unique
    when the file's path is not valid text (its display shows the byte 0xff as the four
    characters ``\\xff``, as a name holding those characters shows)."""
    try:
        str(found.path).encode("utf-8")
    except UnicodeEncodeError:
        return f"{found.display}\0{os.fsencode(found.path).hex()}"
    return found.display


def _dependencies(files: Sequence[Found]) -> dict[str, str]:
    """:func:`~hpo_analysis.cache.dependency_digest` of the other files each file's reading
    uses (the reader's ``depends_on(path)``), by the file's :func:`_cache_name`; files whose reader
    reads nothing else are left out."""
    digests = {}
    for found in files:
        if found.status != "read" or found.reader is None:
            continue
        depends_on = getattr(reader_named(found.reader), "depends_on", None)
        if depends_on is not None:
            digests[_cache_name(found)] = dependency_digest(depends_on(found.path))
    return digests


def _unchanged_stamp(found: Found, previous: FileKey | None, depends: str = "") -> Stamp | None:
    """The file's stat when it is unchanged since the last run (see :func:`unchanged`: by its
    stat alone, or by its size, mtime and sha256) and so are the other files its reading uses
    (``depends``, their digest now), else None."""
    if previous is None or found.status != "read" or previous.reader != found.reader:
        return None
    if not _cacheable(found) or previous.depends != depends:
        return None
    stamp = stamp_of(found.path)
    return stamp if unchanged(found.path, previous, stamp) else None


def _read_one(found: Found, settings: Settings, keep: bool = True) -> _FileOutcome:
    """One file's outcome; ``keep``: also encode each row for the cache."""
    if found.status != "read" or found.reader is None:
        return _FileOutcome(found, None, [])
    reader = reader_named(found.reader)
    read_clean = getattr(reader, "read_clean", None)
    # taken before the file is read (a change while it is read then shows in the next run);
    # a quick path reads the one file and takes it from the open file instead
    stamp = stamp_of(found.path) if read_clean is None else None
    try:
        if read_clean is not None:
            got = read_clean(found.source, found.display, settings)
            stamp = got.result.stamp if isinstance(got, CleanRead) else got.stamp
            if isinstance(got, CleanRead):
                clean = _clean_outcome(found, got, reader.FORMAT, settings, keep, stamp)
                if clean is not None:
                    return clean
                got = reader.read(found.source, found.display, settings)
            result: ReadResult = got
        else:
            result = reader.read(found.source, found.display, settings)
    except Exception as err:  # a reader bug must not take the whole run down
        result = ReadResult(
            problems=[
                Problem(
                    "reader_error", f"could not be read ({type(err).__name__}: {err})", "rejected"
                )
            ]
        )
    if settings.studies and result.trials:  # --study (multi-study readers filter earlier)
        dropped = sorted({t.study for t in result.trials if not settings.study_selected(t.study)})
        if dropped:
            result.trials = [t for t in result.trials if settings.study_selected(t.study)]
            result.problems.append(not_selected(dropped))
    entries: list[Entry] = []
    for trial in result.trials:
        entry = _trial_entry(trial, reader.FORMAT, settings, keep, result.problems)
        if entry is not None:
            entries.append(entry)
    result.trials = []  # the rows carry what is needed; drop the objects early
    return _FileOutcome(found, result, entries, stamp)


def _trial_entry(
    trial: Trial, form: str, settings: Settings, keep: bool, problems: list[Problem]
) -> Entry | None:
    """A trial's row, its encoding for the cache, JSON fragment and curve block; None (and
    the problem) when it cannot be used."""
    trial = _curve_in_int64(trial, problems)
    row = record_row(trial, settings)
    row["source_format"] = form
    if not _fits_int64(row, problems):
        return None
    try:
        block = encode_curve(trial.curve)
    except CurveEncodeError as err:
        block = b""
        problems.append(
            Problem("curve_not_stored", f"{err}; the curve is left out of curves.parquet")
        )
    fragment = heavy_fragment(trial, bool(row.get("curve_non_finite")))
    return (row, dumps_lossless(row) if keep else b"", fragment, block)


def _clean_outcome(
    found: Found, clean: CleanRead, form: str, settings: Settings, keep: bool, stamp: Stamp | None
) -> _FileOutcome | None:
    """The outcome of a file read by its reader's quick path: what the general path above
    gives for the same file. Each clean trial's row, curve block and JSON fragment are
    computed from its fields and its curve's columns; the other trials take the general
    path. None when the general path must decide (a --study filter, epochs beyond 64-bit)."""
    if settings.studies or any(
        type(t) is CleanTrial and t.curve is not None and t.curve.epochs[-1] > INT64[1]
        for t in clean.trials
    ):
        return None
    result = clean.result
    problems = result.problems
    entries: list[Entry] = []
    names: list[list[str]] = []
    for trial in clean.trials:
        if isinstance(trial, Trial):
            entry = _trial_entry(trial, form, settings, keep, problems)
            if entry is not None:
                entries.append(entry)
                names.append(curve_metric_names(entry[3]))
            continue
        fields, curve = trial.fields, trial.curve
        row = record_row_columns(fields, curve, settings)
        row["source_format"] = form
        if not _fits_int64(row, problems):
            continue
        extra = fields["extra"]
        if curve is None:
            block = b""
            fragment = _fragment([], [], extra) if extra else _NO_CURVE_NOR_EXTRA
            names.append([])
        else:
            block = curve_block(curve)
            fragment = _columns_fragment(
                curve, extra, bool(row["curve_non_finite"]), trial.curve_json
            )
            names.append(list(curve.names))
        entries.append((row, dumps_lossless(row) if keep else b"", fragment, block))
    return _FileOutcome(found, result, entries, stamp, names=names)


def curve_block(curve: CurveColumns) -> bytes:
    """:func:`~hpo_analysis.write.parquet.encode_curve` of a curve held as columns (no missing
    value by construction), written from the columns directly; the same bytes. The columns
    follow one another, so they are packed as one array."""
    return b"".join(
        (
            _CURVE_HEADER.pack(len(curve.epochs), len(curve.names)),
            _curve_names_head(curve.names),
            _packed("q", curve.epochs),
            _packed("d", list(itertools.chain.from_iterable(curve.columns))),
        )
    )


@functools.lru_cache(maxsize=256)
def _curve_names_head(names: tuple[str, ...]) -> bytes:
    """The metric names' part of a curve block's head (no missing values): the same for
    every curve of the same metrics."""
    parts = []
    for name in names:
        encoded = name.encode("utf-8", "surrogatepass")
        parts.append(_CURVE_NAME.pack(len(encoded), False) + encoded)
    return b"".join(parts)


def _columns_fragment(
    curve: CurveColumns,
    extra: dict[str, Any],
    non_finite_values: bool,
    curve_json: bytes | None = None,
) -> bytes:
    """:func:`heavy_fragment` of a trial whose curve is held as columns: the entries as read
    are already ``{"epoch": ..., metric: value, ...}``, so they are written as they are (or
    their JSON ``curve_json``, when the reader has it, is)."""
    non_finite = []
    if non_finite_values:
        for epoch, values in zip(curve.epochs, zip(*curve.columns, strict=True), strict=True):
            for metric, value in zip(curve.names, values, strict=True):
                if not math.isfinite(value):
                    token = (
                        "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
                    )
                    non_finite.append({"epoch": epoch, "metric": metric, "value": token})
    return _fragment(curve.entries, non_finite, extra, curve_json)


def _fragment(
    curve: list[Any], non_finite: list[Any], extra: dict[str, Any], curve_json: bytes | None = None
) -> bytes:
    """:func:`heavy_fragment` from the learning curve's entries, its non-finite values and
    the trial's extra keys. ``curve_json``: the entries' compact JSON (orjson's), written as
    it is; orjson writes the whole as it would with the entries, and when it cannot write
    the rest, the entries are encoded as :func:`~hpo_analysis.jsonio.dumps_bytes` does."""
    if curve_json is not None and orjson is not None:
        try:
            text = orjson.dumps(
                {
                    "learning_curve": orjson.Fragment(curve_json),
                    "learning_curve_non_finite": non_finite,
                    "extra": extra,
                }
            )
        except TypeError:  # what orjson cannot write (JSONEncodeError is a TypeError)
            pass
        else:
            return text[1:-1]
    text = dumps_bytes(
        {"learning_curve": curve, "learning_curve_non_finite": non_finite, "extra": extra}
    )
    return text[1:-1]


# the fragment of a record without a curve and without extra keys (a study dump's)
_NO_CURVE_NOR_EXTRA = _fragment([], [], {})


def _inputs_digest(files: Sequence[Found], depends: dict[str, str]) -> str | None:
    """What :meth:`~hpo_analysis.cache.CacheWriter.inputs_digest` recorded, from the files'
    stats now (None when one has none, or when one's results are not to be taken from a
    cache, see :func:`_cacheable`). Equal to a digest recorded when every file was settled,
    every file is unchanged since, as :func:`~hpo_analysis.cache.unchanged` proves from a
    stat."""
    digest = hashlib.sha256()
    for found in files:
        if found.status != "read":
            continue
        stamp = stamp_of(found.path)
        if stamp is None or found.reader is None or not _cacheable(found):
            return None
        name = _cache_name(found)
        digest.update(input_entry(name, found.reader, stamp, depends.get(name, "")))
    return digest.hexdigest()


def _unchanged_stamps(
    files: Sequence[Found], previous: PreviousCache, depends: dict[str, str]
) -> list[Stamp | None]:
    """Each file's stat when it is unchanged since the last run and its results are in the
    cache (a stat each, and a hash unless the stat proves it), else None. ``depends``: see
    :func:`_dependencies`."""
    names = [_cache_name(f) for f in files]
    return [
        _unchanged_stamp(f, previous.key(name), depends.get(name, ""))
        for f, name in zip(files, names, strict=True)
    ]


def _outcomes(
    files: Sequence[Found],
    settings: Settings,
    jobs: int,
    previous: PreviousCache | None,
    keep: bool = True,
    hits: Sequence[Stamp | None] | None = None,
) -> Iterator[_FileOutcome]:
    """Each file's outcome, in order. With ``previous``, the files unchanged since (``hits``,
    by default :func:`_unchanged_stamps`) are taken from the cache."""
    if previous is not None:
        # unchanged files are recognised here; only the others go to the readers, so a run
        # after a few changes starts no worker processes at all
        keys = [previous.key(_cache_name(f)) for f in files]
        if hits is None:
            hits = _unchanged_stamps(files, previous, _dependencies(files))
        fresh = _outcomes(
            [f for f, hit in zip(files, hits, strict=True) if hit is None],
            settings,
            jobs,
            None,
            keep,
        )
        for found, key, hit in zip(files, keys, hits, strict=True):
            if hit is None:
                yield next(fresh)
            else:
                assert key is not None
                read = ReadResult(size_bytes=key.size, sha256=key.sha256)
                yield _FileOutcome(found, read, [], hit, cached=True)
        return
    if jobs > 1 and len(files) >= PARALLEL_MIN_FILES:
        size = max(1, min(PARALLEL_CHUNK, len(files) // (jobs * 8)))
        chunks = (files[i : i + size] for i in range(0, len(files), size))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            # a bounded window of chunks in flight: results are consumed in order, and
            # workers that run ahead of the writer must not pile results up in memory
            window: deque[tuple[Sequence[Found], Future[list[_OutcomeWire]]]] = deque()

            def submit(chunk: Sequence[Found]) -> None:
                wire = [_to_wire(found) for found in chunk]
                window.append((chunk, pool.submit(_read_chunk, wire, settings, keep)))

            for chunk in itertools.islice(chunks, 3 * jobs):
                submit(chunk)
            # the workers are forked by now: the writers' libraries load while they parse
            threading.Thread(target=_import_writers, daemon=True).start()
            while window:
                sent, future = window.popleft()
                done = future.result()
                for chunk in itertools.islice(chunks, 1):
                    submit(chunk)
                yield from map(_from_wire, sent, done)
    else:
        for found in files:
            yield _read_one(found, settings, keep)


def stored_curve(store: CacheWriter, location: Location) -> tuple[CurvePoint, ...]:
    """A trial's learning curve back from this run's spool (NaN/±inf as recorded)."""
    epochs, metrics = decode_curve(store.curve(location))
    points = []
    for i, epoch in enumerate(epochs.tolist()):
        values: dict[str, float | None] = {}
        for name, (column, valid) in metrics.items():
            values[name] = None if valid is not None and not valid[i] else float(column[i])
        points.append(CurvePoint(int(epoch), values))
    return tuple(points)


def _output_matcher(out: Path) -> Callable[[Path], bool]:
    """Whether a path lies in this tool's own output directory or its lock/staging siblings
    (``.<name>.*`` beside it), compared as absolute path text: a per-file pathlib walk of the
    parents costs more than parsing the file on large trees."""
    cwd = os.getcwd()
    out_abs = str(out.absolute())
    inside = out_abs.rstrip("/") + "/"
    sibling = os.path.join(os.path.dirname(out_abs), f".{out.name}.")

    def is_ours(path: Path) -> bool:
        text = str(path) if path.is_absolute() else os.path.join(cwd, str(path))
        return text == out_abs or text.startswith(inside) or text.startswith(sibling)

    return is_ours


def _unless_ours(found: Found, is_ours: Callable[[Path], bool]) -> Found:
    """Files of this tool's own output directory (and its lock/staging siblings) are never
    read as inputs, even when the output directory lies inside a source."""
    if found.url is not None and sqlite_file(found.url) is None:
        return found  # a database server, not a path
    if is_ours(found.path):
        return dataclasses.replace(
            found,
            reader=None,
            status="ignored",
            reason="part of this run's output directory; not an input",
        )
    return found


def _import_writers() -> None:
    """Import pyarrow ahead of the write phase."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:  # pragma: no cover - a core dependency; the writer will say so
        pass


def check_sources(sources: Sequence[str | Path]) -> None:
    """Refuse sources that cannot be read at all: missing paths, storage URLs (or SQLite
    files given directly) without the ``optuna`` extra, ``sqlite:///`` URLs to no file."""
    for source in sources:
        if isinstance(source, str) and is_storage_url(source):
            _require_optuna(mask_url(source))
            file = sqlite_file(source)
            if file is not None and not file.is_file():
                raise SourceError(f"{mask_url(source)}: no such SQLite file {file.as_posix()}")
            continue
        path = Path(source)
        if not path.exists() and not path.is_symlink():
            raise SourceError(f"{path.as_posix()}: no such file or directory")
        if path.is_file() and claim(path) == STORAGE_READER:
            _require_optuna(path.as_posix())


def _require_optuna(label: str) -> None:
    try:
        require_optuna()
    except MissingExtra as err:
        raise SourceError(f"{label}: {err}") from None


def source_label(source: str | Path) -> str:
    """How a source is shown in the metadata: a path as given, a URL without its password."""
    if isinstance(source, str) and is_storage_url(source):
        return mask_url(source)
    return Path(source).as_posix()


def extract(
    sources: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    settings: Settings | None = None,
    *,
    jobs: int | None = None,
    command: str = "",
    report: Callable[[str], None] | None = None,
    progress: Callable[[int], Callable[[], None]] | None = None,
    cache: bool = True,
) -> ExtractResult:
    """Read every trial under ``sources`` and write the dataset into ``out``.

    ``report`` receives one line per warned/rejected file; ``progress(total)`` may return a
    callable invoked once per file read (e.g. a progress bar's update). With ``cache`` (the
    default) files unchanged since the previous run into ``out`` are not parsed again, and the
    per-file results are kept in ``out/.cache`` for the next run; the outputs are the same
    either way. Raises :class:`SourceError` for unusable sources and
    :class:`~hpo_analysis.write.atomic.OutputError` for an unusable output directory.
    """
    settings = settings or Settings()
    configure_runs_table(settings)  # sniffing sees no settings: the [table] objective column
    # URLs stay strings (Path() would fold the "//" of sqlite:///...)
    source_paths: list[str | Path] = [
        s if isinstance(s, str) and is_storage_url(s) else Path(s) for s in sources
    ]
    check_sources(source_paths)
    out_path = Path(out)
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    threshold = settings.diverge_threshold
    if threshold is not None and not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(
            f"diverge_threshold must be a finite positive number, got {settings.diverge_threshold}"
        )
    jobs = jobs or min(2, os.cpu_count() or 1)

    is_ours = _output_matcher(out_path)
    files = [
        _unless_ours(found, is_ours)
        for source in source_paths
        for found in discover(source, follow_symlinks=settings.follow_symlinks)
    ]
    result = ExtractResult(out_dir=out_path, n_files=len(files))
    header = cache_header(_settings_record(settings), __version__)
    said: list[str] = []  # the lines given to report, for a later run that keeps the outputs
    report = _recorded(report, said)
    with staged_output(out_path) as stage:
        run_digest = _run_key(header, command, source_paths, files) if cache else ""
        started_ns = time.time_ns()  # before any input file is looked at (see CacheWriter)
        depends = _dependencies(files) if cache else {}
        # nothing changed since the last run: proven from the stats alone, else file by file
        if _keeps(stage.out, run_digest, files, depends, None, result, report):
            return result
        previous = PreviousCache.open(out_path.absolute(), header) if cache else None
        hits = _unchanged_stamps(files, previous, depends) if previous is not None else None
        if hits is not None and _keeps(stage.out, run_digest, files, depends, hits, result, report):
            assert previous is not None
            previous.close()
            return result
        store = CacheWriter(
            stage.file(CACHE_DIR), header, keep=cache, previous=previous, started_ns=started_ns
        )
        try:
            with collector_paused():  # reading builds no reference cycles
                collected = _collect(
                    files, settings, jobs, store, previous, result, report, progress, hits, depends
                )
        finally:
            if previous is not None:
                previous.close()
        rows, manifest, spool_index, metric_names, metas = collected
        del hits, depends  # (a stat and a digest per file: not kept through the run)
        release_memory()  # the records merged into the rows
        files.clear()  # the per-file records are in the manifest now
        decisions = finish_rows(
            rows,
            settings,
            lambda row: stored_curve(store, spool_index[(row["study"], row["trial_num"])]),
            {
                study: functools.partial(study_meta.direction_from, meta)
                for study, (_, meta) in metas.items()
            },
        )
        assign_ranks(rows)
        assign_arch_style(rows)
        assign_similar_successful(rows)
        rows.sort(key=lambda r: (r["study"], r["trial_num"]))
        result.n_trials = len(rows)
        result.n_studies = len({r["study"] for r in rows})
        result.n_diverged = sum(1 for r in rows if r["diverged"])
        orphans = carry_over_annotations(out_path, stage.path, rows, report)
        result.orphan_annotations = len(orphans)
        metadata = outputs.metadata(
            rows,
            settings,
            [source_label(s) for s in source_paths],
            manifest,
            command=command,
            version=__version__,
        )
        for entry in metadata["studies"]:
            decision = decisions.get(entry["study"])
            if decision is not None:
                entry["objective_name"] = decision.objective_name
                entry["divergence_rule"] = decision.rule.text
                entry["diverge_objective_threshold"] = decision.rule.objective_threshold
                entry["diverge_sentinel"] = decision.rule.sentinel
        # what a reader asks first (the MCP overview), computed once here instead of per call
        summaries = study_summaries(rows)
        for entry in metadata["studies"]:
            entry.update(summaries["studies"].get(entry["study"], {}))
        metadata["factors"] = summaries["factors"]
        metadata["states"] = summaries["states"]
        metadata["merge_order"] = MERGE_ORDER_TEXT
        metadata["annotations"] = {
            "file": ANNOTATIONS_CSV,
            "trials_annotated": sum(1 for r in rows if r.get("_annotations")),
            "orphans": [f"{a.study}/{a.trial_num}" for a in orphans],
        }
        # imported here: the other commands start without the analysis stage
        from .analyze import BudgetMemo, all_findings, findings_key

        # the previous run's findings when every value they read is the same (a run with
        # nothing changed, or with changes the findings do not read)
        key = findings_key(rows, settings.top_k) if cache else None
        findings = cached_findings(out_path.absolute(), key) if key is not None else None
        if findings is None:
            # else each finding's answers for the budgets whose rows did not change
            memo = BudgetMemo(cached_answers(out_path.absolute())) if cache else None
            findings = all_findings(rows, settings.top_k, memo)
            if memo is not None and memo.current:
                keep_answers(stage.file(CACHE_DIR), memo.current)
            del memo  # (the answers: let go before the memory goes back to the system)
            release_memory()  # the analysis frames: the writers reuse these pages
        elif cache:
            carry_answers(out_path.absolute(), stage.file(CACHE_DIR))
        if key is not None:
            keep_findings(stage.file(CACHE_DIR), key, findings)
        # each finding's one-line answer beside the study summaries: findings.json holds the
        # tables too (tens of MB for 1,000 studies), too much to parse for a glance
        metadata["finding_answers"] = [
            {"id": f.id, "title": f.title, "sentence": f.sentence} for f in findings
        ]
        try:
            with collector_paused():  # nor does writing
                outputs.write_all(
                    stage.path, rows, metadata, settings, store, spool_index, metric_names, findings
                )
            figures = (
                _write_report(stage.path, rows, findings, metadata, settings, store, spool_index)
                if settings.write_report
                else []
            )
        finally:
            store.close()
        outputs.write_readme_and_manifest(
            stage.path, rows, manifest, metadata, settings, findings, figures
        )
        if not cache:
            shutil.rmtree(stage.file(CACHE_DIR))
        # validation reads what is on disk: the in-memory tables are emptied first, so that
        # its reading reuses their memory instead of adding to the run's peak
        for table in (rows, manifest, findings):
            table.clear()
        spool_index.clear()
        release_memory()
        result.validation_failures = validate_dir(stage.path, schema=None)
        if run_digest and not result.validation_failures:
            counts = {name: getattr(result, name) for name in _RESULT_COUNTS}
            keep_run(stage.path, run_digest, counts, said, store.inputs_digest())
        stage.commit()
    return result


def _recorded(report: Callable[[str], None] | None, said: list[str]) -> Callable[[str], None]:
    """``report``, each line also appended to ``said``."""

    def say(line: str) -> None:
        said.append(line)
        if report is not None:
            report(line)

    return say


def _run_key(
    header: dict[str, Any],
    command: str,
    sources: Sequence[str | Path],
    files: Sequence[Found],
) -> str:
    """:func:`~hpo_analysis.cache.run_key` of this run: what decides its outputs besides the
    contents of the files it reads (which the cache's index stands for)."""
    found = [
        [f.display, str(f.path), f.status, name_text(f.reason), f.reader, f.url] for f in files
    ]
    what = [command, [str(s) for s in sources], os.environ.get("SOURCE_DATE_EPOCH"), found]
    try:
        return run_key(header, what)
    except (TypeError, ValueError):  # a value without an exact JSON form: nothing is kept
        return ""


def _keeps(
    out: Path,
    key: str,
    files: Sequence[Found],
    depends: dict[str, str],
    hits: Sequence[Stamp | None] | None,
    result: ExtractResult,
    report: Callable[[str], None],
) -> bool:
    """Whether the previous run into ``out`` wrote what this run would write: its record has
    this run's key, its output set is as it wrote it, and every file this run reads is
    unchanged since: by ``hits`` (:func:`_unchanged_stamps`), or, when ``hits`` is None, by
    :func:`_inputs_digest` equal to the one it recorded. Then ``result`` takes its counts and
    its lines are said again."""
    if not key:
        return False
    if hits is not None and any(
        h is None for f, h in zip(files, hits, strict=True) if f.status == "read"
    ):
        return False
    record = run_record(out, key)
    if record is None:
        return False
    if hits is None and (
        record.get("inputs") is None or record["inputs"] != _inputs_digest(files, depends)
    ):
        return False
    if not outputs_as_recorded(out, record):
        return False
    counts, said = record["result"], record.get("said")
    if not (
        all(type(counts.get(name)) is int for name in _RESULT_COUNTS)
        and isinstance(said, list)
        and all(isinstance(line, str) for line in said)
    ):
        return False  # a damaged record: run
    for name in _RESULT_COUNTS:
        setattr(result, name, counts[name])
    for line in said:
        report(line)
    result.kept = True
    return True


def _write_report(
    directory: Path,
    rows: list[dict[str, Any]],
    findings: Sequence[Finding],
    metadata: dict[str, Any],
    settings: Settings,
    store: CacheWriter,
    spool_index: dict[tuple[str, int], Location],
) -> list[str]:
    """report.html and the figures, drawn from this run's rows, findings and curves (the
    files just written are not read back); the names of the figures written. Without
    matplotlib there is no report (the command line says so)."""
    from .report import report_available, report_data_from_run, write_report_files

    if not report_available():
        return []
    diverged = outputs.diverged_objects(
        rows, [r for r in rows if r["diverged"]], store, spool_index
    )
    data = report_data_from_run(rows, findings, diverged, metadata, settings)
    return write_report_files(directory, data, atomic=False)


def carry_over_annotations(
    out: Path, stage: Path, rows: list[dict[str, Any]], report: Callable[[str], None] | None
) -> list[Annotation]:
    """Bring annotations.csv into the new output set and merge it into the rows.

    Returns the annotations whose trial is not in this dataset (kept, reported).
    """
    old = out / ANNOTATIONS_CSV
    try:
        annotations = read_annotations(old)
    except AnnotationError as err:
        _say(report, str(old), f"{err}; the file is kept unchanged and not merged")
        shutil.copy2(old, stage / ANNOTATIONS_CSV)
        (stage / WRITTEN_CELLS).write_bytes(written_cells(rows))
        return []
    warnings: list[str] = []
    harvested = harvest_summary_edits(
        out / outputs.SUMMARY_CSV,
        annotations,
        outputs.generated_at(),
        read_written_cells(out / WRITTEN_CELLS),
        warnings,
    )
    for warning in warnings:
        _say(report, str(out / outputs.SUMMARY_CSV), warning)
    if harvested != annotations:
        (stage / ANNOTATIONS_CSV).write_text(
            render_annotations(harvested), encoding="utf-8", newline=""
        )
    elif old.exists():
        shutil.copy2(old, stage / ANNOTATIONS_CSV)
    by_key: dict[tuple[str, int], list[Annotation]] = {}
    for a in harvested:
        by_key.setdefault(a.key, []).append(a)
    for row in rows:
        mine = by_key.pop((row["study"], row["trial_num"]), [])
        if not mine:  # absent keys read as empty: rows of a large dataset do not grow
            continue
        row["tags"], row["note"] = summary_cells(mine)
        row["_annotations"] = [{"tag": a.tag, "note": a.note, "updated": a.updated} for a in mine]
    (stage / WRITTEN_CELLS).write_bytes(written_cells(rows))
    orphans = [a for group in by_key.values() for a in group]
    for a in orphans:
        _say(
            report,
            ANNOTATIONS_CSV,
            f"annotation of {a.study}/{a.trial_num} (tag {a.tag!r}): "
            "no such trial in this dataset; kept",
        )
    return orphans


def _settings_record(settings: Settings) -> dict[str, Any]:
    """Settings as JSON-comparable data (tuples as lists), for the cache header."""
    return json.loads(json.dumps(asdict(settings)))


@dataclass
class _Pending:
    """A read file whose manifest row waits for the merge of every file's records."""

    row: ManifestRow
    reader: str
    problems: list[Problem]
    records: list[Record]


def _collect(
    files: Sequence[Found],
    settings: Settings,
    jobs: int,
    store: CacheWriter,
    previous: PreviousCache | None,
    result: ExtractResult,
    report: Callable[[str], None] | None,
    progress: Callable[[int], Callable[[], None]] | None,
    hits: Sequence[Stamp | None] | None = None,
    depends: dict[str, str] | None = None,
) -> Collected:
    """Read every file, then merge the records of each trial into one row (see
    :mod:`hpo_analysis.merge`) and account for every file in the manifest. ``hits``: see
    :func:`_outcomes`; ``depends``: see :func:`_dependencies` (computed here when not
    given)."""
    manifest: list[ManifestRow | _Pending] = []
    by_key: dict[tuple[str, int], list[Record]] = {}
    if depends is None:
        depends = _dependencies(files) if store.keep else {}
    tick = progress(len(files)) if progress is not None else None
    outcomes = _outcomes(files, settings, jobs, previous, store.keep, hits)
    for order, outcome in enumerate(outcomes):
        if tick is not None:
            tick()
        found, read = outcome.found, outcome.read
        row = ManifestRow(found.display, found.status, name_text(found.reason))
        if read is None:
            if found.status == "ignored":
                result.n_ignored += 1
            else:
                result.n_rejected += 1
                _say(report, found.display, found.reason)
            manifest.append(row)
            continue
        items = _kept_items(outcome, store, previous)
        if items is None:  # a damaged cache: read the file after all
            outcome = _read_one(found, settings)
            items = _kept_items(outcome, store, None)
            assert items is not None
        read = outcome.read
        assert read is not None
        reader = reader_named(found.reader or "")
        row.format, row.size_bytes, row.sha256 = reader.FORMAT, read.size_bytes, read.sha256
        if store.keep:  # without a cache to keep, there is no index line to write
            key_ok = (
                _cacheable(found)
                and read.size_bytes is not None
                and outcome.stamp is not None
                # the same size before and while it was read (else it changed meanwhile)
                and read.size_bytes == outcome.stamp.size
                and read.sha256
            )
            store.record(
                _cache_name(found),
                FileKey(
                    found.reader or "",
                    outcome.stamp,  # type: ignore[arg-type]
                    read.sha256,
                    depends=depends.get(_cache_name(found), ""),
                )
                if key_ok
                else None,
                read.problems,
                [(location, names) for _, location, names in items],
            )
        pending = _Pending(row, str(reader.NAME), list(read.problems), [])
        for trial, location, names in items:
            record = Record(trial, location, names, found.display, pending.reader, order)
            pending.records.append(record)
            by_key.setdefault(record.key, []).append(record)
        manifest.append(pending)

    rows: list[dict[str, Any]] = []
    spool_index: dict[tuple[str, int], Location] = {}
    metric_names: set[str] = set()
    conflicts: dict[str, list[Conflict]] = {}  # by the file whose value was not kept
    for key, records in by_key.items():
        merged = merge_records(records)
        trial = merged.row
        rows.append(trial)
        spool_index[key] = merged.location
        metric_names.update(merged.names)
        for conflict in merged.conflicts:
            conflicts.setdefault(conflict.other_file, []).append(conflict)
        for record in records:
            record.release()
    by_key.clear()
    metas = study_metas(
        [p for p in manifest if isinstance(p, _Pending) and p.reader == STUDY_META],
        files,
        settings.max_file_bytes,
    )
    meta_checks = check_study_metas(metas, rows)
    finished: list[ManifestRow] = []
    for item in manifest:
        if isinstance(item, ManifestRow):
            finished.append(item)
            continue
        problems = item.problems + meta_checks.get(item.row.path, [])
        mine = conflicts.get(item.row.path, [])
        finished.append(_account(item, problems, mine, result, report))
    return rows, finished, spool_index, metric_names, metas


# rows, manifest, where each trial's blobs are, curve metric names, study metadata by study
Collected = tuple[
    list[dict[str, Any]],
    list[ManifestRow],
    dict[tuple[str, int], Location],
    set[str],
    dict[str, tuple[str, study_meta.StudyMeta]],
]


def study_metas(
    pending: Sequence[_Pending], files: Sequence[Found], max_bytes: int
) -> dict[str, tuple[str, study_meta.StudyMeta]]:
    """The parsed best-trial files (``best_params.json``, ``<study>_<budget>_best.json``) by
    study; the first by path wins when a study has several."""
    paths = {f.display: f.path for f in files}
    metas: dict[str, tuple[str, study_meta.StudyMeta]] = {}
    for item in pending:
        path = paths.get(item.row.path)
        if path is None or any(p.severity == "rejected" for p in item.problems):
            continue
        meta = study_meta.load_meta(path, max_bytes)
        if meta is not None:
            metas.setdefault(study_meta.meta_study(path), (item.row.path, meta))
    return metas


def check_study_metas(
    metas: dict[str, tuple[str, study_meta.StudyMeta]], rows: Sequence[dict[str, Any]]
) -> dict[str, list[Problem]]:
    """Each best-trial file checked against the merged trials of its study, by file."""
    if not metas:
        return {}
    trials: dict[str, list[tuple[int, str, float | None]]] = {}
    for row in rows:
        if row["study"] in metas:
            trials.setdefault(row["study"], []).append(
                (row["trial_num"], row["state"], row["objective"])
            )
    problems: dict[str, list[Problem]] = {}
    for study, (display, meta) in metas.items():
        checked_by_dump = study_meta.dump_beside(meta.path) is not None
        found = study_meta.check_against_trials(meta, trials.get(study, []), checked_by_dump)
        if found:
            problems.setdefault(display, []).extend(found)
    return problems


def _account(
    item: _Pending,
    problems: list[Problem],
    conflicts: list[Conflict],
    result: ExtractResult,
    report: Callable[[str], None] | None,
) -> ManifestRow:
    """The manifest row of one read file, once every trial's records are merged."""
    row = item.row
    kept = [r for r in item.records if r.outcome == "kept"]
    merged = [r for r in item.records if r.outcome == "merged"]
    duplicates = [r for r in item.records if r.outcome == "duplicate" and r.lead is not None]
    if len(duplicates) == 1:
        record = duplicates[0]
        assert record.lead is not None
        problems.append(
            Problem(
                "duplicate_trial",
                f"study {record.key[0]!r} trial {record.key[1]} was already "
                f"read from {record.lead.file}; this copy is not used",
                "rejected" if len(item.records) == 1 else "warning",
            )
        )
    elif duplicates:  # one message for the file, however many trials it repeats
        shown = ", ".join(f"{r.key[0]!r} trial {r.key[1]}" for r in duplicates[:3]) + (
            f" and {len(duplicates) - 3} more" if len(duplicates) > 3 else ""
        )
        sources = sorted({r.lead.file for r in duplicates if r.lead is not None})
        problems.append(
            Problem(
                "duplicate_trial",
                f"{len(duplicates)} trial(s) were already read from a file of the same form "
                f"({sources[0]}{', …' if len(sources) > 1 else ''}); these copies are not "
                f"used: {shown}",
            )
        )
    if merged:
        leads = [r.lead for r in merged]
        into = sorted({r.file for r in leads if r is not None})
        forms = sorted({reader_named(r.reader).FORMAT for r in leads if r is not None})
        problems.append(
            Problem(
                "merged",
                f"{len(merged)} trial(s) merged into {' and '.join(forms)} records"
                f" ({into[0]}{', …' if len(into) > 1 else ''})",
                "note",
            )
        )
    if conflicts:
        shown = "; ".join(c.message() for c in conflicts[:3])
        more = f"; and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
        problems.append(
            Problem(
                "merge_conflict",
                f"{len(conflicts)} value(s) disagree with a more detailed record of the same "
                f"trial: {shown}{more}",
            )
        )
    studies = {r.key[0] for r in kept + merged}
    row.study = None if not studies else (studies.pop() if len(studies) == 1 else "(several)")
    row.n_trials = len(kept)
    row.n_merged = len(merged)
    if len(item.records) == 1 and (kept or merged):
        row.trial_num = item.records[0].key[1]
    used = bool(kept or merged)
    rejected = any(p.severity == "rejected" for p in problems) and not used
    warned = [p for p in problems if p.severity != "note"]
    row.status = "rejected" if rejected else ("warning" if warned else "ok")
    if not used and not warned and any(p.code == "study_not_selected" for p in problems):
        row.status = "ignored"  # nothing in it was selected by --study
    row.reason = name_text("; ".join(p.message for p in problems))  # they may quote file names
    if rejected:
        result.n_rejected += 1
    elif warned:
        result.n_warnings += 1
    elif row.status == "ignored":
        result.n_ignored += 1
    if warned:
        _say(report, row.path, row.reason)
    return row


def entry_curve_names(outcome: _FileOutcome) -> list[list[str]]:
    """The curve metric names of each of a fresh outcome's entries: as its reader found them,
    else read back from the curve blocks."""
    if outcome.names is not None:
        return outcome.names
    return [curve_metric_names(block) for _, _, _, block in outcome.entries]


def _kept_items(
    outcome: _FileOutcome, store: CacheWriter, previous: PreviousCache | None
) -> list[Kept] | None:
    """A file's trials with their blobs in this run's spool: freshly read ones appended to
    it, cached ones taken from the previous cache (in place when its blob file is linked,
    else copied). None when the cache turns out not to hold them."""
    display = _cache_name(outcome.found)
    if not outcome.cached:
        return [
            (row, store.append(row_json, fragment, block), names)
            for (row, row_json, fragment, block), names in zip(
                outcome.entries, entry_curve_names(outcome), strict=True
            )
        ]
    assert previous is not None and outcome.read is not None
    outcome.read.problems = list(previous.files[display].problems)
    if store.linked:
        return previous.rows(display)
    copied = previous.entries(display)
    if copied is None:
        return None
    metrics = previous.files[display].metrics
    return [
        (row, store.append(row_json, fragment, block), names)
        for (row, row_json, fragment, block), names in zip(copied, metrics, strict=True)
    ]


def _say(report: Callable[[str], None] | None, path: str, message: str) -> None:
    if report is not None:
        report(f"{path}: {message}")
