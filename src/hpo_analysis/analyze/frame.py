"""The trial table as the findings read it: numpy columns, its flags, its groups, its direction.

Every finding starts from :func:`trial_frame` (built once by :func:`~hpo_analysis.analyze.
all_findings`), picks its trials with the selectors here (scored, known divergence, finite
columns), and walks the budgets through :func:`per_budget`, so that grouping, budget order, the
thresholds and the rule for "best" are written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import numpy as np

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

# the row values trial_frame reads
FRAME_COLUMNS: tuple[str, ...] = _OBJECTS + _NUMERIC


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


class Frame:
    """The trial table as the findings read it: one numpy array per column.

    Numbers are float64 (missing → NaN); text and flags are object arrays, so that ``None``
    stays ``None`` and a flag is only true when it is ``True``. A selection of rows
    (:meth:`take`, :meth:`where`) keeps the positions of its rows in the whole table and takes a
    column's values only when the column is read, once: a finding reads a few of the columns
    of each selection it makes, and a selection copies nothing it does not read. Columns a
    finding adds to a selection (:meth:`with_columns`) are held as long as the selection.
    """

    __slots__ = ("_base", "_positions", "_extra", "_taken", "_length")

    def __init__(
        self,
        columns: dict[str, np.ndarray],
        positions: np.ndarray | None = None,
        extra: dict[str, np.ndarray] | None = None,
        *,
        length: int | None = None,
    ) -> None:
        self._base = columns
        self._positions = positions
        self._extra = extra or {}
        self._taken: dict[str, np.ndarray] = {}
        if positions is not None:
            self._length = len(positions)
        elif length is not None:
            self._length = length
        else:
            self._length = len(next(iter(columns.values()))) if columns else 0

    def __len__(self) -> int:
        return self._length

    @property
    def columns(self) -> list[str]:
        return [*self._base, *(name for name in self._extra if name not in self._base)]

    def __getitem__(self, name: str) -> np.ndarray:
        """The values of column ``name`` of these rows (read-only: the findings only read)."""
        extra = self._extra.get(name)
        if extra is not None:
            return extra
        if self._positions is None:
            return self._base[name]
        taken = self._taken.get(name)
        if taken is None:
            taken = self._base[name][self._positions]
            taken.flags.writeable = False
            self._taken[name] = taken
        return taken

    def take(self, positions: np.ndarray | Sequence[int]) -> Frame:
        """The rows at ``positions`` (of this selection), in that order."""
        at = np.asarray(positions, dtype=np.intp)
        extra = {name: values[at] for name, values in self._extra.items()}
        return Frame(self._base, at if self._positions is None else self._positions[at], extra)

    def where(self, mask: np.ndarray) -> Frame:
        """The rows where ``mask`` is true; the selection itself when every row is kept (the
        findings only read their selections, so the same rows need no copy)."""
        mask = np.asarray(mask, dtype=bool)
        return self if mask.all() else self.take(np.flatnonzero(mask))

    def with_columns(self, **columns: np.ndarray) -> Frame:
        """These rows with more columns, each as long as the selection."""
        for name, values in columns.items():
            if len(values) != len(self):
                raise ValueError(f"column {name} has {len(values)} values for {len(self)} rows")
        return Frame(self._base, self._positions, {**self._extra, **columns}, length=len(self))

    def value(self, name: str, position: int) -> Any:
        """The value of column ``name`` in the row at ``position`` of this selection."""
        extra = self._extra.get(name)
        if extra is not None:
            return extra[position]
        at = position if self._positions is None else self._positions[position]
        return self._base[name][at]

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (to hold results to pandas; the findings and the
        report never need one)."""
        import pandas as pd

        # each column keeps its dtype (text stays Python objects, as the findings read it)
        return pd.DataFrame(
            {name: pd.Series(self[name], dtype=self[name].dtype) for name in self.columns}
        )


class _Row:
    """One row of a :class:`Frame`, read a value at a time: ``row["objective"]``."""

    __slots__ = ("_frame", "_position")

    def __init__(self, frame: Frame, position: int) -> None:
        self._frame, self._position = frame, position

    def __getitem__(self, name: str) -> Any:
        return self._frame.value(name, self._position)


