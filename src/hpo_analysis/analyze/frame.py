"""The trial table as the findings read it: one DataFrame, its flags, its groups, its direction.

Every finding starts from :func:`trial_frame` (built once by :func:`~hpo_analysis.analyze.
all_findings`), picks its trials with the selectors here (scored, known divergence, finite
columns), and walks the budgets through :func:`per_budget`, so that grouping, budget order, the
thresholds and the rule for "best" are written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from ..finding import budget_sort_key, horizon_sort_key

_NUMERIC: tuple[str, ...] = (
    "trial_num",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "lr",
    "weight_decay",
    "warmup_steps",
    "dropout",
    "batch_size",
    "epochs_config",
    "objective",
    "val_loss",
    "train_loss",
    "best_epoch",
    "epochs_trained",
    "rank_in_study",
    "diverge_epoch",
    "last_val_loss",
)
_OBJECTS: tuple[str, ...] = (
    "study",
    "budget",
    "horizon",
    "direction",
    "state",
    "arch_category",
    "arch_style",
    "stop_reason",
    "diverge_kind",
    "diverged",
    "early_stopped",
)


def trial_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a DataFrame holding every column the findings use, whatever the rows carry.

    Numbers become float64 (missing → NaN); text and flags stay Python objects so that ``None``
    stays ``None`` and a flag is only true when it is ``True``.

    >>> frame = trial_frame([{"study": "s", "d_model": 64}])
    >>> str(frame["d_model"].dtype), bool(frame["n_layers"].isna()[0]), frame.loc[0, "diverged"]
    ('float64', True, None)
    """
    rows = list(rows)
    data: dict[str, pd.Series] = {}
    for name in _OBJECTS:
        data[name] = pd.Series([r.get(name) for r in rows], dtype=object)
    for name in _NUMERIC:
        values = [r.get(name) for r in rows]
        clean = [
            float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
            for v in values
        ]
        data[name] = pd.Series(clean, dtype=float)
    # Flags decided once: exactly True / exactly False (None matches neither), and "scored".
    for flag in ("diverged", "early_stopped"):
        for value in (True, False):
            data[f"_{flag}_{str(value).lower()}"] = pd.Series(
                [isinstance(v, (bool, np.bool_)) and bool(v) is value for v in data[flag]],
                dtype=bool,
            )
    data["_scored"] = (
        data["state"].eq("COMPLETE")
        & pd.Series(np.isfinite(data["objective"].to_numpy()))
        & data["_diverged_false"]
    ).astype(bool)
    return pd.DataFrame(data)


Rows: TypeAlias = "Sequence[dict[str, Any]] | pd.DataFrame"


def _known(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Rows where every one of ``columns`` is a finite number."""
    return frame[np.isfinite(frame[columns].to_numpy(float)).all(axis=1)]


def _counts(values: pd.Series, *, whole: bool = True) -> dict[Any, int]:
    """How often each value occurs (missing values left out), as plain Python numbers."""
    counts: dict[Any, int] = {}
    for value in values.dropna().tolist():
        key = int(value) if whole else float(value)
        counts[key] = counts.get(key, 0) + 1
    return counts


def as_frame(rows: Rows) -> pd.DataFrame:
    """``rows`` as a trial frame; a frame passes through (all_findings builds it once)."""
    return rows if isinstance(rows, pd.DataFrame) else trial_frame(rows)


def _flag(frame: pd.DataFrame, column: str, value: bool) -> pd.Series:
    """Rows whose flag is exactly ``value`` (unknown flags match neither True nor False)."""
    return frame[f"_{column}_{str(value).lower()}"]


def _scored(frame: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials with a finite objective that did not diverge."""
    return frame[frame["_scored"]]


def _known_divergence(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(_flag(frame, "diverged", True) | _flag(frame, "diverged", False)).astype(bool)]


def _groups(
    frame: pd.DataFrame, column: str, key: Callable[[Any], Any]
) -> list[tuple[Any, pd.DataFrame]]:
    positions: dict[Any, list[int]] = {}
    for position, value in enumerate(frame[column].tolist()):
        positions.setdefault(value, []).append(position)
    return [(v, frame.iloc[positions[v]]) for v in sorted(positions, key=key)]


def _budget_groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(_label(b), g) for b, g in _groups(frame, "budget", budget_sort_key)]


def _horizon_groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    known = frame[frame["horizon"].map(lambda h: h is not None).astype(bool)]
    return [(str(h), g) for h, g in _groups(known, "horizon", horizon_sort_key)]


def _direction(frame: pd.DataFrame) -> str | None:
    """The one direction of these trials (minimize when none is given); None when mixed."""
    directions = {d for d in frame["direction"].tolist() if d is not None}
    if len(directions) > 1:
        return None
    return directions.pop() if directions else "minimize"


def _ranked(frame: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Best first in ``direction``; ties by study and trial number so the order is stable."""
    sign = 1.0 if direction == "minimize" else -1.0
    ordered = frame.assign(_score=sign * frame["objective"])
    return ordered.sort_values(["_score", "study", "trial_num"], kind="mergesort")


def _better(direction: str) -> str:
    return "lower" if direction == "minimize" else "higher"


def _int(value: Any) -> int | None:
    return None if value is None or not math.isfinite(float(value)) else int(value)


def _by_budget(rows: Sequence[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("budget"), []).append(row)
    return {b: groups[b] for b in sorted(groups, key=budget_sort_key)}


def _label(budget: str | None) -> str:
    return budget if budget is not None else "(none)"
