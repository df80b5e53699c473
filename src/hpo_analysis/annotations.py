"""Hand annotations of trials that survive re-extraction.

Annotations live in ``annotations.csv`` inside the output directory, one row per
(study, trial_num, tag) with a free-text note and the time of the last change. ``extract``
never rewrites that file's contents: it carries the file over byte for byte into each new output
set (under the output directory's lock, so a concurrent ``annotate`` cannot be lost), merges it
into ``hpo_summary.csv`` (``tags``, ``note``) and ``hpo_full.json`` (``annotations``), and
reports annotations whose trial no longer exists without dropping them.

Tags or notes typed straight into the ``tags`` / ``note`` columns of ``hpo_summary.csv`` are
harvested before the CSV is replaced: new tags and changed notes are added to
``annotations.csv``. Harvesting only adds; removing an annotation is done in
``annotations.csv`` itself.

Example::

    >>> from pathlib import Path
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> add_annotation(d, "s_2B_h3", 12, tag="nan-at-epoch-3", note="lr too high?")
    >>> [(a.study, a.trial_num, a.tag) for a in read_annotations(d / ANNOTATIONS_CSV)]
    [('s_2B_h3', 12, 'nan-at-epoch-3')]
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import HpoAnalysisError
from .write.atomic import write_file_atomic
from .write.cells import csv_cell, unneutralize

ANNOTATIONS_CSV = "annotations.csv"
FIELDS = ("study", "trial_num", "tag", "note", "updated")
TAG_SEPARATOR = "; "
NOTE_SEPARATOR = " | "


class AnnotationError(HpoAnalysisError, ValueError):
    """annotations.csv cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True)
class Annotation:
    study: str
    trial_num: int
    tag: str
    note: str
    updated: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.study, self.trial_num)


def now_utc() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_annotations(path: Path) -> list[Annotation]:
    """All annotations in ``path`` (none when it does not exist), in file order."""
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise AnnotationError(f"{path}: cannot read: {err}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [f for f in ("study", "trial_num") if f not in (reader.fieldnames or [])]
    if missing:
        raise AnnotationError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(FIELDS)}"
        )
    result = []
    for line, row in enumerate(reader, start=2):
        study = unneutralize((row.get("study") or "").strip())
        number = (row.get("trial_num") or "").strip()
        if not study and not number:
            continue  # blank line left by a spreadsheet
        try:
            trial_num = int(float(number))
        except ValueError:
            raise AnnotationError(
                f"{path}: line {line}: trial_num {number!r} is not a number"
            ) from None
        result.append(
            Annotation(
                study,
                trial_num,
                unneutralize((row.get("tag") or "").strip()),
                unneutralize(row.get("note") or ""),
                (row.get("updated") or "").strip(),
            )
        )
    return result


def render_annotations(annotations: Iterable[Annotation]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for a in annotations:
        writer.writerow(
            [csv_cell(a.study), a.trial_num, csv_cell(a.tag), csv_cell(a.note), a.updated]
        )
    return buffer.getvalue()


def write_annotations_atomic(path: Path, annotations: Iterable[Annotation]) -> None:
    """Readers never see a torn file (temp file, fsync, rename)."""
    write_file_atomic(path, render_annotations(annotations).encode("utf-8"))


def upsert(annotations: Sequence[Annotation], new: Annotation) -> list[Annotation]:
    """Replace the annotation with the same study, trial and tag, or append ``new``."""
    result = [
        a
        for a in annotations
        if (a.study, a.trial_num, a.tag) != (new.study, new.trial_num, new.tag)
    ]
    result.append(new)
    return result


def add_annotation(
    directory: Path,
    study: str,
    trial_num: int,
    *,
    tag: str = "",
    note: str = "",
    remove: bool = False,
) -> None:
    """Add, update (same tag) or remove one annotation, under the output directory's lock."""
    from .write.atomic import output_lock

    directory = Path(directory)
    with output_lock(directory):
        path = directory / ANNOTATIONS_CSV
        current = read_annotations(path)
        if remove:
            kept = [a for a in current if (a.study, a.trial_num, a.tag) != (study, trial_num, tag)]
            if len(kept) == len(current):
                raise AnnotationError(f"{path}: no annotation {study}/{trial_num} tag {tag!r}")
            current = kept
        else:
            current = upsert(current, Annotation(study, trial_num, tag, note, now_utc()))
        write_annotations_atomic(path, current)


def summary_cells(annotations: Sequence[Annotation]) -> tuple[str | None, str | None]:
    """The ``tags`` and ``note`` cells of one trial."""
    tags = sorted({a.tag for a in annotations if a.tag})
    notes = [a.note for a in annotations if a.note]
    return (TAG_SEPARATOR.join(tags) or None, NOTE_SEPARATOR.join(notes) or None)


def harvest_summary_edits(
    previous_summary: Path, annotations: list[Annotation], stamp: str
) -> list[Annotation]:
    """Tags and notes typed into the old hpo_summary.csv, added to ``annotations``."""
    if not previous_summary.exists():
        return annotations
    by_key: dict[tuple[str, int], list[Annotation]] = {}
    for a in annotations:
        by_key.setdefault(a.key, []).append(a)
    try:
        with open(previous_summary, encoding="utf-8-sig", newline="") as handle:
            # streamed, and only rows with something typed in are kept: the summary of a
            # large dataset is far bigger than its annotations
            rows: list[dict[str, Any]] = [
                row for row in csv.DictReader(handle) if row.get("tags") or row.get("note")
            ]
    except (OSError, UnicodeDecodeError, csv.Error):
        return annotations
    result = list(annotations)
    for row in rows:
        try:
            key = (unneutralize(row.get("study") or ""), int(row.get("trial_num") or ""))
        except ValueError:
            continue
        have_tags, have_note = summary_cells(by_key.get(key, []))
        typed_tags = unneutralize(row.get("tags") or "")
        typed_note = unneutralize(row.get("note") or "")
        known = set((have_tags or "").split(TAG_SEPARATOR))
        for tag in (t.strip() for t in typed_tags.split(";")):
            if tag and tag not in known:
                result.append(Annotation(key[0], key[1], tag, "", stamp))
                known.add(tag)
        if typed_note.strip() and typed_note != (have_note or ""):
            result = upsert(result, Annotation(key[0], key[1], "", typed_note, stamp))
    return result
