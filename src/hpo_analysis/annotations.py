"""Hand annotations of trials that survive re-extraction.

Annotations live in ``annotations.csv`` inside the output directory, one row per
(study, trial_num, tag) with a free-text note and the time of the last change. ``extract``
never rewrites that file's contents: it carries the file over byte for byte into each new output
set (under the output directory's lock, so a concurrent ``annotate`` cannot be lost), merges it
into ``hpo_summary.csv`` (``tags``, ``note``) and ``hpo_full.json`` (``annotations``), and
reports annotations whose trial no longer exists without dropping them.

``annotations.csv`` is the source of truth. Each extract also records the ``tags`` and ``note``
cells it wrote into ``hpo_summary.csv`` (in :data:`WRITTEN_CELLS`); the next extract imports a
cell of the old ``hpo_summary.csv`` only when it differs from that record, i.e. only where
someone typed into the spreadsheet since. So ``annotate`` updates and removals and hand edits
of ``annotations.csv`` are never undone by stale summary cells. An imported tags cell adds the
tags typed in and removes the tags deleted from it; an imported note cell replaces the trial's
notes with the text typed in (an emptied cell removes them).

Sizes are limited on every write (:data:`MAX_TAG_CHARS`, :data:`MAX_NOTE_CHARS`); the readers
accept any field size, so a file edited by hand past the limits is still read.

Example::

    >>> from pathlib import Path
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> add_annotation(d, "s_2B_h3", 12, tag="nan-at-epoch-3", note="lr too high?", force=True)
    >>> [(a.study, a.trial_num, a.tag) for a in read_annotations(d / ANNOTATIONS_CSV)]
    [('s_2B_h3', 12, 'nan-at-epoch-3')]
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import HpoAnalysisError
from .write.atomic import write_file_atomic
from .write.cells import allow_large_csv_fields, csv_cell, unneutralize

ANNOTATIONS_CSV = "annotations.csv"
# What the last extract wrote into the tags/note cells of hpo_summary.csv (hidden: not data).
WRITTEN_CELLS = ".annotations_in_summary.json"
FIELDS = ("study", "trial_num", "tag", "note", "updated")
TAG_SEPARATOR = "; "
NOTE_SEPARATOR = " | "
MAX_TAG_CHARS = 200
MAX_NOTE_CHARS = 10_000

Cells = dict[tuple[str, int], tuple[str, str]]


class AnnotationError(HpoAnalysisError, ValueError):
    """annotations.csv cannot be used; the message names the file, line and problem."""


class UnknownTrialError(AnnotationError):
    """The trial to annotate is not in the dataset (a typo, most likely): a usage error."""

    exit_code = 2


def check_sizes(tag: str, note: str) -> None:
    """Refuse a tag or note over the documented limits (:data:`MAX_TAG_CHARS`, ...).

    Example::

        >>> check_sizes("lr", "x" * 10)
        >>> check_sizes("lr", "x" * 10_001)
        Traceback (most recent call last):
        ...
        hpo_analysis.annotations.AnnotationError: note has 10001 characters; the limit is 10000
    """
    if len(tag) > MAX_TAG_CHARS:
        raise AnnotationError(f"tag has {len(tag)} characters; the limit is {MAX_TAG_CHARS}")
    if len(note) > MAX_NOTE_CHARS:
        raise AnnotationError(f"note has {len(note)} characters; the limit is {MAX_NOTE_CHARS}")
    if ";" in tag:
        raise AnnotationError(f"tag {tag!r}: a tag cannot contain ';' (it separates tags)")


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
    allow_large_csv_fields()
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
    try:
        rows = list(reader)
    except csv.Error as err:
        raise AnnotationError(f"{path}: not a readable CSV file: {err}") from None
    for line, row in enumerate(rows, start=2):
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
    force: bool = False,
) -> None:
    """Add, update (same tag) or remove one annotation, under the output directory's lock.

    A trial that is not in the dataset is refused (:class:`UnknownTrialError`: a typo would
    otherwise be kept silently) unless ``force``; removing works for any trial, so annotations
    of trials that left the data can be cleaned up. Negative trial numbers and tags or notes
    over the size limits are always refused.
    """
    from .write.atomic import output_lock

    directory = Path(directory)
    if trial_num < 0:
        raise AnnotationError(f"trial number {trial_num}: trial numbers are 0 or more")
    if not remove:
        check_sizes(tag, note)
    with output_lock(directory):
        if not remove and not force and not trial_in_summary(directory, study, trial_num):
            raise UnknownTrialError(
                f"{directory}: no trial {study}/{trial_num} in this dataset (see "
                "hpo_summary.csv); check the study and number, or pass --force to keep the "
                "annotation for a trial that is not extracted yet"
            )
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


def trial_in_summary(directory: Path, study: str, trial_num: int) -> bool:
    """Whether ``hpo_summary.csv`` of ``directory`` has a row for this trial (streamed)."""
    allow_large_csv_fields()
    wanted = str(trial_num)
    try:
        with open(directory / "hpo_summary.csv", encoding="utf-8-sig", newline="") as handle:
            return any(
                row.get("trial_num") == wanted and unneutralize(row.get("study") or "") == study
                for row in csv.DictReader(handle)
            )
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def split_tags(cell: str) -> list[str]:
    """The tags of a ``tags`` cell, in order, without blanks or repeats."""
    seen: dict[str, None] = {}
    for tag in cell.split(";"):
        if tag.strip():
            seen.setdefault(tag.strip(), None)
    return list(seen)


def written_cells(rows: Iterable[dict[str, Any]]) -> bytes:
    """The record of the tags/note cells an extract writes (:data:`WRITTEN_CELLS`).

    Only annotated trials are listed; the JSON is sorted, so equal input gives equal bytes.
    """
    cells = sorted(
        [row["study"], row["trial_num"], row.get("tags") or "", row.get("note") or ""]
        for row in rows
        if row.get("tags") or row.get("note")
    )
    return (json.dumps({"version": 1, "cells": cells}, ensure_ascii=True) + "\n").encode("ascii")


def read_written_cells(path: Path) -> Cells | None:
    """The cells the previous extract wrote; None when it left no (readable) record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {(str(s), int(n)): (str(t), str(note)) for s, n, t, note in data["cells"]}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


