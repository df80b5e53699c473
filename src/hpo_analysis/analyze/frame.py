"""The trial table as the findings read it: one DataFrame, its flags, its groups, its direction.

Every finding starts from :func:`trial_frame` (built once by :func:`~hpo_analysis.analyze.
all_findings`), picks its trials with the selectors here (scored, known divergence, finite
columns), and walks the budgets through :func:`per_budget`, so that grouping, budget order, the
thresholds and the rule for "best" are written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from ..finding import INSUFFICIENT, MIXED, budget_sort_key, horizon_sort_key

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


def _numbers(values: list[Any]) -> np.ndarray:
    """The values as float64: ints and floats as ``float(v)``, anything else (None, bool,
    text) NaN.

    When the values are only ints, floats and None (what the rows hold), numpy converts the
    list in one call, with the same numbers (None becomes NaN); other lists are converted
    value by value.

    >>> _numbers([1, 2.5, None, True, "3"]).tolist()
    [1.0, 2.5, nan, nan, nan]
    """
    if set(map(type, values)) <= {int, float, type(None)}:
        try:
            return np.array(values, dtype=float)
        except OverflowError:  # an int beyond float64: float(v) raises it below as well
            pass
    return np.array(
        [
            float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
            for v in values
        ],
        dtype=float,
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
        data[name] = pd.Series(_numbers([r.get(name) for r in rows]), dtype=float)
    # Flags decided once: exactly True / exactly False (None matches neither), and "scored".
    for flag in ("diverged", "early_stopped"):
        flags = data[flag].tolist()
        for value in (True, False):
            data[f"_{flag}_{str(value).lower()}"] = pd.Series(
                [isinstance(v, (bool, np.bool_)) and bool(v) is value for v in flags],
                dtype=bool,
            )
    data["_scored"] = (
        data["state"].eq("COMPLETE")
        & pd.Series(np.isfinite(data["objective"].to_numpy()))
        & data["_diverged_false"]
    ).astype(bool)
    return pd.DataFrame(data)


Rows: TypeAlias = "Sequence[dict[str, Any]] | pd.DataFrame"


def _where(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``frame[mask]``; the frame itself when every row is kept (the findings only read their
    frames, so the same rows need no copy)."""
    return frame if mask.all() else frame[mask]


def _known(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Rows where every one of ``columns`` is a finite number."""
    mask = np.ones(len(frame), dtype=bool)
    for column in columns:
        mask &= np.isfinite(frame[column].to_numpy(float))
    return _where(frame, mask)


def _map_distinct(values: pd.Series, function: Callable[[Any], Any]) -> pd.Series:
    """``values.map(function)`` calling ``function`` once per distinct value (for functions
    that give equal values the same result, such as a band of a number).

    >>> _map_distinct(pd.Series([3.0, 1.0, 3.0]), lambda v: f"<{v:g}>").tolist()
    ['<3>', '<1>', '<3>']
    """
    if not len(values):
        return values.map(function)
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    mapped = pd.Series([function(value) for value in distinct])  # its dtype as map infers it
    return pd.Series(mapped.to_numpy()[codes], index=values.index)


def _is_not_none(values: pd.Series) -> np.ndarray:
    """Where the values are not None, as a numpy mask."""
    items = values.tolist()
    return np.fromiter((v is not None for v in items), dtype=bool, count=len(items))


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
    return _where(frame, frame["_scored"].to_numpy(bool))


def _scored_known(*columns: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A selector of the scored trials whose ``columns`` are all finite numbers."""
    return lambda frame: _known(_scored(frame), list(columns))


def _known_divergence(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(_flag(frame, "diverged", True) | _flag(frame, "diverged", False)).astype(bool)]


def _groups(
    frame: pd.DataFrame, column: str, key: Callable[[Any], Any]
) -> list[tuple[Any, pd.DataFrame]]:
    values = frame[column].tolist()
    code_of = {value: code for code, value in enumerate(dict.fromkeys(values))}  # first seen
    codes = np.fromiter(map(code_of.__getitem__, values), dtype=np.int64, count=len(values))
    # the rows of each value in frame order: a stable sort by value code, cut where it changes
    order = np.argsort(codes, kind="stable")
    cuts = np.searchsorted(codes[order], np.arange(1, len(code_of)))
    positions = np.split(order, cuts)
    return [(v, frame.iloc[positions[code_of[v]]]) for v in sorted(code_of, key=key)]


def _budget_groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(_label(b), g) for b, g in _groups(frame, "budget", budget_sort_key)]


def _horizon_groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    known = _where(frame, _is_not_none(frame["horizon"]))
    return [(str(h), g) for h, g in _groups(known, "horizon", horizon_sort_key)]


# --- The direction rule: one definition of "best" for every finding -------------------------


def direction_of(directions: Iterable[str | None]) -> str | None:
    """The one direction of a set of trials, or None when they mix minimize and maximize.

    Trials without a direction count as minimize (the pipeline's default). Every finding that
    names a best trial, ranks trials, takes a top-k or compares objectives goes through this
    rule and :func:`sign`: a set of trials whose objectives point different ways has no best,
    so the finding says ``mixed directions`` instead of comparing across them.

    >>> direction_of(["maximize", None, "maximize"]), direction_of([None]), direction_of([])
    ('maximize', 'minimize', 'minimize')
    >>> direction_of(["minimize", "maximize"]) is None
    True
    """
    found = {d for d in directions if d is not None}
    if len(found) > 1:
        return None
    return found.pop() if found else "minimize"


def _direction(frame: pd.DataFrame) -> str | None:
    """:func:`direction_of` the trials of ``frame``."""
    return direction_of(frame["direction"].tolist())


