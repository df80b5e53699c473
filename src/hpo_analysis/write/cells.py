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
import math
import re
from collections.abc import Sequence
from typing import Any

from ..jsonio import dumps_strict

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


def csv_column(values: Sequence[Any]) -> list[str]:
    """``[csv_cell(v) for v in values]``, computed for the whole column at once.

    A column whose values are all of one plain type (float, int, str or bool, with or without
    missing values) is formatted with that type's rule in one pass; any other column (mixed
    types, dicts, numpy scalars, …) goes value by value through :func:`csv_cell`. The cells are
    the same either way.

    >>> csv_column([0.1, None, float("inf"), -2.0])
    ['0.1', '', '', '-2.0']
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
        import numpy as np

        cells = (
            [repr(v) for v in values]
            if not missing
            else ["" if v is None else repr(v) for v in values]
        )
        for position in np.flatnonzero(~np.isfinite(np.array(values, dtype=float))).tolist():
            cells[position] = ""  # NaN, ±inf and (as NaN) missing values
        return cells
    if kind is int:
        return (
            [str(v) for v in values]
            if not missing
            else ["" if v is None else str(v) for v in values]
        )
    if kind is str:
        return [
            "" if v is None else neutralize(v) if v.startswith(FORMULA_TRIGGERS) else v
            for v in values
        ]
    if kind is bool:
        return ["" if v is None else "true" if v else "false" for v in values]
    return [csv_cell(v) for v in values]


# csv.writer's minimal quoting with our dialect (delimiter ",", quote '"', doubled quotes,
# line terminator CR LF): a field is quoted when it holds one of these characters.
_NEEDS_QUOTES = re.compile('[,"\r\n]')


def quoted_column(cells: list[str]) -> list[str]:
    r"""The column's cells as csv.writer writes them (QUOTE_MINIMAL, quotes doubled inside).

    A column without any character that needs quoting (the usual case: numbers, names) is
    checked in one search and returned as it is.

    >>> quoted_column(["a", "1,5", ""])
    ['a', '"1,5"', '']
    """
    if not _NEEDS_QUOTES.search("\x00".join(cells)):
        return cells
    return [
        '"' + cell.replace('"', '""') + '"' if _NEEDS_QUOTES.search(cell) else cell
        for cell in cells
    ]


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
