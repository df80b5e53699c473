"""Findings computed from the trial rows: small tables, their n and one plain sentence each.

Computation is separate from rendering: each function returns a :class:`Finding`, and the README
writer, ``findings.json`` and the HTML report only draw it. Every number in a sentence is taken
from the finding's own table, formatted as the table renders it.

The rows are the flat per-trial dicts the pipeline builds (keys are schema column names). Where a
sample is too small to say anything, the table says ``insufficient data`` instead of a number:

- ``MIN_N`` (5): any statistic of one sample (a best trial, top-k, rate, median, quartiles, mean,
  standard deviation, rank correlation);
- ``MIN_GROUP`` (3): each cell of a breakdown (a depth band, a depth, a d_model within a
  budget) and each side of a two-group comparison (diverged vs not diverged);
- ``MIN_IMPORTANCE_TRIALS`` (20): parameter importance of a budget.

Objective-based answers use the *scored* trials: COMPLETE, finite objective, not diverged (a
diverged trial's objective is often a sentinel such as 100.0). "Best" follows each study's
direction; a budget mixing minimize and maximize studies has no comparable objective.

Example::

    >>> rows = [{"budget": "2M", "diverged": d} for d in (False, False, False, True, True)]
    >>> divergence_by_budget(rows).rows
    [['2M', 5, 2, '40.0%', '0.0%', '80.0%']]
    >>> divergence_by_budget(rows[:4]).rows
    [['2M', 4, 1, 'insufficient data', None, None]]
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from . import stats
from .finding import (  # noqa: F401  (re-exported: the analysis's public names)
    ARCH_CATEGORIES,
    DEFAULT_TOP_K,
    DIVERGENCE_PARAMS,
    IMPORTANCE_PARAMS,
    INSUFFICIENT,
    LARGE_DELTA,
    MAX_IMPORTANCE_TRIALS,
    MIN_GROUP,
    MIN_IMPORTANCE_TRIALS,
    MIN_N,
    MIXED,
    SECTIONS,
    STYLE_TOP,
    THRESHOLDS,
    THRESHOLDS_TEXT,
    Finding,
    budget_sort_key,
    horizon_sort_key,
)
from .stats import Estimate, interval_text


def _by_budget(rows: Sequence[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("budget"), []).append(row)
    return {b: groups[b] for b in sorted(groups, key=budget_sort_key)}


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def _label(budget: str | None) -> str:
    return budget if budget is not None else "(none)"


def divergence_by_budget(rows: Sequence[dict[str, Any]]) -> Finding:
    table = []
    estimates: list[dict[str, Any]] = []
    for budget, group in _by_budget(rows).items():
        flags = [bool(r.get("diverged")) for r in group]
        diverged = sum(flags)
        if len(group) >= MIN_N:
            estimate = stats.rate(flags)
            estimates.append(_record(estimate, 4, budget=_label(budget)))
            table.append([_label(budget), len(group), diverged, _pct(diverged, len(group))])
            table[-1].extend(_pct_ci(estimate))
        else:
            table.append([_label(budget), len(group), diverged, INSUFFICIENT, None, None])
    total = sum(1 for r in rows if r.get("diverged"))
    hit = [f"{r[0]} ({r[2]} of {r[1]})" for r in table if r[2]]
    if len(table) > 1:
        table.append(["all budgets", len(rows), total, _pct(total, len(rows)), None, None])
    if not rows:
        sentence = "No trials were read."
    elif not hit:
        sentence = f"None of the {len(rows)} trials diverged."
    else:
        sentence = (
            f"{total} of {len(rows)} trials diverged ({_pct(total, len(rows))}); "
            f"by budget: {', '.join(hit)}."
        )
    return Finding(
        "divergence_by_budget",
        "Trials and diverged trials per budget",
        ["budget", "trials", "diverged", "diverged_rate", "ci_low", "ci_high"],
        table,
        sentence,
        len(rows),
        estimates=estimates,
    )


def early_stopping_by_budget(rows: Sequence[dict[str, Any]]) -> Finding:
    """Share of non-diverged trials with a known early_stopped flag that stopped early.

    A diverged trial cannot stop early (its flag is False), so counting it in the
    denominator would lower the rate of exactly the budgets that diverge most.
    """
    table: list[list[Any]] = []
    estimates: list[dict[str, Any]] = []
    parts: list[str] = []
    for budget, group in _by_budget(rows).items():
        known = [
            r for r in group if r.get("early_stopped") is not None and r.get("diverged") is not True
        ]
        flags = [bool(r["early_stopped"]) for r in known]
        stopped = sum(flags)
        diverged = sum(1 for r in group if r.get("diverged") is True)
        if len(known) >= MIN_N:
            estimate = stats.rate(flags)
            estimates.append(_record(estimate, 4, budget=_label(budget)))
            row = [_label(budget), len(known), stopped, _pct(stopped, len(known))]
            row += [*_pct_ci(estimate), diverged]
            parts.append(f"{row[0]} {_rate_text(estimate)} of {len(known)}")
        else:
            row = [_label(budget), len(known), stopped, INSUFFICIENT, None, None, diverged]
            if known:
                parts.append(f"{row[0]} {INSUFFICIENT} (n = {len(known)})")
        table.append(row)
    n = sum(r[1] for r in table)
    if not n:
        sentence = (
            "No non-diverged trial has both a learning curve and a configured epoch count, so "
            "early stopping cannot be measured."
        )
    else:
        sentence = (
            "Early stopping among non-diverged trials with a curve and epochs_config: "
            + ", ".join(parts)
            + "."
        )
    return Finding(
        "early_stopping_by_budget",
        "Early-stopping rate per budget (non-diverged trials)",
        [
            "budget",
            "non_diverged_with_flag",
            "early_stopped",
            "early_stop_rate",
            "ci_low",
            "ci_high",
            "diverged_left_out",
        ],
        table,
        sentence,
        n,
        estimates=estimates,
    )


def best_trial_per_study(rows: Sequence[dict[str, Any]]) -> Finding:
    table = []
    studies: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        studies.setdefault(row["study"], []).append(row)
    for study in sorted(studies):
        group = studies[study]
        best = sorted(
            (r for r in group if r.get("rank_in_study") == 1), key=lambda r: r["trial_num"]
        )
        ranked = sum(1 for r in group if r.get("rank_in_study"))
        if best:
            b = best[0]
            table.append(
                [
                    study,
                    b["trial_num"],
                    b["objective"],
                    b.get("d_model"),
                    b.get("n_layers"),
                    b.get("n_heads"),
                    b.get("lr"),
                    ranked,
                ]
            )
        else:
            table.append([study, None, None, None, None, None, None, ranked])
    with_best = [r for r in table if r[1] is not None]
    if not with_best:
        sentence = "No study has a ranked trial."
    else:
        top = (
            min(with_best, key=lambda r: r[2])
            if all(r.get("direction") != "maximize" for r in rows)
            else max(with_best, key=lambda r: r[2])
        )
        sentence = (
            f"{len(with_best)} of {len(table)} studies have a best trial; the best "
            f"objective overall is {top[2]:.6g} (study {top[0]}, trial {top[1]})."
        )
    return Finding(
        "best_trial_per_study",
        "Best trial per study",
        [
            "study",
            "trial_num",
            "objective",
            "d_model",
            "n_layers",
            "n_heads",
            "lr",
            "ranked_trials",
        ],
        table,
        sentence,
        len(rows),
    )


# --------------------------------------------------------------------------------------------
# Shared machinery: the trial table as a DataFrame, scored trials, direction, formatting.
# --------------------------------------------------------------------------------------------

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


def _sig(value: float) -> float:
    """Six significant digits: exactly what a table cell shows, so sentences can quote it."""
    return float(f"{value:.6g}") + 0.0


def _r3(value: float) -> float:
    return round(float(value), 3) + 0.0


def fmt(value: Any) -> str:
    """A value as the tables render it (floats to 6 significant digits).

    >>> fmt(0.61234567), fmt(12.0), fmt(None), fmt("h3")
    ('0.612346', '12', '', 'h3')
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def spearman(x: pd.Series, y: pd.Series) -> float | None:
    """Spearman's rank correlation, rounded to 3 decimals, or None when it cannot be computed.

    Computed as Pearson's r of the average ranks (the textbook definition, which pandas
    implements without SciPy). None with fewer than ``MIN_N`` complete pairs or when either
    side is constant.

    >>> spearman(pd.Series([1, 2, 3, 4, 5]), pd.Series([5, 6, 7, 8, 7]))
    0.821
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < MIN_N or np.unique(a).size < 2 or np.unique(b).size < 2:
        return None
    rho = pd.Series(a).rank().corr(pd.Series(b).rank())
    return _r3(rho) if math.isfinite(rho) else None


def cliffs_delta(a: Sequence[float] | pd.Series, b: Sequence[float] | pd.Series) -> float:
    """Cliff's δ = (#{a_i > b_j} − #{a_i < b_j}) / (len(a)·len(b)), rounded to 3 decimals.

    +1: every value of ``a`` is above every value of ``b``; 0: no tendency. Computed from the
    Mann–Whitney U statistic of average ranks (δ = 2U/(n_a·n_b) − 1), so memory stays linear.

    >>> cliffs_delta([3, 4], [1, 2, 3])
    0.833
    """
    first = pd.Series(np.asarray(a, dtype=float))
    second = pd.Series(np.asarray(b, dtype=float))
    ranks = pd.concat([first, second], ignore_index=True).rank()
    n_a, n_b = len(first), len(second)
    # Average ranks are whole or half numbers, so twice their sum is an exact integer and δ an
    # exact fraction, rounded once: a tie such as -0.2125 rounds the same on every machine.
    rank_sum = float(ranks.iloc[:n_a].sum())
    if not n_a or not n_b or not math.isfinite(rank_sum):
        return _r3(math.nan)
    twice_u = round(2 * rank_sum) - n_a * (n_a + 1)
    return float(round(Fraction(twice_u - n_a * n_b, n_a * n_b), 3)) + 0.0


def _quantiles(values: pd.Series) -> tuple[float, float, float]:
    q1, median, q3 = (float(values.quantile(q)) for q in (0.25, 0.5, 0.75))
    return _sig(q1), _sig(median), _sig(q3)


def _budgets_sentence(
    lead: str,
    parts: Sequence[str],
    calm: Sequence[str],
    calm_phrase: str,
    all_calm: str | None,
    nothing: str,
) -> str:
    """One sentence over the budgets of a divergence finding: ``lead`` and the budgets with
    something to say, then ``calm_phrase`` and the budgets without divergence; ``all_calm``
    (formatted with those budgets) when none diverged, ``nothing`` when there is no data.

    >>> _budgets_sentence("By depth: ", ["2B: 48 layers 3 of 9"], ["2M"], "none in", None, "-")
    'By depth: 2B: 48 layers 3 of 9; none in 2M.'
    >>> _budgets_sentence("", [], ["2M", "2B"], "none in", "No trial diverged ({}).", "-")
    'No trial diverged (2M, 2B).'
    """
    if parts:
        tail = f"; {calm_phrase} {', '.join(calm)}." if calm else "."
        return lead + "; ".join(parts) + tail
    if calm and all_calm is not None:
        return all_calm.format(", ".join(calm))
    return nothing


def _finding(
    id_: str,
    section: str,
    title: str,
    columns: list[str],
    table: list[list[Any]],
    sentence: str,
    n: int,
    notes: str,
    estimates: list[dict[str, Any]] | None = None,
) -> Finding:
    return Finding(id_, title, columns, table, sentence, n, notes, section, estimates or [])


def _ci(estimate: Estimate, places: int = 3) -> list[float | None]:
    """The interval as two table cells, rounded like the value next to them."""
    rounded = estimate.rounded(places)
    return [rounded.ci_low, rounded.ci_high]


def _pct_ci(estimate: Estimate) -> list[str | None]:
    """A rate's interval as two percentage cells."""
    return [None if x is None else f"{100.0 * x:.1f}%" for x in (estimate.ci_low, estimate.ci_high)]


