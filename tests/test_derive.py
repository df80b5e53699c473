"""Unit tests for hpo_analysis.derive, with expectations computed by hand."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpo_analysis.derive import (
    Divergence,
    arch_category,
    assign_arch_style,
    assign_ranks,
    assign_similar_successful,
    best_epoch,
    budget_params,
    divergence_point,
    is_diverged,
    stop_reason,
    trial_row,
)
from hpo_analysis.model import CurvePoint, Settings, Trial

NAN = float("nan")
INF = float("inf")
THRESHOLDS = (0.15, 0.5)


def curve(*points: dict[str, float | None]) -> tuple[CurvePoint, ...]:
    """Epochs 0, 1, 2, ... with the given metrics."""
    return tuple(CurvePoint(i, dict(m)) for i, m in enumerate(points))


def vt(val: float | None, train: float | None) -> dict[str, float | None]:
    return {"val_loss": val, "train_loss": train}


# --- best_epoch ------------------------------------------------------------------------------


def test_best_epoch_lowest_val_loss() -> None:
    c = curve({"val_loss": 0.7}, {"val_loss": 0.6}, {"val_loss": 0.65})
    assert best_epoch(c) == (1, 0.6)


def test_best_epoch_earliest_wins_ties() -> None:
    c = curve({"val_loss": 0.5}, {"val_loss": 0.4}, {"val_loss": 0.4}, {"val_loss": 0.45})
    assert best_epoch(c) == (1, 0.4)


def test_best_epoch_ignores_nan_and_inf() -> None:
    c = curve(
        {"val_loss": NAN},
        {"val_loss": 0.9},
        {"val_loss": INF},
        {"val_loss": -INF},
        {"val_loss": 0.95},
    )
    assert best_epoch(c) == (1, 0.9)


def test_best_epoch_non_finite_first_then_finite() -> None:
    c = curve({"val_loss": -INF}, {"val_loss": NAN}, {"val_loss": 2.0})
    assert best_epoch(c) == (2, 2.0)


def test_best_epoch_empty_curve() -> None:
    assert best_epoch(()) == (None, None)


def test_best_epoch_no_finite_val_loss() -> None:
    c = curve({"train_loss": 1.0}, {"val_loss": None}, {"val_loss": NAN})
    assert best_epoch(c) == (None, None)


def test_best_epoch_reports_recorded_epoch_numbers() -> None:
    c = (CurvePoint(3, {"val_loss": 1.0}), CurvePoint(5, {"val_loss": 0.5}))
    assert best_epoch(c) == (5, 0.5)


def test_best_epoch_value_is_float() -> None:
    epoch, value = best_epoch(curve({"val_loss": 2}))
    assert (epoch, value) == (0, 2.0)
    assert isinstance(value, float)


# --- is_diverged -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objective", "direction", "expected"),
    [
        (9.99, "minimize", False),
        (10.0, "minimize", True),  # at the threshold counts as diverged
        (12.5, "minimize", True),
        (0.0, "minimize", False),
        (NAN, "minimize", True),
        (INF, "minimize", True),
        (-INF, "minimize", True),
        (None, "minimize", None),
        (50.0, "maximize", False),  # maximize: the threshold does not apply
        (10.0, "maximize", False),
        (NAN, "maximize", True),
        (INF, "maximize", True),
        (-INF, "maximize", True),
        (None, "maximize", None),
    ],
)
def test_is_diverged(objective: float | None, direction: str, expected: bool | None) -> None:
    assert is_diverged(objective, 10.0, direction) is expected


def test_is_diverged_default_direction_is_minimize() -> None:
    assert is_diverged(10.0, 10.0) is True
    assert is_diverged(9.0, 10.0) is False


# --- divergence_point ------------------------------------------------------------------------


def test_divergence_clean_curve_is_value_only() -> None:
    c = curve(vt(1.0, 1.2), vt(0.9, 1.0), vt(0.8, 0.9))
    assert divergence_point(c, 10.0) == Divergence(None, None, None, "value_only")


def test_divergence_empty_curve_is_value_only() -> None:
    assert divergence_point((), 10.0) == Divergence(None, None, None, "value_only")


def test_divergence_nan_val_loss() -> None:
    c = curve(vt(2.0, 2.5), vt(1.5, 1.8), vt(NAN, 3.0), vt(NAN, NAN))
    # val crossed (NaN) -> loss_at_diverge is that NaN -> None
    assert divergence_point(c, 10.0) == Divergence(2, 1.5, None, "nan_loss")


def test_divergence_inf_train_loss_only() -> None:
    c = curve(vt(2.0, 2.0), vt(3.0, INF))
    # val 3.0 did not cross, so the crossing loss is train (inf) -> None
    assert divergence_point(c, 10.0) == Divergence(1, 2.0, None, "inf_loss")


def test_divergence_negative_inf_is_inf_kind() -> None:
    c = curve(vt(2.0, 2.0), vt(1.0, -INF))
    assert divergence_point(c, 10.0) == Divergence(1, 2.0, None, "inf_loss")


def test_divergence_val_above_threshold() -> None:
    c = curve(vt(5.0, 4.0), vt(12.5, 9.0))
    assert divergence_point(c, 10.0) == Divergence(1, 5.0, 12.5, "above_threshold")


def test_divergence_train_above_threshold_at_first_epoch() -> None:
    c = curve(vt(5.0, 11.0), vt(20.0, 30.0))
    # first epoch: no previous epoch -> last_good_loss None; val 5.0 did not cross -> train
    assert divergence_point(c, 10.0) == Divergence(0, None, 11.0, "above_threshold")


def test_divergence_exactly_at_threshold_crosses() -> None:
    c = curve(vt(9.99, 9.0), vt(10.0, 9.5))
    assert divergence_point(c, 10.0) == Divergence(1, 9.99, 10.0, "above_threshold")


def test_divergence_both_crossed_reports_val_loss() -> None:
    c = curve(vt(3.0, 3.0), vt(12.0, 15.0))
    assert divergence_point(c, 10.0) == Divergence(1, 3.0, 12.0, "above_threshold")


def test_divergence_last_good_loss_is_previous_val_loss_even_if_missing() -> None:
    c = curve({"train_loss": 1.0}, vt(11.0, 1.0))
    assert divergence_point(c, 10.0) == Divergence(1, None, 11.0, "above_threshold")


def test_divergence_respects_threshold_argument() -> None:
    c = curve(vt(1.0, 1.0), vt(4.0, 3.5), vt(6.0, 5.5))
    assert divergence_point(c, 5.0) == Divergence(2, 4.0, 6.0, "above_threshold")
    assert divergence_point(c, 100.0) == Divergence(None, None, None, "value_only")


# --- arch_category ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_layers", "d_model", "expected"),
    [
        (48, 64, "narrow-deep"),  # 0.75
        (33, 64, "narrow-deep"),  # 0.515625
        (32, 64, "balanced"),  # 0.5 exactly: boundary is balanced
        (12, 64, "balanced"),  # 0.1875
        (3, 20, "balanced"),  # 0.15 exactly: boundary is balanced
        (6, 40, "balanced"),  # 0.15 exactly
        (9, 64, "wide-shallow"),  # 0.140625
        (2, 512, "wide-shallow"),  # 0.00390625
        (None, 64, None),
        (4, None, None),
        (None, None, None),
    ],
)
def test_arch_category(n_layers: int | None, d_model: int | None, expected: str | None) -> None:
    assert arch_category(n_layers, d_model, THRESHOLDS) == expected


def test_arch_category_zero_width_is_none_not_error() -> None:
    assert arch_category(4, 0, THRESHOLDS) is None


def test_arch_category_uses_given_thresholds() -> None:
    assert arch_category(12, 64, (0.2, 0.5)) == "wide-shallow"  # 0.1875 < 0.2
    assert arch_category(12, 64, (0.1, 0.18)) == "narrow-deep"  # 0.1875 > 0.18


# --- stop_reason -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "diverged", "early", "trained", "config", "expected"),
    [
        ("RUNNING", True, True, 5, 10, "running"),
        ("WAITING", None, None, None, None, "running"),
        ("FAIL", True, True, 3, 10, "failed"),
        ("FAIL", None, None, None, None, "failed"),
        ("PRUNED", True, True, 3, 10, "pruned"),
        ("PRUNED", False, False, 3, 10, "pruned"),
        ("COMPLETE", True, True, 3, 10, "diverged"),
        ("COMPLETE", True, False, 10, 10, "diverged"),
        ("UNKNOWN", True, None, None, None, "diverged"),
        ("COMPLETE", False, True, 3, 10, "early_stopped"),
        ("COMPLETE", False, False, 10, 10, "completed"),
        ("COMPLETE", None, None, 10, 10, "completed"),
        ("COMPLETE", False, None, None, 10, "unknown"),
        ("COMPLETE", False, None, 10, None, "unknown"),
        ("UNKNOWN", False, False, 10, 10, "unknown"),
    ],
)
def test_stop_reason_priority(
    state: str,
    diverged: bool | None,
    early: bool | None,
    trained: int | None,
    config: int | None,
    expected: str,
) -> None:
    assert stop_reason(state, diverged, early, trained, config) == expected


# --- trial_row -------------------------------------------------------------------------------


def make_trial(
    *,
    objective: float | None = 1.7,
    state: str = "COMPLETE",
    points: tuple[CurvePoint, ...] = (),
    epochs_config: int | None = 5,
    d_model: int | None = 64,
    n_layers: int | None = 4,
    n_heads: int | None = 4,
    extra_params: dict[str, Any] | None = None,
    factors: dict[str, str | None] | None = None,
) -> Trial:
    return Trial(
        study="phase1_2B_h3",
        trial_num=7,
        state=state,
        objective=objective,
        architecture={
            "d_model": d_model,
            "n_layers": n_layers,
            "n_heads": n_heads,
            "d_ff": 256,
            "param_count": 1000,
            "arch_idx": 2,
        },
        training={
            "lr": 0.001,
            "epochs_config": epochs_config,
            "weight_decay": 0.01,
            "warmup_steps": 100,
            "dropout": 0.1,
            "batch_size": 32,
        },
        results={
            "val_accuracy": 0.8,
            "train_accuracy": NAN,
            "duration_sec": 12.5,
            "datetime_start": None,
            "datetime_complete": None,
        },
        curve=points,
        factors=factors if factors is not None else {"budget": "2B", "horizon": "h3"},
        extra_params=extra_params or {},
        extra={},
        source_file="phase1_2B_h3/trial_7.json",
    )


THREE_EPOCHS = curve(vt(2.1, 2.0), vt(1.6, 1.5), vt(1.7, 1.2))


def test_trial_row_early_stopped_trial() -> None:
    row = trial_row(make_trial(points=THREE_EPOCHS, epochs_config=5), Settings())
    assert row["epochs_trained"] == 3
    assert row["early_stopped"] is True
    assert row["stop_reason"] == "early_stopped"
    assert row["best_epoch"] == 1
    assert row["best_val_loss"] == 1.6
    assert row["train_loss"] == 1.2
    assert row["val_loss"] == 1.7
    assert row["objective"] == 1.7
    assert row["objective_kind"] == "finite"
    assert row["diverged"] is False
    assert row["arch_category"] == "wide-shallow"  # 4/64 = 0.0625
    assert row["rank_in_study"] is None
    assert row["budget"] == "2B"
    assert row["horizon"] == "h3"
    assert row["trial_num"] == 7
    assert row["val_accuracy"] == 0.8
    assert row["train_accuracy"] is None  # NaN -> None
    assert row["curve_non_finite"] == 0
    assert "diverge_epoch" not in row


def test_trial_row_full_length_is_completed_not_early_stopped() -> None:
    row = trial_row(make_trial(points=THREE_EPOCHS, epochs_config=3), Settings())
    assert row["epochs_trained"] == 3
    assert row["early_stopped"] is False
    assert row["stop_reason"] == "completed"


def test_trial_row_without_curve() -> None:
    row = trial_row(make_trial(points=()), Settings())
    assert row["epochs_trained"] is None
    assert row["early_stopped"] is None
    assert row["best_epoch"] is None
    assert row["best_val_loss"] is None
    assert row["train_loss"] is None
    assert row["val_loss"] == 1.7
    assert row["stop_reason"] == "unknown"


def test_trial_row_without_epochs_config() -> None:
    row = trial_row(make_trial(points=THREE_EPOCHS, epochs_config=None), Settings())
    assert row["epochs_trained"] == 3
    assert row["early_stopped"] is None
    assert row["stop_reason"] == "unknown"


def test_trial_row_nan_objective_diverged() -> None:
    points = curve(vt(3.5, 3.0), vt(NAN, NAN))
    row = trial_row(make_trial(objective=NAN, points=points, epochs_config=10), Settings())
    assert row["val_loss"] is None
    assert row["objective"] is None
    assert row["objective_kind"] == "nan"
    assert row["diverged"] is True
    assert row["early_stopped"] is False  # ended early, but because it diverged
    assert row["stop_reason"] == "diverged"
    assert row["epochs_trained"] == 2
    assert row["train_loss"] is None  # last epoch's train_loss is NaN
    assert row["best_epoch"] == 0
    assert row["best_val_loss"] == 3.5
    assert row["curve_non_finite"] == 2
    assert row["diverge_epoch"] == 1
    assert row["last_good_loss"] == 3.5
    assert row["loss_at_diverge"] is None
    assert row["diverge_kind"] == "nan_loss"


@pytest.mark.parametrize(("objective", "kind"), [(INF, "inf"), (-INF, "-inf")])
def test_trial_row_infinite_objective(objective: float, kind: str) -> None:
    row = trial_row(make_trial(objective=objective, points=THREE_EPOCHS), Settings())
    assert row["val_loss"] is None
    assert row["objective"] is None
    assert row["objective_kind"] == kind
    assert row["diverged"] is True
    assert row["diverge_kind"] == "value_only"  # the curve itself never crosses


def test_trial_row_missing_objective_uses_last_val_loss() -> None:
    row = trial_row(make_trial(objective=None, points=THREE_EPOCHS), Settings())
    assert row["val_loss"] == 1.7  # last epoch's val_loss, not the best (1.6)
    assert row["objective"] is None
    assert row["objective_kind"] == "missing"
    assert row["diverged"] is None


def test_trial_row_missing_objective_and_non_finite_last_val_loss() -> None:
    points = curve(vt(1.0, 1.0), vt(NAN, 0.9))
    row = trial_row(make_trial(objective=None, points=points), Settings())
    assert row["val_loss"] is None
    assert row["train_loss"] == 0.9


def test_trial_row_finite_objective_above_threshold() -> None:
    points = curve(vt(5.0, 5.0), vt(6.0, 6.0))
    absolute = Settings(diverge_threshold=10.0)
    row = trial_row(make_trial(objective=15.0, points=points, epochs_config=10), absolute)
    assert row["val_loss"] == 15.0  # objective is finite, so it is the val_loss
    assert row["diverged"] is True
    assert row["early_stopped"] is False
    assert row["stop_reason"] == "diverged"
    assert row["diverge_epoch"] is None
    assert row["diverge_kind"] == "value_only"


@pytest.mark.parametrize(("state", "reason"), [("PRUNED", "pruned"), ("FAIL", "failed")])
def test_trial_row_short_pruned_or_failed_is_not_early_stopped(state: str, reason: str) -> None:
    row = trial_row(make_trial(state=state, points=THREE_EPOCHS, epochs_config=5), Settings())
    assert row["early_stopped"] is False
    assert row["stop_reason"] == reason


def test_trial_row_extra_params_and_factors() -> None:
    trial = make_trial(
        extra_params={"optimizer": "adam"}, factors={"budget": "2B", "horizon": "h3", "phase": "6a"}
    )
    row = trial_row(trial, Settings())
    assert row["param_optimizer"] == "adam"
    assert row["phase"] == "6a"


# --- assign_ranks ----------------------------------------------------------------------------


def rank_row(
    study: str, objective: float | None, state: str = "COMPLETE", direction: str = "minimize"
) -> dict[str, Any]:
    return {
        "study": study,
        "objective": objective,
        "state": state,
        "direction": direction,
        "rank_in_study": None,
        "is_best_in_study": None,
    }


def ranks(rows: list[dict[str, Any]]) -> list[int | None]:
    return [r["rank_in_study"] for r in rows]


def bests(rows: list[dict[str, Any]]) -> list[bool | None]:
    return [r["is_best_in_study"] for r in rows]


def test_assign_ranks_min_ranking_with_ties() -> None:
    rows = [rank_row("s", 0.3), rank_row("s", 0.1), rank_row("s", 0.2), rank_row("s", 0.2)]
    assign_ranks(rows)
    assert ranks(rows) == [4, 1, 2, 2]
    assert bests(rows) == [False, True, False, False]


def test_assign_ranks_only_complete_with_objective() -> None:
    rows = [
        rank_row("s", 0.3),
        rank_row("s", None),
        rank_row("s", 0.05, state="PRUNED"),
        rank_row("s", 0.01, state="FAIL"),
        rank_row("s", 0.2),
        rank_row("s", 0.02, state="RUNNING"),
    ]
    assign_ranks(rows)
    assert ranks(rows) == [2, None, None, None, 1, None]
    assert bests(rows) == [False, False, False, False, True, False]


def test_assign_ranks_tie_for_first() -> None:
    rows = [rank_row("s", 0.1), rank_row("s", 0.1), rank_row("s", 0.2)]
    assign_ranks(rows)
    assert ranks(rows) == [1, 1, 3]
    assert bests(rows) == [True, True, False]


def test_assign_ranks_per_study() -> None:
    rows = [rank_row("a", 0.5), rank_row("b", 0.9), rank_row("a", 0.4), rank_row("b", 0.95)]
    assign_ranks(rows)
    assert ranks(rows) == [2, 1, 1, 2]
    assert bests(rows) == [False, True, True, False]


def test_assign_ranks_maximize_highest_first() -> None:
    rows = [rank_row("m", o, direction="maximize") for o in (0.7, 0.9, 0.8, 0.9)]
    assign_ranks(rows)
    assert ranks(rows) == [4, 1, 3, 1]
    assert bests(rows) == [False, True, False, True]


def test_assign_ranks_nothing_rankable() -> None:
    rows = [rank_row("s", None), rank_row("s", 0.1, state="PRUNED")]
    assign_ranks(rows)
    assert ranks(rows) == [None, None]
    assert bests(rows) == [False, False]


def test_assign_ranks_non_finite_objective_via_trial_row_is_unranked() -> None:
    rows = [trial_row(make_trial(objective=o), Settings()) for o in (0.3, NAN, 0.1, INF)]
    assign_ranks(rows)
    assert ranks(rows) == [2, None, 1, None]
    assert bests(rows) == [False, False, True, False]


def test_assign_ranks_ignores_infinite_objective_in_row() -> None:
    rows = [rank_row("s", 0.3), rank_row("s", INF), rank_row("s", 0.1)]
    assign_ranks(rows)
    assert ranks(rows) == [2, None, 1]
    assert bests(rows) == [False, False, True]


def test_assign_ranks_nan_objective_in_row_does_not_corrupt_ranks() -> None:
    rows = [rank_row("s", 0.3), rank_row("s", NAN), rank_row("s", 0.1)]
    assign_ranks(rows)
    assert ranks(rows) == [2, None, 1]
    assert bests(rows) == [False, False, True]


objectives = st.lists(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
    | st.sampled_from([0.0, 0.5, 1.0]),  # make ties likely
    min_size=1,
    max_size=12,
)


@given(objectives)
def test_assign_ranks_property(values: list[float]) -> None:
    rows = [rank_row("s", v) for v in values]
    assign_ranks(rows)
    best = min(values)
    for row in rows:
        rank = row["rank_in_study"]
        assert 1 <= rank <= len(values)
        assert rank == 1 + sum(1 for v in values if v < row["objective"])
        assert row["is_best_in_study"] is (rank == 1)
        if rank == 1:
            assert row["objective"] == best


# --- assign_similar_successful ---------------------------------------------------------------


def arch_row(
    study: str,
    trial_num: int,
    arch: tuple[int, int, int],
    *,
    diverged: bool | None,
    rank: int | None = None,
    budget: str | None = "2B",
    val_loss: float | None = None,
) -> dict[str, Any]:
    d_model, n_layers, n_heads = arch
    return {
        "study": study,
        "trial_num": trial_num,
        "budget": budget,
        "d_model": d_model,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "diverged": diverged,
        "rank_in_study": rank,
        "val_loss": val_loss,
    }


def similar(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    return row["similar_successful_trial"], row["similar_val_loss"], row["similar_distance"]


def test_similar_nearest_candidate_of_same_budget() -> None:
    target = arch_row("a", 0, (128, 8, 8), diverged=True)
    rows = [
        target,
        # distance sqrt(1 + 1 + 1) = 1.732051
        arch_row("a", 1, (64, 4, 4), diverged=False, rank=1, val_loss=0.5),
        # distance 1 (n_heads 8 -> 4)
        arch_row("b", 2, (128, 8, 4), diverged=False, rank=2, val_loss=0.6),
        # distance 0 but another budget: never chosen
        arch_row("c", 3, (128, 8, 8), diverged=False, rank=1, budget="20M", val_loss=0.1),
        # distance 0 but diverged: not a candidate
        arch_row("a", 4, (128, 8, 8), diverged=True, rank=3, val_loss=11.0),
        # distance 0 but unranked: not a candidate
        arch_row("a", 5, (128, 8, 8), diverged=False, rank=None, val_loss=0.2),
        # distance 0 but diverged unknown (no objective): not a candidate
        arch_row("a", 6, (128, 8, 8), diverged=None, rank=None, val_loss=0.3),
    ]
    assign_similar_successful(rows)
    assert similar(target) == ("b/2", 0.6, 1.0)


def test_similar_distance_non_power_of_two() -> None:
    target = arch_row("a", 0, (96, 4, 4), diverged=True)
    cand = arch_row("a", 1, (64, 4, 4), diverged=False, rank=1, val_loss=0.7)
    assign_similar_successful([target, cand])
    # log2(96) - log2(64) = log2(1.5) = 0.5849625007...
    assert similar(target) == ("a/1", 0.7, 0.584963)


def test_similar_distance_three_axes() -> None:
    target = arch_row("a", 0, (128, 8, 8), diverged=True)
    cand = arch_row("a", 1, (64, 4, 4), diverged=False, rank=1, val_loss=0.5)
    assign_similar_successful([target, cand])
    assert similar(target) == ("a/1", 0.5, 1.732051)  # sqrt(3)


def test_similar_tie_prefers_same_study() -> None:
    target = arch_row("b", 0, (128, 8, 8), diverged=True)
    rows = [
        target,
        arch_row("a", 1, (256, 8, 8), diverged=False, rank=1, val_loss=0.1),
        arch_row("b", 2, (64, 8, 8), diverged=False, rank=3, val_loss=0.9),
    ]
    assign_similar_successful(rows)
    assert similar(target) == ("b/2", 0.9, 1.0)


def test_similar_tie_then_better_rank() -> None:
    target = arch_row("a", 0, (128, 8, 8), diverged=True)
    rows = [
        target,
        arch_row("b", 1, (256, 8, 8), diverged=False, rank=3, val_loss=0.8),
        arch_row("b", 2, (128, 16, 8), diverged=False, rank=2, val_loss=0.7),
    ]
    assign_similar_successful(rows)
    assert similar(target) == ("b/2", 0.7, 1.0)


def test_similar_tie_then_study_name() -> None:
    target = arch_row("a", 0, (128, 8, 8), diverged=True)
    rows = [
        target,
        arch_row("x", 1, (256, 8, 8), diverged=False, rank=1, val_loss=0.8),
        arch_row("c", 9, (128, 16, 8), diverged=False, rank=1, val_loss=0.7),
    ]
    assign_similar_successful(rows)
    assert similar(target) == ("c/9", 0.7, 1.0)


def test_similar_tie_then_trial_number() -> None:
    target = arch_row("a", 0, (128, 8, 8), diverged=True)
    rows = [
        target,
        arch_row("b", 7, (256, 8, 8), diverged=False, rank=1, val_loss=0.8),
        arch_row("b", 3, (128, 16, 8), diverged=False, rank=1, val_loss=0.8),
    ]
    assign_similar_successful(rows)
    assert similar(target) == ("b/3", 0.8, 1.0)


def test_similar_no_candidate_gives_none() -> None:
    target = arch_row("a", 0, (128, 8, 8), diverged=True)
    rows = [
        target,
        arch_row("b", 1, (128, 8, 8), diverged=False, rank=1, budget="20M", val_loss=0.5),
        arch_row("a", 2, (128, 8, 8), diverged=True, rank=2, val_loss=12.0),
    ]
    assign_similar_successful(rows)
    assert similar(target) == (None, None, None)
    assert similar(rows[2]) == (None, None, None)


def test_similar_unknown_architecture_gives_none() -> None:
    target = arch_row("a", 0, (128, 8, 8), diverged=True)
    target["n_heads"] = None
    rows = [target, arch_row("a", 1, (128, 8, 8), diverged=False, rank=1, val_loss=0.5)]
    assign_similar_successful(rows)
    assert similar(target) == (None, None, None)


def test_similar_without_budget_stays_within_study() -> None:
    target = arch_row("a", 0, (128, 8, 8), diverged=True, budget=None)
    rows = [
        target,
        arch_row("b", 1, (128, 8, 8), diverged=False, rank=1, budget=None, val_loss=0.2),
        arch_row("a", 2, (64, 8, 8), diverged=False, rank=1, budget=None, val_loss=0.4),
    ]
    assign_similar_successful(rows)
    assert similar(target) == ("a/2", 0.4, 1.0)


def test_similar_exact_match_distance_zero() -> None:
    target = arch_row("a", 0, (128, 8, 8), diverged=True)
    cand = arch_row("b", 4, (128, 8, 8), diverged=False, rank=2, val_loss=0.35)
    assign_similar_successful([target, cand])
    assert similar(target) == ("b/4", 0.35, 0.0)


# --- similar successful trial: the distinct-architecture search equals the brute force --------


def _brute_force_similar(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The definition, pair by pair: every diverged row against every candidate."""
    import math

    def vector(row: dict[str, Any]) -> tuple[float, ...] | None:
        values = [row.get(k) for k in ("d_model", "n_layers", "n_heads")]
        if all(isinstance(v, int) and v > 0 for v in values):
            return tuple(math.log2(v) for v in values)  # type: ignore[arg-type]
        return None

    answers = []
    for row in rows:
        if not row["diverged"]:
            continue
        best = None
        for cand in rows:
            if cand["diverged"] is not False or not cand["rank_in_study"]:
                continue
            a, b = vector(row), vector(cand)
            if a is None or b is None or cand["budget"] != row["budget"]:
                continue
            key = (
                round(math.dist(a, b), 12),
                cand["study"] != row["study"],
                cand["rank_in_study"],
                cand["study"],
                cand["trial_num"],
            )
            best = key if best is None or key < best else best
        answers.append(
            (f"{best[3]}/{best[4]}", round(best[0], 6)) if best is not None else (None, None)
        )
    return answers


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a_2M", "b_2M", "c_2M"]),
            st.sampled_from([64, 128, 256]),
            st.sampled_from([2, 4, 8]),
            st.sampled_from([1, 2, 4]),
            st.sampled_from([True, False, None]),
            st.integers(1, 5),
        ),
        max_size=40,
    )
)
def test_similar_successful_equals_the_pairwise_definition(specs: list[tuple[Any, ...]]) -> None:
    rows = [
        {
            "study": study,
            "budget": "2M",
            "trial_num": i,
            "d_model": d_model,
            "n_layers": n_layers,
            "n_heads": n_heads,
            "diverged": diverged,
            "rank_in_study": None if diverged else rank,
            "val_loss": 0.5,
        }
        for i, (study, d_model, n_layers, n_heads, diverged, rank) in enumerate(specs)
    ]
    expected = _brute_force_similar(rows)
    assign_similar_successful(rows)
    got = [(r["similar_successful_trial"], r["similar_distance"]) for r in rows if r["diverged"]]
    assert got == expected


