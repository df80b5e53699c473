"""``hpo-analysis query``: run SQL over an extracted dataset and print the result.

The tables ``trials``, ``curves`` and ``diverged`` are DuckDB views over the Parquet files (see
:class:`hpo_analysis.api.Dataset`). The result is printed as an aligned text table (at most
``max_rows`` rows, with a note when more exist), or as CSV or JSON lines for other programs.

Example::

    >>> from hpo_analysis.api import load
    >>> frame = load("outputs/analysis").sql("SELECT 1 AS one")  # doctest: +SKIP
    >>> print(render(frame, "table"))  # doctest: +SKIP
     one
       1
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

Format = Literal["table", "csv", "json"]
FORMATS: tuple[str, ...] = ("table", "csv", "json")

EXAMPLES = {
    "best trial per study": (
        "SELECT study, trial_num, objective FROM trials WHERE is_best_in_study ORDER BY study"
    ),
    "divergence counts by budget": (
        "SELECT budget, count(*) AS trials, count(*) FILTER (WHERE diverged) AS diverged "
        "FROM trials GROUP BY budget, budget_params ORDER BY budget_params"
    ),
    "the curve of one trial": (
        "SELECT epoch, train_loss, val_loss, val_auc FROM curves "
        "WHERE study = 'phase6a_2B_h1_threshold_1pct' AND trial_num = 2 ORDER BY epoch"
    ),
}


def render(frame: pd.DataFrame, fmt: Format = "table", max_rows: int | None = 50) -> str:
    """The result as text: an aligned table, CSV (RFC 4180) or JSON lines (one object a row).

    Missing and NaN values: the table shows ``NaN`` (``<NA>`` in integer columns), CSV an
    empty cell, JSON ``null`` (strict JSON); infinities are ``inf`` in the table and CSV and
    ``null`` in JSON. DuckDB itself keeps NULL and NaN apart (``isnan(x)``, ``x IS NULL``).
    """
    if fmt == "csv":
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, lineterminator="\n", na_rep="")
        return buffer.getvalue()
    if fmt == "json":
        from .jsonio import dumps_bytes

        lines = [
            dumps_bytes({k: _plain(v) for k, v in record.items()}).decode("utf-8")
            for record in frame.to_dict(orient="records")
        ]
        return "".join(line + "\n" for line in lines)
    shown = frame if max_rows is None or len(frame) <= max_rows else frame.head(max_rows)
    if frame.columns.empty:
        return "(no result)\n"
    text = shown.to_string(index=False) if len(shown) else _empty(frame)
    note = ""
    if len(shown) < len(frame):
        note = (
            f"\n... {len(frame) - len(shown)} more rows ({len(frame)} in all); "
            "use --max-rows 0 or --format csv for all"
        )
    return text + note + "\n"


def _empty(frame: pd.DataFrame) -> str:
    return "  ".join(str(c) for c in frame.columns) + "\n(0 rows)"


def _plain(value: object) -> object:
    """pandas/numpy scalars as plain Python values (missing values as None)."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