def _record(estimate: Estimate, places: int = 3, **context: Any) -> dict[str, Any]:
    """The estimate as findings.json stores it (rounded as the table shows it)."""
    return estimate.rounded(places).to_dict(**context)


def _rho(x: pd.Series, y: pd.Series) -> Estimate | None:
    """Spearman's ρ with its bootstrap interval; None where :func:`spearman` gives none."""
    if spearman(x, y) is None:
        return None
    return stats.spearman(x, y).rounded(3)


def _rho_text(estimate: Estimate, reading: str) -> str:
    """``ρ = 0.02 (95% CI -0.14…0.18; no clear effect, n = 150)``: value, interval, words."""
    return f"ρ = {fmt(estimate.value)} ({interval_text(estimate)}; {reading}, n = {estimate.n})"


def _rate_text(estimate: Estimate) -> str:
    share = _pct(round(estimate.value * estimate.n), estimate.n)
    return f"{share} ({interval_text(estimate, percent=True)})"


def _points_text(estimate: Estimate) -> str:
    """A difference of two rates in percentage points with its interval."""
    if estimate.ci_low is None or estimate.ci_high is None:
        return f"difference {100 * estimate.value:.1f} points"
    low, high = (f"{100 * x:.1f}" for x in (estimate.ci_low, estimate.ci_high))
    return f"difference {100 * estimate.value:.1f} points, 95% CI {low}…{high}"


CI_NOTE = (
    f"Intervals: {stats.METHOD}; a correlation or effect whose interval contains 0 is "
    "reported as `no clear effect`."
)


# --------------------------------------------------------------------------------------------
# Architecture patterns
# --------------------------------------------------------------------------------------------


def best_architecture(rows: Rows) -> Finding:
    """The best scored trial of each budget and its architecture (direction-aware)."""
    frame = as_frame(rows)
    table: list[list[Any]] = []
    parts: list[str] = []
    total = 0
    for budget, group in _budget_groups(frame):
        scored = _scored(group)
        n = len(scored)
        total += n
        direction = _direction(scored)
        if direction is None:
            table.append([budget, n, MIXED] + [None] * 8)
            parts.append(f"{budget} {MIXED} (n = {n})")
            continue
        if n < MIN_N:
            table.append([budget, n, direction, INSUFFICIENT] + [None] * 7)
            parts.append(f"{budget} {INSUFFICIENT} (n = {n})")
            continue
        best = _ranked(scored, direction).iloc[0]
        row = [
            budget,
            n,
            direction,
            float(best["objective"]),
            _int(best["d_model"]),
            _int(best["n_layers"]),
            _int(best["n_heads"]),
            _int(best["d_ff"]),
            best["arch_style"],
            best["study"],
            _int(best["trial_num"]),
        ]
        table.append(row)
        parts.append(
            f"{budget} d_model {fmt(row[4])}, n_layers {fmt(row[5])}, n_heads {fmt(row[6])} "
            f"(objective {fmt(row[3])}, n = {n})"
        )
    sentence = (
        "Best trial per budget: " + "; ".join(parts) + "." if parts else "No trials were read."
    )
    return _finding(
        "best_architecture",
        "Architecture patterns",
        "Best trial's architecture per budget",
        [
            "budget",
            "n",
            "direction",
            "objective",
            "d_model",
            "n_layers",
            "n_heads",
            "d_ff",
            "arch_style",
            "study",
            "trial_num",
        ],
        table,
        sentence,
        total,
        f"n = scored trials of the budget (all horizons); needs n ≥ {MIN_N}; arch_style is "
        "relative to the budget's own architectures.",
    )


def top_k_architecture(rows: Rows, top_k: int = DEFAULT_TOP_K) -> Finding:
    """How often each d_model and n_layers value appears among a budget's top-k scored trials.

    ``in_all`` gives the same count among all scored trials of the budget: a value that is
    common at the top only because it was sampled often shows the same share in both.
    """
    frame = as_frame(rows)
    table: list[list[Any]] = []
    parts: list[str] = []
    total = 0
    for budget, group in _budget_groups(frame):
        scored = _scored(group)
        n = len(scored)
        total += n
        direction = _direction(scored)
        if direction is None or n < MIN_N:
            marker = MIXED if direction is None else INSUFFICIENT
            table.append([budget, n, None, "d_model, n_layers", marker, None, None, None, None])
            parts.append(f"{budget} {marker} (n = {n})")
            continue
        k = min(top_k, n)
        top = _ranked(scored, direction).head(k)
        modes = []
        for parameter in ("d_model", "n_layers"):
            in_top = _counts(top[parameter])
            in_all = _counts(scored[parameter])
            for value in sorted(in_all):
                count = in_top.get(value, 0)
                table.append(
                    [
                        budget,
                        n,
                        k,
                        parameter,
                        value,
                        count,
                        _pct(count, k),
                        in_all[value],
                        _pct(in_all[value], n),
                    ]
                )
            if in_top:
                mode, mode_count = sorted(in_top.items(), key=lambda item: (-item[1], item[0]))[0]
                modes.append(
                    f"{parameter} {mode} ({mode_count} of the top {k}; {in_all[mode]} of all {n})"
                )
        parts.append(f"{budget}: " + ", ".join(modes))
    sentence = (
        f"Most common among each budget's top {top_k} scored trials: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return _finding(
        "top_k_architecture",
        "Architecture patterns",
        f"d_model and n_layers among the top {top_k} trials per budget",
        [
            "budget",
            "n",
            "k",
            "parameter",
            "value",
            "in_top_k",
            "share_of_top_k",
            "in_all",
            "share_of_all",
        ],
        table,
        sentence,
        total,
        f"k = min(--top-k, scored trials of the budget); needs ≥ {MIN_N} scored trials; "
        "in_all counts all scored trials of the budget.",
    )


def architecture_style(rows: Rows) -> Finding:
    """Per budget and arch_style: best objective and the mean ± std of its best 10 trials.

    The style is relative to the budget's own architectures (``arch_style``); the fixed
    thresholds of ``arch_category`` put every 200M and 2B architecture into one category.
    """
    frame = as_frame(rows)
    table: list[list[Any]] = []
    parts: list[str] = []
    total = 0
    for budget, group in _budget_groups(frame):
        scored = _scored(group)
        total += len(scored)
        direction = _direction(scored)
        candidates: list[list[Any]] = []
        for category in ARCH_CATEGORIES:
            cell = scored[scored["arch_style"].eq(category).astype(bool)]
            n = len(cell)
            if not n:
                continue
            known = _known(cell, ["d_model", "n_layers"])
            shapes = ", ".join(
                f"{int(d)}×{int(n_l)}"
                for d, n_l in sorted(
                    {(d, n_l) for d, n_l in zip(known["d_model"], known["n_layers"], strict=True)}
                )
            )
            if direction is None or n < MIN_N:
                marker = MIXED if direction is None else INSUFFICIENT
                table.append([budget, category, n, shapes, marker, None, None, None, None, None])
                continue
            top = _ranked(cell, direction).head(STYLE_TOP)["objective"]
            mean, std = float(top.mean()), float(top.std(ddof=1))
            if std <= 1e-12 * max(1.0, abs(mean)):  # equal values: rounding noise, not spread
                std = 0.0
            med = stats.median(cell["objective"])
            row = [
                budget,
                category,
                n,
                shapes,
                _sig(float(top.iloc[0])),
                len(top),
                _sig(mean),
                _sig(std),
                _sig(med.value),
                f"{fmt(_sig(med.ci_low or math.nan))}…{fmt(_sig(med.ci_high or math.nan))}",
            ]
            table.append(row)
            candidates.append(row)
        if direction is None:
            parts.append(f"{budget} {MIXED}")
        elif not candidates:
            parts.append(f"{budget} {INSUFFICIENT}")
        else:
            sign = 1.0 if direction == "minimize" else -1.0
            best = min(candidates, key=lambda r: sign * r[6])
            alone = "the only style with enough trials; " if len(candidates) == 1 else ""
            parts.append(
                f"{budget} {best[1]} ({alone}top-{best[5]} mean {fmt(best[6])} ± "
                f"{fmt(best[7])}, median {fmt(best[8])} with 95% CI {best[9]}, n = {best[2]}; "
                f"{len(candidates)} styles with ≥ {MIN_N} trials)"
            )
    sentence = (
        "Best architecture style per budget (styles relative to the budget's own depth/width "
        "ratios) by the mean objective of its best trials: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return _finding(
        "architecture_style",
        "Architecture patterns",
        "Architecture style per budget (arch_style: narrow-deep / balanced / wide-shallow "
        "within the budget)",
        [
            "budget",
            "arch_style",
            "n",
            "architectures (d_model×n_layers)",
            "best_objective",
            "top_n",
            "top_mean",
            "top_std",
            "median_objective",
            "median_95ci",
        ],
        table,
        sentence,
        total,
        "arch_style ranks the distinct n_layers/d_model ratios of each budget and splits them "
        "into thirds (see the data dictionary); the fixed-threshold arch_category "
        f"(--arch-thresholds) stays in the tables. top = the best min({STYLE_TOP}, n) scored "
        "trials of the style; std is the sample standard deviation (ddof = 1); the median's "
        f"interval: {stats.METHOD}; needs n ≥ {MIN_N} per style.",
    )


