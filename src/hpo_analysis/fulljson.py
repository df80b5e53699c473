"""Streaming reads of ``hpo_full.json`` without loading the whole document.

``extract`` writes the file as ``{"metadata": {...},`` then ``"trials": [``, then one trial
object per line, then ``]}``. That layout is strict JSON for any reader, and it lets
``validate`` and :meth:`hpo_analysis.Dataset.trial` read one trial at a time: memory stays flat
however many trials the file holds.

Example::

    >>> meta, trials = read_full_json("outputs/analysis/hpo_full.json")  # doctest: +SKIP
    >>> next(trials).trial["study"]  # doctest: +SKIP
    'phase6a_200M_h1_threshold_1pct'
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import IO, Any

from .errors import HpoAnalysisError
from .jsonio import _may_hold_long_integer, orjson

HEAD = b'{"metadata": '
TRIALS_LINE = b'"trials": [\n'
END_LINE = b"]}\n"


class FullJsonError(HpoAnalysisError, ValueError):
    """hpo_full.json is not strict JSON in the layout extract writes; the message says where."""


@dataclass(frozen=True)
class TrialLine:
    offset: int  # byte offset of the trial object in the file
    length: int  # its length in bytes (without the separator)
    trial: dict[str, Any]


def _refuse(token: str) -> Any:
    raise ValueError(f"non-standard JSON token {token}")


def loads_strict(data: bytes) -> Any:
    """Parse RFC 8259 JSON exactly (NaN/Infinity refused, long integers kept as int)."""
    if orjson is not None and not _may_hold_long_integer(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise ValueError(str(err)) from None
    return json.loads(data, parse_constant=_refuse)


def _loads_start(line: bytes, length: int) -> Any:
    """``loads_strict(line[:length])`` for a line that goes on with ``,\n`` or ``\n``, without
    copying the line: orjson reads a view of it, and those last characters are no digits, so
    the line holds a long run of digits exactly when its start does."""
    if orjson is not None and not _may_hold_long_integer(line):
        try:
            return orjson.loads(memoryview(line)[:length])
        except orjson.JSONDecodeError as err:
            raise ValueError(str(err)) from None
    return json.loads(line[:length], parse_constant=_refuse)


def read_full_json(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Iterator[TrialLine]]:
    """The metadata and an iterator over the trials; raises :class:`FullJsonError`."""
    metadata, batches = read_full_json_batches(path)
    return metadata, _trials(batches)


def read_full_json_batches(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], Generator[TrialBatch, None, None]]:
    """The metadata and an iterator over the trials a few MB at a time, as :class:`TrialBatch`
    (the trials of :func:`read_full_json` in the same order, with the same errors, raised
    after the trials before the faulty line); raises :class:`FullJsonError`."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by the iterator
    try:
        metadata, offset = _read_head(handle)
    except BaseException:
        handle.close()
        raise
    return metadata, _batches(handle, offset)


def _read_head(handle: IO[bytes]) -> tuple[dict[str, Any], int]:
    lines = []
    offset = 0
    for number, line in enumerate(handle, start=1):
        offset += len(line)
        if line == TRIALS_LINE:
            break
        lines.append(line)
        if number > 100_000:
            break
    else:
        raise FullJsonError('no "trials" array line: not the layout extract writes')
    text = b"".join(lines)
    if not text.startswith(HEAD) or not text.endswith(b",\n"):
        raise FullJsonError('does not start with {"metadata": ...}: not the layout extract writes')
    try:
        metadata = loads_strict(text[len(HEAD) : -2])
    except ValueError as err:
        raise FullJsonError(f"metadata is not strict JSON ({err})") from None
    if not isinstance(metadata, dict):
        raise FullJsonError("metadata is not an object")
    return metadata, offset


@dataclass
class TrialBatch:
    """Consecutive trials of hpo_full.json: their byte offsets, lengths and objects."""

    offsets: list[int]
    lengths: list[int]
    trials: list[dict[str, Any]]


def _trials(batches: Generator[TrialBatch, None, None]) -> Iterator[TrialLine]:
    with closing(batches):
        for batch in batches:
            yield from map(TrialLine, batch.offsets, batch.lengths, batch.trials)


BATCH_BYTES = 1 << 16  # read at a time: a dozen trials, still in the CPU's cache when checked
_COMMA_LINE = b",\n"


