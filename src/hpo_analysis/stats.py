"""Point estimates with seeded bootstrap confidence intervals: rates, medians, differences,
Spearman's ρ and Cliff's δ.

A finding that compares numbers must say how sure it is: a correlation of 0.02 over 150 trials
is not "more heads, worse objective". Every function here returns an :class:`Estimate` — the
value computed on the data and a 95 % percentile-bootstrap interval — and :func:`reading`
turns an interval into words: direction words only when the interval excludes 0.

Method (the same for every statistic, stated in :data:`METHOD` and in each estimate):
``RESAMPLES`` (1,000) resamples drawn with replacement by ``numpy.random.default_rng(SEED)``,
a fresh generator per estimate so an estimate does not depend on which ones came before; one
sample is resampled as a whole (for ρ: the (x, y) pairs together), two groups are resampled
each on its own (their sizes stay fixed); the interval is the 2.5th and 97.5th percentile
(linear interpolation) of the resampled statistics that are defined (a resample where one side
of a correlation is constant has no ρ and is left out). Ranks are average ranks, as in the
textbook definitions of ρ and δ. No SciPy: ranks come from counts of the distinct values, so
a resample is ranked without sorting it.

Example::

    >>> est = rate([True, False, False, False])
    >>> est.value, est.n
    (0.25, 4)
    >>> 0.0 <= est.ci_low <= est.value <= est.ci_high <= 1.0
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
# Resamples are processed in chunks of about this many values, so memory stays flat.
_CHUNK_VALUES = 2_000_000
# Above this many values, a resample draws this many (m-out-of-n bootstrap) and the interval's
# distances from the estimate are scaled by √(m/n): the statistics here converge at the √n
# rate, and 1,000 full resamples of 100,000 trials would dominate a whole extraction.
MAX_RESAMPLE_N = 2000
METHOD = (
    f"percentile bootstrap, {RESAMPLES} resamples with replacement, "
    f"numpy default_rng(seed={SEED}), {CONFIDENCE:.0%} interval"
)
METHOD_TWO_GROUPS = METHOD + ", each group resampled on its own"
METHOD_PAIRS = METHOD + ", (x, y) pairs resampled together"

ArrayLike = Sequence[float] | Sequence[bool] | np.ndarray | Any


@dataclass(frozen=True)
class Estimate:
    """A statistic, its bootstrap interval, the method and the number of values behind it.

    ``ci_low``/``ci_high`` are None when the interval cannot be computed (e.g. every
    resample of a correlation was constant).
    """

    statistic: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    method: str = METHOD

    def contains_zero(self) -> bool:
        """True when the interval includes 0 (or is unknown): no clear effect."""
        if self.ci_low is None or self.ci_high is None:
            return True
        return self.ci_low <= 0.0 <= self.ci_high

    def rounded(self, places: int = 3) -> Estimate:
        """The same estimate with value and interval rounded (what a table shows)."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(float(x), places) + 0.0

        value = r(self.value)
        return Estimate(
            self.statistic,
            value if value is not None else self.value,
            r(self.ci_low),
            r(self.ci_high),
            self.n,
            self.method,
        )

    def to_dict(self, **context: Any) -> dict[str, Any]:
        """As findings.json stores it: the context (budget, parameter, …) first."""
        return {
            **context,
            "statistic": self.statistic,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "method": self.method,
        }


def _rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