def depth_band(n_layers: float) -> str:
    """Power-of-two band of a depth: 1, 2, 3-4, 5-8, 9-16, 17-32, 33-64, …

    >>> [depth_band(n) for n in (1, 2, 3, 8, 9, 48)]
    ['1', '2', '3-4', '5-8', '9-16', '33-64']
    """
    depth = int(n_layers)
    high = 1 << (depth - 1).bit_length()
    low = high // 2 + 1
    return str(high) if low >= high else f"{low}-{high}"


def divergence_by_depth(rows: Rows) -> Finding:
    """Divergence rate per budget and n_layers band (all trials whose divergence is known)."""
    frame = _known_divergence(as_frame(rows))
    frame = frame[np.isfinite(frame["n_layers"]) & (frame["n_layers"] >= 1)]
    estimates: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    parts: list[str] = []
    calm: list[str] = []
    for budget, group in _budget_groups(frame):
        bands = group.assign(_band=group["n_layers"].map(depth_band))
        hit = []
        for band, cell in sorted(
            bands.groupby("_band", sort=False), key=lambda item: int(str(item[0]).split("-")[0])
        ):
            diverged = int(_flag(cell, "diverged", True).sum())
            interval: list[Any] = [None, None]
            if len(cell) >= MIN_GROUP:
                rate = _pct(diverged, len(cell))
                estimate = stats.rate(_flag(cell, "diverged", True).to_numpy(bool))
                estimates.append(_record(estimate, 4, budget=budget, n_layers_band=band))
                interval = _pct_ci(estimate)
            else:
                rate = INSUFFICIENT
            table.append([budget, band, len(cell), diverged, rate, *interval])
            if diverged:
                hit.append(f"{band} layers {diverged} of {len(cell)} ({rate})")
        if hit:
            parts.append(f"{budget}: " + ", ".join(hit))
        else:
            calm.append(budget)
    sentence = _budgets_sentence(
        "Diverged trials by depth band: ",
        parts,
        calm,
        "no divergence at any depth in",
        "No trial diverged at any depth ({}).",
        "No trial has both a known depth and a known divergence flag.",
    )
    return _finding(
        "divergence_by_depth",
        "Architecture patterns",
        "Divergence rate by n_layers band per budget",
        ["budget", "n_layers_band", "trials", "diverged", "diverged_rate", "ci_low", "ci_high"],
        table,
        sentence,
        len(frame),
        f"Bands are powers of two (1, 2, 3-4, 5-8, …); a rate needs ≥ {MIN_GROUP} trials in the "
        f"band; all trials with a known diverged flag count. {CI_NOTE}",
        estimates,
    )


def _confound_text(group: pd.DataFrame) -> str:
    """``; depth is confounded with width: …`` for a budget with such widths, else empty."""
    confounds = confounded_widths(group)
    if not confounds:
        return ""
    return (
        "; depth is confounded with width: "
        + ", ".join(f"d_model {w} only with {d} layers" for w, d, _ in confounds)
        + ", and divergence depends on lr × depth (see the interaction table)"
    )


def max_reliable_depth(rows: Rows) -> Finding:
    """Per budget: the largest n_layers with at least MIN_GROUP trials and none diverged.

    Also shows the shallowest depth at which any trial diverged, which can be shallower than
    the reliable depth (a deeper depth may simply have had luckier trials).
    """
    frame = _known_divergence(as_frame(rows))
    frame = frame[np.isfinite(frame["n_layers"])]
    table: list[list[Any]] = []
    parts: list[str] = []
    for budget, group in _budget_groups(frame):
        diverged_at = group.assign(_div=_flag(group, "diverged", True).astype(int))
        per_depth = diverged_at.groupby("n_layers")["_div"].agg(["size", "sum"])
        enough = per_depth[per_depth["size"] >= MIN_GROUP]
        clean = enough[enough["sum"] == 0]
        diverged_depths = per_depth[per_depth["sum"] > 0].index
        shallowest = int(min(diverged_depths)) if len(diverged_depths) else None
        deepest = int(per_depth.index.max())
        n_div = int(per_depth["sum"].sum())
        if not len(enough):
            reliable: Any = INSUFFICIENT
            at_depth = None
            parts.append(f"{budget} {INSUFFICIENT} (no depth has {MIN_GROUP} trials)")
        elif not len(clean):
            reliable, at_depth = "none", None
            parts.append(
                f"{budget} none (every depth with ≥ {MIN_GROUP} trials had a divergence"
                f"{_confound_text(group) if n_div else ''})"
            )
        else:
            reliable = int(clean.index.max())
            at_depth = int(clean.loc[clean.index.max(), "size"])
            text = f"{budget} {reliable} layers ({at_depth} trials"
            if shallowest is not None:
                text += f"; shallowest divergence at {shallowest} layers"
            else:
                text += "; no trial of the budget diverged"
            if shallowest is not None:
                text += _confound_text(group)
            parts.append(text + ")")
        confounded = ", ".join(f"{w}×{d}" for w, d, _ in confounded_widths(group))
        table.append(
            [budget, len(group), n_div, reliable, at_depth, shallowest, deepest, confounded]
        )
    sentence = (
        f"Largest depth with no divergence among ≥ {MIN_GROUP} trials: " + "; ".join(parts) + "."
        if parts
        else "No trial has both a known depth and a known divergence flag."
    )
    return _finding(
        "max_reliable_depth",
        "Architecture patterns",
        "Largest reliable depth per budget",
        [
            "budget",
            "trials",
            "diverged",
            "max_reliable_depth",
            "trials_at_that_depth",
            "shallowest_diverged_depth",
            "deepest_depth_tried",
            "widths_with_one_depth (d_model×n_layers)",
        ],
        table,
        sentence,
        len(frame),
        f"max_reliable_depth: the largest n_layers value with ≥ {MIN_GROUP} trials and no "
        f"diverged trial; `none` when every depth with ≥ {MIN_GROUP} trials had a divergence. "
        f"widths_with_one_depth: d_model values (≥ {MIN_GROUP} trials) only ever tried at one "
        "depth, whose effect cannot be told apart from that depth's.",
    )


def _heads_reading(estimate: Estimate, direction: str) -> str:
    worse_when_positive = direction == "minimize"
    more_worse, more_better = "more heads, worse objective", "more heads, better objective"
    if worse_when_positive:
        return stats.reading(estimate, more_worse, more_better)
    return stats.reading(estimate, more_better, more_worse)


def heads_correlation(rows: Rows) -> Finding:
    """Spearman's ρ of n_heads with the objective per budget (scored trials), with its CI."""
    frame = as_frame(rows)
    table: list[list[Any]] = []
    parts: list[str] = []
    estimates: list[dict[str, Any]] = []
    total = 0
    for budget, group in _budget_groups(frame):
        scored = _scored(group)
        scored = scored[np.isfinite(scored["n_heads"])]
        n = len(scored)
        total += n
        direction = _direction(scored)
        rho = _rho(scored["n_heads"], scored["objective"]) if direction else None
        if direction is None:
            table.append([budget, n, None, MIXED, None, None, None])
            parts.append(f"{budget} {MIXED}")
        elif rho is None:
            table.append([budget, n, direction, INSUFFICIENT, None, None, None])
            parts.append(f"{budget} {INSUFFICIENT} (n = {n})")
        else:
            reading = _heads_reading(rho, direction)
            table.append([budget, n, direction, rho.value, *_ci(rho), reading])
            estimates.append(rho.to_dict(budget=budget))
            parts.append(f"{budget} {_rho_text(rho, reading)}")
    sentence = (
        "Spearman rank correlation of n_heads with the objective: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return replace(
        _finding(
            "heads_correlation",
            "Architecture patterns",
            "n_heads vs objective (Spearman) per budget",
            ["budget", "n", "direction", "spearman_rho", "ci_low", "ci_high", "reading"],
            table,
            sentence,
            total,
            f"Spearman's ρ = Pearson's r of average ranks; needs ≥ {MIN_N} scored trials and "
            f"variation in both; the reading follows the study direction. {CI_NOTE}",
        ),
        estimates=estimates,
    )