def _batches(handle: IO[bytes], offset: int) -> Generator[TrialBatch, None, None]:
    """The trial lines a block of whole lines at a time. A run of lines that all end with
    ``,\\n`` (every line but the last trial's) is parsed by :func:`_quick_batch`; the rest of
    a block, and a run the quick path declines, line by line as the file's layout says."""
    with handle:
        previous_had_comma = True
        number = 0
        pending: list[bytes] = []  # the start of a line whose end is not read yet
        while True:
            data = handle.read(BATCH_BYTES)
            cut = data.rfind(b"\n") + 1  # the end of the block's last whole line
            if data and not cut:  # a line longer than a block: read on
                pending.append(data)
                continue
            if pending:
                head = b"".join(pending)
                pending.clear()
                data, cut = head + data, len(head) + cut if cut else 0
            if not data:
                raise FullJsonError("the file ends inside the trials array (no closing ]})")
            if not cut:  # the file's last line, without an end of line
                lines = [data]
            else:
                if cut < len(data):
                    pending.append(data[cut:])
                ends = _line_ends(data)  # after each "\n"
                run = 0
                if previous_had_comma:  # the leading lines that end with ",\n"
                    while run < len(ends) and data[ends[run] - 2 : ends[run] - 1] == b",":
                        run += 1
                quick = _quick_batch(data, ends[:run], offset) if run else None
                start = 0
                if quick is not None:
                    yield quick
                    number += run
                    start = ends[run - 1]
                    offset += start
                    del ends[:run]
                lines = []
                for end in ends:
                    lines.append(data[start:end])
                    start = end
            batch = TrialBatch([], [], [])
            for position, line in enumerate(lines):
                number += 1
                if line == END_LINE:
                    if number > 1 and previous_had_comma:
                        if batch.trials:
                            yield batch
                        raise FullJsonError(f"trial {number - 1}: a comma before the closing ]")
                    if batch.trials:
                        yield batch
                    if position < len(lines) - 1 or pending or handle.read(1):
                        raise FullJsonError("data after the closing ]}")
                    return
                try:
                    trial, length, previous_had_comma = _careful_line(
                        line, number, previous_had_comma
                    )
                except FullJsonError:
                    if batch.trials:
                        yield batch
                    raise
                batch.offsets.append(offset)
                batch.lengths.append(length)
                batch.trials.append(trial)
                offset += len(line)
            if batch.trials:
                yield batch


def _careful_line(line: bytes, number: int, previous_had_comma: bool) -> tuple[Any, int, bool]:
    """One trial line checked as the layout says: its object, its length without the
    separator, and whether it ends with a comma."""
    if not previous_had_comma:
        raise FullJsonError(f"trial {number}: no comma after the previous trial")
    has_comma = line.endswith(_COMMA_LINE)
    length = len(line) - 2 if has_comma else len(line) - 1
    if not line.endswith(b"\n"):
        raise FullJsonError(f"trial {number}: the file ends inside the trials array")
    try:
        trial = _loads_start(line, length)
    except ValueError as err:
        raise FullJsonError(f"trial {number} is not strict JSON ({err})") from None
    if not isinstance(trial, dict):
        raise FullJsonError(f"trial {number} is not an object")
    return trial, length, has_comma


def _line_ends(data: bytes) -> list[int]:
    """The position after each end of line of ``data``."""
    ends = []
    find = data.find
    end = find(b"\n") + 1
    while end:
        ends.append(end)
        end = find(b"\n", end) + 1
    return ends


def _quick_batch(data: bytes, ends: list[int], offset: int) -> TrialBatch | None:
    """The trials of the lines of ``data`` that end before each of ``ends``, lines that all
    end with ``,\\n``, parsed by orjson, when the careful path would give exactly these (no
    line may hold a long integer, every line is an object); else None and the careful path
    reads them (and says what is wrong). ``offset``: where ``data`` starts in the file.

    A line ending with ``,\\n`` ends a run of digits, so a run of 19+ digits in one of the
    lines is one in ``data``: none there means none in any line."""
    if orjson is None or _may_hold_long_integer(data):
        return None
    view = memoryview(data)
    starts = [0, *ends[:-1]]
    try:
        trials = [orjson.loads(view[a : b - 2]) for a, b in zip(starts, ends, strict=True)]
    except orjson.JSONDecodeError:
        return None
    if not all(map(_is_dict, trials)):
        return None
    lengths = [b - a - 2 for a, b in zip(starts, ends, strict=True)]
    return TrialBatch([offset + a for a in starts], lengths, trials)


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def read_trial_at(path: str | os.PathLike[str], offset: int, length: int) -> dict[str, Any]:
    """The trial object stored at ``offset`` (from hpo_full.index.parquet)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    value = loads_strict(data)
    if not isinstance(value, dict):
        raise FullJsonError(f"no trial object at byte {offset}")
    return value
