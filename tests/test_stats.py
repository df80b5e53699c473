"""hpo_analysis.stats: each statistic against a hand-computed value, and intervals whose bounds
can be worked out by hand (a sample that no resample can change, a normal approximation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis import stats
from hpo_analysis.stats import Estimate


def test_average_ranks_share_ties() -> None:
    # values 30, 10, 10, 20 → codes 2, 0, 0, 1 → ranks 4, 1.5, 1.5, 3
    assert stats._average_ranks(np.array([[2, 0, 0, 1]]), 3).tolist() == [[4.0, 1.5, 1.5, 3.0]]


def test_spearman_value_with_ties_by_hand() -> None:
    # x ranks 1, 2.5, 2.5, 4; y ranks 1, 3, 2, 4 (both mean 2.5)
    # Σ dx·dy = 2.25 + 0 + 0 + 2.25 = 4.5; Σ dx² = 4.5; Σ dy² = 5 → r = 4.5 / √22.5
    rho = stats.spearman_value(np.array([1.0, 2, 2, 3]), np.array([10.0, 30, 20, 40]))
    assert rho == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(stats.spearman_value(np.array([1.0, 1, 1]), np.array([1.0, 2, 3])))


def test_cliffs_delta_by_hand() -> None:
    # pairs of (3, 4) with (1, 2, 3): 3>1, 3>2, 3=3, 4>1, 4>2, 4>3 → (5 − 0) / 6
    assert stats.cliffs_delta([3, 4], [1, 2, 3]).value == pytest.approx(5 / 6)
    # (1, 5) vs (3): one above, one below → 0
    assert stats.cliffs_delta([1, 5], [3]).value == 0.0


def test_intervals_of_samples_no_resample_can_change() -> None:
    assert stats.rate([True] * 7).ci_low == 1.0 and stats.rate([True] * 7).ci_high == 1.0
    assert (stats.rate([False] * 7).ci_low, stats.rate([False] * 7).ci_high) == (0.0, 0.0)
    constant = stats.median([4.0] * 9)
    assert (constant.value, constant.ci_low, constant.ci_high) == (4.0, 4.0, 4.0)
    apart = stats.cliffs_delta([10, 11, 12], [1, 2, 3, 4])
    assert (apart.value, apart.ci_low, apart.ci_high) == (1.0, 1.0, 1.0)
    difference = stats.rate_difference([True] * 5, [False] * 8)
    assert (difference.value, difference.ci_low, difference.ci_high) == (1.0, 1.0, 1.0)
    gap = stats.median_difference([5.0] * 4, [2.0] * 6)
    assert (gap.value, gap.ci_low, gap.ci_high) == (3.0, 3.0, 3.0)
    # strictly increasing pairs: every resample with two distinct x has ρ = 1 (constant
    # resamples have no ρ and are left out)
    rho = stats.spearman(range(12), [v * v for v in range(12)])
    assert (rho.value, rho.ci_low, rho.ci_high) == (1.0, 1.0, 1.0)


def test_rate_interval_matches_the_normal_approximation() -> None:
    # p = 0.5, n = 400: standard error √(0.25/400) = 0.025, 95 % interval ≈ 0.5 ± 0.049
    estimate = stats.rate([True, False] * 200)
    assert estimate.value == 0.5 and estimate.n == 400
    assert estimate.ci_low == pytest.approx(0.451, abs=0.01)
    assert estimate.ci_high == pytest.approx(0.549, abs=0.01)


def test_median_interval_lies_within_the_sample() -> None:
    estimate = stats.median([1, 2, 3, 4, 100])
    assert estimate.value == 3.0
    assert 1.0 <= estimate.ci_low <= 3.0 <= estimate.ci_high <= 100.0


def test_no_correlation_gives_an_interval_containing_zero_and_says_so() -> None:
    # x = 0..9 against a y whose ranks are 5,1,8,3,10,2,7,4,9,6:
    # Σ d² = 16 + 1 + 25 + 1 + 25 + 16 + 0 + 16 + 0 + 16 = 116,
    # ρ = 1 − 6·116/(10·99) = 0.297; a weak correlation over 10 pairs
    x = list(range(10))
    y = [5, 1, 8, 3, 10, 2, 7, 4, 9, 6]
    estimate = stats.spearman(x, y)
    assert estimate.value == pytest.approx(1 - 6 * 116 / 990)
    assert estimate.contains_zero()
    assert stats.reading(estimate, "up", "down") == "no clear effect"
    assert stats.interval_text(estimate).startswith("95% CI -")


def test_estimates_are_reproducible_and_state_their_method() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=60), rng.normal(size=60)
    assert stats.spearman(x, y) == stats.spearman(x, y)
    assert stats.cliffs_delta(x, y) == stats.cliffs_delta(x, y)
    assert "1000 resamples" in stats.spearman(x, y).method
    assert "each group resampled on its own" in stats.cliffs_delta(x, y).method
    record = stats.median(x).to_dict(budget="2B")
    assert list(record)[:2] == ["budget", "statistic"]
    assert {"value", "ci_low", "ci_high", "method", "n"} <= set(record)


def test_reading_and_interval_text() -> None:
    up = Estimate("rho", 0.4, 0.1, 0.6, 30)
    down = Estimate("rho", -0.4, -0.6, -0.1, 30)
    unknown = Estimate("rho", 0.4, None, None, 30)
    assert stats.reading(up, "up", "down") == "up"
    assert stats.reading(down, "up", "down") == "down"
    assert stats.reading(unknown, "up", "down") == "no clear effect"
    assert stats.interval_text(up) == "95% CI 0.1…0.6"
    assert stats.interval_text(unknown) == "no interval"
    assert stats.interval_text(Estimate("rate", 0.5, 0.25, 0.75, 8), percent=True) == (
        "95% CI 25.0%…75.0%"
    )


def test_empty_and_tiny_samples_have_no_interval() -> None:
    assert stats.rate([]).ci_low is None
    assert stats.median([math.nan]).ci_high is None
    assert stats.spearman([1.0], [2.0]).ci_low is None
    assert stats.cliffs_delta([], [1.0]).ci_low is None


def test_both_ranking_paths_agree_with_ties() -> None:
    codes = np.random.default_rng(3).integers(0, 7, size=(50, 40))
    by_counts = stats._average_ranks(codes, 7)
    by_sorting = stats._average_ranks(codes, 10**6)  # more distinct values than a row: sorted
    assert np.array_equal(by_counts, by_sorting)


def test_large_samples_use_scaled_m_out_of_n_resamples() -> None:
    # n = 20,000 standard normal values: the median's standard error is √(π/2)/√n ≈ 0.00886,
    # so the 95 % interval is about ±0.0174 wide around the estimate
    values = np.random.default_rng(11).normal(size=20_000)
    estimate = stats.median(values)
    assert "m-out-of-n" in estimate.method
    half = (estimate.ci_high - estimate.ci_low) / 2
    assert half == pytest.approx(1.96 * math.sqrt(math.pi / 2) / math.sqrt(20_000), rel=0.25)
    assert estimate.ci_low < estimate.value < estimate.ci_high
    assert "m-out-of-n" not in stats.median(values[: stats.MAX_RESAMPLE_N]).method


# --- the statistics as they were computed before they were vectorized ---------------------------
# The reference: each resample's statistic from its own sorted or counted ranks, one chunk of
# index rows at a time, exactly as stats computed them. The vectorized functions must give the
# very same numbers (intervals included), not merely close ones.


def _ref_resample(n: int, rng: np.random.Generator, statistic, draws: int | None = None):
    m = n if draws is None else draws
    out = [statistic(rng.integers(0, n, size=(size, m))) for size in stats._chunks(m)]
    return np.concatenate(out)


def _ref_average_ranks(codes: np.ndarray, n_distinct: int) -> np.ndarray:
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


def _ref_row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / denominator
    tiny = denominator <= 1e-12 * a.shape[1] ** 2
    return np.where(tiny, np.nan, r)


def _ref_median(values) -> Estimate:
    data = stats._finite(values)
    if not len(data):
        return Estimate("median", math.nan, None, None, 0)
    n = len(data)
    value = float(np.median(data))
    draws = stats._draws(n, n)
    boot = _ref_resample(n, stats._rng(), lambda idx: np.median(data[idx], axis=1), draws)
    low, high = stats._interval(value, boot, n)
    return Estimate("median", value, low, high, n, stats._method(stats.METHOD, n))


def _ref_median_difference(first, second) -> Estimate:
    a, b = stats._finite(first), stats._finite(second)
    if not len(a) or not len(b):
        return Estimate("median_difference", math.nan, None, None, len(a) + len(b))
    rng = stats._rng()
    total = len(a) + len(b)
    boot_a = _ref_resample(
        len(a), rng, lambda idx: np.median(a[idx], axis=1), stats._draws(len(a), total)
    )
    boot_b = _ref_resample(
        len(b), rng, lambda idx: np.median(b[idx], axis=1), stats._draws(len(b), total)
    )
    value = float(np.median(a) - np.median(b))
    low, high = stats._interval(value, boot_a - boot_b, total)
    method = stats._method(stats.METHOD_TWO_GROUPS, total)
    return Estimate("median_difference", value, low, high, total, method)


def _ref_spearman(x, y) -> Estimate:
    a = np.asarray(x, dtype=float).reshape(-1)
    b = np.asarray(y, dtype=float).reshape(-1)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n < 2:
        return Estimate("spearman_rho", math.nan, None, None, n, stats.METHOD_PAIRS)
    cx, kx = stats._codes(a)
    cy, ky = stats._codes(b)
    value = float(
        _ref_row_pearson(_ref_average_ranks(cx[None], kx), _ref_average_ranks(cy[None], ky))[0]
    )

    def statistic(idx: np.ndarray) -> np.ndarray:
        return _ref_row_pearson(_ref_average_ranks(cx[idx], kx), _ref_average_ranks(cy[idx], ky))

    boot = _ref_resample(n, stats._rng(), statistic, stats._draws(n, n))
    low, high = stats._interval(value, boot, n)
    return Estimate("spearman_rho", value, low, high, n, stats._method(stats.METHOD_PAIRS, n))


def _ref_delta_from_codes(codes_a: np.ndarray, codes_b: np.ndarray, k: int) -> np.ndarray:
    n_a, n_b = codes_a.shape[1], codes_b.shape[1]
    ranks = _ref_average_ranks(np.concatenate([codes_a, codes_b], axis=1), k)
    u_stat = ranks[:, :n_a].sum(axis=1) - n_a * (n_a + 1) / 2.0
    return 2.0 * u_stat / (n_a * n_b) - 1.0


def _ref_cliffs_delta(first, second) -> Estimate:
    a, b = stats._finite(first), stats._finite(second)
    if not len(a) or not len(b):
        return Estimate("cliffs_delta", math.nan, None, None, len(a) + len(b))
    codes, k = stats._codes(np.concatenate([a, b]))
    code_a, code_b = codes[: len(a)], codes[len(a) :]
    value = float(_ref_delta_from_codes(code_a[None, :], code_b[None, :], k)[0])
    rng = stats._rng()
    total = len(a) + len(b)
    m_a, m_b = stats._draws(len(a), total), stats._draws(len(b), total)
    boot = np.concatenate(
        [
            _ref_delta_from_codes(
                code_a[rng.integers(0, len(a), size=(size, m_a))],
                code_b[rng.integers(0, len(b), size=(size, m_b))],
                k,
            )
            for size in stats._chunks(m_a + m_b)
        ]
    )
    low, high = stats._interval(value, boot, total)
    method = stats._method(stats.METHOD_TWO_GROUPS, total)
    return Estimate("cliffs_delta", value, low, high, total, method)


def _identical(new: Estimate, reference: Estimate) -> bool:
    """The same statistic, value, interval, n and method, floats compared bit for bit (repr
    tells 0.0 from -0.0, and a NaN value equals a NaN value)."""
    return repr(new) == repr(reference)


# Samples with ties, signed zeros, non-finite values and sizes on both sides of the m-out-of-n
# threshold and of the counting/sorting switch of the ranks.
_value = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, 1e300, -1e300, math.nan, math.inf]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.integers(-5, 5).map(float),
)
_sample = st.lists(_value, min_size=0, max_size=60)


@settings(deadline=None)
@given(_sample)
def test_median_is_the_reference_median(values: list[float]) -> None:
    assert _identical(stats.median(values), _ref_median(values))


@settings(deadline=None)
@given(_sample, _sample)
def test_two_group_statistics_are_the_reference_ones(
    first: list[float], second: list[float]
) -> None:
    assert _identical(stats.median_difference(first, second), _ref_median_difference(first, second))
    assert _identical(stats.cliffs_delta(first, second), _ref_cliffs_delta(first, second))


@settings(deadline=None)
@given(st.lists(st.tuples(_value, _value), min_size=0, max_size=60))
def test_spearman_is_the_reference_spearman(pairs: list[tuple[float, float]]) -> None:
    x = [p[0] for p in pairs]
    y = [p[1] for p in pairs]
    assert _identical(stats.spearman(x, y), _ref_spearman(x, y))


@settings(max_examples=12, deadline=None)
@given(
    st.integers(1, 4000),
    st.integers(1, 4000),
    st.integers(1, 5000),
    st.integers(0, 2**32 - 1),
)
def test_large_samples_are_the_reference_ones(n_a: int, n_b: int, distinct: int, seed: int) -> None:
    """Large samples: m-out-of-n resamples, row blocks, both ranking routes, odd chunks."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, distinct, n_a) / 7.0
    b = rng.integers(0, distinct, n_b) / 7.0
    assert _identical(stats.median(a), _ref_median(a))
    assert _identical(stats.median_difference(a, b), _ref_median_difference(a, b))
    assert _identical(stats.cliffs_delta(a, b), _ref_cliffs_delta(a, b))
    n = min(n_a, n_b)
    assert _identical(stats.spearman(a[:n], b[:n]), _ref_spearman(a[:n], b[:n]))