def sign(direction: str | None) -> float:
    """+1 for minimize, -1 for maximize: ``sign · objective`` is lower for the better trial.

    >>> sign("minimize"), sign("maximize")
    (1.0, -1.0)
    """
    return -1.0 if direction == "maximize" else 1.0


def _ranked(frame: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Best first in ``direction``; ties by study and trial number so the order is stable."""
    ordered = frame.assign(_score=sign(direction) * frame["objective"])
    return ordered.iloc[_rank_order(frame, direction)]


def _study_codes(studies: list[Any]) -> np.ndarray | None:
    """Each study's position among the sorted distinct names, missing ones (None, NaN) after
    all of them; None when a study is neither text nor missing."""
    names = set(studies)
    missing = {s for s in names if s is None or (isinstance(s, float) and s != s)}
    names -= missing
    if not all(isinstance(s, str) for s in names):
        return None
    code_of: dict[Any, int] = {s: i for i, s in enumerate(sorted(names))}
    code_of.update(dict.fromkeys(missing, len(code_of)))
    return np.fromiter(map(code_of.__getitem__, studies), dtype=np.int64, count=len(studies))


def _rank_order(frame: pd.DataFrame, direction: str) -> np.ndarray:
    """The positions of :func:`_ranked`'s rows in ``frame``: best first in ``direction``, ties
    by study and trial number, then in frame order.

    ``sort_values`` of several columns sorts each column's categorical codes (sorted distinct
    values, missing ones last) with one stable ``numpy.lexsort``; for numbers the codes order
    as the numbers themselves do in ``lexsort`` (``-0.0`` equal to ``0.0``, NaN last), so the
    numbers are sorted as they are and the study names by their codes. Names that are not
    text take ``sort_values`` itself.
    """
    studies = _study_codes(frame["study"].tolist())
    score = sign(direction) * frame["objective"].to_numpy(float)
    if studies is None:
        ordered = frame.assign(_score=score, _position=np.arange(len(frame)))
        ranked = ordered.sort_values(["_score", "study", "trial_num"], kind="mergesort")
        positions: np.ndarray = ranked["_position"].to_numpy()
        return positions
    return np.lexsort((frame["trial_num"].to_numpy(float), studies, score))


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


# --- The per-budget walk every finding shares -----------------------------------------------


@dataclass(frozen=True)
class Budget:
    """One budget's trials as a finding sees them.

    ``trials`` are the ones the finding selected (e.g. the scored ones), ``whole`` every trial
    of the budget, ``direction`` the :func:`direction_of` the selected trials (None: mixed),
    and ``directed`` whether the finding compares objectives at all (only then do mixed
    directions matter).
    """

    label: str
    trials: pd.DataFrame
    whole: pd.DataFrame
    direction: str | None
    directed: bool

    @property
    def n(self) -> int:
        return len(self.trials)

    def marker(self, n: int | None = None, min_n: int = 0) -> str | None:
        """Why there is no answer: ``mixed directions`` for a directed finding whose trials
        mix directions, ``insufficient data`` when ``n`` (default: the selected trials) is
        below ``min_n``, else None (go ahead)."""
        if self.directed and self.direction is None:
            return MIXED
        return INSUFFICIENT if (self.n if n is None else n) < min_n else None

    def reason(self) -> str:
        """Why a statistic that could not be computed is missing: mixed directions or too few
        trials (for tests such as a correlation that also need variation)."""
        return MIXED if self.directed and self.direction is None else INSUFFICIENT


@dataclass
class Tally:
    """What a finding collects over its budgets: table rows, sentence parts, interval records,
    the budgets with nothing to report (``quiet``) and the number of trials behind it all."""

    table: list[list[Any]] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    estimates: list[dict[str, Any]] = field(default_factory=list)
    quiet: list[str] = field(default_factory=list)
    total: int = 0


def per_budget(
    frame: pd.DataFrame,
    compute: Callable[[Budget, Tally], None],
    *,
    select: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    directed: bool = False,
    min_n: int | None = None,
    short: Callable[[Budget, str], list[Any]] | None = None,
    count: bool = True,
    pooled: bool = False,
) -> Tally:
    """Walk the budgets of ``frame`` in budget order and let ``compute`` answer for each.

    For each budget: ``select`` picks the trials the finding looks at; ``count`` adds their
    number to ``Tally.total``; when ``short`` is given and the budget has no answer (mixed
    directions of a ``directed`` finding, or fewer than ``min_n`` selected trials) the row
    ``short(budget, marker)`` and the part ``"<budget> <marker> (n = <n>)"`` stand in for it;
    otherwise ``compute(budget, tally)`` appends its rows, parts and estimates. With
    ``pooled`` an ``all budgets`` group of every trial follows the budgets.

    >>> frame = trial_frame([{"budget": b, "objective": 1.0} for b in ("2B", "2M", "2M")])
    >>> def count(budget: Budget, tally: Tally) -> None:
    ...     tally.table.append([budget.label, budget.n, budget.direction])
    >>> per_budget(frame, count, pooled=True).table
    [['2M', 2, 'minimize'], ['2B', 1, 'minimize'], ['all budgets', 3, 'minimize']]
    """
    tally = Tally()
    groups = _budget_groups(frame)
    if pooled:
        groups.append(("all budgets", frame))
    for label, whole in groups:
        trials = select(whole) if select is not None else whole
        budget = Budget(label, trials, whole, _direction(trials), directed)
        if count:
            tally.total += budget.n
        marker = budget.marker(min_n=min_n or 0) if short is not None else None
        if marker is not None and short is not None:
            tally.table.append(short(budget, marker))
            tally.parts.append(f"{label} {marker} (n = {budget.n})")
            continue
        compute(budget, tally)
    return tally