def _row(frame: Frame, position: int) -> _Row:
    """The row at ``position`` of ``frame``."""
    return _Row(frame, int(position))


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """The mean and the sample standard deviation (ddof = 1; NaN for one value) of numbers
    that are not NaN, computed as pandas computes them: the mean as the sum over the count,
    the variance in two passes, ``Σ (mean − x)² / (n − 1)``.

    >>> _mean_std(np.array([1.0, 2.0, 4.0]))
    (2.3333333333333335, 1.5275252316519465)
    """
    n = len(values)
    mean = float(values.sum(dtype=np.float64) / n) if n else math.nan
    if n <= 1:
        return mean, math.nan
    variance = ((mean - values) ** 2).sum(dtype=np.float64) / (n - 1)
    return mean, float(np.sqrt(variance))


def _objects(values: list[Any]) -> np.ndarray:
    """The values as a one-dimensional object array (lists stay single values)."""
    return np.fromiter(values, dtype=object, count=len(values))


def trial_frame(rows: Iterable[dict[str, Any]]) -> Frame:
    """The rows as a :class:`Frame` holding every column the findings use, whatever the rows
    carry.

    Numbers become float64 (missing → NaN); text and flags stay Python objects so that ``None``
    stays ``None`` and a flag is only true when it is ``True``.

    >>> frame = trial_frame([{"study": "s", "d_model": 64}])
    >>> str(frame["d_model"].dtype), bool(np.isnan(frame["n_layers"][0])), frame["diverged"][0]
    ('float64', True, None)
    """
    rows = list(rows)
    data: dict[str, np.ndarray] = {}
    for name in _OBJECTS:
        data[name] = _objects([r.get(name) for r in rows])
    for name in _NUMERIC:
        data[name] = _numbers([r.get(name) for r in rows])
    # Flags decided once: exactly True / exactly False (None matches neither), and "scored".
    for flag in ("diverged", "early_stopped"):
        flags = data[flag].tolist()
        for value in (True, False):
            data[f"_{flag}_{str(value).lower()}"] = np.fromiter(
                (isinstance(v, (bool, np.bool_)) and bool(v) is value for v in flags),
                dtype=bool,
                count=len(flags),
            )
    data["_scored"] = (
        _equals(data["state"], "COMPLETE")
        & np.isfinite(data["objective"])
        & data["_diverged_false"]
    )
    for column in data.values():
        column.flags.writeable = False
    return Frame(data, length=len(rows))


Rows: TypeAlias = "Sequence[dict[str, Any]] | Frame"


def _equals(values: np.ndarray, value: Any) -> np.ndarray:
    """Where the (object) values equal ``value``, as a numpy mask."""
    items = values.tolist()
    return np.fromiter((v == value for v in items), dtype=bool, count=len(items))


def _known(frame: Frame, columns: list[str]) -> Frame:
    """Rows where every one of ``columns`` is a finite number."""
    mask = np.ones(len(frame), dtype=bool)
    for column in columns:
        mask &= np.isfinite(frame[column])
    return frame.where(mask)


def _map_distinct(values: np.ndarray, function: Callable[[Any], Any]) -> np.ndarray:
    """``[function(v) for v in values]`` as an object array, calling ``function`` once per
    distinct value (for functions that give equal values the same result, such as a band of a
    number).

    >>> _map_distinct(np.array([3.0, 1.0, 3.0]), lambda v: f"<{v:g}>").tolist()
    ['<3>', '<1>', '<3>']
    """
    items = values.tolist()
    results: dict[Any, Any] = {}
    mapped = []
    for value in items:
        try:
            result = results[value]
        except KeyError:
            result = results[value] = function(value)
        mapped.append(result)
    return _objects(mapped)


def _is_not_none(values: np.ndarray) -> np.ndarray:
    """Where the values are not None, as a numpy mask."""
    items = values.tolist()
    return np.fromiter((v is not None for v in items), dtype=bool, count=len(items))