def harvest_summary_edits(
    previous_summary: Path,
    annotations: list[Annotation],
    stamp: str,
    written: Cells | None = None,
    warn: list[str] | None = None,
) -> list[Annotation]:
    """Apply the tags/note cells typed into the old hpo_summary.csv to ``annotations``.

    ``written`` holds the cells the previous extract wrote: a cell is imported only when it
    differs from what was written there. Without that record (an output set of an older
    version) the cells are compared with the current annotations and only additions are
    imported. Cells over the size limits are not imported; ``warn`` receives one line each.
    """
    if not previous_summary.exists():
        return annotations
    allow_large_csv_fields()
    try:
        with open(previous_summary, encoding="utf-8-sig", newline="") as handle:
            # streamed, and only rows that are or were annotated are kept: the summary of a
            # large dataset is far bigger than its annotations
            rows: list[dict[str, Any]] = [
                row
                for row in _edit_cells(csv.reader(handle))
                if row["tags"] or row["note"] or (written and _row_key(row) in written)
            ]
    except (OSError, UnicodeDecodeError, csv.Error):
        return annotations
    result = list(annotations)
    for row in rows:
        key = _row_key(row)
        if key is None:
            continue
        typed_tags = split_tags(unneutralize(row.get("tags") or ""))
        typed_note = unneutralize(row.get("note") or "").strip()
        if written is None:
            result = _add_only(result, key, typed_tags, typed_note, stamp)
            continue
        was_tags, was_note = written.get(key, ("", ""))
        if typed_tags != split_tags(was_tags):
            too_long = [t for t in typed_tags if len(t) > MAX_TAG_CHARS]
            if too_long:
                _warn(warn, key, f"a tag of {len(too_long[0])} characters")
            else:
                result = _set_tags(result, key, typed_tags, split_tags(was_tags), stamp)
        if typed_note != was_note.strip():
            if len(typed_note) > MAX_NOTE_CHARS:
                _warn(warn, key, f"a note of {len(typed_note)} characters")
            else:
                result = _set_note(result, key, typed_note, stamp)
    return result


