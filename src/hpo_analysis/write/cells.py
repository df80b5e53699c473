"""How one value is written into a CSV cell, decided once for every CSV output.

- missing or non-finite numbers → empty cell (the JSON outputs say which, see objective_kind);
- booleans → ``true`` / ``false``;
- floats → the shortest text that reads back as the same float (``repr``);
- text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab,
  CR or LF) is prefixed with ``'`` as OWASP recommends; numbers, and text that is just a
  number such as ``-1.5``, are left alone.

Example::

    >>> [csv_cell(v) for v in (None, float("nan"), True, 0.1, 3, "=1+1", "-1.5")]
    ['', '', 'true', '0.1', '3', "'=1+1", '-1.5']
"""

from __future__ import annotations

import csv
import functools
import math
import operator
from collections.abc import Sequence
from typing import Any

from ..jsonio import dumps_strict, orjson

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
# Readers take any field size: the csv module's default (131,072 characters) would make one
# oversized cell (a long note typed by hand) stop every later extract, annotate and validate.
CSV_FIELD_LIMIT = 2**31 - 1


def allow_large_csv_fields() -> None:
    """Let the csv module read fields of any size (a process-wide setting)."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def _is_plain_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutralize(text: str) -> str:
    if text.startswith(FORMULA_TRIGGERS) and not _is_plain_number(text):
        return "'" + text
    return text


def unneutralize(text: str) -> str:
    """The original text of a neutralised cell (inverse of :func:`neutralize`)."""
    if text.startswith("'") and text[1:].startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (dict, list)):
        value = dumps_strict(value)
    return neutralize(str(value))


_NONE = type(None)


def _json_cells(values: Sequence[Any]) -> list[str]:
    """The JSON text of each value of a list of numbers, booleans and None (``null`` for None
    and non-finite floats), from one ``orjson.dumps`` of the list: no such text holds a comma.

    >>> _json_cells([1, None, 2.5, True])
    ['1', 'null', '2.5', 'true']
    """
    if not values:
        return []
    return orjson.dumps(values).decode()[1:-1].split(",")


def _float_cells(values: Sequence[Any]) -> list[str]:
    """``csv_cell`` of each value of a list of floats and None.

    orjson writes a float's digits as ``repr`` does, the shortest text that reads back as the
    same float (both choose the nearest such text, and a binary float is never halfway
    between two of them), but it switches to exponent notation at other magnitudes: ``repr``
    writes ``1e-05``, orjson ``0.00001``. ``repr`` writes a float positionally from 1e-4 up
    to 1e16 (``0.0001``, ``9999999999999998.0``), as orjson does: there orjson's text is
    taken, elsewhere ``repr``'s; missing and non-finite values are the empty cell."""
    import numpy as np

    magnitude = np.abs(np.array(values, dtype=float))  # None as NaN
    cells = _json_cells(values) if _orjson_floats_as_repr() else list(map(repr, values))
    with np.errstate(invalid="ignore"):
        elsewhere = ~((magnitude >= 1e-4) & (magnitude < 1e16))  # NaN too: no comparison holds
    for position in np.flatnonzero(elsewhere).tolist():
        value = values[position]
        cells[position] = "" if value is None or not math.isfinite(value) else repr(value)
    return cells


@functools.cache
def _orjson_floats_as_repr() -> bool:
    """True when orjson writes floats from 1e-4 up to 1e16 as ``repr`` does (checked once, on
    a sample that runs through every digit count and magnitude of that range)."""
    import random

    draw = random.Random(0)
    sample = [1e-4, -1e-4, 0.1, 0.3, 1 / 3, 2 / 3, 1.0, -0.5, 123.456, 1e15, 9999999999999998.0]
    sample += [round(draw.uniform(-1.0, 1.0), draw.randint(4, 17)) for _ in range(200)]
    sample += [draw.uniform(1.0, 10.0) * 10.0 ** draw.randint(-4, 15) for _ in range(300)]
    sample = [v for v in sample if 1e-4 <= abs(v) < 1e16]
    return orjson is not None and _json_cells(sample) == list(map(repr, sample))


_FIRST = operator.itemgetter(slice(0, 1))  # a text's first character, "" for ""


def _may_start_formula(cells: list[str]) -> bool:
    """True when a cell starts with a formula trigger (each trigger is one character)."""
    return not set(map(_FIRST, cells)).isdisjoint(FORMULA_TRIGGERS)


def csv_column(values: Sequence[Any]) -> list[str]:
    """``[csv_cell(v) for v in values]``, computed for the whole column at once.

    A column whose values are all of one plain type (float, int, str or bool, with or without
    missing values) is formatted with that type's rule in one pass; any other column (mixed
    types, dicts, numpy scalars, …) goes value by value through :func:`csv_cell`. The cells are
    the same either way. Numbers and booleans are written by one ``orjson.dumps`` of the
    column (see :func:`_float_cells`); integers beyond 64 bits, which orjson refuses, by
    ``str``.

    >>> csv_column([0.1, None, float("inf"), -2.0, 1e-05])
    ['0.1', '', '', '-2.0', '1e-05']
    >>> csv_column(["=1+1", "-1.5", "a", None])
    ["'=1+1", '-1.5', 'a', '']
    """
    kinds = set(map(type, values))
    missing = _NONE in kinds
    kinds.discard(_NONE)
    if len(kinds) != 1:
        return [csv_cell(v) for v in values] if kinds else [""] * len(values)
    kind = kinds.pop()
    if kind is float:
        return _float_cells(values)
    if (kind is int or kind is bool) and orjson is not None:
        try:
            cells = _json_cells(values)  # an int as str() writes it, a bool as true / false
        except orjson.JSONEncodeError:  # an integer beyond 64 bits
            return [csv_cell(v) for v in values]
        return ["" if cell == "null" else cell for cell in cells] if missing else cells
    if kind is str:
        cells = ["" if v is None else v for v in values] if missing else list(values)
        if _may_start_formula(cells):
            return [neutralize(v) if v.startswith(FORMULA_TRIGGERS) else v for v in cells]
        return cells
    return [csv_cell(v) for v in values]


def _needs_quotes(text: str) -> bool:
    """csv.writer's minimal quoting with our dialect (delimiter ",", quote '"', doubled
    quotes, line terminator CR LF): a field is quoted when it holds one of these characters."""
    return "," in text or '"' in text or "\r" in text or "\n" in text


def quoted_column(cells: list[str]) -> list[str]:
    r"""The column's cells as csv.writer writes them (QUOTE_MINIMAL, quotes doubled inside).

    A column without any character that needs quoting (the usual case: numbers, names) is
    checked in one search per character and returned as it is.

    >>> quoted_column(["a", "1,5", ""])
    ['a', '"1,5"', '']
    """
    if not _needs_quotes("\x00".join(cells)):
        return cells
    return ['"' + cell.replace('"', '""') + '"' if _needs_quotes(cell) else cell for cell in cells]


def csv_lines(columns: Sequence[list[str]]) -> str:
    r"""The CSV text of rows given as columns of cells, as csv.writer with the line
    terminator CR LF writes them: each column quoted at once, then the rows joined.

    A row of a single empty field is written as two quotes, as csv.writer does, so that it
    is not read back as an empty line.

    >>> csv_lines([["1", "2"], ["a,b", ""]])
    '1,"a,b"\r\n2,\r\n'
    """
    if not columns or not columns[0]:
        return ""
    if len(columns) == 1:
        return "".join((cell or '""') + "\r\n" for cell in quoted_column(columns[0]))
    lines = map(",".join, zip(*map(quoted_column, columns), strict=True))
    return "\r\n".join(lines) + "\r\n"