def _not_nan(values: np.ndarray) -> np.ndarray:
    """The numbers that are not NaN (what pandas' ``dropna`` keeps of a float column)."""
    return values[~np.isnan(values)]


def _counts(values: np.ndarray, *, whole: bool = True) -> dict[Any, int]:
    """How often each value occurs (missing values left out), as plain Python numbers."""
    counts: dict[Any, int] = {}
    for value in _not_nan(values).tolist():
        key = int(value) if whole else float(value)
        counts[key] = counts.get(key, 0) + 1
    return counts


def as_frame(rows: Rows) -> Frame:
    """``rows`` as a trial frame; a frame passes through (all_findings builds it once)."""
    return rows if isinstance(rows, Frame) else trial_frame(rows)


def _flag(frame: Frame, column: str, value: bool) -> np.ndarray:
    """Rows whose flag is exactly ``value`` (unknown flags match neither True nor False)."""
    return frame[f"_{column}_{str(value).lower()}"]


def _scored(frame: Frame) -> Frame:
    """COMPLETE trials with a finite objective that did not diverge."""
    return frame.where(frame["_scored"])


def _scored_known(*columns: str) -> Callable[[Frame], Frame]:
    """A selector of the scored trials whose ``columns`` are all finite numbers."""
    return lambda frame: _known(_scored(frame), list(columns))


def _known_divergence(frame: Frame) -> Frame:
    return frame.where(_flag(frame, "diverged", True) | _flag(frame, "diverged", False))


def _missing(value: Any) -> bool:
    """None or NaN: a value that a group-by leaves out."""
    return value is None or (isinstance(value, float) and value != value)


def group_by(frame: Frame, columns: Sequence[str], *, sort: bool = True) -> list[tuple[Any, Frame]]:
    """The rows of each distinct key of ``columns`` (a value for one column, a tuple for
    several), as pandas' ``groupby`` walks them: keys with a missing value (None, NaN) are
    left out, each group keeps the frame's row order, and the groups come sorted by key
    (``sort``) or in the order of their first row.

    >>> f = trial_frame([{"d_model": d} for d in (2.0, 1.0, None, 2.0)])
    >>> [(k, len(g)) for k, g in group_by(f, ["d_model"])]
    [(1.0, 1), (2.0, 2)]
    """
    values = [frame[c].tolist() for c in columns]
    keys: list[Any] = values[0] if len(columns) == 1 else list(zip(*values, strict=True))
    members: dict[Any, list[int]] = {}
    for position, key in enumerate(keys):
        if len(columns) == 1:
            if _missing(key):
                continue
        elif any(map(_missing, key)):
            continue
        found = members.get(key)
        if found is None:
            members[key] = [position]
        else:
            found.append(position)
    order = sorted(members) if sort else list(members)
    return [(key, frame.take(members[key])) for key in order]


def _groups(frame: Frame, column: str, key: Callable[[Any], Any]) -> list[tuple[Any, Frame]]:
    values = frame[column].tolist()
    code_of = {value: code for code, value in enumerate(dict.fromkeys(values))}  # first seen
    codes = np.fromiter(map(code_of.__getitem__, values), dtype=np.int64, count=len(values))
    # the rows of each value in frame order: a stable sort by value code, cut where it changes
    order = np.argsort(codes, kind="stable")
    cuts = np.searchsorted(codes[order], np.arange(1, len(code_of)))
    positions = np.split(order, cuts)
    return [(v, frame.take(positions[code_of[v]])) for v in sorted(code_of, key=key)]


def _budget_groups(frame: Frame) -> list[tuple[str, Frame]]:
    return [(_label(b), g) for b, g in _groups(frame, "budget", budget_sort_key)]


def _horizon_groups(frame: Frame) -> list[tuple[str, Frame]]:
    known = frame.where(_is_not_none(frame["horizon"]))
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


def _direction(frame: Frame) -> str | None:
    """:func:`direction_of` the trials of ``frame``."""
    return direction_of(frame["direction"].tolist())