_EDIT_COLUMNS = ("study", "trial_num", "tags", "note")


def _edit_cells(rows: Iterator[list[str]]) -> Iterator[dict[str, str | None]]:
    """The cells of :data:`_EDIT_COLUMNS` of each row after the header, as
    :class:`csv.DictReader` gives them (blank lines skipped, the last of two columns of one
    name, None for a column the header or a short row lacks), without a dict of every column
    of every row: a summary has a hundred columns, and only these four are read.

    >>> cells = _edit_cells(iter([["study", "tags", "tags"], ["s", "a"], [], ["t", "b", "c"]]))
    >>> [(row["study"], row["tags"], row["note"]) for row in cells]
    [('s', None, None), ('t', 'c', None)]
    """
    header = next(rows, [])
    where = {name: column for column, name in enumerate(header)}
    wanted = [(name, where.get(name)) for name in _EDIT_COLUMNS]
    for row in rows:
        if row:
            width = len(row)
            yield {
                name: row[column] if column is not None and column < width else None
                for name, column in wanted
            }


def _row_key(row: dict[str, Any]) -> tuple[str, int] | None:
    try:
        return (unneutralize(row.get("study") or ""), int(row.get("trial_num") or ""))
    except ValueError:
        return None


def _warn(warn: list[str] | None, key: tuple[str, int], what: str) -> None:
    if warn is not None:
        warn.append(
            f"{key[0]}/{key[1]}: {what} typed into hpo_summary.csv is over the limit "
            f"(tags {MAX_TAG_CHARS}, notes {MAX_NOTE_CHARS} characters); not imported"
        )


def _add_only(
    result: list[Annotation], key: tuple[str, int], tags: list[str], note: str, stamp: str
) -> list[Annotation]:
    mine = [a for a in result if a.key == key]
    known = {a.tag for a in mine}
    for tag in tags:
        if tag not in known and len(tag) <= MAX_TAG_CHARS:
            result.append(Annotation(key[0], key[1], tag, "", stamp))
            known.add(tag)
    have_note = NOTE_SEPARATOR.join(a.note for a in mine if a.note)
    if note and note != have_note.strip() and len(note) <= MAX_NOTE_CHARS:
        result = upsert(result, Annotation(key[0], key[1], "", note, stamp))
    return result


def _set_tags(
    result: list[Annotation],
    key: tuple[str, int],
    typed: list[str],
    written: list[str],
    stamp: str,
) -> list[Annotation]:
    """Add the tags typed into the cell; remove those deleted from it (keeping their notes)."""
    removed = set(written) - set(typed)
    kept: list[Annotation] = []
    orphaned_notes: list[str] = []
    for a in result:
        if a.key == key and a.tag and a.tag in removed:
            if a.note:
                orphaned_notes.append(a.note)
            continue
        kept.append(a)
    present = {a.tag for a in kept if a.key == key}
    for tag in typed:
        if tag not in present:
            kept.append(Annotation(key[0], key[1], tag, "", stamp))
            present.add(tag)
    if orphaned_notes:  # a deleted tag's note stays a note of the trial
        untagged = next((a for a in kept if a.key == key and not a.tag), None)
        notes = ([untagged.note] if untagged and untagged.note else []) + orphaned_notes
        kept = upsert(kept, Annotation(key[0], key[1], "", NOTE_SEPARATOR.join(notes), stamp))
    return kept


def _set_note(
    result: list[Annotation], key: tuple[str, int], note: str, stamp: str
) -> list[Annotation]:
    """The trial's notes become ``note`` (tags stay, without their notes)."""
    kept: list[Annotation] = []
    for a in result:
        if a.key != key:
            kept.append(a)
        elif a.tag:
            kept.append(a if not a.note else Annotation(a.study, a.trial_num, a.tag, "", stamp))
    if note:
        kept.append(Annotation(key[0], key[1], "", note, stamp))
    return kept
