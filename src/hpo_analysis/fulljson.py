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
from collections.abc import Iterator
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
    handle = open(path, "rb")  # noqa: SIM115 - closed by the iterator
    try:
        metadata, offset = _read_head(handle)
    except BaseException:
        handle.close()
        raise
    return metadata, _trials(handle, offset)


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


def _trials(handle: IO[bytes], offset: int) -> Iterator[TrialLine]:
    with handle:
        previous_had_comma = True
        number = 0
        for line in handle:
            number += 1
            if line == END_LINE:
                if number > 1 and previous_had_comma:
                    raise FullJsonError(f"trial {number - 1}: a comma before the closing ]")
                if handle.read(1):
                    raise FullJsonError("data after the closing ]}")
                return
            if not previous_had_comma:
                raise FullJsonError(f"trial {number}: no comma after the previous trial")
            previous_had_comma = line.endswith(b",\n")
            length = len(line) - 2 if previous_had_comma else len(line) - 1
            if not line.endswith(b"\n"):
                raise FullJsonError(f"trial {number}: the file ends inside the trials array")
            try:
                trial = _loads_start(line, length)
            except ValueError as err:
                raise FullJsonError(f"trial {number} is not strict JSON ({err})") from None
            if not isinstance(trial, dict):
                raise FullJsonError(f"trial {number} is not an object")
            yield TrialLine(offset, length, trial)
            offset += len(line)
        raise FullJsonError("the file ends inside the trials array (no closing ]})")


def read_trial_at(path: str | os.PathLike[str], offset: int, length: int) -> dict[str, Any]:
    """The trial object stored at ``offset`` (from hpo_full.index.parquet)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    value = loads_strict(data)
    if not isinstance(value, dict):
        raise FullJsonError(f"no trial object at byte {offset}")
    return value
