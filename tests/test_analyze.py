"""Findings at the info layer: small hand-made trial rows, expectations computed by hand.

Every finding is checked for its numbers, its "insufficient data" threshold and, where "best"
matters, both directions. The last tests edit real input files and watch the findings move.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo_analysis import Settings, extract
from hpo_analysis.analyze import (
    IMPORTANCE_NOT_INSTALLED,
    INSUFFICIENT,
    LARGE_DELTA,
    MIN_GROUP,
    MIN_IMPORTANCE_TRIALS,
    MIN_N,
    MIXED,
    STYLE_TOP,
    Finding,
    all_findings,
    architecture_grid,
    architecture_style,
    best_architecture,
    best_epoch_gap,
    best_heads_per_width,
    best_trial_per_study,
    cliffs_delta,
    confounded_widths,
    depth_by_horizon,
    diverge_epochs,
    divergence_by_depth,
    divergence_hyperparameters,
    divergence_interactions,
    dropout_generalization,
    early_stopping_by_budget,
    early_stopping_by_epochs,
    easiest_horizon,
    ff_ratio,
    fmt,
    heads_controlled_pairs,
    heads_correlation,
    horizon_transfer,
    horizon_transfer_summary,
    lr_band,
    max_reliable_depth,
    param_importance,
    spearman,
    top_k_architecture,
    trial_frame,
)
from hpo_analysis.derive import assign_ranks
from hpo_analysis.example import generate_example
from hpo_analysis.jsonio import dumps_strict
from hpo_analysis.stats import CONFIDENCE
from hpo_analysis.validate import validate_dir

from .conftest import read_csv, samples_dir, strict_json


def trial(
    num: int,
    objective: float | None = 0.5,
    *,
    study: str = "s_2M_h1",
    budget: str | None = "2M",
    horizon: str | None = "h1",
    direction: str = "minimize",
    state: str = "COMPLETE",
    diverged: bool | None = False,
    **extra: Any,
) -> dict[str, Any]:
    """One flat row as derive.trial_row builds it (only the keys a test needs)."""
    row: dict[str, Any] = {
        "study": study,
        "budget": budget,
        "horizon": horizon,
        "trial_num": num,
        "state": state,
        "objective": objective,
        "direction": direction,
        "diverged": diverged,
    }
    row.update(extra)
    return row


def maximize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "direction": "maximize"} for r in rows]


def column(finding: Finding, name: str) -> list[Any]:
    index = finding.columns.index(name)
    return [row[index] for row in finding.rows]


# --- architecture patterns -------------------------------------------------------------------

ARCH_ROWS = [
    trial(i, objective, d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=4 * d_model)
    for i, (objective, d_model, n_layers, n_heads) in enumerate(
        [
            (0.50, 64, 2, 2),
            (0.40, 128, 4, 4),
            (0.60, 256, 8, 8),
            (0.45, 64, 4, 2),
            (0.55, 128, 2, 4),
        ]
    )
] + [trial(9, 0.01, d_model=512, n_layers=48, n_heads=8, diverged=True)]  # excluded: diverged


def test_best_architecture_minimize_and_maximize() -> None:
    low = best_architecture(ARCH_ROWS)
    assert low.rows == [
        ["2M", 5, "minimize", 0.40, 128, 4, 4, 512, None, "s_2M_h1", 1],
    ]
    assert "2M d_model 128, n_layers 4, n_heads 4 (objective 0.4, n = 5)" in low.sentence
    assert low.n == 5
    high = best_architecture(maximize(ARCH_ROWS))
    assert high.rows[0][3:6] == [0.60, 256, 8]
    assert high.rows[0][2] == "maximize"


def test_best_architecture_insufficient_and_mixed() -> None:
    few = best_architecture(ARCH_ROWS[: MIN_N - 1])
    assert few.rows[0][3] == INSUFFICIENT
    assert f"2M {INSUFFICIENT} (n = {MIN_N - 1})" in few.sentence
    mixed = best_architecture([*ARCH_ROWS[:4], {**ARCH_ROWS[4], "direction": "maximize"}])
    assert mixed.rows[0][2] == MIXED


def test_top_k_architecture_counts_top_and_all() -> None:
    finding = top_k_architecture(ARCH_ROWS, top_k=3)
    # best three: 0.40 (128, 4), 0.45 (64, 4), 0.50 (64, 2)
    assert finding.rows == [
        ["2M", 5, 3, "d_model", 64, 2, "66.7%", 2, "40.0%"],
        ["2M", 5, 3, "d_model", 128, 1, "33.3%", 2, "40.0%"],
        ["2M", 5, 3, "d_model", 256, 0, "0.0%", 1, "20.0%"],
        ["2M", 5, 3, "n_layers", 2, 1, "33.3%", 2, "40.0%"],
        ["2M", 5, 3, "n_layers", 4, 2, "66.7%", 2, "40.0%"],
        ["2M", 5, 3, "n_layers", 8, 0, "0.0%", 1, "20.0%"],
    ]
    assert "d_model 64 (2 of the top 3; 2 of all 5)" in finding.sentence
    assert "n_layers 4 (2 of the top 3; 2 of all 5)" in finding.sentence
    # k is capped at the number of scored trials
    assert set(column(top_k_architecture(ARCH_ROWS, top_k=20), "k")) == {5}


def test_top_k_follows_direction() -> None:
    finding = top_k_architecture(maximize(ARCH_ROWS), top_k=1)
    assert ["2M", 5, 1, "d_model", 256, 1, "100.0%", 1, "20.0%"] in finding.rows


def test_architecture_style_top_mean_and_std() -> None:
    shape = {"d_model": 64, "n_layers": 4}
    rows = [trial(i, float(i), arch_style="balanced", **shape) for i in range(1, 13)]
    rows += [
        trial(20 + i, v, arch_style="wide-shallow", arch_category="balanced", **shape)
        for i, v in enumerate([1, 2, 3, 4])
    ]
    finding = architecture_style(rows)
    # balanced: best 1, top-10 = 1..10, mean 5.5, sample std of 1..10 = sqrt(55/6); median of
    # 1..12 = 6.5
    assert finding.rows[0][:9] == ["2M", "balanced", 12, "64×4", 1.0, STYLE_TOP, 5.5, 3.02765, 6.5]
    low, high = (float(x) for x in finding.rows[0][9].split("…"))
    assert 1 <= low <= 6.5 <= high <= 12
    # the style is arch_style (relative to the budget), not the fixed-threshold arch_category
    assert finding.rows[1][:5] == ["2M", "wide-shallow", 4, "64×4", INSUFFICIENT]
    assert "2M balanced (the only style with enough trials; top-10 mean 5.5 ± 3.02765" in (
        finding.sentence
    )
    top = architecture_style(maximize(rows))
    assert top.rows[0][:9] == ["2M", "balanced", 12, "64×4", 12.0, STYLE_TOP, 7.5, 3.02765, 6.5]


def depth_rows() -> list[dict[str, Any]]:
    plan = [(1, 1, 0), (2, 3, 0), (4, 3, 1), (8, 4, 0), (16, 2, 0)]  # (depth, trials, diverged)
    rows = []
    for depth, count, n_diverged in plan:
        for k in range(count):
            bad = k < n_diverged
            rows.append(trial(len(rows), 100.0 if bad else 0.5, n_layers=depth, diverged=bad))
    return rows


def test_divergence_by_depth_bands() -> None:
    finding = divergence_by_depth(depth_rows())
    # a band with no divergence cannot resample one: its interval is 0%…0%
    assert finding.rows == [
        ["2M", "1", 1, 0, INSUFFICIENT, None, None],
        ["2M", "2", 3, 0, "0.0%", "0.0%", "0.0%"],
        ["2M", "3-4", 3, 1, "33.3%", "0.0%", "100.0%"],
        ["2M", "5-8", 4, 0, "0.0%", "0.0%", "0.0%"],
        ["2M", "9-16", 2, 0, INSUFFICIENT, None, None],
    ]
    assert finding.sentence == "Diverged trials by depth band: 2M: 3-4 layers 1 of 3 (33.3%)."


def test_max_reliable_depth_moves_when_a_deep_trial_diverges() -> None:
    rows = depth_rows()
    before = max_reliable_depth(rows)
    # 16 layers has only 2 trials; 8 layers has 4 and none diverged; first divergence at 4
    assert before.rows == [["2M", 13, 1, 8, 4, 4, 16, ""]]
    assert "2M 8 layers (4 trials; shallowest divergence at 4 layers)" in before.sentence
    eight = next(r for r in rows if r["n_layers"] == 8)
    eight.update(diverged=True, objective=100.0)
    after = max_reliable_depth(rows)
    assert after.rows == [["2M", 13, 2, 2, 3, 4, 16, ""]]
    for row in rows:
        if row["n_layers"] == 2:
            row["diverged"] = True
    assert max_reliable_depth(rows).rows[0][3] == "none"


def test_max_reliable_depth_insufficient() -> None:
    rows = [trial(i, n_layers=2 + i) for i in range(4)]  # every depth has a single trial
    assert max_reliable_depth(rows).rows[0][3] == INSUFFICIENT


def test_heads_correlation_spearman_and_reading() -> None:
    heads = [1, 2, 4, 8, 16]
    rows = [
        trial(i, o, n_heads=h)
        for i, (h, o) in enumerate(zip(heads, [0.1, 0.3, 0.2, 0.5, 0.4], strict=True))
    ]
    # ranks 1..5 against 1,3,2,5,4: sum d^2 = 4, rho = 1 - 6*4/(5*24) = 0.8
    finding = heads_correlation(rows)
    assert finding.rows[0][:4] == ["2M", 5, "minimize", 0.8]
    low, high = finding.rows[0][4:6]
    assert 0 < low <= 0.8 <= high <= 1
    assert finding.rows[0][6] == "more heads, worse objective"
    assert finding.estimates[0]["value"] == 0.8 and finding.estimates[0]["ci_low"] == low
    assert "bootstrap" in finding.estimates[0]["method"]
    # ranks 1..5 against 3,1,5,2,4: sum d^2 = 14, rho = 1 - 6*14/120 = 0.3; the interval of so
    # weak a correlation over 5 pairs contains 0, and the sentence must say so
    weak = [{**r, "objective": o} for r, o in zip(rows, [0.3, 0.1, 0.5, 0.2, 0.4], strict=True)]
    unclear = heads_correlation(weak)
    assert unclear.rows[0][3] == 0.3
    low, high = unclear.rows[0][4:6]
    assert low <= 0 <= high
    assert unclear.rows[0][6] == "no clear effect"
    assert f"2M ρ = 0.3 (95% CI {fmt(low)}…{fmt(high)}; no clear effect, n = 5)" in (
        unclear.sentence
    )
    # 20 strictly increasing pairs: every resample with two distinct values has ρ = 1, so the
    # interval is [1, 1] and the direction words follow the study direction
    many = [trial(i, 0.01 * i, n_heads=i + 1) for i in range(20)]
    assert heads_correlation(many).rows[0][3:] == [1.0, 1.0, 1.0, "more heads, worse objective"]
    assert heads_correlation(maximize(many)).rows[0][6] == "more heads, better objective"
    assert heads_correlation(rows[:4]).rows[0][3] == INSUFFICIENT
    constant = [{**r, "n_heads": 4} for r in rows]
    assert heads_correlation(constant).rows[0][3] == INSUFFICIENT


def test_best_heads_per_width() -> None:
    rows = [
        trial(0, 0.50, d_model=64, n_heads=2),
        trial(1, 0.40, d_model=64, n_heads=4),
        trial(2, 0.45, d_model=64, n_heads=2),
        trial(3, 0.30, d_model=128, n_heads=8),
        trial(4, 0.35, d_model=128, n_heads=4),
    ]
    finding = best_heads_per_width(rows)
    assert finding.rows == [
        ["2M", 64, 3, "2, 4", 4, 0.40],
        ["2M", 128, 2, "4, 8", INSUFFICIENT, None],
    ]
    assert "2M 64 → 4" in finding.sentence
    assert best_heads_per_width(maximize(rows)).rows[0][4] == 2


def test_heads_controlled_pairs_direction_aware() -> None:
    arch = {"d_model": 64, "n_layers": 2}
    rows = [
        trial(0, 0.50, n_heads=2, **arch),
        trial(1, 0.45, n_heads=2, **arch),
        trial(2, 0.40, n_heads=4, **arch),
        trial(3, 0.60, n_heads=8, **arch),
        trial(4, 0.10, n_heads=16, study="t_2M_h1", **arch),  # another study: never paired
        trial(5, 0.20, n_heads=4, d_model=64, n_layers=4),  # another depth: never paired
    ]
    # minimize, best per n_heads: 2 → 0.45, 4 → 0.40, 8 → 0.60
    # pairs (2,4): −0.05 more better; (2,8): +0.15 fewer better; (4,8): +0.2 fewer better
    finding = heads_controlled_pairs(rows)
    assert finding.rows == [["2M", 3, 1, 2, 0, INSUFFICIENT, None, None]]
    assert finding.n == 3
    # maximize, best per n_heads: 2 → 0.50, 4 → 0.40, 8 → 0.60
    # (2,4): −0.1 fewer better; (2,8): +0.1 more better; (4,8): +0.2 more better
    assert heads_controlled_pairs(maximize(rows)).rows == [
        ["2M", 3, 2, 1, 0, INSUFFICIENT, None, None]
    ]


def test_heads_controlled_pairs_median_with_enough_pairs() -> None:
    rows = [
        trial(i, o, n_heads=h, d_model=64, n_layers=2)
        for i, (h, o) in enumerate([(1, 0.9), (2, 0.8), (4, 0.7), (8, 0.6)])
    ]
    # six pairs, differences −0.1 ×3, −0.2 ×2, −0.3: median −0.15
    finding = heads_controlled_pairs(rows)
    row = finding.rows[0]
    assert row[:6] == ["2M", 6, 6, 0, 0, -0.15]
    # every difference lies in [−0.3, −0.1], so must every resampled median: 0 is outside
    assert -0.3 <= row[6] <= -0.15 <= row[7] <= -0.1
    assert "2M more heads better in 6 of 6 pairs (median difference -0.15, 95% CI " in (
        finding.sentence
    )
    assert "no clear effect" not in finding.sentence
    mixed = [{**r, "objective": o} for r, o in zip(rows, [0.9, 0.7, 0.8, 0.9], strict=True)]
    # differences −0.2, −0.1, 0, +0.1, +0.2, +0.1: median +0.05, an interval around 0
    unclear = heads_controlled_pairs(mixed)
    assert unclear.rows[0][5] == 0.05
    assert unclear.rows[0][6] <= 0 <= unclear.rows[0][7]
    assert "no clear effect" in unclear.sentence


def test_ff_ratio_among_top_trials() -> None:
    rows = [
        trial(i, o, d_model=64, d_ff=d_ff)
        for i, (o, d_ff) in enumerate([(0.1, 128), (0.2, 256), (0.3, 256), (0.4, 128), (0.5, 256)])
    ]
    finding = ff_ratio(rows, top_k=3)
    # top 3 ratios 2, 4, 4; all ratios 2, 4, 4, 2, 4
    assert finding.rows == [["2M", 3, 4.0, 2.0, 4.0, 4.0, 2, 5, 4.0]]
    assert "2M median 4 (range 2–4, top 3; all 5 scored trials: median 4)" in finding.sentence
    assert ff_ratio(rows[:4]).rows[0][2] == INSUFFICIENT


# --- training dynamics -----------------------------------------------------------------------


def test_best_epoch_gap_median_and_iqr() -> None:
    rows = [
        trial(i, epochs_trained=t, best_epoch=b)
        for i, (t, b) in enumerate([(10, 9), (10, 8), (10, 7), (10, 6), (20, 10)])
    ]
    rows.append(trial(9, 100.0, diverged=True, epochs_trained=5, best_epoch=0))  # excluded
    rows = [{**r, "stop_reason": "completed"} for r in rows]
    stopped = [
        trial(20 + i, epochs_trained=t, best_epoch=t - 11, stop_reason="early_stopped")
        for i, t in enumerate([30, 40, 50, 60, 70])
    ]
    finding = best_epoch_gap(rows + stopped)
    # completed gaps 1, 2, 3, 4, 10; early-stopped gaps all patience + 1 = 11
    early, completed = finding.rows
    assert early[:4] == ["2M", "early_stopped", 5, 11.0] and early[4:] == [11.0, 11.0, 11.0, 11.0]
    assert completed[:4] == ["2M", "completed", 5, 3.0] and completed[6:] == [2.0, 4.0]
    assert 1.0 <= completed[4] <= 3.0 <= completed[5] <= 10.0
    assert "2M early_stopped median 11 (all equal, n = 5), completed median 3 (IQR 2–4, n = 5)" in (
        finding.sentence
    )
    assert best_epoch_gap(rows[:4]).rows[1][3] == INSUFFICIENT


def test_dropout_against_gap_and_objective() -> None:
    rows = [
        trial(
            i,
            0.9 - 0.01 * i,
            dropout=0.01 * (i + 1),
            val_loss=0.5,  # the best epoch's: not used for the gap
            last_val_loss=0.9 - 0.01 * i,
            train_loss=0.3,
        )
        for i in range(20)
    ]
    finding = dropout_generalization(rows)
    # gap = last_val_loss − train_loss falls strictly with dropout: ρ = −1 in every resample
    assert finding.rows == [["2M", 20, -1.0, -1.0, -1.0, 20, -1.0, -1.0, -1.0]]
    assert "higher dropout, smaller gap" in finding.sentence
    assert "higher dropout, better objective" in finding.sentence
    assert "higher dropout, worse objective" in dropout_generalization(maximize(rows)).sentence
    assert dropout_generalization(rows[:4]).rows[0][2] == INSUFFICIENT
    # the gap uses both losses of the last epoch: without last_val_loss there is no gap
    no_last = [{**r, "last_val_loss": None} for r in rows]
    assert dropout_generalization(no_last).rows[0][:3] == ["2M", 0, INSUFFICIENT]


# --- horizon effects -------------------------------------------------------------------------

A, B, C, D, E = (64, 2, 2), (128, 4, 4), (256, 8, 8), (32, 1, 1), (512, 2, 2)


def horizon_rows() -> list[dict[str, Any]]:
    plan = {
        "h1": [(A, 0.1), (B, 0.2), (C, 0.3), (A, 0.4), (D, 0.5)],
        "h3": [(B, 0.1), (C, 0.2), (A, 0.3), (D, 0.4), (E, 0.5)],
    }
    rows = []
    for horizon, trials in plan.items():
        for arch, objective in trials:
            rows.append(
                trial(
                    len(rows),
                    objective,
                    study=f"s_2M_{horizon}",
                    horizon=horizon,
                    d_model=arch[0],
                    n_layers=arch[1],
                    n_heads=arch[2],
                )
            )
    return rows


def test_horizon_transfer_ranks() -> None:
    finding = horizon_transfer(horizon_rows())
    # h1's best (A) is 3rd of h3's 5 architectures; h3's best (B) is 2nd of h1's 4
    assert finding.rows == [
        ["2M", "h1", 64, 2, 2, 0.1, "h3", 3, 5],
        ["2M", "h3", 128, 4, 4, 0.1, "h1", 2, 4],
    ]
    summary = horizon_transfer_summary(horizon_rows())
    assert summary.rows == [["2M", 2, 0, INSUFFICIENT, 0]]
    assert summary.sentence == (
        "A horizon's best architecture was also the best in another horizon of the same budget "
        f"in 0 of 2 comparisons in 2M (median rank {INSUFFICIENT}; not tried there: 0)."
    )


def test_horizon_transfer_not_tried() -> None:
    rows = horizon_rows()
    rows += [
        trial(
            100 + i,
            0.1 * (i + 1),
            study="s_2M_h5",
            horizon="h5",
            d_model=999 + i,
            n_layers=1,
            n_heads=1,
        )
        for i in range(5)
    ]
    finding = horizon_transfer(rows)
    assert ["2M", "h5", 999, 1, 1, 0.1, "h1", "not tried", 4] in finding.rows
    summary = horizon_transfer_summary(rows)
    # h1 → h3: 3, h1 → h5: not tried, h3 → h1: 2, h3 → h5: not tried, h5 → h1 / h3: not tried
    assert summary.rows == [["2M", 2, 0, INSUFFICIENT, 4]]


def test_easiest_horizon_is_direction_aware() -> None:
    objectives = {"h1": [0.5, 0.6, 0.7, 0.8, 0.9], "h3": [0.4, 0.8, 0.9, 1.0, 1.1]}
    rows = [
        trial(i, o, study=f"s_2M_{h}", horizon=h)
        for h, values in objectives.items()
        for i, o in enumerate(values)
    ]
    low = easiest_horizon(rows)
    assert [r[:6] for r in low.rows] == [
        ["2M", "h1", 5, "minimize", 0.5, 0.7],
        ["2M", "h3", 5, "minimize", 0.4, 0.9],
    ]
    for row in low.rows:  # the median's interval lies within the horizon's values
        assert min(objectives[row[1]]) <= row[6] <= row[5] <= row[7] <= max(objectives[row[1]])
    assert "2M h3 by best (0.4, n = 5) but h1 by median (0.7, n = 5)" in low.sentence
    high = easiest_horizon(maximize(rows))
    assert "2M h3 (best 1.1, median 0.9, n = 5)" in high.sentence


def test_easiest_horizon_overall_row() -> None:
    rows = [
        trial(
            i, 0.1 * (i + 1) + (0.5 if h == "h3" else 0.0), study=f"s_{b}_{h}", budget=b, horizon=h
        )
        for b in ("2M", "2B")
        for h in ("h1", "h3")
        for i in range(3)
    ]
    finding = easiest_horizon(rows)
    # 3 trials per budget and horizon: too few; pooled, 6 per horizon
    assert ["2M", "h1", 3, "minimize", INSUFFICIENT, None, None, None] in finding.rows
    assert ["all budgets", "h1", 6, "minimize", 0.1, 0.2] in [r[:6] for r in finding.rows]
    assert "all budgets h1 (best 0.1, median 0.2, n = 6)" in finding.sentence


def test_depth_by_horizon() -> None:
    rows = [
        trial(i, o, n_layers=n)
        for i, (n, o) in enumerate(zip(range(1, 21), np.linspace(0.5, 0.1, 20), strict=True))
    ]
    finding = depth_by_horizon(rows)
    assert finding.rows == [
        ["2M", "h1", 20, -1.0, -1.0, -1.0, "deeper, better objective"],
        ["all budgets", "h1", 20, -1.0, -1.0, -1.0, "deeper, better objective"],
    ]
    assert depth_by_horizon(maximize(rows)).rows[0][6] == "deeper, worse objective"


# --- divergence ------------------------------------------------------------------------------


def test_divergence_hyperparameters_cliffs_delta() -> None:
    bad = [
        trial(i, 100.0, budget="2B", diverged=True, lr=lr, warmup_steps=w)
        for i, (lr, w) in enumerate([(0.01, 0), (0.02, 0), (0.03, 100)])
    ]
    good = [
        trial(10 + i, 0.5, budget="2B", lr=lr, warmup_steps=w)
        for i, (lr, w) in enumerate([(0.001, 0), (0.002, 100), (0.003, 100), (0.004, 100)])
    ]
    calm = [trial(20, 0.5, budget="2M")]
    finding = divergence_hyperparameters(bad + good + calm)
    rows = {r[1]: r for r in finding.rows}
    # every diverged lr is above every other: δ = 1 in every resample, interval [1, 1]
    assert rows["lr"] == ["2B", "lr", 3, 4, 0.02, 0.0025, 1.0, 1.0, 1.0]
    # warmup: 0 vs (0,100,100,100) twice: −3 each; 100 vs (0,100,100,100): +1; δ = −5/12
    assert rows["warmup_steps"][:7] == ["2B", "warmup_steps", 3, 4, 0.0, 100.0, -0.417]
    assert rows["warmup_steps"][7] <= 0 <= rows["warmup_steps"][8]  # no clear effect
    assert rows["n_layers"][6] == INSUFFICIENT
    assert finding.sentence.startswith(
        "2B: diverged trials differ most in lr (higher; median 0.02 vs 0.0025, Cliff's δ = 1, "
        "95% CI 1…1, n = 3 vs 4)"
    )
    assert f"|δ| ≥ {LARGE_DELTA} with an interval excluding zero for lr;" in finding.sentence
    assert finding.sentence.endswith("no diverged trials in 2M.")
    too_few = divergence_hyperparameters(bad[: MIN_GROUP - 1] + good)
    assert set(column(too_few, "cliffs_delta")) == {INSUFFICIENT}


def interaction_rows() -> list[dict[str, Any]]:
    """2B: high lr (1e-3 decade) × deep (33-64): 4 of 6 diverged; elsewhere 1 of 12.

    Width 1536 only ever has 48 layers (confounded); width 2048 has 24 and 48.
    """
    rows: list[dict[str, Any]] = []
    plan = [
        # (lr, d_model, n_layers, trials, diverged)
        (3e-3, 1536, 48, 4, 3),
        (3e-3, 2048, 48, 2, 1),
        (3e-3, 2048, 24, 4, 1),
        (3e-4, 2048, 24, 4, 0),
        (3e-4, 1536, 48, 4, 0),
    ]
    for lr, d_model, n_layers, count, n_diverged in plan:
        for k in range(count):
            bad = k < n_diverged
            rows.append(
                trial(
                    len(rows),
                    100.0 if bad else 0.5,
                    budget="2B",
                    diverged=bad,
                    lr=lr,
                    d_model=d_model,
                    n_layers=n_layers,
                )
            )
    return rows


def test_lr_band_decades() -> None:
    assert [lr_band(x) for x in (1e-5, 9.9e-5, 1e-4, 0.0093)] == [
        "1e-05–1e-04",
        "1e-05–1e-04",
        "1e-04–1e-03",
        "1e-03–1e-02",
    ]


def test_confounded_widths_by_hand() -> None:
    frame = trial_frame(interaction_rows())
    assert confounded_widths(frame) == [(1536, 48, 8)]
    # every width with one depth: a plain grid axis, nothing singled out
    grid = trial_frame([trial(i, d_model=64 * (i + 1), n_layers=i + 1) for i in range(4)])
    assert confounded_widths(grid) == []


def test_divergence_interactions_counts_and_strongest_cell() -> None:
    calm = trial(99, 0.5, budget="2M", lr=1e-3, n_layers=4)
    finding = divergence_interactions(interaction_rows() + [calm])
    cells = {
        (r[1], r[2]): r[3:6]
        for r in finding.rows
        if r[0] == "2B" and r[6] is None and r[1] != "confounded"
    }
    assert cells == {
        ("1e-04–1e-03", "17-32"): [4, 0, "0.0%"],
        ("1e-04–1e-03", "33-64"): [4, 0, "0.0%"],
        ("1e-03–1e-02", "17-32"): [4, 1, "25.0%"],
        ("1e-03–1e-02", "33-64"): [6, 4, "66.7%"],
    }
    confounded = [r for r in finding.rows if r[1] == "confounded"]
    assert confounded == [["2B", "confounded", "d_model 1536 only with 48 layers", 8] + [None] * 5]
    # strongest cell 4/6 against the other 12 trials with 1 diverged: 66.7% − 8.3% = 58.3 points
    rest = next(r for r in finding.rows if r[2] == "all other cells")
    assert rest[:6] == ["2B", "1e-03–1e-02 × 33-64 vs the rest", "all other cells", 12, 1, "8.3%"]
    assert rest[6] == 58.3
    assert rest[7] < 58.3 < rest[8]
    assert "2B: lr 1e-03–1e-02 with 33-64 layers diverged in 4 of 6 trials (66.7%) vs 1 of 12" in (
        finding.sentence
    )
    assert "confounded: d_model 1536 only with 48 layers (8 trials)" in finding.sentence
    assert finding.sentence.endswith("no divergence in 2M.")
    estimate = finding.estimates[0]
    assert estimate["value"] == pytest.approx(4 / 6 - 1 / 12, abs=1e-4)
    assert estimate["ci_low"] <= estimate["value"] <= estimate["ci_high"]


def test_max_reliable_depth_names_the_confounded_width() -> None:
    finding = max_reliable_depth(interaction_rows())
    assert finding.rows[0][-1] == "1536×48"
    assert "depth is confounded with width: d_model 1536 only with 48 layers" in finding.sentence


def test_early_stopping_rate_leaves_diverged_trials_out_of_the_denominator() -> None:
    rows = [trial(i, early_stopped=i < 3) for i in range(6)]  # 3 of 6 stopped early
    rows += [trial(10 + i, 100.0, diverged=True, early_stopped=False) for i in range(4)]
    finding = early_stopping_by_budget(rows)
    row = finding.rows[0]
    assert row[:4] == ["2M", 6, 3, "50.0%"] and row[6] == 4
    low, high = (float(x.rstrip("%")) for x in row[4:6])
    assert 0.0 <= low < 50.0 < high <= 100.0
    assert "2M 50.0% (95% CI" in finding.sentence and "of 6" in finding.sentence
    assert early_stopping_by_budget(rows[:4]).rows[0][3] == INSUFFICIENT


def test_early_stopping_by_epochs_config() -> None:
    rows = [trial(i, early_stopped=i == 0, epochs_config=25) for i in range(4)]  # 1 of 4
    rows += [trial(10 + i, early_stopped=i < 3, epochs_config=100) for i in range(4)]  # 3 of 4
    rows += [trial(20, early_stopped=True, epochs_config=50)]  # one trial: insufficient
    rows += [trial(30, 100.0, diverged=True, early_stopped=False, epochs_config=100)]
    finding = early_stopping_by_epochs(rows)
    assert [r[:5] for r in finding.rows] == [
        ["2M", 25, 4, 1, "25.0%"],
        ["2M", 50, 1, 1, INSUFFICIENT],
        ["2M", 100, 4, 3, "75.0%"],
    ]
    assert "2M 25.0% (95% CI" in finding.sentence and "at 25 epochs vs 75.0%" in finding.sentence


def test_diverge_epochs() -> None:
    rows = [
        trial(i, None, diverged=True, diverge_epoch=e, diverge_kind=k)
        for i, (e, k) in enumerate([(3, "nan"), (5, "nan"), (7, "inf"), (9, "nan"), (11, "inf")])
    ]
    rows.append(trial(9, 0.5))
    finding = diverge_epochs(rows)
    assert finding.rows == [["2M", 5, 5, 7.0, 3, 11, "inf 2, nan 3"]]
    assert "2M median epoch 7 (range 3–11, n = 5)" in finding.sentence
    assert diverge_epochs(rows[1:]).rows[0][3] == INSUFFICIENT


# --- importance ------------------------------------------------------------------------------


def importance_rows(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        lr = 10 ** (-5 + 3 * i / (n - 1))
        objective = (math.log10(lr) + 3.5) ** 2 + 0.001 * ((i * 7) % 5)
        rows.append(trial(i, objective, lr=lr, dropout=((i * 13) % 10) / 20, d_model=64))
    return rows


def test_param_importance_with_optuna() -> None:
    pytest.importorskip("optuna")
    finding = param_importance(importance_rows(40))
    assert column(finding, "parameter") == ["lr", "dropout"]  # d_model is constant: left out
    assert column(finding, "rank") == [1, 2]
    importance = column(finding, "importance")
    assert importance[0] > importance[1] and math.isclose(sum(importance), 1.0, abs_tol=0.002)
    assert f"2M lr ({fmt(importance[0])}, n = 40)" in finding.sentence
    small = param_importance(importance_rows(MIN_IMPORTANCE_TRIALS - 1))
    assert small.rows == [["2M", MIN_IMPORTANCE_TRIALS - 1, None, INSUFFICIENT, None]]


def test_param_importance_samples_large_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("optuna")
    from hpo_analysis.analyze import importance

    monkeypatch.setattr(importance, "MAX_IMPORTANCE_TRIALS", 30)
    finding = param_importance(importance_rows(80))
    assert column(finding, "parameter")[0] == "lr"
    assert column(finding, "n")[0] == 80  # n stays the number of scored trials
    assert "seeded random sample of 30" in finding.notes
    assert param_importance(importance_rows(80)).rows == finding.rows  # deterministic


def test_param_importance_without_optuna(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    finding = param_importance(importance_rows(40))
    assert finding.rows == []
    assert finding.sentence == IMPORTANCE_NOT_INSTALLED + "."


# --- the statistics themselves ---------------------------------------------------------------


@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=12),
    st.lists(st.integers(-5, 5), min_size=1, max_size=12),
)
def test_cliffs_delta_is_the_pairwise_definition(a: list[int], b: list[int]) -> None:
    pairs = [int(np.sign(x - y)) for x, y in itertools.product(a, b)]
    # the exact fraction rounded once (a float mean would round a tie like -0.2125 either way)
    assert cliffs_delta(a, b) == float(round(Fraction(sum(pairs), len(pairs)), 3)) + 0.0


def test_cliffs_delta_rounds_an_exact_tie_once() -> None:
    # δ = -17/80 = -0.2125 exactly; half-even rounding of the exact value gives -0.212
    assert cliffs_delta([0] * 9 + [-1], [0] * 7 + [1]) == -0.212


@settings(max_examples=50)
@given(st.permutations(list(range(8))))
def test_spearman_matches_the_rank_difference_formula(order: list[int]) -> None:
    import pandas as pd

    n = len(order)
    expected = 1 - 6 * sum((i - r) ** 2 for i, r in enumerate(order)) / (n * (n * n - 1))
    assert spearman(pd.Series(range(n)), pd.Series(order)) == round(expected, 3) + 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, -0.0, 1.0, 2.0, 1e300, math.nan, math.inf, -math.inf]),
            st.sampled_from([0.0, -0.0, 3.0, 4.0, -1e300, math.nan, math.inf]),
        ),
        max_size=MIN_N + 4,
    )
)
def test_rho_is_computed_exactly_where_spearman_has_a_value(
    pairs: list[tuple[float, float]],
) -> None:
    import pandas as pd

    from hpo_analysis.analyze.cells import _has_rho, _rho

    x = pd.Series([p[0] for p in pairs], dtype=float)
    y = pd.Series([p[1] for p in pairs], dtype=float)
    assert _has_rho(x, y) == (spearman(x, y) is not None)
    assert (_rho(x, y) is None) == (spearman(x, y) is None)


def test_spearman_with_ties_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    import pandas as pd

    x = [1, 2, 2, 3, 5, 5, 5, 8]
    y = [3, 1, 4, 1, 5, 9, 2, 6]
    assert spearman(pd.Series(x), pd.Series(y)) == round(float(stats.spearmanr(x, y)[0]), 3)


# --- every finding: robustness and "numbers in sentences are the table's" --------------------

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])")


# --- one direction rule: nothing is compared across minimize and maximize --------------------


def direction_rows(directions: tuple[str, str]) -> list[dict[str, Any]]:
    """Two studies of one budget (one per horizon), 30 scored trials each, on a small grid of
    architectures with every n_heads tried per (d_model, n_layers); ranks as the pipeline sets
    them. The maximize study's objectives are accuracies, the minimize study's losses."""
    rows = []
    for direction, horizon in zip(directions, ("h1", "h3"), strict=True):
        for num in range(30):
            d_model, n_layers, n_heads = (
                (64, 128, 256)[num % 3],
                (2, 4)[num // 3 % 2],
                (2, 4)[num // 6 % 2],
            )
            loss = 2.0 + 0.01 * ((num * 7) % 30) + 0.1 * (n_layers == 4)
            rows.append(
                trial(
                    num,
                    loss if direction == "minimize" else 1.0 / loss,
                    study=f"s_{direction}_2M_{horizon}",
                    horizon=horizon,
                    direction=direction,
                    d_model=d_model,
                    n_layers=n_layers,
                    n_heads=n_heads,
                    d_ff=4 * d_model,
                    dropout=0.05 * (num % 4),
                    lr=1e-4 * (1 + num % 5),
                    weight_decay=0.01,
                    warmup_steps=100 * (num % 3),
                    batch_size=32,
                    epochs_config=10,
                    last_val_loss=loss + 0.1,
                    train_loss=loss - 0.05 * (num % 4),
                    arch_style=("narrow-deep", "balanced", "wide-shallow")[num % 3],
                )
            )
    assign_ranks(rows)
    return rows


# Every finding that names a best trial, ranks trials, takes a top-k or compares objectives.
COMPARING: list[Any] = [
    best_trial_per_study,
    best_architecture,
    top_k_architecture,
    architecture_style,
    heads_correlation,
    best_heads_per_width,
    heads_controlled_pairs,
    ff_ratio,
    dropout_generalization,
    horizon_transfer,
    easiest_horizon,
    depth_by_horizon,
    param_importance,
    architecture_grid,
]


def _says_mixed(finding: Finding) -> bool:
    return MIXED in finding.sentence or any(MIXED in row for row in finding.rows)


@pytest.mark.parametrize("compute", COMPARING, ids=lambda f: f.__name__)
def test_mixed_directions_are_never_compared(compute: Any) -> None:
    if compute is param_importance:
        pytest.importorskip("optuna")
    finding = compute(direction_rows(("minimize", "maximize")))
    assert _says_mixed(finding), (finding.sentence, finding.rows)
    assert "best objective overall" not in finding.sentence
    if compute is heads_controlled_pairs:
        assert finding.estimates == [] and finding.n == 0  # no pooled median of both kinds


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("compute", COMPARING, ids=lambda f: f.__name__)
def test_one_direction_is_compared_as_before(compute: Any, direction: str) -> None:
    if compute is param_importance:
        pytest.importorskip("optuna")
    finding = compute(direction_rows((direction, direction)))
    assert not _says_mixed(finding), (finding.sentence, finding.rows)


def test_best_trial_per_study_names_the_best_only_within_one_direction() -> None:
    for direction, pick in (("minimize", min), ("maximize", max)):
        rows = direction_rows((direction, direction))
        best = pick((r for r in rows if r["rank_in_study"] == 1), key=lambda r: r["objective"])
        sentence = best_trial_per_study(rows).sentence
        assert f"overall is {best['objective']:.6g} (study {best['study']}" in sentence
    mixed = best_trial_per_study(direction_rows(("minimize", "maximize"))).sentence
    assert mixed == (
        f"2 of 2 studies have a best trial; {MIXED} (minimize and maximize studies), so no "
        "objective is the best overall."
    )


def test_horizon_transfer_marks_a_budget_that_mixes_directions() -> None:
    rows = direction_rows(("minimize", "maximize"))
    assert horizon_transfer(rows).rows == [["2M", None, None, None, None, MIXED, None, None, None]]
    summary = horizon_transfer_summary(rows)
    assert summary.rows == [] and summary.n == 0


def sentence_numbers_come_from_the_table(finding: Finding, top_k: int) -> list[str]:
    allowed = {str(finding.n), str(top_k), str(MIN_N), str(MIN_GROUP), str(LARGE_DELTA)}
    allowed.add(f"{CONFIDENCE:.0%}".rstrip("%"))  # "95% CI"
    allowed.add(str(len(finding.rows)))  # "12 of 12 studies": a count of table rows
    for row in finding.rows:
        for value in row:
            text = fmt(value)
            allowed.add(text)
            allowed.update(_NUMBER.findall(text))
    return [n for n in _NUMBER.findall(finding.sentence) if n not in allowed]


def test_sentences_quote_their_tables(example_out: Path) -> None:
    doc = strict_json(example_out / "findings.json")
    findings = [Finding.from_dict(f) for f in doc["findings"]]
    assert len(findings) >= 19
    for finding in findings:
        assert sentence_numbers_come_from_the_table(finding, doc["top_k"]) == [], finding.id


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "study": st.sampled_from(["a_2M_h1", "b_2M_h3", "c_2B_h1", "weird"]),
            "trial_num": st.integers(0, 50),
            "state": st.sampled_from(["COMPLETE", "FAIL", "PRUNED"]),
            "objective": st.one_of(st.none(), st.floats(-2, 2)),
            "direction": st.sampled_from(["minimize", "maximize"]),
            "diverged": st.one_of(st.none(), st.booleans()),
            "rank_in_study": st.none(),  # set by derive.assign_ranks, as in the pipeline
        },
        optional={
            "budget": st.sampled_from(["2M", "2B", None]),
            "horizon": st.sampled_from(["h1", "h3", None]),
            **{
                name: st.one_of(st.none(), st.integers(1, 64))
                for name in (
                    "d_model",
                    "n_layers",
                    "n_heads",
                    "d_ff",
                    "best_epoch",
                    "epochs_trained",
                    "diverge_epoch",
                    "warmup_steps",
                )
            },
            **{
                name: st.one_of(st.none(), st.floats(0, 1), st.just(math.inf))
                for name in ("lr", "dropout", "val_loss", "train_loss")
            },
            "arch_category": st.sampled_from(["balanced", "narrow-deep", None]),
            "arch_style": st.sampled_from(["balanced", "wide-shallow", None]),
            "early_stopped": st.one_of(st.none(), st.booleans()),
        },
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(rows_strategy)
def test_any_rows_give_well_formed_findings(rows: list[dict[str, Any]]) -> None:
    assign_ranks(rows)
    for finding in all_findings(rows, top_k=3):
        assert finding.sentence and finding.n >= 0
        assert all(len(r) == len(finding.columns) for r in finding.rows), finding.id
        json.loads(dumps_strict(finding.to_dict()))  # as findings.json writes it


@settings(max_examples=40, deadline=None)
@given(rows_strategy)
def test_kept_resamples_give_the_findings_computed_apart(rows: list[dict[str, Any]]) -> None:
    """all_findings draws the resamples of each sample size once for all findings; drawn
    afresh for each estimate: the same findings."""
    from hpo_analysis.analyze import _findings

    assign_ranks(rows)
    together = all_findings(rows, top_k=3)
    apart = _findings(rows, 3)
    assert dumps_strict([f.to_dict() for f in together]) == dumps_strict(
        [f.to_dict() for f in apart]
    )


# --- outputs: findings.json, README, validate; and findings follow the input files -----------


def test_findings_json_and_readme_on_the_example(example_out: Path) -> None:
    doc = strict_json(example_out / "findings.json")
    assert doc["thresholds"]["min_n"] == MIN_N and doc["top_k"] == 20
    ids = [f["id"] for f in doc["findings"]]
    for expected in (
        "best_architecture",
        "top_k_architecture",
        "architecture_style",
        "divergence_by_depth",
        "max_reliable_depth",
        "heads_correlation",
        "heads_controlled_pairs",
        "ff_ratio",
        "early_stopping_by_budget",
        "best_epoch_gap",
        "dropout_generalization",
        "horizon_transfer",
        "horizon_transfer_summary",
        "easiest_horizon",
        "depth_by_horizon",
        "divergence_by_budget",
        "divergence_hyperparameters",
        "diverge_epochs",
        "param_importance",
    ):
        assert expected in ids
    readme = (example_out / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Known patterns and findings", 1)[1]
    for item in doc["findings"]:
        assert item["sentence"].replace("|", "\\|") in section, item["id"]
        assert f"(n = {item['n']})" in section
    for heading in (
        "Architecture patterns",
        "Training dynamics",
        "Horizon effects",
        "Divergence patterns",
        "Hyperparameter importance",
    ):
        assert f"### {heading}" in section


_RHO_SENTENCE = re.compile(r"ρ = (-?[\d.]+) \(95% CI (-?[\d.]+)…(-?[\d.]+); (.+?), n = ")


def test_example_findings_carry_intervals_and_honest_wording(example_out: Path) -> None:
    """Structure, not the example's numbers: every correlation sentence has an interval and
    says "no clear effect" exactly when it contains 0; styles split the large budgets."""
    doc = strict_json(example_out / "findings.json")
    findings = {f["id"]: Finding.from_dict(f) for f in doc["findings"]}
    quoted = 0
    for name in ("heads_correlation", "dropout_generalization", "depth_by_horizon"):
        sentence = findings[name].sentence
        assert sentence.count("ρ = ") == len(_RHO_SENTENCE.findall(sentence)), name
        for value, low, high, reading in _RHO_SENTENCE.findall(sentence):
            quoted += 1
            assert float(low) <= float(value) <= float(high)
            assert (reading == "no clear effect") == (float(low) <= 0 <= float(high)), sentence
        for estimate in findings[name].estimates:
            assert {"ci_low", "ci_high", "method", "n", "value"} <= set(estimate)
    assert quoted >= 3
    # the budget-relative style: every budget with several architectures has ≥ 2 styles with
    # ≥ 3 trials (the fixed thresholds put whole budgets into one category)
    summary = read_csv(example_out / "hpo_summary.csv")
    for budget in {r["budget"] for r in summary}:
        mine = [r for r in summary if r["budget"] == budget]
        counts: dict[str, int] = {}
        for r in mine:
            counts[r["arch_style"]] = counts.get(r["arch_style"], 0) + 1
        assert sum(1 for c in counts.values() if c >= 3) >= 2, budget
    # early stopping is a share of the non-diverged trials
    early = findings["early_stopping_by_budget"]
    diverged = {r["budget"]: 0 for r in summary}
    for r in summary:
        diverged[r["budget"]] += r["diverged"] == "true"
    for row in early.rows:
        assert row[early.columns.index("diverged_left_out")] == diverged[row[0]]
    # the interaction table names its strongest cell against the rest, for each budget that
    # has a diverged trial
    interactions = findings["divergence_interactions"]
    strongest = {r[0] for r in interactions.rows if r[2] == "all other cells"}
    assert strongest == {b for b, n in diverged.items() if n}
    # budgets by size in every finding
    order = ["2M", "20M", "200M", "2B"]
    for finding in findings.values():
        seen = [r[0] for r in finding.rows if r and r[0] in order]
        assert seen == sorted(seen, key=order.index), finding.id


def test_validate_requires_a_strict_findings_json(example_out: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(example_out, copy)
    (copy / "findings.json").write_text('{"findings": [{"id": "x"}], "n": NaN}')
    assert any("findings.json" in f for f in validate_dir(copy))
    (copy / "findings.json").write_text('{"findings": [{"id": "x"}]}')
    assert any("findings.json: finding 0" in f for f in validate_dir(copy))
    (copy / "findings.json").unlink()
    assert any("findings.json" in f for f in validate_dir(copy))


def _finding(out: Path, id_: str) -> dict[str, Any]:
    doc = strict_json(out / "findings.json")
    return next(f for f in doc["findings"] if f["id"] == id_)


def _trial_files(root: Path, study: str) -> list[Path]:
    return sorted((root / study / "trials").glob("trial_*.json"))


def test_editing_the_input_moves_the_findings(tmp_path: Path) -> None:
    src = tmp_path / "hpo"
    generate_example(src, budgets=("2M",), horizons=("h1",), trials_per_study=25, n_diverged=0)
    out = tmp_path / "out"
    extract([src], out, Settings())
    depth = _finding(out, "max_reliable_depth")["rows"][0]
    reliable = depth[3]
    assert isinstance(reliable, int) and depth[2] == 0
    best = _finding(out, "best_architecture")["rows"][0]

    # make three trials at the reliable depth diverge (NaN objective)
    study = "phase6a_2M_h1_threshold_1pct"
    changed = 0
    for path in _trial_files(src, study):
        body = json.loads(path.read_text())
        arch = body.get("user_attrs", {}).get("architecture") or body.get("architecture", {})
        if arch.get("n_layers") == reliable and changed < 3:
            path.write_text(path.read_text().replace(f'"value": {body["value"]}', '"value": NaN'))
            changed += 1
    assert changed == min(3, depth[4])
    # and give the worst remaining trial the best objective of the study
    worst = max(
        (p for p in _trial_files(src, study) if "NaN" not in p.read_text()),
        key=lambda p: json.loads(p.read_text())["value"],
    )
    body = json.loads(worst.read_text())
    worst.write_text(worst.read_text().replace(f'"value": {body["value"]}', '"value": 0.0001'))

    extract([src], out, Settings())
    moved = _finding(out, "max_reliable_depth")["rows"][0]
    assert moved[2] == changed and moved[3] != reliable
    assert moved[5] == reliable  # the shallowest divergence is now at the old reliable depth
    new_best = _finding(out, "best_architecture")["rows"][0]
    assert new_best[3] == 0.0001 and new_best[10] == body["trial_number"]
    assert new_best != best
    divergence = _finding(out, "divergence_by_budget")
    assert divergence["rows"][0][2] == changed


def test_real_samples_best_follows_each_study_direction(tmp_path: Path) -> None:
    """On the real study dumps (skipped without them): "best" is the direction-aware extreme."""
    samples = samples_dir()
    if samples is None:
        pytest.skip("real samples not found (set HPO_SAMPLES)")
    out = tmp_path / "out"
    extract([samples], out, Settings())
    rows = read_csv(out / "hpo_summary.csv")
    best = {r[0]: r for r in _finding(out, "best_architecture")["rows"]}
    assert best
    for budget, row in best.items():
        scored = [
            r
            for r in rows
            if r["budget"] == budget
            and r["state"] == "COMPLETE"
            and r["objective"]
            and r["diverged"] == "false"
        ]
        directions = {r["direction"] for r in scored}
        assert row[1] == len(scored) and {row[2]} == directions
        pick = max if row[2] == "maximize" else min
        assert row[3] == pick(float(r["objective"]) for r in scored)


# --- the numpy trial frame against the pandas operations it stands for ------------------------


def _as_pandas(rows: list[dict[str, Any]]) -> Any:
    """The trial frame of ``rows`` as a pandas DataFrame (index = row position)."""
    return trial_frame(rows).to_pandas()


def _same_rows(frame: Any, expected: Any) -> bool:
    """Whether a :class:`Frame` holds exactly the rows of a pandas ``expected`` frame in its
    columns (value for value and type for type, NaN equal to NaN)."""
    import pandas as pd

    mine = frame.to_pandas()
    if len(mine) != len(expected) or set(expected.columns) - set(mine.columns):
        return False
    mine = mine[list(expected.columns)]
    mine.index = expected.index
    try:
        pd.testing.assert_frame_equal(mine, expected, check_dtype=True)
    except AssertionError:
        return False
    return True


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["2M", "20M", "2B", "200M", None, "x"]), max_size=40))
def test_groups_are_the_rows_of_each_value_in_frame_order(budgets: list[str | None]) -> None:
    """The budget groups: values in budget order (ties in first-seen order), each with its
    rows in frame order, as a dictionary of row positions gives them."""
    from hpo_analysis.analyze.frame import _budget_groups, _label
    from hpo_analysis.finding import budget_sort_key

    frame = trial_frame([{"budget": b, "trial_num": i} for i, b in enumerate(budgets)])
    frame = frame.take(np.arange(len(frame))[::-1])  # a selection not in table order
    positions: dict[str | None, list[int]] = {}
    for position, value in enumerate(frame["budget"].tolist()):
        positions.setdefault(value, []).append(position)
    expected = [(_label(v), positions[v]) for v in sorted(positions, key=budget_sort_key)]
    groups = _budget_groups(frame)
    assert [label for label, _ in groups] == [label for label, _ in expected]
    for (_, group), (_, rows) in zip(groups, expected, strict=True):
        assert group["trial_num"].tolist() == frame["trial_num"][rows].tolist()


_KEY = st.sampled_from([1.0, 2.0, -0.0, 0.0, 64.0, math.nan, None])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_KEY, _KEY, st.sampled_from(["a", "b", None])), max_size=30),
    st.booleans(),
)
def test_group_by_is_pandas_groupby(keys: list[tuple[Any, Any, Any]], sort: bool) -> None:
    """``group_by`` walks the groups pandas' ``groupby`` walks: keys with a missing value left
    out, groups sorted by key or in first-seen order, rows in frame order."""
    from hpo_analysis.analyze.frame import group_by

    rows = [
        {"d_model": d, "n_layers": n, "stop_reason": s, "trial_num": i}
        for i, (d, n, s) in enumerate(keys)
    ]
    frame = trial_frame(rows)
    expected_frame = _as_pandas(rows)
    for columns in (["d_model"], ["d_model", "n_layers"], ["stop_reason", "n_layers"]):
        by = columns[0] if len(columns) == 1 else columns
        expected = [
            (key, cell["trial_num"].tolist())
            for key, cell in expected_frame.groupby(by, sort=sort, dropna=True)
        ]
        got = [
            (key, cell["trial_num"].tolist()) for key, cell in group_by(frame, columns, sort=sort)
        ]
        assert len(got) == len(expected)
        for (key, trials), (want_key, want_trials) in zip(got, expected, strict=True):
            assert trials == want_trials
            assert (key == want_key) if len(columns) == 1 else tuple(key) == tuple(want_key)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**80), 2**80),
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from(["1.5", np.float64(2.5), np.int64(7), np.bool_(True)]),
        ),
        max_size=20,
    )
)
def test_trial_frame_numbers_are_the_value_by_value_conversion(values: list[Any]) -> None:
    from hpo_analysis.analyze.frame import _numbers

    expected = [
        float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
        for v in values
    ]
    assert _numbers(values).tobytes() == np.array(expected, dtype=float).tobytes()
    frame = trial_frame([{"d_model": v} for v in values])
    assert frame["d_model"].tobytes() == np.array(expected, dtype=float).tobytes()


def _reference_head_pairs(rows: list[dict[str, Any]]) -> tuple[int, int, int, int, int]:
    """Pairs, more-heads-better, fewer-heads-better, ties and trials used, one pandas group
    per (study, d_model, n_layers) as heads_controlled_pairs first counted them."""
    from hpo_analysis.analyze.frame import _scored

    scored = _scored(trial_frame(rows)).to_pandas()
    arch = ["d_model", "n_layers", "n_heads"]
    best = (
        scored.assign(_score=scored["objective"])
        .sort_values(["study", *arch, "_score", "trial_num"], kind="mergesort")
        .drop_duplicates(["study", *arch])
    )
    pairs = more = fewer = ties = used = 0
    for _, cell in best.groupby(["study", "d_model", "n_layers"], sort=True):
        if len(cell) < 2:
            continue
        used += len(cell)
        scores = cell["_score"].tolist()
        for i in range(len(scores)):
            for j in range(i + 1, len(scores)):
                pairs += 1
                if scores[j] == scores[i]:
                    ties += 1
                elif scores[j] < scores[i]:
                    more += 1
                else:
                    fewer += 1
    return pairs, more, fewer, ties, used


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s1", "s2", "s10", None]),
            st.sampled_from([64, 128]),
            st.sampled_from([2, 4]),
            st.sampled_from([1, 2, 4, 8]),
            st.sampled_from([0.5, 1.0, 1.5, 2.0, -0.0, 0.0]),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_controlled_head_pairs_are_the_grouped_ones(
    trials: list[tuple[str | None, int, int, int, float]],
) -> None:
    rows = [
        {
            "study": study,
            "budget": "2M",
            "trial_num": i,
            "d_model": d_model,
            "n_layers": n_layers,
            "n_heads": n_heads,
            "objective": objective,
            "state": "COMPLETE",
            "diverged": False,
        }
        for i, (study, d_model, n_layers, n_heads, objective) in enumerate(trials)
    ]
    finding = heads_controlled_pairs(rows)
    pairs, more, fewer, ties, used = _reference_head_pairs(rows)
    assert finding.rows[0][1:5] == [pairs, more, fewer, ties]
    assert finding.n == used


def _ranked_by_sort_values(frame: Any, direction: str) -> Any:
    """How the trials are ranked, in pandas: DataFrame.sort_values over three columns."""
    from hpo_analysis.analyze.frame import sign

    ordered = frame.assign(_score=sign(direction) * frame["objective"])
    return ordered.sort_values(["_score", "study", "trial_num"], kind="mergesort")


_RANK_ROW = st.fixed_dictionaries(
    {
        "objective": st.one_of(
            st.sampled_from([0.0, -0.0, 1.0, 2.5, -1.0, math.nan, math.inf, -math.inf]),
            st.none(),
        ),
        "study": st.one_of(st.sampled_from(["a", "b", "B", "é", "a b"]), st.none()),
        "trial_num": st.one_of(st.integers(0, 3), st.none()),
        "direction": st.sampled_from(["minimize", "maximize"]),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_RANK_ROW, max_size=25),
    st.sampled_from(["minimize", "maximize"]),
    st.booleans(),
    st.booleans(),
)
def test_rank_order_is_the_sort_values_order(
    rows: list[dict[str, Any]], direction: str, shuffle: bool, odd_study: bool
) -> None:
    from hpo_analysis.analyze.frame import _rank_order, _ranked

    if odd_study and rows:  # a study that is not text: numbers sort before text
        rows = [{**rows[0], "study": 7}, *rows[1:]]
    if shuffle:
        rows = rows[::-1]
    frame = trial_frame(rows)
    expected = _ranked_by_sort_values(frame.to_pandas(), direction)
    assert _rank_order(frame, direction).tolist() == expected.index.tolist()
    assert _same_rows(_ranked(frame, direction), expected.drop(columns="_score"))
    ranked_score = _ranked(frame, direction)["_score"]
    assert ranked_score.tobytes() == expected["_score"].to_numpy().tobytes()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 9.0, 48.0, 64.0, 65.0]), max_size=30),
    st.lists(st.floats(1e-9, 10.0), max_size=30),
)
def test_bands_mapped_once_per_value_are_the_mapped_bands(
    depths: list[float], rates: list[float]
) -> None:
    import pandas as pd

    from hpo_analysis.analyze import depth_band
    from hpo_analysis.analyze.frame import _map_distinct

    def whole(value: float) -> str:
        return "missing" if value != value else str(int(value))

    cases = ((depths, depth_band), (rates + rates[:3], lr_band), (depths + [math.nan] * 2, whole))
    for values, function in cases:
        mapped = _map_distinct(np.array(values, dtype=float), function)
        assert mapped.tolist() == pd.Series(values, dtype=float).map(function).tolist()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 1.0, math.nan, math.inf, None]),
            st.sampled_from([2.0, -math.inf, None]),
            st.sampled_from(["COMPLETE", "FAIL"]),
            st.sampled_from([True, False, None]),
        ),
        max_size=20,
    )
)
def test_known_and_scored_trials_are_the_masked_ones(rows: list[tuple[Any, ...]]) -> None:
    from hpo_analysis.analyze.frame import _known, _scored

    records = [
        {"objective": o, "d_model": d, "lr": o, "state": s, "diverged": v} for o, d, s, v in rows
    ]
    frame, expected = trial_frame(records), _as_pandas(records)
    columns = ["d_model", "lr"]
    assert _same_rows(
        _known(frame, columns), expected[np.isfinite(expected[columns].to_numpy(float)).all(axis=1)]
    )
    assert _same_rows(_scored(frame), expected[expected["_scored"]])


_NUMBERS = st.lists(
    st.one_of(
        st.sampled_from([0.0, -0.0, 1.0, 1.0, 2.5, math.inf, -math.inf]),
        st.floats(-1e6, 1e6, allow_nan=False),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_NUMBERS)
def test_mean_std_quantiles_and_ranks_are_pandas(values: list[float]) -> None:
    """The statistics the findings take of a column are pandas' own, bit for bit."""
    import pandas as pd

    from hpo_analysis.analyze.cells import _quantiles, _sig, average_ranks
    from hpo_analysis.analyze.frame import _mean_std

    series = pd.Series(values, dtype=float)
    array = np.array(values, dtype=float)
    with np.errstate(all="ignore"):
        mean, std = _mean_std(array)
        expected = (float(series.mean()), float(series.std(ddof=1)))
    assert np.array([mean, std]).tobytes() == np.array(expected).tobytes()
    assert average_ranks(array).tobytes() == series.rank().to_numpy().tobytes()
    if values:
        with np.errstate(all="ignore"):
            got = _quantiles(array)
            want = tuple(_sig(float(series.quantile(q))) for q in (0.25, 0.5, 0.75))
        assert np.array(got).tobytes() == np.array(want).tobytes()


