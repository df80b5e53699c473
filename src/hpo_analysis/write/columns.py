"""The values of a table's columns, taken from its rows (dicts) a block of rows at a time.

Rows built one by one lie scattered in memory: visiting every row once per column costs
about three times visiting each row once for all of its values, so the writers take a block
of rows at a time and turn it into columns (memory holds one block's values, not the
table's).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

BLOCK_ROWS = 4096


def block_columns(
    rows: Sequence[dict[str, Any]], names: Sequence[str], block_rows: int | None = None
) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """Per block of ``block_rows`` rows (default :data:`BLOCK_ROWS`), the values of each of
    ``names`` (``row.get(name)``, None where the row lacks it), one tuple per name.

    >>> list(block_columns([{"a": 1, "b": 2}, {"a": 3}], ["a", "b"]))
    [((1, 3), (2, None))]
    """
    size = block_rows or BLOCK_ROWS
    for start in range(0, len(rows), size):
        block = rows[start : start + size]
        yield tuple(zip(*[tuple(map(row.get, names)) for row in block], strict=True))