def best_heads_per_width(rows: Rows) -> Finding:
    """Per budget and d_model: the n_heads of the best scored trial (does it move with width?)."""
    frame = as_frame(rows)
    table: list[list[Any]] = []
    parts: list[str] = []
    total = 0
    for budget, group in _budget_groups(frame):
        scored = _scored(group)
        scored = scored[np.isfinite(scored["d_model"]) & np.isfinite(scored["n_heads"])]
        total += len(scored)
        direction = _direction(scored)
        pairs = []
        for d_model, cell in sorted(scored.groupby("d_model"), key=lambda item: item[0]):
            tried = ", ".join(str(int(h)) for h in sorted(cell["n_heads"].unique()))
            if direction is None or len(cell) < MIN_GROUP:
                marker = MIXED if direction is None else INSUFFICIENT
                table.append([budget, int(d_model), len(cell), tried, marker, None])
                continue
            best = _ranked(cell, direction).iloc[0]
            row = [budget, int(d_model), len(cell), tried, int(best["n_heads"])]
            row.append(float(best["objective"]))
            table.append(row)
            pairs.append(f"{row[1]} → {row[4]}")
        if pairs:
            parts.append(f"{budget} " + ", ".join(pairs))
    sentence = (
        "Best n_heads per d_model (d_model → n_heads): " + "; ".join(parts) + "."
        if parts
        else f"No d_model has {MIN_GROUP} scored trials."
    )
    return _finding(
        "best_heads_per_width",
        "Architecture patterns",
        "Best n_heads per d_model",
        ["budget", "d_model", "n", "n_heads_tried", "best_n_heads", "objective"],
        table,
        sentence,
        total,
        f"needs ≥ {MIN_GROUP} scored trials per d_model.",
    )


def heads_controlled_pairs(rows: Rows) -> Finding:
    """Same study, d_model and n_layers, different n_heads: did more heads do better?

    Within each (study, d_model, n_layers) the best scored trial of each n_heads value is
    taken, and every pair of n_heads values is compared: difference = objective(more heads)
    − objective(fewer heads).
    """
    frame = as_frame(rows)
    estimates: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    parts: list[str] = []
    total = 0
    for budget, group in _budget_groups(frame):
        arch = ["d_model", "n_layers", "n_heads"]
        scored = _known(_scored(group), arch)
        sign = np.where(scored["direction"].eq("maximize"), -1.0, 1.0)
        best = (
            scored.assign(_score=sign * scored["objective"])
            .sort_values(["study", *arch, "_score", "trial_num"], kind="mergesort")
            .drop_duplicates(["study", *arch])
        )
        differences: list[float] = []
        more = fewer = ties = 0
        used = 0
        for _, cell in best.groupby(["study", "d_model", "n_layers"], sort=True):
            if len(cell) < 2:
                continue
            used += len(cell)
            objectives = cell["objective"].tolist()
            scores = cell["_score"].tolist()
            for i in range(len(objectives)):
                for j in range(i + 1, len(objectives)):
                    differences.append(objectives[j] - objectives[i])
                    if scores[j] == scores[i]:
                        ties += 1
                    elif scores[j] < scores[i]:
                        more += 1
                    else:
                        fewer += 1
        total += used
        pairs = len(differences)
        interval: list[Any] = [None, None]
        if pairs >= MIN_N:
            median: Any = _sig(float(np.median(differences)))
            estimate = stats.median(differences)
            estimates.append(_record(estimate, 6, budget=budget))
            interval = [_sig(x) if x is not None else None for x in _ci(estimate, 12)]
        else:
            median = INSUFFICIENT if pairs else None
        table.append([budget, pairs, more, fewer, ties, median, *interval])
        if pairs:
            text = f"{budget} more heads better in {more} of {pairs} pairs"
            if pairs >= MIN_N:
                shown = Estimate("median", median, interval[0], interval[1], pairs)
                unclear = "; no clear effect" if shown.contains_zero() else ""
                text += f" (median difference {fmt(median)}, {interval_text(shown, 12)}{unclear})"
            parts.append(text)
    if parts:
        sentence = (
            "With study, d_model and n_layers fixed: " + "; ".join(parts) + ". Difference = "
            "objective with more heads − objective with fewer heads."
        )
    else:
        sentence = "No two trials share study, d_model and n_layers with different n_heads."
    return _finding(
        "heads_controlled_pairs",
        "Architecture patterns",
        "Controlled n_heads comparisons (same study, d_model and n_layers)",
        [
            "budget",
            "pairs",
            "more_heads_better",
            "fewer_heads_better",
            "ties",
            "median_difference",
            "ci_low",
            "ci_high",
        ],
        table,
        sentence,
        total,
        "Best scored trial per n_heads within each (study, d_model, n_layers); every pair of "
        f"n_heads values counts once; the median needs ≥ {MIN_N} pairs; better follows the "
        f"study direction. n = trials entering a pair. {CI_NOTE}",
        estimates,
    )


def ff_ratio(rows: Rows, top_k: int = DEFAULT_TOP_K) -> Finding:
    """d_ff/d_model among each budget's top-k scored trials, next to all scored trials."""
    frame = as_frame(rows)
    table: list[list[Any]] = []
    parts: list[str] = []
    total = 0
    for budget, group in _budget_groups(frame):
        scored = _scored(group)
        scored = scored[np.isfinite(scored["d_ff"]) & (scored["d_model"] > 0)]
        n = len(scored)
        total += n
        direction = _direction(scored)
        if direction is None or n < MIN_N:
            marker = MIXED if direction is None else INSUFFICIENT
            table.append([budget, None, marker, None, None, None, None, n, None])
            parts.append(f"{budget} {marker} (n = {n})")
            continue
        k = min(top_k, n)
        ratios_all = scored["d_ff"] / scored["d_model"]
        top = _ranked(scored.assign(_ratio=ratios_all), direction).head(k)["_ratio"]
        counts = _counts(top.round(6), whole=False)
        mode_value, mode_count = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0]
        row = [
            budget,
            k,
            _sig(float(top.median())),
            _sig(float(top.min())),
            _sig(float(top.max())),
            _sig(float(mode_value)),
            int(mode_count),
            n,
            _sig(float(ratios_all.median())),
        ]
        table.append(row)
        parts.append(
            f"{budget} median {fmt(row[2])} (range {fmt(row[3])}–{fmt(row[4])}, top {k}; "
            f"all {n} scored trials: median {fmt(row[8])})"
        )
    sentence = (
        "d_ff/d_model among the top trials: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return _finding(
        "ff_ratio",
        "Architecture patterns",
        f"Feed-forward ratio d_ff/d_model among the top {top_k} trials per budget",
        [
            "budget",
            "k",
            "median_ratio_top",
            "min_ratio_top",
            "max_ratio_top",
            "most_common_ratio_top",
            "its_count",
            "n_all",
            "median_ratio_all",
        ],
        table,
        sentence,
        total,
        f"k = min(--top-k, scored trials with d_ff and d_model); needs ≥ {MIN_N} such trials.",
    )


# --------------------------------------------------------------------------------------------
# Training dynamics
# --------------------------------------------------------------------------------------------


def best_epoch_gap(rows: Rows) -> Finding:
    """epochs_trained − best_epoch per budget and stop_reason (non-diverged trials with a curve).

    With 0-based epochs (the usual layout) the gap is one more than the number of epochs
    trained after the best one; an early-stopped run with patience p has a gap of exactly
    p + 1, so a median over all trials only tracks the early-stopped share. Early-stopped and
    completed trials are therefore summarised apart.
    """
    frame = as_frame(rows)
    table: list[list[Any]] = []
    parts: list[str] = []
    estimates: list[dict[str, Any]] = []
    total = 0
    for budget, group in _budget_groups(frame):
        cell_all = group[
            _flag(group, "diverged", False).astype(bool)
            & np.isfinite(group["best_epoch"])
            & np.isfinite(group["epochs_trained"])
        ]
        total += len(cell_all)
        texts = []
        for reason in ("early_stopped", "completed"):
            cell = cell_all[cell_all["stop_reason"].eq(reason).astype(bool)]
            gap = cell["epochs_trained"] - cell["best_epoch"]
            n = len(gap)
            if n < MIN_N:
                table.append([budget, reason, n, INSUFFICIENT, None, None, None, None])
                if n:
                    texts.append(f"{reason} {INSUFFICIENT} (n = {n})")
                continue
            q1, med, q3 = _quantiles(gap)
            estimate = stats.median(gap)
            estimates.append(_record(estimate, 6, budget=budget, stop_reason=reason))
            low, high = (
                _sig(x) if x is not None else None for x in (estimate.ci_low, estimate.ci_high)
            )
            table.append([budget, reason, n, med, low, high, q1, q3])
            spread = "all equal" if q1 == q3 else f"IQR {fmt(q1)}–{fmt(q3)}"
            texts.append(f"{reason} median {fmt(med)} ({spread}, n = {n})")
        if texts:
            parts.append(f"{budget} " + ", ".join(texts))
    sentence = (
        "Gap between epochs_trained and best_epoch by stop reason: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return replace(
        _finding(
            "best_epoch_gap",
            "Training dynamics",
            "Gap between best_epoch and epochs_trained per budget and stop_reason",
            ["budget", "stop_reason", "n", "median_gap", "ci_low", "ci_high", "q1_gap", "q3_gap"],
            table,
            sentence,
            total,
            "gap = epochs_trained − best_epoch (best_epoch as recorded); non-diverged trials with "
            "a curve, early-stopped and completed apart (with patience p an early-stopped "
            "trial's gap is p + 1, so its median says nothing more); quartiles by linear "
            f"interpolation; needs n ≥ {MIN_N}. {CI_NOTE}",
        ),
        estimates=estimates,
    )


def _dropout_reading(
    estimate: Estimate, better_when_negative: bool, subject: tuple[str, str]
) -> str:
    good, bad = f"higher dropout, {subject[0]}", f"higher dropout, {subject[1]}"
    if better_when_negative:
        return stats.reading(estimate, bad, good)
    return stats.reading(estimate, good, bad)