@settings(max_examples=300, deadline=None)
@given(_NUMBERS, _NUMBERS, st.lists(st.sampled_from([0, 1, 2]), max_size=4))
def test_cliffs_delta_is_the_pandas_rank_sum(
    a: list[float], b: list[float], nans: list[int]
) -> None:
    """Cliff's δ of the average ranks as pandas ranks them, NaN values (no rank) included."""
    import pandas as pd

    first = [math.nan if i in nans else v for i, v in enumerate(a)]
    second = list(b)
    ranks = pd.concat(
        [pd.Series(first, dtype=float), pd.Series(second, dtype=float)], ignore_index=True
    ).rank()
    n_a, n_b = len(first), len(second)
    rank_sum = float(ranks.iloc[:n_a].sum())
    if not n_a or not n_b or not math.isfinite(rank_sum):
        expected = math.nan
    else:
        twice_u = round(2 * rank_sum) - n_a * (n_a + 1)
        expected = float(round(Fraction(twice_u - n_a * n_b, n_a * n_b), 3)) + 0.0
    got = cliffs_delta(first, second)
    assert got == expected or (math.isnan(got) and math.isnan(expected))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([256.0, 512.0, 1024.0, math.nan]),
            st.sampled_from([2.0, 4.0, 8.0, -0.0, 0.0, math.nan]),
        ),
        max_size=30,
    )
)
def test_confounded_widths_are_the_grouped_ones(pairs: list[tuple[float, float]]) -> None:
    """The widths tried at one depth only, as a pandas group-by of d_model finds them."""
    frame = trial_frame([{"d_model": w, "n_layers": d} for w, d in pairs])
    known = frame.to_pandas()
    known = known[np.isfinite(known["d_model"]) & np.isfinite(known["n_layers"])]
    depths = known.groupby("d_model")["n_layers"].agg(["nunique", "first", "size"])
    if len(depths) < 2 or (depths["nunique"] == 1).all():
        expected = []
    else:
        single = depths[(depths["nunique"] == 1) & (depths["size"] >= MIN_GROUP)]
        expected = [(int(w), int(r["first"]), int(r["size"])) for w, r in single.iterrows()]
    assert confounded_widths(frame) == expected


