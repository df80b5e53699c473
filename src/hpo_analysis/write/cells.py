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
