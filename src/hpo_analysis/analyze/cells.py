"""How a number becomes a table cell and a phrase: rounding, intervals, rank statistics.

Every number a sentence quotes is formatted here exactly as its table cell renders it, so a
reader can find each quoted number in the table next to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import stats
from ..finding import MIN_N, Finding
from ..stats import Estimate, interval_text


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


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


def average_ranks(values: np.ndarray) -> np.ndarray:
    """The 1-based rank of each value, ties sharing the mean of their ranks (as pandas' and
    SciPy's ``rank`` give them); the values are numbers other than NaN.

    >>> average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    n = len(values)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if n else np.array([], int)
    ends = np.r_[starts[1:], n]
    # a tie of positions first..last (0-based) has the mean rank (first + last) / 2 + 1
    mean_rank = (starts + ends - 1) / 2.0 + 1.0
    ranks = np.empty(n, dtype=float)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(x: ArrayLike, y: ArrayLike) -> float | None:
    """Spearman's rank correlation, rounded to 3 decimals, or None when it cannot be computed.

    Computed as Pearson's r of the average ranks (the textbook definition;
    :func:`~hpo_analysis.stats.spearman_value`, the value the findings' estimates carry). None
    with fewer than ``MIN_N`` complete pairs or when either side is constant.

    >>> spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])
    0.821
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < MIN_N or np.unique(a).size < 2 or np.unique(b).size < 2:
        return None
    rho = stats.spearman_value(a, b)
    return _r3(rho) if math.isfinite(rho) else None


def cliffs_delta(a: ArrayLike, b: ArrayLike) -> float:
    """Cliff's δ = (#{a_i > b_j} − #{a_i < b_j}) / (len(a)·len(b)), rounded to 3 decimals.

    +1: every value of ``a`` is above every value of ``b``; 0: no tendency. Computed from the
    Mann–Whitney U statistic of average ranks (δ = 2U/(n_a·n_b) − 1), so memory stays linear.

    >>> cliffs_delta([3, 4], [1, 2, 3])
    0.833
    """
    first = np.asarray(a, dtype=float).reshape(-1)
    second = np.asarray(b, dtype=float).reshape(-1)
    n_a, n_b = len(first), len(second)
    both = np.concatenate([first, second])
    ranks = np.full(len(both), math.nan)
    valid = ~np.isnan(both)  # a NaN has no rank and adds nothing to the sum
    ranks[valid] = average_ranks(both[valid])
    # Average ranks are whole or half numbers, so twice their sum is an exact integer and δ an
    # exact fraction, rounded once: a tie such as -0.2125 rounds the same on every machine.
    rank_sum = float(np.nansum(ranks[:n_a]))
    if not n_a or not n_b or not math.isfinite(rank_sum):
        return _r3(math.nan)
    twice_u = round(2 * rank_sum) - n_a * (n_a + 1)
    return float(round(Fraction(twice_u - n_a * n_b, n_a * n_b), 3)) + 0.0


def _quantiles(values: np.ndarray) -> tuple[float, float, float]:
    """Quartiles and median by linear interpolation of the values that are not NaN."""
    finite = values[~np.isnan(values)]
    q1, median, q3 = (float(np.percentile(finite, 100 * q)) for q in (0.25, 0.5, 0.75))
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


def _has_rho(x: ArrayLike, y: ArrayLike) -> bool:
    """Whether :func:`spearman` gives a number: at least ``MIN_N`` pairs where both are finite
    and variation on both sides (the ranks of such pairs are not constant, so their
    correlation is finite), without ranking them."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    if int(keep.sum()) < MIN_N:
        return False
    a, b = a[keep], b[keep]
    return bool((a != a[0]).any() and (b != b[0]).any())


def _rho(x: ArrayLike, y: ArrayLike) -> Estimate | None:
    """Spearman's ρ with its bootstrap interval; None where :func:`spearman` gives none."""
    if not _has_rho(x, y):
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