def test_the_draws_that_need_two_chunks_are_the_reference_ones() -> None:
    # 14 against 2,986 values: resamples of 10 + 1,991 = 2,001 indices are drawn in chunks
    # of 999 and 1 rows, a's then b's in each chunk, as an interpretation of the stream needs
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=14), rng.normal(size=2986)
    assert stats._chunks(10 + 1991) == [999, 1]
    assert _identical(stats.cliffs_delta(a, b), _ref_cliffs_delta(a, b))


def test_wide_rows_take_the_float_route_with_the_same_numbers(monkeypatch) -> None:
    rng = np.random.default_rng(9)
    x, y = rng.integers(0, 40, 300).astype(float), rng.normal(size=300)
    fast = stats.spearman(x, y)
    monkeypatch.setattr(stats, "_EXACT_WIDTH", 0)
    assert _identical(stats.spearman(x, y), fast)
    assert _identical(fast, _ref_spearman(x, y))


def test_ranks_and_medians_against_the_reference_on_many_rows() -> None:
    rng = np.random.default_rng(4)
    for distinct in (1, 3, 50, 400, 10**6):
        codes = rng.integers(0, min(distinct, 400), size=(300, 100))
        for k in (min(distinct, 400), distinct):
            assert np.array_equal(stats._average_ranks(codes, k), _ref_average_ranks(codes, k))
    data = np.round(rng.normal(size=500), 1)
    for width in (1, 2, 99, 100, 300):
        idx = rng.integers(0, len(data), size=(200, width))
        expected = np.median(data[idx], axis=1)
        assert np.array_equal(stats._resampled_medians(data, idx), expected)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300)), min_size=1, max_size=8))
