"""``extract``: sources → normalize → derive → analyze → write, as one library call.

Memory stays flat in the number of epochs: each trial's learning curve (and any unknown keys)
is serialized once, as soon as the file is read, into a spool file inside the staging
directory; only one small flat row per trial is kept for ranking and neighbour search.

Example::

    >>> from hpo_analysis import extract  # doctest: +SKIP
    >>> result = extract(["outputs/hpo"], "outputs/analysis")  # doctest: +SKIP
    >>> result.n_trials, result.n_diverged  # doctest: +SKIP
    (600, 14)
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .annotations import (
    ANNOTATIONS_CSV,
    Annotation,
    AnnotationError,
    harvest_summary_edits,
    read_annotations,
    render_annotations,
    summary_cells,
)
from .derive import assign_ranks, assign_similar_successful, trial_row
from .jsonio import dumps_strict
from .model import Problem, Settings, Trial
from .sources import Found, claim, discover, reader_named
from .sources.base import ReadResult
from .sources.optuna_common import not_selected
from .sources.optuna_storage import NAME as STORAGE_READER
from .sources.optuna_storage import (
    MissingExtra,
    is_storage_url,
    mask_url,
    require_optuna,
    sqlite_file,
)
from .validate import validate_dir
from .write import outputs
from .write.atomic import staged_output

PARALLEL_MIN_FILES = 2000


class SourceError(Exception):
    """A source given by the user cannot be used at all (e.g. it does not exist)."""


@dataclass
class ManifestRow:
    path: str
    status: str
    reason: str = ""
    size_bytes: int | None = None
    sha256: str = ""
    format: str = ""
    study: str | None = None
    trial_num: int | None = None  # set when the file holds exactly one trial
    n_trials: int = 0  # trials of this file that are in the dataset


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

    def summary_line(self) -> str:
        return (
            f"{self.n_trials} trials in {self.n_studies} studies from {self.n_files} files "
            f"({self.n_diverged} diverged): {self.n_warnings} warnings, {self.n_rejected} "
            f"rejected, {self.n_ignored} ignored; wrote {self.out_dir}"
        )


@dataclass
class _FileOutcome:
    found: Found
    read: ReadResult | None
    entries: list[tuple[dict[str, Any], str]]  # (flat row, heavy JSON fragment)


def heavy_fragment(trial: Trial) -> str:
    """The bulky part of a trial's JSON object (curve, non-finite log, extra), serialized once.

    Returned without the enclosing braces so the writer can splice it into the trial object.
    """
    curve = []
    non_finite = []
    for point in trial.curve:
        entry: dict[str, Any] = {"epoch": point.epoch}
        for metric, value in point.metrics.items():
            entry[metric] = value
            if value is not None and not math.isfinite(value):
                token = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
                non_finite.append({"epoch": point.epoch, "metric": metric, "value": token})
        curve.append(entry)
    text = dumps_strict(
        {"learning_curve": curve, "learning_curve_non_finite": non_finite, "extra": trial.extra}
    )
    return text[1:-1]


def _read_one(found: Found, settings: Settings) -> _FileOutcome:
    if found.status != "read" or found.reader is None:
        return _FileOutcome(found, None, [])
    reader = reader_named(found.reader)
    try:
        result: ReadResult = reader.read(found.source, found.display, settings)
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
    entries = []
    for trial in result.trials:
        row = trial_row(trial, settings)
        row["source_format"] = reader.FORMAT
        entries.append((row, heavy_fragment(trial)))
    result.trials = []  # the rows carry what is needed; drop the objects early
    return _FileOutcome(found, result, entries)


def _outcomes(files: Sequence[Found], settings: Settings, jobs: int) -> Iterator[_FileOutcome]:
    if jobs > 1 and len(files) >= PARALLEL_MIN_FILES:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            yield from pool.map(_read_one, files, [settings] * len(files), chunksize=64)
    else:
        for found in files:
            yield _read_one(found, settings)


def _unless_ours(found: Found, out: Path) -> Found:
    """Files of this tool's own output directory (and its lock/staging siblings) are never
    read as inputs, even when the output directory lies inside a source."""
    if found.url is not None and sqlite_file(found.url) is None:
        return found  # a database server, not a path
    try:
        path = found.path.absolute()
        out = out.absolute()
    except OSError:
        return found
    inside = path == out or out in path.parents
    sibling = path.parent == out.parent and path.name.startswith(f".{out.name}.")
    sibling |= any(
        p.parent == out.parent and p.name.startswith(f".{out.name}.") for p in path.parents
    )
    if inside or sibling:
        return dataclasses.replace(
            found,
            reader=None,
            status="ignored",
            reason="part of this run's output directory; not an input",
        )
    return found


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
) -> ExtractResult:
    """Read every trial under ``sources`` and write the dataset into ``out``.

    ``report`` receives one line per warned/rejected file; ``progress(total)`` may return a
    callable invoked once per file read (e.g. a progress bar's update). Raises
    :class:`SourceError` for unusable sources and
    :class:`~hpo_analysis.write.atomic.OutputError` for an unusable output directory.
    """
    settings = settings or Settings()
    # URLs stay strings (Path() would fold the "//" of sqlite:///...)
    source_paths: list[str | Path] = [
        s if isinstance(s, str) and is_storage_url(s) else Path(s) for s in sources
    ]
    check_sources(source_paths)
    out_path = Path(out)
    jobs = jobs or min(2, os.cpu_count() or 1)

    files = [_unless_ours(found, out_path) for source in source_paths for found in discover(source)]
    result = ExtractResult(out_dir=out_path, n_files=len(files))
    with staged_output(out_path) as stage:
        rows, manifest, spool_index = _collect(
            files, settings, jobs, stage.file(".curves.spool"), result, report, progress
        )
        assign_ranks(rows)
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
        metadata["annotations"] = {
            "file": ANNOTATIONS_CSV,
            "trials_annotated": sum(1 for r in rows if r.get("_annotations")),
            "orphans": [f"{a.study}/{a.trial_num}" for a in orphans],
        }
        outputs.write_all(
            stage.path, rows, manifest, metadata, settings, stage.file(".curves.spool"), spool_index
        )
        result.validation_failures = validate_dir(stage.path)
        stage.commit()
    return result


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
        return []
    harvested = harvest_summary_edits(
        out / outputs.SUMMARY_CSV, annotations, outputs.generated_at()
    )
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
        row["tags"], row["note"] = summary_cells(mine)
        row["_annotations"] = [{"tag": a.tag, "note": a.note, "updated": a.updated} for a in mine]
    orphans = [a for group in by_key.values() for a in group]
    for a in orphans:
        _say(
            report,
            ANNOTATIONS_CSV,
            f"annotation of {a.study}/{a.trial_num} (tag {a.tag!r}): "
            "no such trial in this dataset; kept",
        )
    return orphans


def _collect(
    files: Sequence[Found],
    settings: Settings,
    jobs: int,
    spool_path: Path,
    result: ExtractResult,
    report: Callable[[str], None] | None,
    progress: Callable[[int], Callable[[], None]] | None,
) -> tuple[list[dict[str, Any]], list[ManifestRow], dict[tuple[str, int], tuple[int, int]]]:
    rows: list[dict[str, Any]] = []
    manifest: list[ManifestRow] = []
    first_seen: dict[tuple[str, int], str] = {}
    spool_index: dict[tuple[str, int], tuple[int, int]] = {}
    tick = progress(len(files)) if progress is not None else None
    with open(spool_path, "wb") as spool:
        for outcome in _outcomes(files, settings, jobs):
            if tick is not None:
                tick()
            found, read = outcome.found, outcome.read
            row = ManifestRow(found.display, found.status, found.reason)
            if read is None:
                if found.status == "ignored":
                    result.n_ignored += 1
                else:
                    result.n_rejected += 1
                    _say(report, found.display, found.reason)
                manifest.append(row)
                continue
            reader = reader_named(found.reader or "")
            row.format, row.size_bytes, row.sha256 = reader.FORMAT, read.size_bytes, read.sha256
            problems = list(read.problems)
            kept = 0
            for trial, fragment in outcome.entries:
                key = (trial["study"], trial["trial_num"])
                if key in first_seen:
                    problems.append(
                        Problem(
                            "duplicate_trial",
                            f"study {key[0]!r} trial {key[1]} was already read from "
                            f"{first_seen[key]}; this copy is not used",
                            "rejected" if len(outcome.entries) == 1 else "warning",
                        )
                    )
                    continue
                first_seen[key] = found.display
                encoded = fragment.encode("utf-8")
                spool_index[key] = (spool.tell(), len(encoded))
                spool.write(encoded)
                rows.append(trial)
                kept += 1
                row.study = key[0] if kept == 1 or row.study == key[0] else "(several)"
            row.n_trials = kept
            if kept == 1 and len(outcome.entries) == 1:
                row.trial_num = outcome.entries[0][0]["trial_num"]
            rejected = any(p.severity == "rejected" for p in problems) and kept == 0
            warned = [p for p in problems if p.severity != "note"]
            row.status = "rejected" if rejected else ("warning" if warned else "ok")
            if kept == 0 and not warned and any(p.code == "study_not_selected" for p in problems):
                row.status = "ignored"  # nothing in it was selected by --study
            row.reason = "; ".join(p.message for p in problems)
            if rejected:
                result.n_rejected += 1
            elif warned:
                result.n_warnings += 1
            elif row.status == "ignored":
                result.n_ignored += 1
            if warned:
                _say(report, found.display, row.reason)
            manifest.append(row)
    return rows, manifest, spool_index


def _say(report: Callable[[str], None] | None, path: str, message: str) -> None:
    if report is not None:
        report(f"{path}: {message}")