def _example_rows() -> list[dict[str, Any]]:
    """Rows of two budgets and three horizons with varied architectures, some diverged."""
    import random

    draw = random.Random(0)
    rows = []
    for i in range(240):
        budget, horizon = ("2M", "20M")[i % 2], ("h1", "h3", "h7")[i % 3]
        diverged = draw.random() < 0.1
        rows.append(
            trial(
                i,
                draw.uniform(0.4, 1.2),
                study=f"s_{budget}_{horizon}",
                budget=budget,
                horizon=horizon,
                diverged=diverged,
                d_model=draw.choice([64, 128, 256]),
                n_layers=draw.choice([2, 4, 8, 16]),
                n_heads=draw.choice([2, 4, 8]),
                d_ff=draw.choice([256, 512, 1024]),
                lr=10 ** draw.uniform(-4, -2),
                dropout=draw.choice([0.0, 0.1, 0.2]),
                batch_size=draw.choice([32, 64]),
                weight_decay=draw.choice([0.0, 0.01]),
                warmup_steps=draw.choice([0, 100]),
                epochs_config=draw.choice([50, 100]),
                best_epoch=draw.randint(5, 40),
                epochs_trained=draw.randint(41, 100),
                train_loss=draw.uniform(0.3, 1.0),
                last_val_loss=draw.uniform(0.4, 1.2),
                early_stopped=None if diverged else draw.random() < 0.4,
                stop_reason="diverged" if diverged else draw.choice(["completed", "early_stopped"]),
                diverge_epoch=draw.randint(1, 30) if diverged else None,
                arch_style=draw.choice(["narrow-deep", "balanced", "wide-shallow"]),
            )
        )
    assign_ranks(rows)
    return rows


