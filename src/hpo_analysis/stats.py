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

Computation: the resamples are the rows of one index matrix and every statistic is computed for
all rows at once, a cache-sized block of rows at a time. Average ranks are halves, so ρ and δ
are computed from exact integer rank sums, and a median from the resample's middle order
statistics: the numbers are the same as ranking, correlating and taking the median of each
resample on its own (tests/test_stats.py keeps that computation and checks the equality).

Example::

    >>> est = rate([True, False, False, False])
    >>> est.value, est.n
    (0.25, 4)
    >>> 0.0 <= est.ci_low <= est.value <= est.ci_high <= 1.0
    True
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
# Resample indices are drawn in chunks of about this many values (see _chunks).
_CHUNK_VALUES = 2_000_000
# Resamples are processed in blocks of rows of about this many values, and at least this many
# rows (see _row_blocks).
_BLOCK_CELLS = 2**15
_BLOCK_ROWS = 32
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
    """Sizes of the chunks in which the indices of resamples of ``n`` values are drawn (they
    sum to RESAMPLES).

    The chunks are part of the random stream: numpy draws two bounded 32-bit integers from
    each 64-bit output, so a chunk of an odd number of indices leaves half an output unused
    and the next chunk starts on a fresh one. Drawing in the same chunks keeps every interval
    what it has always been.
    """
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


def _indices(n: int, rng: np.random.Generator, draws: int | None = None) -> np.ndarray:
    """Every resample at once: a (RESAMPLES, ``draws``) matrix of indices into a sample of
    ``n`` (``draws`` default ``n``: the ordinary bootstrap), one resample per row.

    The statistics below are computed for all rows together, along axis 1. Since ``draws`` is
    at most about MAX_RESAMPLE_N, the matrix holds at most about 2 million indices.
    """
    m = n if draws is None else draws
    # (one chunk is copied too: the copy frees the drawn block, and with kept_resamples
    # holding large matrices, returning the drawn block itself cost more in page faults of
    # the later temporaries than the copy)
    dtype = _index_type(n)
    return np.concatenate([rng.integers(0, n, size=(size, m), dtype=dtype) for size in _chunks(m)])


def _index_type(n: int) -> type[np.signedinteger[Any]]:
    """The integer type resample indices into ``n`` values are drawn as: 32-bit below 2^31.

    numpy draws indices below 2^32 as bounded 32-bit numbers whatever the type asked for, so
    both types hold the same indices and leave the generator in the same state; writing
    32-bit ones is four times faster and takes half the memory (tests/test_stats.py holds
    the equality).
    """
    return np.int32 if n <= np.iinfo(np.int32).max else np.int64


# Index matrices of a fresh generator by (n, draws), kept within kept_resamples().
_KEPT: ContextVar[OrderedDict[tuple[int, int], np.ndarray] | None] = ContextVar(
    "_KEPT", default=None
)
# At most this many indices are kept (one matrix of 1,000 × 2,000, 16 MB). Measured: a
# cap of 16 million (128 MB) saved no CPU time and raised the peak memory of a run by 80 MB
# at 12,000 trials, by 100 MB at 120,000 trials in 1,200 studies.
_KEPT_CELLS = 2_000_000


@contextmanager
def kept_resamples() -> Iterator[None]:
    """Within this block, the resamples of estimates drawn from a fresh generator alone
    (:func:`median`, :func:`spearman`) are drawn once per size and kept.

    They depend on the sample size and the draws per resample only, and the findings estimate
    many statistics over samples of the same size (every budget's scored trials, every cell
    of a grid): :func:`~hpo_analysis.analyze.all_findings` draws each size once. The most
    recent sizes are kept, read-only, up to ``_KEPT_CELLS`` indices; all are let go at the end
    of the block.
    """
    token = _KEPT.set(OrderedDict())
    try:
        yield
    finally:
        _KEPT.reset(token)


def _fresh_indices(n: int, draws: int) -> np.ndarray:
    """``_indices(n, _rng(), draws)``: the resamples of an estimate that draws from a fresh
    generator and nothing else; within :func:`kept_resamples` drawn once per size."""
    kept = _KEPT.get()
    if kept is None:
        return _indices(n, _rng(), draws)
    key = (n, draws)
    indices = kept.get(key)
    if indices is not None:
        kept.move_to_end(key)
        return indices
    indices = _indices(n, _rng(), draws)
    indices.flags.writeable = False
    kept[key] = indices
    while sum(a.size for a in kept.values()) > _KEPT_CELLS and len(kept) > 1:
        kept.popitem(last=False)
    return indices