def test_kept_resamples_are_the_drawn_ones(sizes: list[tuple[int, int]]) -> None:
    """The index matrices kept by size are the ones a fresh generator draws, and read-only;
    outside kept_resamples nothing is kept."""
    with stats.kept_resamples():
        for n, draws in sizes:
            kept = stats._fresh_indices(n, draws)
            assert not kept.flags.writeable
            assert np.array_equal(kept, stats._indices(n, stats._rng(), draws))
            assert stats._fresh_indices(n, draws) is kept
    assert stats._KEPT.get() is None
    n, draws = sizes[0]
    assert stats._fresh_indices(n, draws) is not stats._fresh_indices(n, draws)


def test_kept_resamples_stay_within_their_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats, "_KEPT_CELLS", 3 * stats.RESAMPLES * 10)
    with stats.kept_resamples():
        kept = stats._KEPT.get()
        assert kept is not None
        for n in range(1, 8):
            stats._fresh_indices(n, 10)
        assert list(kept) == [(5, 10), (6, 10), (7, 10)]
        stats._fresh_indices(5, 10)  # used again: kept longest
        stats._fresh_indices(8, 10)
        assert list(kept) == [(7, 10), (5, 10), (8, 10)]
        assert np.array_equal(stats._fresh_indices(5, 10), stats._indices(5, stats._rng(), 10))