def _percentiles(values: np.ndarray) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if not len(values):
        return None, None
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def _chunks(n: int) -> list[int]:
    """Sizes of the resample chunks for samples of ``n`` values (they sum to RESAMPLES)."""
    size = max(1, min(RESAMPLES, _CHUNK_VALUES // max(n, 1)))
    sizes = [size] * (RESAMPLES // size)
    if RESAMPLES % size:
        sizes.append(RESAMPLES % size)
    return sizes


def _draws(n: int, total: int) -> int:
    """Values drawn per resample from a group of ``n`` (of ``total`` over all groups).

    >>> _draws(30, 50), _draws(20000, 40000)
    (30, 1000)
    """
    if total <= MAX_RESAMPLE_N:
        return n
    return max(1, math.ceil(n * MAX_RESAMPLE_N / total))


def _resample(
    n: int,
    rng: np.random.Generator,
    statistic: Callable[[np.ndarray], np.ndarray],
    draws: int | None = None,
) -> np.ndarray:
    """``statistic`` of RESAMPLES index matrices (rows = resamples) of ``draws`` indices each
    (default ``n``: the ordinary bootstrap)."""
    m = n if draws is None else draws
    out = [statistic(rng.integers(0, n, size=(size, m))) for size in _chunks(m)]
    return np.concatenate(out)


def _interval(value: float, boot: np.ndarray, total: int) -> tuple[float | None, float | None]:
    """The percentile interval; for m-out-of-n resamples scaled to n around the estimate."""
    low, high = _percentiles(boot)
    if total <= MAX_RESAMPLE_N or low is None or high is None:
        return low, high
    scale = math.sqrt(MAX_RESAMPLE_N / total)
    return value + scale * (low - value), value + scale * (high - value)


def _method(base: str, total: int) -> str:
    if total <= MAX_RESAMPLE_N:
        return base
    return (
        f"{base}; n > {MAX_RESAMPLE_N}: resamples of {MAX_RESAMPLE_N} values (m-out-of-n), "
        f"the interval's distances from the estimate scaled by √({MAX_RESAMPLE_N}/n)"
    )


def _average_ranks(codes: np.ndarray, n_distinct: int) -> np.ndarray:
    """Average ranks (1-based, ties share the mean rank) of each row of a code matrix.

    ``codes`` holds, per value, the index of that value among the sorted distinct values of
    the whole sample. With few distinct values, counting them per row gives each value's rank
    block without sorting; with more distinct values than a row holds, each row is sorted.

    >>> _average_ranks(np.array([[2, 0, 0, 1]]), 3).tolist()
    [[4.0, 1.5, 1.5, 3.0]]
    >>> _average_ranks(np.array([[2, 0, 0, 1]]), 1000).tolist()
    [[4.0, 1.5, 1.5, 3.0]]
    """
    rows, width = codes.shape
    if n_distinct <= 4 * width:
        flat = codes + (np.arange(rows) * n_distinct)[:, None]
        counts = np.bincount(flat.ravel(), minlength=rows * n_distinct)
        counts = counts.reshape(rows, n_distinct)
        below = np.cumsum(counts, axis=1) - counts
        mean_rank = below + (counts + 1) / 2.0
        return np.take_along_axis(mean_rank, codes, axis=1)
    order = np.argsort(codes, axis=1, kind="stable")
    ordered = np.take_along_axis(codes, order, axis=1)
    position = np.broadcast_to(np.arange(width), (rows, width))
    starts = np.ones((rows, width), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = np.ones((rows, width), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, position, width - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((rows, width), dtype=float)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair (NaN where a row is constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / denominator
    # a constant row has a zero (or rounding-noise) denominator
    tiny = denominator <= 1e-12 * a.shape[1] ** 2
    return np.where(tiny, np.nan, r)


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.reshape(-1), len(distinct)


def _finite(values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    return array[np.isfinite(array)]


def rate(flags: ArrayLike) -> Estimate:
    """Share of True among ``flags``, with its bootstrap interval.

    >>> rate([True] * 3 + [False]).value
    0.75
    """
    values = np.asarray(flags, dtype=bool).reshape(-1)
    n = len(values)
    if not n:
        return Estimate("rate", math.nan, None, None, 0)
    # Resampling n flags with replacement draws the number of True from Binomial(n, p).
    draws = _rng().binomial(n, values.mean(), size=RESAMPLES) / n
    low, high = _percentiles(draws)
    return Estimate("rate", float(values.mean()), low, high, n)


def rate_difference(first: ArrayLike, second: ArrayLike) -> Estimate:
    """rate(first) − rate(second), each group resampled on its own.

    >>> rate_difference([True, True, False, False], [False] * 4).value
    0.5
    """
    a = np.asarray(first, dtype=bool).reshape(-1)
    b = np.asarray(second, dtype=bool).reshape(-1)
    if not len(a) or not len(b):
        return Estimate("rate_difference", math.nan, None, None, len(a) + len(b))
    rng = _rng()
    draws = rng.binomial(len(a), a.mean(), size=RESAMPLES) / len(a)
    draws = draws - rng.binomial(len(b), b.mean(), size=RESAMPLES) / len(b)
    low, high = _percentiles(draws)
    value = float(a.mean() - b.mean())
    return Estimate("rate_difference", value, low, high, len(a) + len(b), METHOD_TWO_GROUPS)


def median(values: ArrayLike) -> Estimate:
    """Median of the finite values, with its bootstrap interval.

    >>> median([1, 2, 3, 4, 100]).value
    3.0
    """
    data = _finite(values)
    if not len(data):
        return Estimate("median", math.nan, None, None, 0)
    n = len(data)
    value = float(np.median(data))
    boot = _resample(n, _rng(), lambda idx: np.median(data[idx], axis=1), _draws(n, n))
    low, high = _interval(value, boot, n)
    return Estimate("median", value, low, high, n, _method(METHOD, n))


def median_difference(first: ArrayLike, second: ArrayLike) -> Estimate:
    """median(first) − median(second), each group resampled on its own.

    >>> median_difference([5, 6, 7], [1, 2, 3]).value
    4.0
    """
    a, b = _finite(first), _finite(second)
    if not len(a) or not len(b):
        return Estimate("median_difference", math.nan, None, None, len(a) + len(b))
    rng = _rng()
    total = len(a) + len(b)
    boot_a = _resample(len(a), rng, lambda idx: np.median(a[idx], axis=1), _draws(len(a), total))
    boot_b = _resample(len(b), rng, lambda idx: np.median(b[idx], axis=1), _draws(len(b), total))
    value = float(np.median(a) - np.median(b))
    low, high = _interval(value, boot_a - boot_b, total)
    method = _method(METHOD_TWO_GROUPS, total)
    return Estimate("median_difference", value, low, high, total, method)


def spearman_value(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ (Pearson's r of average ranks) of two equal-length arrays; NaN if constant.

    >>> spearman_value(np.array([1, 2, 3, 4, 5.0]), np.array([5, 6, 7, 8, 7.0]))
    0.8207826816681233
    """
    cx, kx = _codes(x)
    cy, ky = _codes(y)
    rx = _average_ranks(cx[None, :], kx)
    ry = _average_ranks(cy[None, :], ky)
    return float(_row_pearson(rx, ry)[0])


def spearman(x: ArrayLike, y: ArrayLike) -> Estimate:
    """Spearman's ρ over the pairs where both are finite, with its bootstrap interval."""
    a = np.asarray(x, dtype=float).reshape(-1)
    b = np.asarray(y, dtype=float).reshape(-1)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n < 2:
        return Estimate("spearman_rho", math.nan, None, None, n, METHOD_PAIRS)
    value = spearman_value(a, b)
    cx, kx = _codes(a)
    cy, ky = _codes(b)

    def statistic(idx: np.ndarray) -> np.ndarray:
        return _row_pearson(_average_ranks(cx[idx], kx), _average_ranks(cy[idx], ky))

    low, high = _interval(value, _resample(n, _rng(), statistic, _draws(n, n)), n)
    return Estimate("spearman_rho", value, low, high, n, _method(METHOD_PAIRS, n))


def _delta_from_codes(codes_a: np.ndarray, codes_b: np.ndarray, k: int) -> np.ndarray:
    """Cliff's δ per row from the codes of both groups (δ = 2U/(n_a·n_b) − 1)."""
    n_a, n_b = codes_a.shape[1], codes_b.shape[1]
    ranks = _average_ranks(np.concatenate([codes_a, codes_b], axis=1), k)
    u_stat = ranks[:, :n_a].sum(axis=1) - n_a * (n_a + 1) / 2.0
    result: np.ndarray = 2.0 * u_stat / (n_a * n_b) - 1.0
    return result


def cliffs_delta(first: ArrayLike, second: ArrayLike) -> Estimate:
    """Cliff's δ = (#{a > b} − #{a < b}) / (n_a·n_b), each group resampled on its own.

    >>> round(cliffs_delta([3, 4], [1, 2, 3]).value, 6)  # 5/6
    0.833333
    """
    a, b = _finite(first), _finite(second)
    if not len(a) or not len(b):
        return Estimate("cliffs_delta", math.nan, None, None, len(a) + len(b))
    codes, k = _codes(np.concatenate([a, b]))
    code_a, code_b = codes[: len(a)], codes[len(a) :]
    value = float(_delta_from_codes(code_a[None, :], code_b[None, :], k)[0])
    rng = _rng()
    total = len(a) + len(b)
    m_a, m_b = _draws(len(a), total), _draws(len(b), total)
    boot = np.concatenate(
        [
            _delta_from_codes(
                code_a[rng.integers(0, len(a), size=(size, m_a))],
                code_b[rng.integers(0, len(b), size=(size, m_b))],
                k,
            )
            for size in _chunks(m_a + m_b)
        ]
    )
    low, high = _interval(value, boot, total)
    return Estimate("cliffs_delta", value, low, high, total, _method(METHOD_TWO_GROUPS, total))


def interval_text(estimate: Estimate, places: int = 3, *, percent: bool = False) -> str:
    """``95% CI low…high`` as the sentences write it (rounded to ``places``, like the table).

    >>> interval_text(Estimate("rho", 0.02, -0.141, 0.18, 150))
    '95% CI -0.141…0.18'
    >>> interval_text(Estimate("rate", 0.25, 0.1, 0.4, 20), percent=True)
    '95% CI 10.0%…40.0%'
    """
    if estimate.ci_low is None or estimate.ci_high is None:
        return "no interval"

    def show(x: float) -> str:
        if percent:
            return f"{100.0 * x:.1f}%"
        return f"{round(x, places) + 0.0:g}"

    return f"{CONFIDENCE:.0%} CI {show(estimate.ci_low)}…{show(estimate.ci_high)}"


def reading(estimate: Estimate, positive: str, negative: str) -> str:
    """Words for an effect: ``positive``/``negative`` only when the interval excludes 0.

    >>> reading(Estimate("rho", 0.02, -0.14, 0.18, 150), "up", "down")
    'no clear effect'
    >>> reading(Estimate("rho", -0.6, -0.7, -0.5, 150), "up", "down")
    'down'
    """
    if estimate.contains_zero() or estimate.value == 0:
        return "no clear effect"
    return positive if estimate.value > 0 else negative