def _row_blocks(rows: int, cells_per_row: int) -> list[slice]:
    """Row ranges of about _BLOCK_CELLS cells (``cells_per_row`` a row) together.

    The resamples' statistics are computed a block of rows at a time: the counting tables and
    the rank matrices of a block stay in the processor's cache between the passes over them,
    which is several times faster than passing over one large table, and memory stays flat
    however many distinct values a sample has. Every statistic is computed row by row, so the
    blocks do not change any result.

    Measured (CPU time of ρ and the median over 1,000 resamples of 50 to 12,000 values):
    blocks of 2^15 values took a quarter to a third of the time of blocks of 2^18 for samples
    of 150 to 1,000 values, whose temporaries of 2^18 values each were given back to the
    system after every estimate and faulted in again at the next; wide rows take at least
    ``_BLOCK_ROWS`` rows a block, so that the work of each pass stays larger than its fixed
    cost. Larger samples took the same time either way.
    """
    step = max(_BLOCK_ROWS, _BLOCK_CELLS // max(cells_per_row, 1))
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


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


def _counted(n_distinct: int, width: int) -> bool:
    """Whether rows of ``width`` values out of ``n_distinct`` distinct ones are ranked by
    counting the values (a table of ``n_distinct`` cells a row) rather than by sorting."""
    return n_distinct <= 4 * width


def _doubled_ranks(codes: np.ndarray, n_distinct: int, shift: int = 0) -> np.ndarray:
    """Twice the average rank (1-based, ties share the mean rank) of every value of every row
    of a code matrix, as integers: average ranks are halves, so their doubles are exact and
    every sum of them below is exact in any order.

    ``codes`` holds, per value, the index of that value among the sorted distinct values of
    the whole sample. With few distinct values, counting them gives each value's rank block
    without sorting: one running count over the table of all rows (row ``r`` starts after
    ``r·width`` values) says how many values of a row are at most ``v``, and twice the mean
    rank of ``v`` is ``2·(values ≤ v) − (values = v) + 1``. With more distinct values than a
    row holds, each row is sorted. ``shift`` is subtracted from every result (in the same
    pass; :func:`_resampled_rho` centres the ranks so).

    >>> _doubled_ranks(np.array([[2, 0, 0, 1]]), 3).tolist()
    [[8, 3, 3, 6]]
    >>> _doubled_ranks(np.array([[2, 0, 0, 1]]), 1000).tolist()
    [[8, 3, 3, 6]]
    """
    rows, width = codes.shape
    if not _counted(n_distinct, width):
        order = np.argsort(codes, axis=1, kind="stable")
        ordered = np.take_along_axis(codes, order, axis=1)
        position = np.broadcast_to(np.arange(width), (rows, width))
        starts = np.ones((rows, width), dtype=bool)
        starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        ends = np.ones((rows, width), dtype=bool)
        ends[:, :-1] = starts[:, 1:]
        first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
        last = np.minimum.accumulate(np.where(ends, position, width - 1)[:, ::-1], axis=1)
        ranks = np.empty((rows, width), dtype=np.int64)
        np.put_along_axis(ranks, order, first + last[:, ::-1] + (2 - shift), axis=1)
        return ranks
    doubled = np.empty((rows, width), dtype=np.int64)
    for block in _row_blocks(rows, n_distinct):
        part = codes[block]
        n_rows = len(part)
        flat = (part + (np.arange(n_rows) * n_distinct)[:, None]).reshape(-1)
        counts = np.bincount(flat, minlength=n_rows * n_distinct)
        table = np.cumsum(counts)
        table *= 2
        table -= counts
        out = doubled[block]
        np.take(table, flat.reshape(n_rows, width), out=out)
        # the earlier rows' values, −1, and the shift
        out -= (2 * width * np.arange(n_rows) - 1 + shift)[:, None]
    return doubled


def _average_ranks(codes: np.ndarray, n_distinct: int) -> np.ndarray:
    """Average ranks (1-based, ties share the mean rank) of each row of a code matrix.

    >>> _average_ranks(np.array([[2, 0, 0, 1]]), 3).tolist()
    [[4.0, 1.5, 1.5, 3.0]]
    """
    ranks: np.ndarray = _doubled_ranks(codes, n_distinct) / 2.0
    return ranks


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair (NaN where a row is constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return _pearson((a * b).sum(axis=1), (a * a).sum(axis=1), (b * b).sum(axis=1), a.shape[1])


def _pearson(
    products: np.ndarray, squares_a: np.ndarray, squares_b: np.ndarray, width: int
) -> np.ndarray:
    """r from the centred sums Σab, Σa², Σb² of rows of ``width`` values."""
    denominator = np.sqrt(squares_a * squares_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = products / denominator
    # a constant row has a zero (or rounding-noise) denominator
    tiny = denominator <= 1e-12 * width**2
    result: np.ndarray = np.where(tiny, np.nan, r)
    return result


# Rows of at most this many values have exact rank sums: the centred doubled ranks are below
# 2^17 in size, so Σ of their products stays below 2^51 and every partial sum is an integer
# that float64 holds exactly.
_EXACT_WIDTH = 2**16


def _rank_pearson(doubled_x: np.ndarray, doubled_y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair of average ranks given as :func:`_doubled_ranks`.

    The same numbers as :func:`_row_pearson` of the ranks: every row of ``width`` average ranks
    sums to width·(width + 1)/2, so its mean is (width + 1)/2 exactly and the centred ranks are
    the halves ``(doubled − width − 1)/2``; their sums of products are exact integers divided
    by 4 whatever the order of summation, and the last steps (product, root, quotient) are
    the same operations on the same numbers. Rows wider than _EXACT_WIDTH take the float route.
    """
    width = doubled_x.shape[1]
    if width > _EXACT_WIDTH:
        return _row_pearson(doubled_x / 2.0, doubled_y / 2.0)
    return _centred_rank_pearson(doubled_x - (width + 1), doubled_y - (width + 1))


def _centred_rank_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`_rank_pearson` of doubled ranks given centred (``doubled − width − 1``)."""
    products = np.einsum("ij,ij->i", a, b) / 4.0
    squares_a = np.einsum("ij,ij->i", a, a) / 4.0
    squares_b = np.einsum("ij,ij->i", b, b) / 4.0
    return _pearson(products, squares_a, squares_b, a.shape[1])


def _grouped_rank_pearson(codes_x: np.ndarray, kx: int, centred_y: np.ndarray) -> np.ndarray:
    """:func:`_rank_pearson` of the doubled ranks of a code matrix with few distinct values
    (``kx`` at most a row's width) and doubled ranks of ``y`` given centred (``doubled − width
    − 1``), without ranking every value of ``x``.

    All values of a row with the same code share one centred rank ``a_v``, so the sums of
    :func:`_rank_pearson` group by code: Σab = Σ_v a_v·(Σ of the centred y ranks with code
    v), Σa² = Σ_v (count of v)·a_v². The counts and the sums per code are one counting pass
    each over a table of ``kx`` cells a row; every term is an integer below 2^53, so each sum
    is the same exact integer as :func:`_rank_pearson`'s, whatever the order.
    """
    rows, width = codes_x.shape
    flat = (codes_x + (np.arange(rows) * kx)[:, None]).reshape(-1)
    counts = np.bincount(flat, minlength=rows * kx).reshape(rows, kx)
    centred_a = 2 * np.cumsum(counts, axis=1) - counts - width  # doubled rank − (width + 1)
    b = centred_y
    sums_b = np.bincount(flat, weights=b.reshape(-1), minlength=rows * kx).reshape(rows, kx)
    products = np.einsum("ij,ij->i", centred_a, sums_b) / 4.0
    squares_a = np.einsum("ij,ij,ij->i", counts, centred_a, centred_a) / 4.0
    squares_b = np.einsum("ij,ij->i", b, b) / 4.0
    return _pearson(products, squares_a, squares_b, width)


def _resampled_rho(codes_x: np.ndarray, kx: int, codes_y: np.ndarray, ky: int) -> np.ndarray:
    """Spearman's ρ of each row pair of two code matrices: :func:`_rank_pearson` of their
    :func:`_doubled_ranks`, through :func:`_grouped_rank_pearson` when one side has at most
    a row's width of distinct values (the side with fewer is grouped; ρ is symmetric and so
    are the product and the root that combine the sums)."""
    width = codes_x.shape[1]
    if width > _EXACT_WIDTH:
        return _rank_pearson(_doubled_ranks(codes_x, kx), _doubled_ranks(codes_y, ky))
    centre = width + 1
    if min(kx, ky) > width:
        return _centred_rank_pearson(
            _doubled_ranks(codes_x, kx, centre), _doubled_ranks(codes_y, ky, centre)
        )
    if kx <= ky:
        return _grouped_rank_pearson(codes_x, kx, _doubled_ranks(codes_y, ky, centre))
    return _grouped_rank_pearson(codes_y, ky, _doubled_ranks(codes_x, kx, centre))


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


def _resampled_medians(data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``numpy.median(data[indices], axis=1)``, bit for bit, from order statistics.

    A row's median is its middle order statistic (the middle two, averaged, for an even
    width), and the order statistics of a resample are distinct values of the sample. With
    not many more distinct values than a row holds, counting how often each distinct value was
    drawn finds them (one running count over all rows, searched for the middle); otherwise
    each row's codes (the values' positions among the sorted distinct values) are partitioned
    around the middle. The average is numpy's mean of two values: ``(0.0 + lo + hi) / 2``
    (which also turns ``-0.0`` into ``0.0`` as numpy does; ``0.0`` and ``-0.0`` are one
    distinct value, and either gives the same result).

    >>> _resampled_medians(np.array([3.0, 1.0, 2.0]), np.array([[0, 1, 2], [0, 0, 1]])).tolist()
    [2.0, 3.0]
    """
    distinct, codes = np.unique(data, return_inverse=True)
    codes = codes.reshape(-1)
    k = len(distinct)
    rows, width = indices.shape
    middle = width // 2
    wanted = [middle] if width % 2 else [middle - 1, middle]
    found = np.empty((len(wanted), rows), dtype=np.int64)
    counted = k <= 2 * width
    for block in _row_blocks(rows, max(k, width) if counted else width):
        drawn = codes[indices[block]]
        n_rows = len(drawn)
        if counted:
            flat = (drawn + (np.arange(n_rows) * k)[:, None]).reshape(-1)
            running = np.cumsum(np.bincount(flat, minlength=n_rows * k))
            for slot, position in enumerate(wanted):
                # the first code at which a row's count reaches position + 1 is its value there
                at = np.searchsorted(running, np.arange(n_rows) * width + position + 1)
                found[slot, block] = at - np.arange(n_rows) * k
        else:
            parted = np.partition(drawn, wanted, axis=1)
            for slot, position in enumerate(wanted):
                found[slot, block] = parted[:, position]
    if width % 2:
        result: np.ndarray = 0.0 + distinct[found[0]]
        return result
    result = (0.0 + distinct[found[0]] + distinct[found[1]]) / 2.0
    return result


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
    boot = _resampled_medians(data, _fresh_indices(n, _draws(n, n)))
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
    boot_a = _resampled_medians(a, _indices(len(a), rng, _draws(len(a), total)))
    boot_b = _resampled_medians(b, _indices(len(b), rng, _draws(len(b), total)))
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
    return _spearman_of_codes(cx, kx, cy, ky)


def _spearman_of_codes(cx: np.ndarray, kx: int, cy: np.ndarray, ky: int) -> float:
    """:func:`spearman_value` of the samples whose :func:`_codes` these are."""
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
    cx, kx = _codes(a)
    cy, ky = _codes(b)
    value = _spearman_of_codes(cx, kx, cy, ky)
    indices = _fresh_indices(n, _draws(n, n))
    boot = np.empty(len(indices))
    for block in _row_blocks(len(indices), max(kx, ky, indices.shape[1])):
        rows = indices[block]
        boot[block] = _resampled_rho(cx[rows], kx, cy[rows], ky)
    low, high = _interval(value, boot, n)
    return Estimate("spearman_rho", value, low, high, n, _method(METHOD_PAIRS, n))


def _delta_from_codes(codes_a: np.ndarray, codes_b: np.ndarray, k: int) -> np.ndarray:
    """Cliff's δ per row from the codes of both groups (δ = 2U/(n_a·n_b) − 1).

    U counts the pairs with a above b, ties as one half. With few distinct values it is
    counted from the b values at most / equal to each a value (twice a's share is
    ``2·(b ≤ v) − (b = v)``); otherwise from the average ranks of both groups together (U is
    a's rank sum minus n_a(n_a + 1)/2). Either way 2U is an exact integer, so δ is the same
    number both ways.
    """
    rows = codes_a.shape[0]
    n_a, n_b = codes_a.shape[1], codes_b.shape[1]
    if _counted(k, n_a + n_b):
        doubled_u = np.empty(rows, dtype=np.int64)
        for block in _row_blocks(rows, k):
            offsets = (np.arange(len(codes_a[block])) * k)[:, None]
            counts = np.bincount((codes_b[block] + offsets).reshape(-1), minlength=offsets.size * k)
            table = 2 * np.cumsum(counts) - counts
            # row r's running count starts after r·n_b values of b
            shares = table[codes_a[block] + offsets].sum(axis=1)
            doubled_u[block] = shares - 2 * n_b * n_a * np.arange(len(offsets))
    else:
        ranks = _doubled_ranks(np.concatenate([codes_a, codes_b], axis=1), k)
        doubled_u = ranks[:, :n_a].sum(axis=1) - n_a * (n_a + 1)
    u_stat = doubled_u / 2.0
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
    # drawn in the chunks of both groups together, a's indices then b's, chunk by chunk
    draws_a, draws_b = [], []
    for size in _chunks(m_a + m_b):
        draws_a.append(rng.integers(0, len(a), size=(size, m_a), dtype=_index_type(len(a))))
        draws_b.append(rng.integers(0, len(b), size=(size, m_b), dtype=_index_type(len(b))))
    rows_a, rows_b = np.concatenate(draws_a), np.concatenate(draws_b)
    boot = np.empty(RESAMPLES)
    for block in _row_blocks(RESAMPLES, max(k, m_a + m_b)):
        boot[block] = _delta_from_codes(code_a[rows_a[block]], code_b[rows_b[block]], k)
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