@settings(deadline=None)
@given(st.lists(st.tuples(_value, _value), min_size=0, max_size=60), _sample)
def test_kept_resamples_give_the_reference_estimates(
    pairs: list[tuple[float, float]], values: list[float]
) -> None:
    x = [p[0] for p in pairs]
    y = [p[1] for p in pairs]
    with stats.kept_resamples():
        for _ in range(2):  # drawn, then kept
            assert _identical(stats.spearman(x, y), _ref_spearman(x, y))
            assert _identical(stats.median(values), _ref_median(values))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 60),
    st.integers(1, 60),
    st.integers(1, 120),
    st.integers(0, 2**32 - 1),
)
def test_grouped_rank_correlation_is_the_ranked_one(
    rows: int, width: int, kx: int, ky: int, seed: int
) -> None:
    """ρ of resamples by grouping the side with few distinct values, bit for bit the ρ of
    ranking both sides (whichever side is grouped, and with constant rows)."""
    rng = np.random.default_rng(seed)
    codes_x = rng.integers(0, kx, size=(rows, width))
    codes_y = rng.integers(0, ky, size=(rows, width))
    ranked = stats._rank_pearson(
        stats._doubled_ranks(codes_x, kx), stats._doubled_ranks(codes_y, ky)
    )
    fast = stats._resampled_rho(codes_x, kx, codes_y, ky)
    assert fast.tobytes() == ranked.tobytes()
    if kx <= width:
        centred_y = stats._doubled_ranks(codes_y, ky) - (width + 1)
        assert np.array_equal(stats._doubled_ranks(codes_y, ky, width + 1), centred_y)
        grouped = stats._grouped_rank_pearson(codes_x, kx, centred_y)
        assert grouped.tobytes() == ranked.tobytes()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, -0.0, 1.0, -2.0, 3.5, 7.0, 1e300]), min_size=1, max_size=40),
    st.integers(1, 60),
    st.integers(0, 2**32 - 1),
)
def test_medians_of_few_distinct_values_are_numpy_medians(
    values: list[float], width: int, seed: int
) -> None:
    """Medians found by counting the distinct values (signed zeros as one) or partitioning
    their codes: numpy's medians, bit for bit."""
    data = np.array(values)
    idx = np.random.default_rng(seed).integers(0, len(data), size=(50, width))
    found = stats._resampled_medians(data, idx)
    expected = np.median(data[idx], axis=1)
    assert [repr(x) for x in found.tolist()] == [repr(x) for x in expected.tolist()]


@given(
    n=st.one_of(st.integers(1, 5000), st.integers(2**31 - 10, 2**31 + 10)),
    draws=st.integers(1, 2100),
)
def test_indices_are_the_64_bit_draws(n: int, draws: int) -> None:
    """Resample indices drawn as 32-bit integers are the ones numpy draws as 64-bit integers,
    chunk after chunk from one generator (same values, same state after)."""
    rng = stats._rng()
    reference = np.concatenate(
        [rng.integers(0, n, size=(size, draws)) for size in stats._chunks(draws)]
    )
    after = rng.integers(0, 2**40)
    rng = stats._rng()
    drawn = stats._indices(n, rng, draws)
    assert drawn.dtype == (np.int32 if n < 2**31 else np.int64)
    assert np.array_equal(drawn, reference)
    assert rng.integers(0, 2**40) == after