def test_findings_need_no_pandas() -> None:
    """Every finding is computed on numpy columns: with pandas made unimportable, the findings
    of a generated example are the same as with it."""
    import subprocess

    rows = _example_rows()
    expected = json.dumps([f.to_dict() for f in all_findings(rows)], default=repr)
    script = (
        "import json, sys\n"
        "sys.modules['pandas'] = None  # import pandas now raises ImportError\n"
        "from hpo_analysis.analyze import all_findings\n"
        "rows = json.loads(sys.stdin.read())\n"
        "print(json.dumps([f.to_dict() for f in all_findings(rows)], default=repr))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(rows),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def _transfer_summary_row_by_row(detail: list[list[Any]]) -> list[list[Any]]:
    """The definition of the horizon-transfer summary's table: the comparisons (rows with an
    other horizon, not short of data) by budget, then over all budgets; the ranks, how many
    are 1, their median, and how many architectures were not tried there."""
    from hpo_analysis.analyze.cells import _sig
    from hpo_analysis.finding import INSUFFICIENT, MIN_N

    comparisons = [r for r in detail if r[6] is not None and r[7] != INSUFFICIENT]
    by_budget: dict[str, list[list[Any]]] = {}
    for row in comparisons:
        by_budget.setdefault(row[0], []).append(row)
    groups = list(by_budget.items())
    if len(groups) > 1:
        groups.append(("all budgets", comparisons))
    table: list[list[Any]] = []
    for budget, chosen in groups:
        ranks = [r[7] for r in chosen if isinstance(r[7], int)]
        not_tried = sum(1 for r in chosen if r[7] == "not tried")
        ones = sum(1 for r in ranks if r == 1)
        median: Any = _sig(float(np.median(ranks))) if len(ranks) >= MIN_N else INSUFFICIENT
        table.append([budget, len(ranks), ones, median, not_tried])
    return table


@st.composite
def _transfer_details(draw: Any) -> list[list[Any]]:
    from hpo_analysis.finding import INSUFFICIENT, MIXED

    detail: list[list[Any]] = []
    for budget in draw(st.lists(st.sampled_from(["2M", "20M", "200M", "2B"]), unique=True)):
        for _ in range(draw(st.integers(0, 40))):
            kind = draw(st.integers(0, 9))
            if kind == 0:
                detail.append([budget, None, None, None, None, MIXED, None, None, None])
            elif kind == 1:
                detail.append([budget, "h1", None, None, None, INSUFFICIENT, None, None, None])
            else:
                rank = draw(
                    st.one_of(
                        st.integers(1, 2**40),
                        st.integers(1, 4),
                        st.sampled_from(["not tried", INSUFFICIENT]),
                    )
                )
                detail.append([budget, "h1", 64, 2, 4, 0.5, "h2", rank, 3])
    return detail


@settings(max_examples=300, deadline=None)
@given(_transfer_details())
def test_transfer_summary_counts_as_row_by_row(detail: list[list[Any]]) -> None:
    """The summary counts each budget's ranks (358,800 rows at 300 horizons a budget) and
    takes the median from the counts: the same table as going row by row with numpy's
    median, large ranks, even counts, budgets with no comparison and markers included."""
    from hpo_analysis.analyze.horizon import _transfer_summary

    expected = _transfer_summary_row_by_row(detail)
    got = _transfer_summary(detail, 0).rows
    assert json.dumps(got) == json.dumps(expected)
    assert [type(v) for row in got for v in row] == [type(v) for row in expected for v in row]