def sign(direction: str | None) -> float:
    """+1 for minimize, -1 for maximize: ``sign · objective`` is lower for the better trial.

    >>> sign("minimize"), sign("maximize")
    (1.0, -1.0)
    """
    return -1.0 if direction == "maximize" else 1.0


def _ranked(frame: Frame, direction: str) -> Frame:
    """Best first in ``direction``; ties by study and trial number so the order is stable.
    The rows carry their ``_score``: ``sign · objective``, lower for the better trial."""
    scored = frame.with_columns(_score=sign(direction) * frame["objective"])
    return scored.take(_rank_order(frame, direction))


def _sorted_distinct(names: set[Any]) -> list[Any]:
    """Distinct values in sorted order; when they are not all comparable (text and numbers),
    the numbers first, then the text, each sorted (as pandas sorts the categories of a mixed
    column)."""
    try:
        return sorted(names)
    except TypeError:
        text = sorted(n for n in names if isinstance(n, str))
        return sorted(n for n in names if not isinstance(n, str)) + text


def _study_codes(studies: list[Any]) -> np.ndarray:
    """Each study's position among the sorted distinct names, missing ones (None, NaN) after
    all of them."""
    names = set(studies)
    missing = {s for s in names if _missing(s)}
    code_of: dict[Any, int] = {s: i for i, s in enumerate(_sorted_distinct(names - missing))}
    code_of.update(dict.fromkeys(missing, len(code_of)))
    return np.fromiter(map(code_of.__getitem__, studies), dtype=np.int64, count=len(studies))


def _rank_order(frame: Frame, direction: str) -> np.ndarray:
    """The positions of :func:`_ranked`'s rows in ``frame``: best first in ``direction``, ties
    by study and trial number, then in frame order.

    One stable ``numpy.lexsort`` of the score, the study's code (its place among the sorted
    distinct names, missing ones last) and the trial number: for numbers ``lexsort`` orders
    as a sort of the values does (``-0.0`` equal to ``0.0``, NaN last). This is the order of
    pandas' ``sort_values`` over the three columns (a test holds the two together).
    """
    studies = _study_codes(frame["study"].tolist())
    score = sign(direction) * frame["objective"]
    return np.lexsort((frame["trial_num"], studies, score))


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
    trials: Frame
    whole: Frame
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
    # False: the answer for this budget is not kept for a later run (a failure that another
    # run may not meet, e.g. out of memory); see :mod:`.memo`
    keep: bool = True


class _Answers(Protocol):
    """What :func:`per_budget` asks of a :class:`~.memo.BudgetMemo`."""

    def answer(
        self,
        compute: Callable[[Budget, Tally], None],
        budget: Budget,
        tally: Tally,
        select: Callable[[Frame], Frame] | None,
    ) -> None: ...


# the answers kept from the last run, within memo.kept_budgets()
_MEMO: ContextVar[_Answers | None] = ContextVar("_MEMO", default=None)


def per_budget(
    frame: Frame,
    compute: Callable[[Budget, Tally], None],
    *,
    select: Callable[[Frame], Frame] | None = None,
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
    otherwise ``compute(budget, tally)`` appends its rows, parts and estimates (and only
    appends: within :func:`.memo.kept_budgets`, what it appended for a budget whose rows did
    not change since the last run is appended again instead). With ``pooled`` an ``all
    budgets`` group of every trial follows the budgets.

    >>> frame = trial_frame([{"budget": b, "objective": 1.0} for b in ("2B", "2M", "2M")])
    >>> def count(budget: Budget, tally: Tally) -> None:
    ...     tally.table.append([budget.label, budget.n, budget.direction])
    >>> per_budget(frame, count, pooled=True).table
    [['2M', 2, 'minimize'], ['2B', 1, 'minimize'], ['all budgets', 3, 'minimize']]
    """
    tally = Tally()
    memo = _MEMO.get()  # the answers of unchanged budgets, kept from the last run
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
        if memo is None:
            compute(budget, tally)
        else:
            memo.answer(compute, budget, tally, select)
    return tally
