"""hpo_analysis.stats: each statistic against a hand-computed value, and intervals whose bounds
can be worked out by hand (a sample that no resample can change, a normal approximation)."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