def dropout_generalization(rows: Rows) -> Finding:
    """Spearman's ρ of dropout with the one-epoch val−train gap and with the objective.

    Both losses of the gap come from the last curve epoch (``last_val_loss`` − ``train_loss``):
    ``val_loss`` can be the best epoch's value, and mixing it with the last epoch's train loss
    would mix two points of training.
    """
    frame = as_frame(rows)
    table: list[list[Any]] = []
    parts: list[str] = []
    estimates: list[dict[str, Any]] = []
    total = 0
    for budget, group in _budget_groups(frame):
        healthy = group[
            _flag(group, "diverged", False).astype(bool)
            & np.isfinite(group["dropout"])
            & np.isfinite(group["last_val_loss"])
            & np.isfinite(group["train_loss"])
        ]
        gap = healthy["last_val_loss"] - healthy["train_loss"]
        rho_gap = _rho(healthy["dropout"], gap)
        scored = _scored(group)
        scored = scored[np.isfinite(scored["dropout"])]
        direction = _direction(scored)
        rho_obj = _rho(scored["dropout"], scored["objective"]) if direction else None
        total += max(len(healthy), len(scored))
        row: list[Any] = [budget, len(healthy)]
        texts = []
        if rho_gap is not None:
            reading = _dropout_reading(rho_gap, True, ("smaller gap", "larger gap"))
            row += [rho_gap.value, *_ci(rho_gap)]
            estimates.append(rho_gap.to_dict(budget=budget, outcome="gap"))
            texts.append(f"gap {_rho_text(rho_gap, reading)}")
        else:
            row += [INSUFFICIENT, None, None]
            texts.append(f"gap {INSUFFICIENT} (n = {len(healthy)})")
        row.append(len(scored))
        if rho_obj is not None and direction is not None:
            reading = _dropout_reading(
                rho_obj, direction == "minimize", ("better objective", "worse objective")
            )
            row += [rho_obj.value, *_ci(rho_obj)]
            estimates.append(rho_obj.to_dict(budget=budget, outcome="objective"))
            texts.append(f"objective {_rho_text(rho_obj, reading)}")
        else:
            marker = MIXED if direction is None else INSUFFICIENT
            row += [marker, None, None]
            texts.append(f"objective {marker} (n = {len(scored)})")
        table.append(row)
        parts.append(f"{budget} " + ", ".join(texts))
    sentence = (
        "Spearman correlation of dropout with the last epoch's val−train loss gap and with the "
        "objective: " + "; ".join(parts) + "."
        if parts
        else "No trials were read."
    )
    return replace(
        _finding(
            "dropout_generalization",
            "Training dynamics",
            "Dropout vs generalization gap and objective per budget",
            [
                "budget",
                "n_gap",
                "rho_dropout_gap",
                "gap_ci_low",
                "gap_ci_high",
                "n_objective",
                "rho_dropout_objective",
                "objective_ci_low",
                "objective_ci_high",
            ],
            table,
            sentence,
            total,
            "gap = last_val_loss − train_loss, both from the last curve epoch, of non-diverged "
            "trials (a smaller gap is better generalization); the objective uses scored trials; "
            f"needs ≥ {MIN_N} trials. {CI_NOTE}",
        ),
        estimates=estimates,
    )


# --------------------------------------------------------------------------------------------
# Horizon effects
# --------------------------------------------------------------------------------------------

_ARCH = ["d_model", "n_layers", "n_heads"]