# --- budget_params and the budget-relative arch_style ------------------------------------------


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ("2M", 2_000_000),
        ("20m", 20_000_000),
        ("200M", 200_000_000),
        ("2B", 2_000_000_000),
        ("1.5B", 1_500_000_000),
        ("7", 7),
        ("h3", None),
        ("", None),
        (None, None),
    ],
)
def test_budget_params(budget: str | None, expected: int | None) -> None:
    assert budget_params(budget) == expected


def test_budget_params_orders_budgets_by_size_not_text() -> None:
    budgets = ["200M", "20M", "2B", "2M"]  # text order
    assert sorted(budgets, key=budget_params) == ["2M", "20M", "200M", "2B"]


def style_row(budget: str | None, d_model: int | None, n_layers: int | None) -> dict[str, Any]:
    return {"study": f"s_{budget}", "budget": budget, "d_model": d_model, "n_layers": n_layers}


def test_arch_style_splits_each_budgets_own_ratios_into_thirds() -> None:
    # 2B-like budget: ratios 24/2048 < 32/2048 < 48/2048 < 48/1536; k = 4 distinct ratios,
    # rank midpoints (i + 0.5)/4 = 0.125, 0.375, 0.625, 0.875 → thirds 0, 1, 1, 2.
    big = [
        style_row("2B", 2048, 24),
        style_row("2B", 2048, 24),  # a repeated architecture does not move the cut points
        style_row("2B", 2048, 32),
        style_row("2B", 2048, 48),
        style_row("2B", 1536, 48),
    ]
    # every one of these is "wide-shallow" under the fixed thresholds (ratio < 0.15)
    assert all(
        arch_category(r["n_layers"], r["d_model"], THRESHOLDS) == "wide-shallow" for r in big
    )
    small = [style_row("2M", 64, 48), style_row("2M", 512, 1), style_row("2M", 128, 8)]
    rows = big + small
    assign_arch_style(rows)
    assert [r["arch_style"] for r in big] == [
        "wide-shallow",
        "wide-shallow",
        "balanced",
        "balanced",
        "narrow-deep",
    ]
    # k = 3: one architecture per third, compared only with its own budget
    assert [r["arch_style"] for r in small] == ["narrow-deep", "wide-shallow", "balanced"]
    assert [r["budget_params"] for r in (big[0], small[0])] == [2_000_000_000, 2_000_000]


def test_arch_style_equal_ratios_share_a_style_and_single_architecture_is_balanced() -> None:
    rows = [style_row("2M", 64, 8), style_row("2M", 128, 16), style_row("2M", 64, 16)]
    one = [style_row("9M", 64, 8)]
    missing = [style_row("2M", None, 8), style_row("2M", 64, 0)]
    assign_arch_style(rows + one + missing)
    # 8/64 == 16/128: one distinct ratio; k = 2 → wide-shallow and narrow-deep
    assert [r["arch_style"] for r in rows] == ["wide-shallow", "wide-shallow", "narrow-deep"]
    assert one[0]["arch_style"] == "balanced"
    assert [r["arch_style"] for r in missing] == [None, None]


def test_arch_style_without_budget_is_relative_to_the_study() -> None:
    rows = [
        {"study": "a", "budget": None, "d_model": 64, "n_layers": 4},
        {"study": "a", "budget": None, "d_model": 64, "n_layers": 8},
        {"study": "b", "budget": None, "d_model": 64, "n_layers": 8},
    ]
    assign_arch_style(rows)
    assert [r["arch_style"] for r in rows] == ["wide-shallow", "narrow-deep", "balanced"]
    assert rows[0]["budget_params"] is None