def _arch_best(scored: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Best objective per architecture (d_model, n_layers, n_heads), ranked (1 = best)."""
    ranked = _ranked(_known(scored, _ARCH), direction).drop_duplicates(_ARCH)
    out = ranked[_ARCH + ["objective", "_score"]].reset_index(drop=True)
    out["rank"] = out["_score"].rank(method="min").astype(int)
    return out


def _transfer_table(frame: pd.DataFrame) -> tuple[list[list[Any]], int]:
    """Rows of (budget, horizon, its best architecture, objective, other horizon, rank there,
    architectures there) and the number of scored trials compared."""
    table: list[list[Any]] = []
    total = 0
    for budget, group in _budget_groups(frame):
        scored = _scored(group)
        direction = _direction(scored)
        horizons = _horizon_groups(scored)
        if len(horizons) < 2 or direction is None:
            continue
        bests = {h: _arch_best(g, direction) for h, g in horizons}
        sizes = {h: len(g) for h, g in horizons}
        total += sum(sizes.values())
        for horizon, _ in horizons:
            if sizes[horizon] < MIN_N or bests[horizon].empty:
                table.append([budget, horizon, None, None, None, INSUFFICIENT, None, None, None])
                continue
            top = bests[horizon].iloc[0]
            arch = tuple(int(top[c]) for c in _ARCH)
            for other, _ in horizons:
                if other == horizon:
                    continue
                there = bests[other]
                match = there[
                    (there["d_model"] == arch[0])
                    & (there["n_layers"] == arch[1])
                    & (there["n_heads"] == arch[2])
                ]
                if sizes[other] < MIN_N:
                    rank: Any = INSUFFICIENT
                elif match.empty:
                    rank = "not tried"
                else:
                    rank = int(match["rank"].iloc[0])
                table.append(
                    [budget, horizon, *arch, float(top["objective"]), other, rank, len(there)]
                )
    return table, total


def horizon_transfer(rows: Rows) -> Finding:
    """Within a budget: each horizon's best architecture and its rank in the other horizons.

    Architectures (d_model, n_layers, n_heads) are ranked in a horizon by their best scored
    trial ("min" ranks: ties share the better rank). :func:`horizon_transfer_summary` counts
    how often the rank is 1.
    """
    table, total = _transfer_table(as_frame(rows))
    compared = [r for r in table if r[6] is not None]
    sentence = (
        f"Each horizon's best architecture (d_model, n_layers, n_heads) and its rank among the "
        f"architectures tried in every other horizon of the same budget, {len(compared)} "
        "comparisons; the next table summarises them."
        if compared
        else "No budget has two horizons with enough scored trials to compare."
    )
    return _finding(
        "horizon_transfer",
        "Horizon effects",
        "Do best architectures transfer across horizons?",
        [
            "budget",
            "horizon",
            "d_model",
            "n_layers",
            "n_heads",
            "objective",
            "other_horizon",
            "rank_there",
            "architectures_there",
        ],
        table,
        sentence,
        total,
        f"Ranks are among the architectures tried in the other horizon (1 = best); each horizon "
        f"needs ≥ {MIN_N} scored trials.",
    )


def horizon_transfer_summary(rows: Rows) -> Finding:
    """Per budget and over all budgets: comparisons, how many ranked 1, median rank."""
    detail, total = _transfer_table(as_frame(rows))
    comparisons = [r for r in detail if r[6] is not None and r[7] != INSUFFICIENT]
    budgets: list[str] = []
    for row in comparisons:
        if row[0] not in budgets:
            budgets.append(row[0])
    groups = [(b, [r for r in comparisons if r[0] == b]) for b in budgets]
    if len(groups) > 1:
        groups.append(("all budgets", comparisons))
    table: list[list[Any]] = []
    for budget, chosen in groups:
        ranks = [r[7] for r in chosen if isinstance(r[7], int)]
        not_tried = sum(1 for r in chosen if r[7] == "not tried")
        ones = sum(1 for r in ranks if r == 1)
        median: Any = _sig(float(np.median(ranks))) if len(ranks) >= MIN_N else INSUFFICIENT
        table.append([budget, len(ranks), ones, median, not_tried])
    if table:
        overall = table[-1]
        where = "over all budgets" if overall[0] == "all budgets" else f"in {overall[0]}"
        sentence = (
            f"A horizon's best architecture was also the best in another horizon of the same "
            f"budget in {overall[2]} of {overall[1]} comparisons {where} (median rank "
            f"{fmt(overall[3])}; not tried there: {overall[4]})"
        )
        if len(table) > 1:
            sentence += "; by budget: " + ", ".join(f"{r[0]} {r[2]} of {r[1]}" for r in table[:-1])
        sentence += "."
    else:
        sentence = "No budget has two horizons with enough scored trials to compare."
    return _finding(
        "horizon_transfer_summary",
        "Horizon effects",
        "How often a horizon's best architecture is also best in another horizon",
        ["budget", "comparisons", "also_best", "median_rank", "not_tried"],
        table,
        sentence,
        total,
        f"Comparisons from the previous table (ranked ones; `not tried` counted apart); the "
        f"median rank needs ≥ {MIN_N} comparisons.",
    )


def easiest_horizon(rows: Rows) -> Finding:
    """Best and median objective per horizon, within each budget and over all budgets."""
    frame = as_frame(rows)
    table: list[list[Any]] = []
    estimates: list[dict[str, Any]] = []
    parts: list[str] = []
    scored_all = _scored(frame)
    groups = [(b, _scored(g)) for b, g in _budget_groups(frame)]
    if len({b for b, _ in groups}) > 1:
        groups.append(("all budgets", scored_all))
    for budget, scored in groups:
        direction = _direction(scored)
        horizons = _horizon_groups(scored)
        if not horizons:
            continue
        if direction is None:
            table.append([budget, None, len(scored), None, MIXED, None, None, None])
            parts.append(f"{budget} {MIXED}")
            continue
        sign = 1.0 if direction == "minimize" else -1.0
        cells: list[list[Any]] = []
        for horizon, cell in horizons:
            n = len(cell)
            if n < MIN_N:
                table.append([budget, horizon, n, direction, INSUFFICIENT, None, None, None])
                continue
            row: list[Any] = [
                budget,
                horizon,
                n,
                direction,
                _sig(float((sign * cell["objective"]).min() * sign)),
                _sig(float(cell["objective"].median())),
            ]
            estimate = stats.median(cell["objective"])
            estimates.append(_record(estimate, 12, budget=budget, horizon=horizon))
            row += [_sig(x) if x is not None else None for x in _ci(estimate, 12)]
            table.append(row)
            cells.append(row)
        if len(horizons) == 1:
            parts.append(f"{budget} only {horizons[0][0]} (nothing to compare)")
            continue
        if len(cells) < 2:
            parts.append(f"{budget} {INSUFFICIENT}")
            continue
        by_best = min(cells, key=lambda r: (sign * r[4], horizon_sort_key(r[1])))
        by_median = min(cells, key=lambda r: (sign * r[5], horizon_sort_key(r[1])))
        if by_best is by_median:
            parts.append(
                f"{budget} {by_best[1]} (best {fmt(by_best[4])}, median {fmt(by_best[5])}, "
                f"n = {by_best[2]})"
            )
        else:
            parts.append(
                f"{budget} {by_best[1]} by best ({fmt(by_best[4])}, n = {by_best[2]}) but "
                f"{by_median[1]} by median ({fmt(by_median[5])}, n = {by_median[2]})"
            )
    sentence = (
        "Easiest horizon (best and median objective, in each study's direction): "
        + "; ".join(parts)
        + "."
        if parts
        else "No horizon was parsed from the study names."
    )
    return _finding(
        "easiest_horizon",
        "Horizon effects",
        "Easiest horizon per budget and overall",
        [
            "budget",
            "horizon",
            "n",
            "direction",
            "best_objective",
            "median_objective",
            "median_ci_low",
            "median_ci_high",
        ],
        table,
        sentence,
        len(scored_all),
        f"Easiest = {_better('minimize')} objective for minimize studies, higher for maximize; "
        f"needs ≥ {MIN_N} scored trials per horizon; `all budgets` pools every budget. "
        f"{CI_NOTE}",
        estimates,
    )


def depth_by_horizon(rows: Rows) -> Finding:
    """Spearman's ρ of n_layers with the objective per horizon, per budget and pooled."""
    frame = as_frame(rows)
    table: list[list[Any]] = []
    pooled: list[str] = []
    estimates: list[dict[str, Any]] = []
    groups = [(b, _scored(g)) for b, g in _budget_groups(frame)]
    groups.append(("all budgets", _scored(frame)))
    total = len(groups[-1][1])
    for budget, scored in groups:
        direction = _direction(scored)
        for horizon, cell in _horizon_groups(scored):
            cell = cell[np.isfinite(cell["n_layers"])]
            rho = _rho(cell["n_layers"], cell["objective"]) if direction else None
            if rho is None or direction is None:
                marker = MIXED if direction is None else INSUFFICIENT
                table.append([budget, horizon, len(cell), marker, None, None, None])
                if budget == "all budgets":
                    pooled.append(f"{horizon} {marker} (n = {len(cell)})")
                continue
            worse, better = "deeper, worse objective", "deeper, better objective"
            reading = (
                stats.reading(rho, worse, better)
                if direction == "minimize"
                else stats.reading(rho, better, worse)
            )
            table.append([budget, horizon, len(cell), rho.value, *_ci(rho), reading])
            estimates.append(rho.to_dict(budget=budget, horizon=horizon))
            if budget == "all budgets":
                pooled.append(f"{horizon} {_rho_text(rho, reading)}")
    sentence = (
        "Spearman correlation of n_layers with the objective per horizon, all budgets pooled: "
        + "; ".join(pooled)
        + " (per-budget values in the table)."
        if pooled
        else "No horizon was parsed from the study names."
    )
    return replace(
        _finding(
            "depth_by_horizon",
            "Horizon effects",
            "Do deeper models help more for longer horizons?",
            ["budget", "horizon", "n", "spearman_rho_n_layers", "ci_low", "ci_high", "reading"],
            table,
            sentence,
            total,
            f"Scored trials; needs ≥ {MIN_N} per cell; the pooled rows mix budgets, whose sizes "
            f"also change depth, so read the per-budget rows for a controlled view. {CI_NOTE}",
        ),
        estimates=estimates,
    )


# --------------------------------------------------------------------------------------------
# Divergence patterns
# --------------------------------------------------------------------------------------------


def divergence_hyperparameters(rows: Rows) -> Finding:
    """Diverged vs non-diverged trials of the same budget: medians and Cliff's δ per parameter.

    δ > 0 means the diverged trials tend to have the larger value. One parameter at a time:
    where parameters are confounded (see :func:`divergence_interactions`), δ of one of them
    carries the other's effect too.
    """
    frame = _known_divergence(as_frame(rows))
    table: list[list[Any]] = []
    parts: list[str] = []
    calm: list[str] = []
    estimates: list[dict[str, Any]] = []
    for budget, group in _budget_groups(frame):
        diverged = group[_flag(group, "diverged", True).astype(bool)]
        healthy = group[_flag(group, "diverged", False).astype(bool)]
        if diverged.empty:
            calm.append(budget)
            continue
        rows_here: list[list[Any]] = []
        for parameter in DIVERGENCE_PARAMS:
            a = diverged[parameter].dropna()
            b = healthy[parameter].dropna()
            if len(a) < MIN_GROUP or len(b) < MIN_GROUP:
                table.append([budget, parameter, len(a), len(b), None, None, INSUFFICIENT])
                table[-1] += [None, None]
                continue
            delta = stats.cliffs_delta(a, b).rounded(3)
            estimates.append(delta.to_dict(budget=budget, parameter=parameter))
            row: list[Any] = [
                budget,
                parameter,
                len(a),
                len(b),
                _sig(float(a.median())),
                _sig(float(b.median())),
                cliffs_delta(a, b),
                *_ci(delta),
            ]
            table.append(row)
            rows_here.append(row)
        if not rows_here:
            parts.append(f"{budget} {INSUFFICIENT} ({len(diverged)} diverged)")
            continue
        top = max(rows_here, key=lambda r: (abs(r[6]), -DIVERGENCE_PARAMS.index(r[1])))
        top_estimate = Estimate("cliffs_delta", top[6], top[7], top[8], top[2] + top[3])
        side = stats.reading(top_estimate, "higher", "lower")
        text = (
            f"{budget}: diverged trials differ most in {top[1]} ({side}; median {fmt(top[4])} "
            f"vs {fmt(top[5])}, Cliff's δ = {fmt(top[6])}, {interval_text(top_estimate)}, "
            f"n = {top[2]} vs {top[3]})"
        )
        clear = [
            r[1]
            for r in rows_here
            if abs(r[6]) >= LARGE_DELTA and not Estimate("d", r[6], r[7], r[8], 0).contains_zero()
        ]
        if clear:
            text += f"; |δ| ≥ {LARGE_DELTA} with an interval excluding zero for {', '.join(clear)}"
        parts.append(text)
    sentence = _budgets_sentence(
        "",
        parts,
        calm,
        "no diverged trials in",
        None,
        "No trial diverged, so there is nothing to compare.",
    )
    return replace(
        _finding(
            "divergence_hyperparameters",
            "Divergence patterns",
            "Hyperparameters of diverged vs non-diverged trials (same budget)",
            [
                "budget",
                "parameter",
                "n_diverged",
                "n_not_diverged",
                "median_diverged",
                "median_not_diverged",
                "cliffs_delta",
                "ci_low",
                "ci_high",
            ],
            table,
            sentence,
            len(frame),
            "Cliff's δ = (#(d > o) − #(d < o)) / (n_d·n_o) over all pairs of a diverged value d "
            "and a non-diverged value o (via the Mann–Whitney U of average ranks); δ > 0: "
            f"diverged trials have larger values; |δ| ≥ {LARGE_DELTA} is large by convention; "
            f"each group needs ≥ {MIN_GROUP} values. One parameter at a time: see the lr × "
            f"depth table for interactions. {CI_NOTE}",
        ),
        estimates=estimates,
    )


def diverge_epochs(rows: Rows) -> Finding:
    """At which epoch trials diverge: median and range of diverge_epoch per budget."""
    frame = as_frame(rows)
    frame = frame[_flag(frame, "diverged", True).astype(bool)]
    table: list[list[Any]] = []
    parts: list[str] = []
    for budget, group in _budget_groups(frame):
        epochs = group["diverge_epoch"].dropna()
        kinds = group["diverge_kind"].map(lambda k: k or "unknown").value_counts()
        kinds_text = ", ".join(f"{k} {int(kinds[k])}" for k in sorted(kinds.index))
        if len(epochs) < MIN_N:
            table.append([budget, len(group), len(epochs), INSUFFICIENT, None, None, kinds_text])
            parts.append(f"{budget} {INSUFFICIENT} ({len(epochs)} with a diverge_epoch)")
            continue
        row = [
            budget,
            len(group),
            len(epochs),
            _sig(float(epochs.median())),
            int(epochs.min()),
            int(epochs.max()),
            kinds_text,
        ]
        table.append(row)
        parts.append(f"{budget} median epoch {fmt(row[3])} (range {row[4]}–{row[5]}, n = {row[2]})")
    sentence = (
        "Diverged trials blow up at: " + "; ".join(parts) + "." if parts else "No trial diverged."
    )
    return _finding(
        "diverge_epochs",
        "Divergence patterns",
        "Epoch at which trials diverge",
        [
            "budget",
            "diverged",
            "with_diverge_epoch",
            "median_epoch",
            "min_epoch",
            "max_epoch",
            "diverge_kinds",
        ],
        table,
        sentence,
        len(frame),
        "diverge_epoch: first curve epoch whose train or val loss is non-finite or at least the "
        f"threshold (value_only trials have none); the median needs ≥ {MIN_N} epochs.",
    )


def early_stopping_by_epochs(rows: Rows) -> Finding:
    """Early-stopping rate per budget and epochs_config (non-diverged trials).

    The epoch budget drives early stopping more than anything else: a run configured for 25
    epochs rarely has time to plateau for ``patience`` epochs, one configured for 100 often
    does, so a budget's overall rate mostly reflects its mix of epochs_config values.
    """
    frame = as_frame(rows)
    known = frame[
        (_flag(frame, "early_stopped", True) | _flag(frame, "early_stopped", False)).astype(bool)
        & ~_flag(frame, "diverged", True).astype(bool)
        & np.isfinite(frame["epochs_config"])
    ]
    table: list[list[Any]] = []
    estimates: list[dict[str, Any]] = []
    parts: list[str] = []
    for budget, group in _budget_groups(known):
        cells = []
        for epochs, cell in group.groupby("epochs_config", sort=True):
            flags = _flag(cell, "early_stopped", True).to_numpy(bool)
            stopped = int(flags.sum())
            if len(cell) < MIN_GROUP:
                table.append([budget, int(epochs), len(cell), stopped, INSUFFICIENT, None, None])
                continue
            estimate = stats.rate(flags)
            estimates.append(_record(estimate, 4, budget=budget, epochs_config=int(epochs)))
            row = [budget, int(epochs), len(cell), stopped, _pct(stopped, len(cell))]
            table.append(row + _pct_ci(estimate))
            cells.append((int(epochs), estimate))
        if len(cells) >= 2:
            (low_e, low), (high_e, high) = cells[0], cells[-1]
            parts.append(
                f"{budget} {_rate_text(low)} at {low_e} epochs vs {_rate_text(high)} at "
                f"{high_e} epochs"
            )
    sentence = (
        "Early-stopping rate by configured epochs (shortest vs longest): " + "; ".join(parts) + "."
        if parts
        else "No budget has two epochs_config values with enough trials to compare."
    )
    return _finding(
        "early_stopping_by_epochs",
        "Training dynamics",
        "Early-stopping rate by epochs_config per budget",
        ["budget", "epochs_config", "trials", "early_stopped", "rate", "ci_low", "ci_high"],
        table,
        sentence,
        len(known),
        f"Non-diverged trials with a known early_stopped flag; a rate needs ≥ {MIN_GROUP} "
        f"trials per epochs_config. {CI_NOTE}",
    )


def lr_band(lr: float) -> str:
    """Decade band of a learning rate, e.g. ``1e-04–1e-03`` (lower bound included).

    >>> lr_band(3e-4), lr_band(1e-3), lr_band(0.0093)
    ('1e-04–1e-03', '1e-03–1e-02', '1e-03–1e-02')
    """
    exponent = math.floor(math.log10(lr) + 1e-9)
    return f"{10.0**exponent:.0e}–{10.0 ** (exponent + 1):.0e}"


def _band_start(band: str) -> float:
    """The lower bound of an lr band (``1e-04–1e-03``) or a depth band (``17-32``), to sort."""
    return float(band.split("–")[0]) if "–" in band else float(band.split("-")[0])


def confounded_widths(frame: pd.DataFrame) -> list[tuple[int, int, int]]:
    """(d_model, its only n_layers, trials) for each width tried with one depth only.

    Such a width cannot be told apart from its depth: any effect of the one is the other's.
    Widths with fewer than ``MIN_GROUP`` trials are left out (too few to matter), as are
    budgets where every width has one depth (then depth and width are simply one grid axis
    each, and the table by depth already shows them).

    >>> f = pd.DataFrame({"d_model": [1536.0] * 3 + [2048.0] * 4,
    ...                   "n_layers": [48.0] * 3 + [24.0, 32.0, 48.0, 24.0]})
    >>> confounded_widths(f)
    [(1536, 48, 3)]
    """
    known = _known(frame, ["d_model", "n_layers"])
    depths = known.groupby("d_model")["n_layers"].agg(["nunique", "first", "size"])
    if len(depths) < 2 or (depths["nunique"] == 1).all():
        return []
    single = depths[(depths["nunique"] == 1) & (depths["size"] >= MIN_GROUP)]
    return [(int(w), int(r["first"]), int(r["size"])) for w, r in single.iterrows()]


def divergence_interactions(rows: Rows) -> Finding:
    """Divergence rate per budget by lr band × depth band, and the cell that stands out.

    Divergence is mostly an interaction (a high learning rate is fatal only for deep models),
    which one-variable comparisons hide. Per budget, every (lr decade, n_layers power-of-two
    band) cell gets its trial and diverged counts; the cell with the highest rate (≥
    ``MIN_GROUP`` trials) is compared with all other trials of the budget: difference of the
    rates with a bootstrap interval. Widths tried at one depth only are named as confounded.
    """
    frame = _known_divergence(as_frame(rows))
    frame = frame[
        np.isfinite(frame["n_layers"])
        & (frame["n_layers"] >= 1)
        & np.isfinite(frame["lr"])
        & (frame["lr"] > 0)
    ]
    table: list[list[Any]] = []
    parts: list[str] = []
    calm: list[str] = []
    estimates: list[dict[str, Any]] = []
    for budget, group in _budget_groups(frame):
        banded = group.assign(
            _lr=group["lr"].map(lr_band),
            _depth=group["n_layers"].map(depth_band),
            _div=_flag(group, "diverged", True).astype(bool),
        )
        cells = []
        for (lr_text, depth_text), cell in banded.groupby(["_lr", "_depth"], sort=False):
            cells.append(
                (_band_start(str(lr_text)), _band_start(str(depth_text)), lr_text, depth_text, cell)
            )
        cells.sort(key=lambda c: (c[0], c[1]))
        best: tuple[float, Any, Any, pd.DataFrame] | None = None
        for _, _, lr_text, depth_text, cell in cells:
            diverged = int(cell["_div"].sum())
            enough = len(cell) >= MIN_GROUP
            rate_text = _pct(diverged, len(cell)) if enough else INSUFFICIENT
            table.append(
                [budget, lr_text, depth_text, len(cell), diverged, rate_text, None, None, None]
            )
            if enough and diverged and (best is None or diverged / len(cell) > best[0]):
                best = (diverged / len(cell), lr_text, depth_text, cell)
        total_div = int(banded["_div"].sum())
        if not total_div:
            calm.append(budget)
            continue
        confounds = confounded_widths(group)
        confound_text = ""
        if confounds:
            confound_text = "; confounded: " + ", ".join(
                f"d_model {w} only with {d} layers ({n} trials)" for w, d, n in confounds
            )
        for width, depth, count in confounds:
            table.append(
                [budget, "confounded", f"d_model {width} only with {depth} layers", count]
                + [None] * 5
            )
        if best is None:
            parts.append(
                f"{budget}: no cell with ≥ {MIN_GROUP} trials has a divergence{confound_text}"
            )
            continue
        _, lr_text, depth_text, cell = best
        inside = cell["_div"].to_numpy(bool)
        outside = banded.loc[~banded.index.isin(cell.index), "_div"].to_numpy(bool)
        difference = stats.rate_difference(inside, outside)
        estimates.append(
            _record(difference, 4, budget=budget, lr_band=lr_text, n_layers_band=depth_text)
        )
        points = [
            None if x is None else round(100 * x, 1) + 0.0
            for x in (difference.value, difference.ci_low, difference.ci_high)
        ]
        table.append(
            [
                budget,
                f"{lr_text} × {depth_text} vs the rest",
                "all other cells",
                len(outside),
                int(outside.sum()),
                _pct(int(outside.sum()), len(outside)),
                *points,
            ]
        )
        parts.append(
            f"{budget}: lr {lr_text} with {depth_text} layers diverged in {int(inside.sum())} of "
            f"{len(inside)} trials ({_pct(int(inside.sum()), len(inside))}) vs "
            f"{int(outside.sum())} of {len(outside)} ({_pct(int(outside.sum()), len(outside))}) "
            f"of the other trials ({_points_text(difference)})"
            f"{confound_text}"
        )
    sentence = _budgets_sentence(
        "Divergence by learning rate and depth together: ",
        parts,
        calm,
        "no divergence in",
        "No trial diverged ({}).",
        "No trial has a known lr, depth and divergence flag.",
    )
    return replace(
        _finding(
            "divergence_interactions",
            "Divergence patterns",
            "Divergence rate by lr band × n_layers band per budget",
            [
                "budget",
                "lr_band",
                "n_layers_band",
                "trials",
                "diverged",
                "diverged_rate",
                "difference_points",
                "ci_low_points",
                "ci_high_points",
            ],
            table,
            sentence,
            len(frame),
            "lr bands are decades (lower bound included), n_layers bands powers of two; a rate "
            f"needs ≥ {MIN_GROUP} trials in the cell; the cell with the highest rate is compared "
            "with the rest of its budget (difference of the two rates, each group resampled on "
            "its own); a width tried at one depth only (≥ "
            f"{MIN_GROUP} trials) is named as confounded with that depth. {CI_NOTE}",
        ),
        estimates=estimates,
    )


# --------------------------------------------------------------------------------------------
# Hyperparameter importance (Optuna's PED-ANOVA evaluator, optional)
# --------------------------------------------------------------------------------------------

IMPORTANCE_NOT_INSTALLED = "not computed: install hpo-analysis[optuna]"
MAX_CHOICES = 16


def _optuna_installed() -> bool:
    try:
        return importlib.util.find_spec("optuna") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["optuna"] is None
        return False


def _distribution(values: pd.Series) -> Any:
    """An Optuna distribution for the observed values (None for a constant parameter).

    Whole numbers with at most ``MAX_CHOICES`` distinct values (d_model, n_heads, batch size:
    picked from a list by the runner) become a CategoricalDistribution of those values; other
    numbers an Int/FloatDistribution over the observed range, on a log scale when all values
    are positive and span at least a factor of 10.
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    low, high = float(values.min()), float(values.max())
    if low == high:
        return None
    whole = bool((values == values.round()).all())
    if whole and values.nunique() <= MAX_CHOICES:
        return CategoricalDistribution(sorted(int(v) for v in values.unique()))
    log = low > 0 and high / low >= 10
    if whole:
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(low, high, log=log)


class _ScoredTrials:
    """What Optuna's importance evaluator reads of a study — its direction and its COMPLETE
    trials — without a study: ``study.add_trials`` deep-copies every trial into an in-memory
    storage, which cost ~6 of the ~8 CPU seconds of importance for 5,000 trials."""

    def __init__(self, trials: list[Any], direction: str) -> None:
        from optuna.study import StudyDirection

        self._trials = trials
        self.directions = [
            StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE
        ]

    @property
    def direction(self) -> Any:
        return self.directions[0]

    def _is_multi_objective(self) -> bool:
        return False

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return list(self._trials)  # all COMPLETE; never modified by the evaluator


def _importance(scored: pd.DataFrame, direction: str) -> tuple[list[str], dict[str, float]]:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.trial import FrozenTrial, TrialState

    if len(scored) > MAX_IMPORTANCE_TRIALS:
        scored = scored.sample(n=MAX_IMPORTANCE_TRIALS, random_state=0).sort_index()
    params = [p for p in IMPORTANCE_PARAMS if scored[p].notna().all()]
    distributions = {p: _distribution(scored[p]) for p in params}
    distributions = {p: d for p, d in distributions.items() if d is not None}
    if not distributions:
        return [], {}
    floats = {p for p, d in distributions.items() if isinstance(d, FloatDistribution)}
    trials = [
        FrozenTrial(
            number=number,
            trial_id=number,  # PED-ANOVA tells trials apart by their ids
            state=TrialState.COMPLETE,
            value=float(record["objective"]),
            values=None,
            datetime_start=None,
            datetime_complete=None,
            params={p: float(record[p]) if p in floats else int(record[p]) for p in distributions},
            distributions=distributions,
            user_attrs={},
            system_attrs={},
            intermediate_values={},
        )
        for number, record in enumerate(scored[["objective", *distributions]].to_dict("records"))
    ]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = optuna.importance.get_param_importances(
                    _ScoredTrials(trials, direction),  # type: ignore[arg-type]
                    evaluator=PedAnovaImportanceEvaluator(),
                )
            except (AttributeError, TypeError):  # an Optuna that asks the study for more
                study = optuna.create_study(
                    direction="maximize" if direction == "maximize" else "minimize"
                )
                study.add_trials(trials)
                result = optuna.importance.get_param_importances(
                    study, evaluator=PedAnovaImportanceEvaluator()
                )
    finally:
        optuna.logging.set_verbosity(verbosity)
    return list(distributions), {k: float(v) for k, v in result.items()}


def param_importance(rows: Rows) -> Finding:
    """Hyperparameter importance per budget with Optuna's PED-ANOVA evaluator.

    The scored trials of a budget are rebuilt as Optuna trials (distributions inferred from the
    observed values, see :func:`_distribution`) and evaluated with
    ``PedAnovaImportanceEvaluator`` (defaults: which parameters set the best 10 % of trials
    apart from all of them); importances are normalized to sum to 1. Needs the ``optuna``
    extra.
    """
    title = "Hyperparameter importance per budget (Optuna PED-ANOVA)"
    columns = ["budget", "n", "parameter", "importance", "rank"]
    notes = (
        "optuna.importance.PedAnovaImportanceEvaluator with its defaults (target quantile 0.1 "
        "of the scored trials against all of them), normalized to sum to 1; parameters: "
        f"{', '.join(IMPORTANCE_PARAMS)} where known for every scored trial and not constant; "
        f"whole numbers with ≤ {MAX_CHOICES} distinct values are categorical, others "
        "int/float ranges over the observed values (log scale when positive and spanning "
        f"≥ 10×); needs ≥ {MIN_IMPORTANCE_TRIALS} scored trials per budget; budgets with more "
        f"than {MAX_IMPORTANCE_TRIALS} are evaluated on a seeded random sample of "
        f"{MAX_IMPORTANCE_TRIALS} of them (n stays the number of scored trials)."
    )
    if not _optuna_installed():  # imported only when a budget has enough trials
        return _finding(
            "param_importance",
            "Hyperparameter importance",
            title,
            columns,
            [],
            IMPORTANCE_NOT_INSTALLED + ".",
            0,
            notes,
        )
    frame = as_frame(rows)
    table: list[list[Any]] = []
    parts: list[str] = []
    total = 0
    for budget, group in _budget_groups(frame):
        scored = _scored(group)
        n = len(scored)
        direction = _direction(scored)
        if direction is None or n < MIN_IMPORTANCE_TRIALS:
            marker = MIXED if direction is None else INSUFFICIENT
            table.append([budget, n, None, marker, None])
            parts.append(f"{budget} {marker} (n = {n})")
            continue
        try:
            _, importances = _importance(scored, direction)
        except ImportError:  # optuna older than 3.6 has no PED-ANOVA
            table.append([budget, n, None, IMPORTANCE_NOT_INSTALLED + " (optuna>=3.6)", None])
            parts.append(f"{budget} {IMPORTANCE_NOT_INSTALLED} (optuna>=3.6)")
            continue
        except Exception as err:  # an evaluator failure must not stop the extraction
            table.append([budget, n, None, f"not computed: {type(err).__name__}", None])
            parts.append(f"{budget} not computed ({type(err).__name__})")
            continue
        if not importances:
            table.append([budget, n, None, "no varying parameter", None])
            continue
        total += n
        ordered = sorted(importances.items(), key=lambda item: (-round(item[1], 3), item[0]))
        for rank, (name, value) in enumerate(ordered, start=1):
            table.append([budget, n, name, _r3(value), rank])
        first = table[-len(ordered)]
        parts.append(f"{budget} {first[2]} ({fmt(first[3])}, n = {n})")
    sentence = (
        "Most important parameter per budget (PED-ANOVA, share of total importance): "
        + "; ".join(parts)
        + "."
        if parts
        else "No trials were read."
    )
    return _finding(
        "param_importance",
        "Hyperparameter importance",
        title,
        columns,
        table,
        sentence,
        total,
        notes,
    )


# --------------------------------------------------------------------------------------------
# Views drawn only by the report
# --------------------------------------------------------------------------------------------


def scored_frame(rows: Rows) -> pd.DataFrame:
    """The scored trials (COMPLETE, finite objective, not diverged) as a DataFrame."""
    return _scored(as_frame(rows))


def architecture_grid(rows: Rows) -> Finding:
    """Best objective per budget, d_model and n_layers: the report's architecture map.

    Not part of :func:`all_findings` (the table is long); cells with fewer than ``MIN_GROUP``
    scored trials say ``insufficient data``.
    """
    frame = as_frame(rows)
    table: list[list[Any]] = []
    total = 0
    for budget, group in _budget_groups(frame):
        scored = _scored(group)
        scored = scored[np.isfinite(scored["d_model"]) & np.isfinite(scored["n_layers"])]
        total += len(scored)
        direction = _direction(scored)
        for (d_model, n_layers), cell in scored.groupby(["d_model", "n_layers"], sort=True):
            if direction is None or len(cell) < MIN_GROUP:
                marker = MIXED if direction is None else INSUFFICIENT
                table.append([budget, int(d_model), int(n_layers), len(cell), direction, marker])
                continue
            best = _ranked(cell, direction).iloc[0]
            table.append(
                [
                    budget,
                    int(d_model),
                    int(n_layers),
                    len(cell),
                    direction,
                    float(best["objective"]),
                ]
            )
    return _finding(
        "architecture_grid",
        "Architecture patterns",
        "Best objective per d_model and n_layers",
        ["budget", "d_model", "n_layers", "n", "direction", "best_objective"],
        table,
        f"Best scored objective of each (d_model, n_layers) cell per budget ({total} trials).",
        total,
        f"needs ≥ {MIN_GROUP} scored trials per cell.",
    )


# --------------------------------------------------------------------------------------------
# All findings, in reading order
# --------------------------------------------------------------------------------------------


def core_findings(rows: Sequence[dict[str, Any]]) -> list[Finding]:
    return [divergence_by_budget(rows), early_stopping_by_budget(rows), best_trial_per_study(rows)]


def all_findings(rows: Sequence[dict[str, Any]], top_k: int = DEFAULT_TOP_K) -> list[Finding]:
    """Every finding, grouped by section in reading order (what findings.json holds).

    >>> [f.id for f in all_findings([])][:3]
    ['best_trial_per_study', 'best_architecture', 'top_k_architecture']
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    overview = replace(
        best_trial_per_study(rows),
        section="Overview",
        notes="Best = rank_in_study 1 (direction-aware); ranked = COMPLETE, finite objective.",
    )
    early = replace(
        early_stopping_by_budget(rows),
        section="Training dynamics",
        notes=f"Non-diverged trials with a known early_stopped flag (a diverged trial never "
        f"stops early, so it is left out of the denominator); the rate needs ≥ {MIN_N} of "
        f"them. {CI_NOTE}",
    )
    divergence = replace(
        divergence_by_budget(rows),
        section="Divergence patterns",
        notes=f"All trials; the rate needs ≥ {MIN_N} trials in the budget. {CI_NOTE}",
    )
    frame = trial_frame(rows)
    return [
        overview,
        best_architecture(frame),
        top_k_architecture(frame, top_k),
        architecture_style(frame),
        divergence_by_depth(frame),
        max_reliable_depth(frame),
        heads_correlation(frame),
        best_heads_per_width(frame),
        heads_controlled_pairs(frame),
        ff_ratio(frame, top_k),
        early,
        early_stopping_by_epochs(frame),
        best_epoch_gap(frame),
        dropout_generalization(frame),
        horizon_transfer(frame),
        horizon_transfer_summary(frame),
        easiest_horizon(frame),
        depth_by_horizon(frame),
        divergence,
        divergence_hyperparameters(frame),
        divergence_interactions(frame),
        diverge_epochs(frame),
        param_importance(frame),
    ]
